"""What the CLI prints of data it did not write: a feed's rows, and the labels and notes an API
key holder gives. Printed as text: no terminal escape sequence (ESC: colours, clearing the
screen, the window title, OSC 52 writing the operator's clipboard, OSC 8 links; CR rewriting
the line) and no rich markup reaches the operator's terminal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_seed import LAST_DAY, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.settings import Settings
from service.app import create_app

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\r"


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "300")
    return CliRunner()


@pytest.fixture
def client(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    seed(sessions)
    yield TestClient(create_app(settings, engine=engine))


def _plain(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\r" not in output, repr(output)
    assert "\\x1b]0;pwned\\x07" in output, output


def test_a_label_from_the_api_is_printed_as_text_by_report_and_taxonomy_show(
    client: TestClient, runner: CliRunner, keys: dict[str, str]
) -> None:
    """A label « Livraison [/] » given through PUT /taxonomy made `verbatim report` (and the
    report of `verbatim run`) end on a rich MarkupError traceback; « [link=https://…]ici »
    became a disguised link in the terminal and ESC sequences went to it as they were, from
    `verbatim taxonomy show` too."""
    from verbatim_cli import app

    label = f"Prix [/] [link=https://evil.example]ici[/link] {HOSTILE}"
    ops = [{"op": "rename", "id": "prix", "new_id": "tarif", "label": label}]
    res = client.put("/taxonomy", json={"operations": ops}, headers={"X-API-Key": keys["write"]})
    assert res.status_code == 200, res.text
    report = runner.invoke(app, ["report", "--end", LAST_DAY.isoformat()])
    assert report.exit_code == 0, report.output
    _plain(report.output)
    assert "Prix [/] [link=https://evil.example]ici[/link] " in report.output
    shown = runner.invoke(app, ["taxonomy", "show"])
    assert shown.exit_code == 0, shown.output
    _plain(shown.output)


def test_notes_given_through_the_api_are_printed_as_text_by_incidents(
    client: TestClient, runner: CliRunner, keys: dict[str, str]
) -> None:
    """`verbatim incidents` (the on-call operator's list) printed an incident's notes, set by
    any write key through POST /incidents/{id}/resolve, with their ESC sequences."""
    from verbatim_cli import app

    write = {"X-API-Key": keys["write"]}
    incident = client.get("/incidents", headers={"X-API-Key": keys["read"]}).json()["items"][0]
    res = client.post(
        f"/incidents/{incident['id']}/resolve", json={"note": f"fini {HOSTILE}"}, headers=write
    )
    assert res.status_code == 200, res.text
    listed = runner.invoke(app, ["incidents", "--status", "all"])
    assert listed.exit_code == 0, listed.output
    _plain(listed.output)
    assert f"#{incident['id']} " in listed.output


@pytest.mark.slow
def test_a_rejected_row_is_printed_as_text_by_quarantine(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    """`verbatim quarantine` printed the raw rejected rows of a feed (a web form's text) with
    their ESC sequences: a customer could write to the operator's terminal and clipboard."""
    from verbatim_cli import app

    feed = tmp_path / "feed.csv"
    rows = ["id,date,text"]
    rows += [
        f"{i},2026-12-01,Livraison en retard de trois jours et colis abîmé {i}" for i in range(40)
    ]
    rows.append(f'99,pas une date,"Colis {HOSTILE} fin"')
    feed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ingested = runner.invoke(app, ["ingest", str(feed), "--source", "form"])
    assert ingested.exit_code == 0, ingested.output
    shown = runner.invoke(app, ["quarantine"])
    assert shown.exit_code == 0, shown.output
    _plain(shown.output)

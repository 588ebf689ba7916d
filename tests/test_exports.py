"""Exports: `verbatim report --format csv|xlsx|json` and `?format=csv` on list endpoints, read
back with Python's csv module and openpyxl on the seeded database (tests/api_seed.py)."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from api_seed import KNOWN_TEXT, LAST_DAY, Seeded, _add, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.db import session_scope
from core.exports import Table, to_csv, to_xlsx
from core.models import Alert, Feedback
from core.settings import Settings
from service.app import create_app
from service.auth import create_key

# Seeded livraison mentions: 3 templates a day over 28 days, x3 in the last 7, + KNOWN_TEXT.
LIVRAISON_ALL = 3 * 21 + 9 * 7 + 1


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions)


@pytest.fixture
def client(settings: Settings, engine: Engine, seeded: Seeded) -> TestClient:
    with session_scope(sessionmaker(engine)) as session:
        _, token = create_key(session, "export", "read")
    c = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    c.headers["X-API-Key"] = token
    return c


def _csv(res) -> list[dict[str, str]]:  # noqa: ANN001
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    text = res.content.decode("utf-8-sig")  # BOM for Excel
    return list(csv.DictReader(io.StringIO(text)))


def test_themes_csv_has_the_table_rows(client: TestClient, seeded: Seeded) -> None:
    rows = _csv(client.get("/themes", params={"format": "csv", "end": str(LAST_DAY)}))
    by_theme = {r["theme"]: r for r in rows}
    assert int(by_theme["livraison"]["mentions"]) == seeded.livraison_current
    assert int(by_theme["livraison"]["négatives"]) == seeded.livraison_current_negative
    assert by_theme["livraison"]["libellé"] == "Livraison"
    assert float(by_theme["livraison"]["part négative"]) == pytest.approx(
        seeded.livraison_current_negative / seeded.livraison_current, abs=1e-4
    )
    # Last row: the verbatim total, labelled as such (theme rows count mentions).
    assert rows[-1]["theme"] == "*" and "verbatims" in rows[-1]["libellé"]
    # JSON and CSV agree.
    js = client.get("/themes", params={"end": str(LAST_DAY)}).json()
    assert {t["id"]: t["volume"] for t in js["themes"]} == {
        r["theme"]: int(r["mentions"]) for r in rows[:-1]
    }


def test_verbatims_csv_pages_through_everything(client: TestClient) -> None:
    rows = _csv(client.get("/themes/livraison/verbatims", params={"format": "csv"}))
    assert len(rows) == LIVRAISON_ALL  # not one page of 20
    assert rows[0]["texte"] == KNOWN_TEXT and rows[0]["extrait"] == "dix jours de retard"
    neg = _csv(
        client.get(
            "/themes/livraison/verbatims",
            params={"format": "csv", "polarity": "negative", "start": str(LAST_DAY)},
        )
    )
    assert neg and {r["polarité du thème"] for r in neg} == {"negative"}
    assert all(r["date"].startswith(str(LAST_DAY)) for r in neg)
    # JSON still paginates.
    assert len(client.get("/themes/livraison/verbatims").json()["items"]) == 20


def test_csv_export_past_the_cap_is_a_clear_error(
    client: TestClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export stopped at MAX_EXPORT_ROWS and answered a 200 that looked complete (the
    newest rows only); the cap is lowered here to 1,000 rows (one page of the export)."""
    import service.exporting

    with session_scope(sessions) as session:
        for n in range(1001 - LIVRAISON_ALL):  # 1,001 livraison mentions in all
            _add(
                session,
                10_000 + n,
                LAST_DAY,
                "livraison",
                "neutral",
                f"Colis {n}",
                "Colis",
                "review",
            )
    monkeypatch.setattr(service.exporting, "MAX_EXPORT_ROWS", 1000)
    res = client.get("/themes/livraison/verbatims", params={"format": "csv"})
    assert res.status_code == 422, res.headers
    assert res.json()["field"] == "format" and "1000" in res.json()["detail"]
    # Under the cap, every row still comes.
    monkeypatch.setattr(service.exporting, "MAX_EXPORT_ROWS", 1001)
    assert len(_csv(client.get("/themes/livraison/verbatims", params={"format": "csv"}))) == 1001
    monkeypatch.setattr(service.exporting, "MAX_EXPORT_ROWS", 1)
    assert client.get("/alerts", params={"format": "csv"}).status_code == 422
    assert len(_csv(client.get("/alerts", params={"format": "csv", "status": "open"}))) == 1


def test_alerts_csv(client: TestClient, seeded: Seeded) -> None:
    rows = _csv(client.get("/alerts", params={"format": "csv"}))
    assert [int(r["id"]) for r in rows] == sorted([seeded.alert_id, seeded.alert_id - 1])[::-1]
    assert rows[0]["theme"] == "livraison" and rows[0]["statut"] == "open"
    assert float(rows[0]["observé"]) == 30.0
    opened = _csv(client.get("/alerts", params={"format": "csv", "status": "open"}))
    assert len(opened) == 1
    assert client.get("/alerts", params={"format": "pdf"}).status_code == 422


def test_alerts_csv_says_the_incident_and_its_status_as_the_json(
    client: TestClient, seeded: Seeded, sessions: sessionmaker[Session]
) -> None:
    """Once a person resolved an incident its alerts stay `open` (the JSON says so with
    `incident_status`, the Alertes view « incident résolu »); the CSV had neither the
    incident nor its status: every such alert read as one still to handle."""
    from core.queries import set_incident_status

    with session_scope(sessions) as session:
        incident_id = session.scalar(select(Alert.incident_id).where(Alert.id == seeded.alert_id))
        assert incident_id is not None
        set_incident_status(session, incident_id, "resolve", "analyste", "réglé")
    listed = client.get("/alerts").json()["items"]
    rows = _csv(client.get("/alerts", params={"format": "csv"}))
    assert [(r["incident"], r["statut incident"]) for r in rows] == [
        ("" if a["incident_id"] is None else str(a["incident_id"]), a["incident_status"] or "")
        for a in listed
    ]
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[seeded.alert_id]["statut"] == "open"
    assert by_id[seeded.alert_id]["statut incident"] == "resolved"


def test_alerts_csv_names_a_renamed_theme_by_its_current_id(
    client: TestClient, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """After livraison -> transport, `/alerts` said `transport` and its CSV still `livraison`
    (the id stored when the alert opened): the analyst's pivot split one theme in two."""
    from core import taxonomy_store

    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(
            session, settings, tax.rename("livraison", "transport", "Transport"), "t", "rename"
        )
    listed = client.get("/alerts").json()["items"]
    rows = _csv(client.get("/alerts", params={"format": "csv"}))
    assert [r["theme"] for r in rows] == [a["theme"] for a in listed]
    assert "transport" in {r["theme"] for r in rows} and "livraison" not in {
        r["theme"] for r in rows
    }


def test_export_times_are_utc_whatever_the_database_hands_back(client: TestClient) -> None:
    """SQLite hands stored times back naive, PostgreSQL in the server's time zone: the same
    verbatim's CSV date read "13:59:00" (no zone: read as Paris time in Excel) on one and
    "14:59:00+01:00" on the other. Both now say UTC, as the JSON answers."""
    from datetime import UTC, datetime, timezone

    from openpyxl import load_workbook

    naive = datetime(2026, 3, 28, 13, 59)
    paris = datetime(2026, 3, 28, 14, 59, tzinfo=timezone(timedelta(hours=1)))
    rows = list(csv.reader(io.StringIO(to_csv(Table("t", ["date"], [[naive], [paris]])))))
    assert rows[1:] == [["2026-03-28T13:59:00Z"], ["2026-03-28T13:59:00Z"]]
    out = io.BytesIO()
    to_xlsx([Table("t", ["date"], [[naive], [paris], [naive.replace(tzinfo=UTC)]])], out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    assert {c.value for (c,) in sheet.iter_rows(min_row=2)} == {naive}
    listed = client.get("/themes/livraison/verbatims", params={"limit": 1}).json()["items"][0]
    exported = _csv(client.get("/themes/livraison/verbatims", params={"format": "csv"}))[0]
    assert exported["date"] == listed["created_at"] and exported["date"].endswith("Z")


def test_csv_cells_cannot_run_formulas() -> None:
    text = to_csv(Table("t", ["texte", "n"], [['=HYPERLINK("x")', -3], ["@SUM(A1)", 2]]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['\'=HYPERLINK("x")', "-3"]  # numbers stay numbers
    assert rows[2][0] == "'@SUM(A1)"


def test_xlsx_drops_control_characters_instead_of_failing() -> None:
    """A taxonomy label with a control character (PUT /taxonomy accepts "\u0007") made
    `verbatim report --format xlsx` fail with openpyxl's IllegalCharacterError."""
    from openpyxl import load_workbook

    out = io.BytesIO()
    to_xlsx([Table("t", ["libellé", "n"], [["Délai\x07 SAV\x1b", 3], ["-Prix @promo", 1]])], out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    assert [[c.value for c in r] for r in sheet.iter_rows(min_row=2)] == [
        ["Délai SAV", 3],
        ["-Prix @promo", 1],  # text as written: no apostrophe shown in Excel
    ]


def test_xlsx_text_starting_like_a_formula_is_text_without_an_apostrophe() -> None:
    """The CSV's guard (a leading "'") was applied to xlsx cells too, where Excel showed the
    apostrophe: text cells hold the text itself, and "=…" is stored as text, not a formula."""
    from openpyxl import load_workbook

    out = io.BytesIO()
    rows_in = [["Délai\x07 SAV\x1b", 3], ["=1+1\x00", 1], ["#N/A", 2]]
    to_xlsx([Table("t", ["libellé", "n"], rows_in)], out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    rows = list(sheet.iter_rows(min_row=2))
    assert [[c.value for c in r] for r in rows] == [["Délai SAV", 3], ["=1+1", 1], ["#N/A", 2]]
    assert rows[1][0].data_type == rows[2][0].data_type == "s"  # text: never evaluated


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
        "COLUMNS": "160",
    }


def test_report_exports(tmp_path: Path, settings: Settings, engine: Engine, seeded: Seeded) -> None:
    from openpyxl import load_workbook

    from verbatim_cli import app

    runner = CliRunner()
    env = _env(settings, tmp_path)
    end = ["--end", str(LAST_DAY)]

    out = tmp_path / "rapport.xlsx"
    res = runner.invoke(app, ["report", "--format", "xlsx", "-o", str(out), *end], env=env)
    assert res.exit_code == 0, res.output
    book = load_workbook(out)
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    rows = [
        dict(zip(header, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=2)
    ]
    live = next(r for r in rows if r["theme"] == "livraison")
    assert live["mentions"] == seeded.livraison_current
    assert live["négatives"] == seeded.livraison_current_negative
    assert rows[-1]["theme"] == "*" and rows[-1]["mentions"] == _verbatims_in_week(engine)

    res = runner.invoke(app, ["report", "--format", "csv", *end], env=env)
    assert res.exit_code == 0, res.output
    csv_rows = list(csv.DictReader(io.StringIO(res.stdout.lstrip("\ufeff"))))
    assert int(next(r for r in csv_rows if r["theme"] == "livraison")["mentions"]) == (
        seeded.livraison_current
    )
    out_csv = tmp_path / "r.csv"
    res = runner.invoke(app, ["report", "-f", "csv", "-o", str(out_csv), *end], env=env)
    assert res.exit_code == 0
    with out_csv.open(encoding="utf-8-sig", newline="") as fh:
        assert list(csv.DictReader(fh)) == csv_rows

    res = runner.invoke(app, ["report", "--format", "json", *end], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["end"] == str(LAST_DAY) and data["start"] == str(LAST_DAY - timedelta(days=6))
    assert next(t for t in data["themes"] if t["theme"] == "livraison")["mentions"] == (
        seeded.livraison_current
    )
    assert data["verbatims"] == _verbatims_in_week(engine)

    res = runner.invoke(app, ["report", "--format", "xlsx"], env=env)
    assert res.exit_code == 2 and "-o" in res.output
    res = runner.invoke(app, ["report", "--format", "pdf"], env=env)
    assert res.exit_code == 2 and "--format" in res.output


def test_the_themes_exports_say_their_period(
    tmp_path: Path, settings: Settings, client: TestClient
) -> None:
    """A report CSV opened the next week did not say which week it was (« Thèmes 22-03 au
    28-03 » was only the xlsx sheet's title, with no year): every row carries the period."""
    from openpyxl import load_workbook

    from verbatim_cli import app

    start, end = str(LAST_DAY - timedelta(days=6)), str(LAST_DAY)
    runner = CliRunner()
    env = _env(settings, tmp_path)
    res = runner.invoke(app, ["report", "--format", "csv", "--end", end], env=env)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout.lstrip("\ufeff"))))
    assert rows and {(r["début période"], r["fin période"]) for r in rows} == {(start, end)}
    api = _csv(client.get("/themes", params={"format": "csv", "end": end}))
    assert {(r["début période"], r["fin période"]) for r in api} == {(start, end)}
    out = tmp_path / "r.xlsx"
    res = runner.invoke(app, ["report", "-o", str(out), "--end", end], env=env)
    assert res.exit_code == 0, res.output
    title = load_workbook(out).worksheets[0].title
    assert title == f"Thèmes {LAST_DAY - timedelta(days=6):%d-%m-%Y} au {LAST_DAY:%d-%m-%Y}"


def test_report_output_alone_writes_the_format_of_its_extension(
    tmp_path: Path, settings: Settings, seeded: Seeded
) -> None:
    """`verbatim report -o weekly.csv` (README: `[--format …] [-o FILE]`) printed the table and
    wrote no file, silently (a cron job's export never appeared). The format follows -o's
    extension; a file the table cannot be written to is refused."""
    from openpyxl import load_workbook

    from verbatim_cli import app

    env = _env(settings, tmp_path)
    end = ["--end", str(LAST_DAY)]
    for name in ("weekly.csv", "weekly.JSON", "weekly.xlsx"):
        out = tmp_path / name
        res = CliRunner().invoke(app, ["report", "-o", str(out), *end], env=env)
        assert res.exit_code == 0, res.output
        assert "Thèmes" not in res.stdout and out.is_file(), (name, res.output)
    with (tmp_path / "weekly.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert any(r["theme"] == "livraison" for r in csv.DictReader(fh))
    assert json.loads((tmp_path / "weekly.JSON").read_text("utf-8"))["end"] == str(LAST_DAY)
    assert load_workbook(tmp_path / "weekly.xlsx").worksheets
    table_to_csv = ["-f", "table", "-o", str(tmp_path / "t.csv")]
    for args in (["-o", str(tmp_path / "weekly.txt")], table_to_csv):
        res = CliRunner().invoke(app, ["report", *args, *end], env=env)
        assert res.exit_code == 2, res.output
        assert "the table is printed, not written" in " ".join(res.output.split())
    assert not (tmp_path / "weekly.txt").exists()


def test_report_to_dev_stdout_appended_to_a_log_keeps_the_log(
    tmp_path: Path, settings: Settings, seeded: Seeded
) -> None:
    """`verbatim report -f json -o /dev/stdout >> log`: the report reopened /dev/stdout for
    writing, which truncated the log (its earlier lines lost). Written through stdout."""
    import subprocess
    import sys

    log = tmp_path / "log.txt"
    log.write_text("previous\n", encoding="utf-8")
    env = {
        **os.environ,
        **_env(settings, tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    command = ["report", "-f", "json", "-o", "/dev/stdout", "--end", str(LAST_DAY)]
    with log.open("a", encoding="utf-8") as out:
        run = subprocess.run(
            [sys.executable, "-m", "verbatim_cli", *command],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    previous, rest = log.read_text(encoding="utf-8").split("\n", 1)
    assert previous == "previous" and json.loads(rest)["end"] == str(LAST_DAY)


def _verbatims_in_week(engine: Engine) -> int:
    from datetime import UTC, datetime

    lo = datetime.combine(LAST_DAY - timedelta(days=6), datetime.min.time(), tzinfo=UTC)
    with Session(engine) as session:
        return len(session.scalars(select(Feedback.id).where(Feedback.created_at >= lo)).all())


def test_report_lists_the_themes_of_the_api_export_after_a_retire(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], client: TestClient
) -> None:
    """A retired theme kept its stored mentions: `verbatim report` (table, csv, xlsx, json)
    still listed it, beside `/themes` and its CSV without it."""
    from core import taxonomy_store
    from verbatim_cli import app

    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, tax.retire("livraison"), "t", "retire")
    end = ["--end", str(LAST_DAY)]
    res = CliRunner().invoke(app, ["report", "-f", "csv", *end], env=_env(settings, tmp_path))
    assert res.exit_code == 0, res.output
    reported = [r["theme"] for r in csv.DictReader(io.StringIO(res.stdout.lstrip("\ufeff")))]
    exported = _csv(client.get("/themes", params={"format": "csv", "end": str(LAST_DAY)}))
    assert "livraison" not in reported and reported[-1] == "*"
    assert sorted(reported) == sorted(r["theme"] for r in exported)


def test_verbatims_csv_says_each_language_as_the_json_does(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    """The list has every language (`/themes` counts French only): the CSV had no language
    column, so its rows outnumbered the theme's mentions with nothing to tell them apart."""
    with session_scope(sessions) as session:
        _add(session, 20_000, LAST_DAY, "livraison", "negative", "Parcel late", "late", "review")
        session.flush()
        english = session.scalars(select(Feedback).where(Feedback.text == "Parcel late")).one()
        english.language, english.is_french = "en", False
    listed = client.get("/themes/livraison/verbatims", params={"limit": 200}).json()["items"]
    rows = _csv(client.get("/themes/livraison/verbatims", params={"format": "csv"}))
    assert [r["langue"] for r in rows] == [i["language"] for i in listed]
    assert {r["texte"]: r["langue"] for r in rows}["Parcel late"] == "en"
    assert sum(r["langue"] == "fr" for r in rows) == LIVRAISON_ALL

"""Misc hardening: binary files, inferred column mapping, French written dates, strict days."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.models import Feedback
from core.settings import Settings
from core.store import InvalidValue, parse_datetime
from jobs.ingest import ingest_file
from jobs.readers import ReaderError
from service.app import create_app


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"PK\x03\x04" + b"\x00" * 200, "ZIP"),
        (gzip.compress(b"id,text\n1,ok\n"), "gzip"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "PDF"),
        (bytes(range(32)) * 64, "binary"),
    ],
)
def test_binary_file_is_one_clear_error(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], content: bytes, what: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(ReaderError, match=what):
        ingest_file(sessions, settings, path, source="s")


def test_cli_binary_file_exits_2_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "avis.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    res = CliRunner().invoke(app, ["ingest", str(path), "--source", "s", "-q"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "spreadsheet" in res.output


def test_gzip_file_says_to_decompress_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """`avis.csv.gz` is a CSV already: « export it as CSV (UTF-8) » sent the analyst back to
    an export that was right; the message says to decompress it."""
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "avis.csv.gz"
    path.write_bytes(gzip.compress("id;avis\n1;Très bien\n".encode()))
    res = CliRunner().invoke(app, ["ingest", str(path), "--source", "s", "-q"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "export it as CSV" not in res.output
    assert "gzip-compressed; decompress it first, e.g. `gunzip -k" in res.output


def test_inferred_mapping_is_printed_and_sane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """The audit's file: `id_avis` is the id, `titre` is not glued to the text, two reviews
    with the same text but different ids are two reviews; the CLI says what it picked."""
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VERBATIM_PII_NER", "0")
    path = tmp_path / "avis.csv"
    path.write_text(
        "id_avis,titre,avis,date\n"
        "a1,Super,Colis reçu intact,26 février 2021\n"
        "a2,Super,Colis reçu intact,26/02/2021\n"
        "a3,Bof,Livraison lente,2021-02-27\n",
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["ingest", str(path), "--source", "s", "-q"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "text=avis" in out and "id=id_avis" in out and "created_at=date" in out
    assert "titre" not in out.split("recognised")[0]
    assert "stored 3" in out and "duplicates 0" in out


def test_title_only_when_asked(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,titre,texte\n1,Déçu,Colis abîmé\n", encoding="utf-8")
    ingest_file(sessions, settings, path, source="a")
    ingest_file(sessions, settings, path, source="b", mapping={"title": "titre"}, force=True)
    with sessions() as session:
        texts = dict(session.execute(select(Feedback.source, Feedback.text)).all())
    assert texts == {"a": "Colis abîmé", "b": "Déçu. Colis abîmé"}


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("26 février 2021", "2021-02-26"),
        ("26 fevrier 2021", "2021-02-26"),
        ("1er janvier 2024", "2024-01-01"),
        ("mardi 3 mars 2025 à 14h30", "2025-03-03"),
        ("26/02/2021", "2021-02-26"),
        ("March 3, 2025", "2025-03-03"),
    ],
)
def test_written_dates(text: str, iso: str) -> None:
    assert parse_datetime(text).date().isoformat() == iso


@pytest.mark.parametrize("text", ["hier", "il y a 3 jours", "3 mars", "pas une date"])
def test_relative_or_partial_dates_are_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_datetime(text)


@pytest.mark.parametrize("query", ["start=0", "end=1700000000", "start=2025-3-1", "start=abc"])
def test_days_are_iso_only(settings: Settings, engine: Engine, query: str) -> None:
    open_read = settings.model_copy(update={"dashboard_read_without_key": True})
    client = TestClient(create_app(open_read, engine=engine), base_url="http://127.0.0.1")
    res = client.get(f"/themes?{query}")
    assert res.status_code == 422, res.text
    assert res.json()["field"] == query.split("=")[0]
    assert client.get("/themes?start=2025-03-01").status_code == 200


@pytest.mark.parametrize("path", ["/overview", "/drivers", "/themes/livraison/breakdown"])
@pytest.mark.parametrize("query", ["start=0", "end=86400"])
def test_every_period_view_takes_iso_days_only(
    settings: Settings, engine: Engine, path: str, query: str
) -> None:
    """/overview, /drivers and a theme's breakdown read "?start=0" as 1970-01-01 (a Unix
    time) and answered an empty 1970 period with a 200, as /themes no longer does."""
    open_read = settings.model_copy(update={"dashboard_read_without_key": True})
    client = TestClient(create_app(open_read, engine=engine), base_url="http://127.0.0.1")
    res = client.get(f"{path}?{query}")
    assert res.status_code == 422, res.text
    assert res.json()["field"] == query.split("=")[0]
    assert client.get(f"{path}?start=2025-03-01").status_code == 200

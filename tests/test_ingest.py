"""File ingestion: formats, quarantine, dedup, mapping errors, crash + resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.models import Feedback, IngestionRun, Quarantine
from core.settings import Settings
from jobs.ingest import MappingError, ingest_file, parse_mapping
from jobs.readers import ReaderError

REPO = Path(__file__).resolve().parents[1]


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _reasons(session: Session) -> dict[int, tuple[str, str | None]]:
    return {
        q.row_number: (q.reason.split(":")[0], q.field) for q in session.scalars(select(Quarantine))
    }


def write_csv(path: Path, rows: int, *, start: int = 0) -> Path:
    lines = ["id,date,text,note"]
    lines += [
        f"r{i},2026-10-{1 + i % 28:02d},Avis numéro {i} : livraison correcte,{1 + i % 5}"
        for i in range(start, start + rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_semicolon_csv_with_bom_and_bad_rows(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    content = (
        "\ufeffid;date;avis;note;commande;ville\n"
        "1;2026-11-01;Colis arrivé écrasé, appelez moi au 0612345678;1;A-1;Paris\n"
        '2;05/11/2026;"Très bien; rapide\net soigné";5;A-2;Lyon\n'
        "3;pas une date;texte;3;A-3;Nice\n"
        "4;2026-11-02;;4;A-4;Lille\n"
        "5;2026-11-03;ok;12;A-5;Metz\n"
        "7;2026-11-03;trop;de;champs;ici;oui\n"
        "8;2026-11-04;Service client injoignable;1;A-1;Paris\n"
    ).encode()
    bad_line = "6;2026-11-03;caf\xe9 froid;2;A-6;Pau\n".encode("latin-1")  # not UTF-8
    path = tmp_path / "avis.csv"
    path.write_bytes(content.replace(b"7;2026", bad_line + b"7;2026"))

    result = ingest_file(sessions, settings, path, source="shop", channel="review")

    assert (result.read, result.stored, result.rejected) == (8, 3, 5)
    assert result.reasons == dict.fromkeys(
        ["bad_date", "empty_text", "bad_rating", "encoding_error", "wrong_field_count"], 1
    )
    assert _reasons(session) == {
        3: ("bad_date", "created_at"),
        4: ("empty_text", "text"),
        5: ("bad_rating", "rating"),
        6: ("encoding_error", None),
        7: ("wrong_field_count", None),
    }
    rows = {f.external_id: f for f in session.scalars(select(Feedback))}
    assert set(rows) == {"1", "2", "8"}
    assert "0612345678" not in rows["1"].text and "<PHONE>" in rows["1"].text
    assert rows["2"].text.startswith("Très bien; rapide")  # quoted ; and newline kept
    assert rows["2"].rating == 5.0 and rows["2"].created_at.day == 5
    assert rows["1"].meta == {"ville": "Paris"}
    # "commande" is recognised as the customer reference: same order -> same key.
    assert rows["1"].customer_key == rows["8"].customer_key is not None
    run = session.scalars(select(IngestionRun)).one()
    assert (run.status, run.rows_read, run.rows_stored, run.rows_rejected) == ("done", 8, 3, 5)


def test_tab_separated_and_explicit_mapping(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    path = tmp_path / "export.tsv"
    path.write_text(
        "ref\twhen\tbody\tstars\textra\nx1\t1762164900\tTrès déçu du produit\t2\tz\n",
        encoding="utf-8",
    )
    mapping = parse_mapping(["id=ref,created_at=when", "text=body", "rating=stars"])
    ingest_file(sessions, settings, path, source="s", channel="complaint", mapping=mapping)
    row = session.scalars(select(Feedback)).one()
    assert (row.external_id, row.channel, row.rating, row.meta) == (
        "x1",
        "complaint",
        2.0,
        {"extra": "z"},
    )
    assert row.created_at.year == 2025
    # One field mapped twice: the last one won silently (the id column read as the text).
    with pytest.raises(MappingError, match="'text' twice"):
        parse_mapping(["text=avis,text=id"])
    assert parse_mapping(["text=avis", "text=avis"]) == {"text": "avis"}


def test_jsonl_with_broken_lines(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    lines = [
        json.dumps(
            {"id": 1, "text": "Remboursement toujours pas reçu", "created_at": "2026-11-01"}
        ),
        '{"id": 2, "text": "json cassé"',
        "",
        json.dumps(["not", "an", "object"]),
        json.dumps(
            {"id": 3, "text": "Parcel arrived late, awful", "created_at": 1762164900, "tags": ["a"]}
        ),
        json.dumps({"id": 4, "text": "   ", "created_at": "2026-11-01"}),
        # A JSON object without the key has no date (stored at ingest time, like a dateless
        # feed); only an explicit empty date is a bad date.
        json.dumps({"id": 5, "text": "sans date"}),
        json.dumps({"id": 55, "text": "date vide", "created_at": ""}),
        '{"id": 6, "text": "surrogate \\ud800 seul", "created_at": "2026-11-01", "x": "\\udc00"}',
    ]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s", channel="social")
    assert (result.read, result.stored, result.rejected) == (8, 3, 5)
    assert _reasons(session) == {
        2: ("invalid_json", None),
        3: ("not_an_object", None),
        5: ("empty_text", "text"),
        7: ("bad_date", "created_at"),
        8: ("encoding_error", "text"),
    }
    english = session.scalars(select(Feedback).where(Feedback.external_id == "3")).one()
    assert english.is_french is False and english.language == "en"  # stored, not dropped
    assert english.meta == {"tags": '["a"]'}  # nested values kept as JSON, masked leaf by leaf


def test_oversized_text_is_quarantined(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    small = settings.model_copy(update={"max_text_chars": 50})
    path = tmp_path / "f.jsonl"
    path.write_text(
        json.dumps({"text": "trop long " * 20}) + "\n" + json.dumps({"text": "court"}) + "\n"
    )
    result = ingest_file(sessions, small, path, source="s")
    assert (result.stored, result.rejected) == (1, 1)
    assert _reasons(session) == {1: ("text_too_long", "text")}


def test_oversized_text_reason_keeps_its_figures(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """The limit's figures are ours, not PII: a 7-digit length is not an order number."""
    limit = 1_000_000
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"text": "x" * (limit + 1)}) + "\n")
    big = settings.model_copy(update={"max_text_chars": limit})
    assert ingest_file(sessions, big, path, source="s").rejected == 1
    reason = session.scalars(select(Quarantine.reason)).one()
    assert reason == f"text_too_long: {limit + 1} characters > {limit}"


def test_reingest_adds_nothing(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    path = write_csv(tmp_path / "a.csv", 30)
    first = ingest_file(sessions, settings, path, source="s")
    again = ingest_file(sessions, settings, path, source="s")
    forced = ingest_file(sessions, settings, path, source="s", force=True)
    assert first.stored == 30
    assert again.skipped and again.stored == 0
    assert (forced.stored, forced.duplicates) == (0, 30)
    # A grown export (old rows + new ones) only adds the new rows.
    grown = write_csv(tmp_path / "a.csv", 40)
    assert ingest_file(sessions, settings, grown, source="s").stored == 10
    assert _count(session, Feedback) == 40


def test_a_row_rejected_again_by_a_later_read_is_quarantined_once(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    path = tmp_path / "q.csv"
    lines = ["id,date,text,note", "r1,2026-10-01,Colis abîmé,2", "r2,pas une date,Lent,1"]
    lines += ["r3,2026-10-02,,3", "r3,2026-10-02,,3"]  # two identical rows: both kept
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = ingest_file(sessions, settings, path, source="s")
    assert (first.rejected, first.requarantined, _count(session, Quarantine)) == (3, 0, 3)
    forced = ingest_file(sessions, settings, path, source="s", force=True)
    assert (forced.rejected, forced.requarantined, _count(session, Quarantine)) == (3, 3, 3)
    # The export grew: only its new bad row is added; another source keeps its own.
    path.write_text("\n".join([*lines, "r4,hier?,Cher,1"]) + "\n", encoding="utf-8")
    grown = ingest_file(sessions, settings, path, source="s")
    assert (grown.rejected, grown.requarantined, _count(session, Quarantine)) == (4, 3, 4)
    other = ingest_file(sessions, settings, path, source="t")
    assert (other.requarantined, _count(session, Quarantine)) == (0, 8)
    runs = session.scalars(select(IngestionRun).order_by(IngestionRun.id)).all()
    assert [r.rows_rejected for r in runs] == [3, 3, 4, 4]  # the run counts stay what was read


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"text": "missing_col"}, "not in the file"),
        ({"texte": "text"}, "unknown field"),
    ],
)
def test_mapping_errors_before_anything_is_written(
    tmp_path: Path,
    settings: Settings,
    sessions: sessionmaker,
    session: Session,
    mapping: dict,
    message: str,
) -> None:
    path = write_csv(tmp_path / "a.csv", 3)
    with pytest.raises(MappingError, match=message):
        ingest_file(sessions, settings, path, source="s", mapping=mapping)
    assert _count(session, IngestionRun) == 0 and _count(session, Feedback) == 0


def test_no_text_column_and_bad_files(
    tmp_path: Path, settings: Settings, sessions: sessionmaker
) -> None:
    path = tmp_path / "nums.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(MappingError, match="no text column"):
        ingest_file(sessions, settings, path, source="s")
    array = tmp_path / "arr.json"
    array.write_text('[{"text": "x"}]')
    with pytest.raises(ReaderError, match="JSON array") as refused:
        ingest_file(sessions, settings, array, source="s")
    # Typeform's, Shopify's export: the message says how to make it JSONL.
    assert "jq -c '.[]' in.json > out.jsonl" in str(refused.value)
    utf16 = tmp_path / "u16.csv"
    utf16.write_text("text\nbonjour\n", encoding="utf-16")
    with pytest.raises(ReaderError, match="UTF-16"):
        ingest_file(sessions, settings, utf16, source="s")
    with pytest.raises(FileNotFoundError):
        ingest_file(sessions, settings, tmp_path / "absent.csv", source="s")
    with pytest.raises(MappingError, match="channel"):
        ingest_file(sessions, settings, array, source="s", channel="fax")


class Boom(RuntimeError):
    pass


def test_crash_mid_batch_then_resume(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    small = settings.model_copy(update={"batch_size": 10})
    path = write_csv(tmp_path / "big.csv", 35)

    def crash(event: str, number: int) -> None:
        if event == "row" and number == 24:  # in the middle of the third batch
            raise Boom("simulated crash")

    with pytest.raises(Boom):
        ingest_file(sessions, small, path, source="s", hook=crash)
    run = session.scalars(select(IngestionRun)).one()
    assert (run.status, run.watermark, run.rows_stored) == ("failed", 20, 20)
    assert _count(session, Feedback) == 20

    resumed = ingest_file(sessions, small, path, source="s")
    assert (resumed.resumed_from, resumed.read, resumed.stored, resumed.duplicates) == (
        20,
        15,
        15,
        0,
    )
    session.expire_all()
    assert _count(session, Feedback) == 35
    ids = session.scalars(select(Feedback.external_id)).all()
    assert sorted(ids) == sorted(f"r{i}" for i in range(35))
    run = session.get(IngestionRun, run.id)
    assert (run.status, run.rows_read, run.rows_stored, run.watermark) == ("done", 35, 35, 35)


def test_hard_kill_inside_the_commit_then_resume(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """A real process dies with the batch transaction open; the next run resumes cleanly."""
    path = write_csv(tmp_path / "big.csv", 47)
    script = textwrap.dedent(
        f"""
        import os
        from core.db import make_engine, session_factory
        from core.settings import Settings
        from jobs.ingest import ingest_file

        settings = Settings(data_dir={str(settings.data_dir)!r},
                            database_url={settings.resolved_database_url!r}, batch_size=10)
        sessions = session_factory(make_engine(settings.resolved_database_url))

        def die(event, number):
            if event == "commit" and number == 30:  # rows 21-30 written, not committed
                os._exit(3)

        ingest_file(sessions, settings, {str(path)!r}, source="s", hook=die)
        """
    )
    env = {**os.environ, "VERBATIM_CONFIG": os.devnull}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 3
    assert _count(session, Feedback) == 20
    run = session.scalars(select(IngestionRun)).one()
    assert (run.status, run.watermark) == ("running", 20)

    small = settings.model_copy(update={"batch_size": 10})
    resumed = ingest_file(sessions, small, path, source="s")
    assert (resumed.resumed_from, resumed.stored, resumed.duplicates) == (20, 27, 0)
    session.expire_all()
    assert _count(session, Feedback) == 47
    assert session.scalar(select(func.count(func.distinct(Feedback.external_id)))) == 47


def test_cli_ingest_and_user_errors(tmp_path: Path, settings: Settings, monkeypatch) -> None:
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    path = write_csv(tmp_path / "a.csv", 5)
    runner = CliRunner()
    ok = runner.invoke(app, ["ingest", str(path), "--source", "s", "-q"])
    assert ok.exit_code == 0, ok.output
    assert "stored 5" in ok.output
    bad = runner.invoke(app, ["ingest", str(path), "--source", "s", "--map", "text=nope"])
    assert bad.exit_code == 2
    assert "not in the file" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["ingest", str(tmp_path / "x.csv"), "--source", "s"])
    assert bad.exit_code == 2 and "no such file" in bad.output
    bad = runner.invoke(app, ["ingest", str(path), "--source", "s", "--map", "text"])
    assert bad.exit_code == 2 and "field=column" in bad.output
    empty = runner.invoke(app, ["quarantine"])
    assert empty.exit_code == 0 and "quarantine is empty" in empty.output
    broken = tmp_path / "b.csv"
    broken.write_text("text,date\n[bold]x,hier\nok,2026-11-01\n")
    assert runner.invoke(app, ["ingest", str(broken), "-s", "t", "-q"]).exit_code == 0
    listed = runner.invoke(app, ["quarantine", "--source", "t"], env={"COLUMNS": "160"})
    assert listed.exit_code == 0, listed.output
    assert "bad_date" in listed.output and "[bold]x,hier" in listed.output


def test_cli_ingest_says_when_no_column_is_the_date(
    tmp_path: Path, settings: Settings, monkeypatch
) -> None:
    """A Zendesk or Trustpilot export's date column is named « Date de création » or
    « Review Created (UTC) », no name ingest knows: every review was dated at the ingest, a
    year of them one day's spike, and nothing but its absence from `columns:` said so."""
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    path = tmp_path / "zendesk.csv"
    path.write_text(
        "ID du ticket;Date de création;Commentaire;Note client\n"
        "1;06/11/2026 14:03;Colis abîmé;2\n2;05/11/2026 09:10;Très bien;5\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = runner.invoke(app, ["ingest", str(path), "-s", "zendesk", "-q"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "stored 2" in out.output
    assert "no date column read: the verbatims are dated now" in out.output
    assert "--map created_at=COLUMN (date-like: 'Date de création')" in out.output
    mapped = runner.invoke(
        app,
        ["ingest", str(path), "-s", "z2", "-q", "--map", "created_at=Date de création"],
        env={"COLUMNS": "200"},
    )
    assert mapped.exit_code == 0, mapped.output
    assert "stored 2" in mapped.output and "no date column" not in mapped.output


def test_cli_ingest_stdin_says_the_columns_as_a_file_does(
    tmp_path: Path, settings: Settings, monkeypatch
) -> None:
    # `verbatim ingest FILE` says which columns it recognised by name, and that nothing is
    # the date; the same rows piped in (`verbatim ingest -`) said neither.
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    rows = "avis;note;date_avis\nColis abîmé;2;2026-11-06\nTrès bien;5;2026-11-05\n"
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    out = runner.invoke(app, ["ingest", "-", "-s", "pipe"], input=rows.encode(), env=env)
    assert out.exit_code == 0, out.output
    assert "columns: text=avis, created_at=date_avis, rating=note (text, created_at, rating " in (
        out.output
    )
    assert "stored 2" in out.output and "no date column" not in out.output
    undated = "Commentaire;Date de création\nColis perdu;06/11/2026\n"
    out = runner.invoke(
        app, ["ingest", "-", "-s", "pipe2", "-m", "text=Commentaire"], input=undated, env=env
    )
    assert out.exit_code == 0, out.output
    assert "columns:" not in out.output  # nothing recognised by name: as for a file
    assert "--map created_at=COLUMN (date-like: 'Date de création')" in out.output


def test_quoted_header_nul_bytes_and_empty_files(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    # ";" is the delimiter even though the quoted header holds more commas.
    path = tmp_path / "q.csv"
    path.write_bytes(
        b'"id";"texte, libre, du client";"date"\n'
        b'1;"Bien, rapide, efficace";03-11-2026\n'
        b'2;"avec un \x00 octet nul";03-11-2026\n'
        b'3;"Livraison ok";20261104\n'
    )
    result = ingest_file(
        sessions, settings, path, source="s", mapping={"text": "texte, libre, du client"}
    )
    assert (result.read, result.stored, result.rejected) == (3, 3, 0)
    stored = {f.external_id: f for f in session.scalars(select(Feedback))}
    assert stored["1"].text == "Bien, rapide, efficace"
    assert "\x00" not in stored["2"].text  # PostgreSQL refuses NUL in text
    assert [stored[k].created_at.day for k in "123"] == [3, 3, 4]

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert ingest_file(sessions, settings, empty, source="s").run_id is None
    header_only = tmp_path / "h.csv"
    header_only.write_text("id,text\n")
    result = ingest_file(sessions, settings, header_only, source="s")
    assert (result.read, result.stored) == (0, 0) and result.run_id is not None


def test_other_encodings(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("texte;note\nTrès déçu, colis abîmé;1\nParfait;5\n".encode("cp1252"))
    utf8 = ingest_file(sessions, settings, path, source="s")
    assert (utf8.stored, utf8.encoding_errors) == (1, 1)  # "Parfait" is plain ASCII
    fixed = ingest_file(sessions, settings, path, source="s", encoding="cp1252", force=True)
    assert fixed.stored == 1 and fixed.encoding_errors == 0
    texts = set(session.scalars(select(Feedback.text)))
    assert "Très déçu, colis abîmé" in texts
    with pytest.raises(ReaderError, match="unknown encoding"):
        ingest_file(sessions, settings, path, source="s", encoding="klingon")
    # A Windows export read as `--encoding latin-1` (the hint's other name for it): ISO-8859-1
    # has control codes at ’ œ – €, which normalisation dropped: « Jai reçu un cur ».
    windows = tmp_path / "caisse.csv"
    windows.write_bytes("id;avis\nw1;J’ai reçu un cœur cassé – 80 €\n".encode("cp1252"))
    latin1 = ingest_file(sessions, settings, windows, source="w", encoding="latin-1")
    assert (latin1.stored, latin1.rejected) == (1, 0)
    stored = session.scalars(select(Feedback).where(Feedback.source == "w")).one()
    assert stored.text == "J'ai reçu un cœur cassé - 80 €"


def test_a_row_undecodable_again_stays_in_quarantine(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """A run older than migration 0010 has no encoding: its file is read again once, and a row
    the new read rejects as the old one did (same reason, same text) counted as already
    quarantined, was not stored, and its earlier entry was then removed: it left the
    quarantine while the summary said "rejected again"."""
    path = tmp_path / "broken.csv"
    path.write_bytes(b"id,text\n1,Livraison rapide\n2,Colis ab\xeem\xe9\n3,Merci\n")
    first = ingest_file(sessions, settings, path, source="s")
    assert (first.stored, first.encoding_errors) == (2, 1)
    with sessions.begin() as s:  # as migration 0010 leaves the runs before it
        s.execute(update(IngestionRun).values(encoding=None))
    again = ingest_file(sessions, settings, path, source="s")
    assert (again.skipped, again.duplicates, again.encoding_errors) == (False, 2, 1)
    assert again.reread_undecodable == 1
    reasons = session.scalars(select(Quarantine.reason)).all()
    assert reasons == ["encoding_error: bytes that are not utf-8"]
    assert ingest_file(sessions, settings, path, source="s").skipped  # and then once


def test_single_column_file_keeps_commas(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    path = tmp_path / "textes.csv"
    path.write_text('avis\nBien reçu, rapide, merci\n"Déçu; emballage ""léger"""\n')
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.stored, result.rejected) == (2, 0)
    texts = set(session.scalars(select(Feedback.text)))
    assert texts == {"Bien reçu, rapide, merci", 'Déçu; emballage "léger"'}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_rows_are_quarantined_not_a_crash(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """A 600-level field stopped the whole ingest in mask_nested, a 1,200-level one in
    json.loads (RecursionError, exit 1, nothing stored): now each is one `too_deep` row."""
    lines = [
        json.dumps({"id": "1", "text": "Livraison rapide"}),
        '{"id":"2","text":"deep","meta":' + _nested(600) + "}",
        '{"id":"3","text":"deeper","meta":' + _nested(1200) + "}",
        '{"id":"4","text":"just over","meta":' + _nested(33) + "}",
        '{"id":"5","text":"at the limit","meta":' + _nested(32) + "}",
        _nested(1500),  # the first line of a file once in a while: still one row
        json.dumps({"id": "6", "text": "Colis abîmé"}),
    ]
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join([lines[5], *lines[:5], lines[6]]) + "\n", encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s", channel="review")
    assert (result.read, result.stored, result.rejected, result.duplicates) == (7, 3, 4, 0)
    assert result.reasons == {"too_deep": 4}
    reasons = _reasons(session)
    assert reasons == {
        1: ("too_deep", None),
        3: ("too_deep", "meta"),
        4: ("too_deep", None),
        5: ("too_deep", "meta"),
    }
    stored = set(session.scalars(select(Feedback.external_id)))
    assert stored == {"1", "5", "6"}

    # Through the CLI: exit 0 and a summary, never a traceback.
    from verbatim_cli import app

    again = tmp_path / "again.jsonl"
    again.write_text(lines[2] + "\n" + json.dumps({"id": "7", "text": "ok"}) + "\n")
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_PII_NER": "false",
    }
    out = CliRunner().invoke(app, ["ingest", str(again), "-s", "s2", "-q"], env=env)
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output and "stored 1" in out.output


def test_dates_with_a_zone_are_converted_to_utc(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """A zone written after the time was dropped (the local clock time stored as UTC) unless
    it was an ISO offset; every spelling is now applied, or the row rejected."""
    rows = {
        "pst": ("2026-11-01 20:00:00 PST", "2026-11-02 04:00"),
        "rfc": ('"Sun, 01 Nov 2026 23:30:00 -0500"', "2026-11-02 04:30"),
        "cet": ("2026-11-01 20:00:00 CET", "2026-11-01 19:00"),
        "gmt": ("2026-11-01 20:00:00 GMT", "2026-11-01 20:00"),
        "utc2": ("2026-11-01 20:00:00 UTC+2", "2026-11-01 18:00"),
        "off": ("2026-11-01 20:00:00 +0100", "2026-11-01 19:00"),
        "dmy": ("01/11/2026 20:00 +0100", "2026-11-01 19:00"),
        "dmycet": ("01/11/2026 20:00 CET", "2026-11-01 19:00"),
        "iso": ("2026-11-01T20:00:00-08:00", "2026-11-02 04:00"),
        "naive": ("2026-11-01 20:00:00", "2026-11-01 20:00"),
        "dmynaive": ("01/11/2026 20:00", "2026-11-01 20:00"),
        "written": ("1 novembre 2026 20h00", "2026-11-01 20:00"),
    }
    lines = ["id,date,text"] + [f"{k},{date},Avis {k}" for k, (date, _) in rows.items()]
    lines.append("bad,2026-11-01 20:00:00 Europe/Nowhere,Avis bad")
    path = tmp_path / "zones.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s", channel="review")
    assert (result.stored, result.rejected) == (len(rows), 1)
    assert result.reasons == {"bad_date": 1}
    stored = {
        f.external_id: f.created_at.strftime("%Y-%m-%d %H:%M")
        for f in session.scalars(select(Feedback))
    }
    assert stored == {k: utc for k, (_, utc) in rows.items()}


def test_rejection_reasons_mask_the_whole_value_before_cutting(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """`row_channel[:30]` cut an IBAN to a piece the masker no longer saw as one, and the
    piece was quoted in clear in the reason (and quarantine.reason)."""
    iban = "FR76 3000 6000 0112 3456 7890 189"
    rows = [
        {"id": "1", "text": "ok", "channel": f"ab {iban}"},
        {"id": "2", "text": "ok", "created_at": f"le {iban} hier"},
        {"id": "3", "text": "ok", "rating": f"x {iban}"},
        {"id": "4", "text": "ok", "nps": f"x {iban}"},
    ]
    path = tmp_path / "pii.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s", channel="review")
    assert result.rejected == 4
    reasons = list(session.scalars(select(Quarantine.reason)))
    assert len(reasons) == 4
    for reason in reasons:
        assert "<IBAN>" in reason, reason
        assert "3000" not in reason and "0112" not in reason and "fr76" not in reason.lower()


def test_metadata_keys_are_masked(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    row = {
        "id": "1",
        "text": "ok",
        "marie.curie@orange.fr": "ok",
        "paul.martin@free.fr": "aussi",
        "contact": {"jean.dupont@gmail.com": "06 12 34 56 78"},
    }
    path = tmp_path / "keys.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert ingest_file(sessions, settings, path, source="s", channel="review").stored == 1
    meta = session.scalars(select(Feedback)).one().meta
    dumped = json.dumps(meta)
    assert "@" not in dumped and "06 12" not in dumped, dumped
    # Two keys masked alike both keep their value.
    assert meta["<EMAIL>"] == "ok" and meta["<EMAIL>#2"] == "aussi"
    assert json.loads(meta["contact"]) == {"<EMAIL>": "<PHONE>"}


def _workbook(path: Path, rows: list[list[object]], *, extra_sheet: bool = False) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    if extra_sheet:
        book.create_sheet("Notes").append(["avis", "pas ceci"])
    book.save(path)
    return path


def test_xlsx_first_sheet_is_read_like_a_csv(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """An Excel export was refused (« a ZIP archive (an .xlsx/.ods spreadsheet?) ») though
    openpyxl is a dependency: the first sheet is read, its first non-empty row the header,
    dates as datetimes, numbers as ratings, bad rows quarantined as in a CSV."""
    from datetime import datetime

    path = _workbook(
        tmp_path / "export.xlsx",
        [
            [],  # blank rows before the header
            ["id", "date", "avis", "note", "ville"],
            [1042, datetime(2025, 12, 7, 14, 30), "Livraison très rapide", 5, "Paris"],
            [1043, 45998.5, "Colis abîmé, déçu", 1.5, None],  # an Excel serial in General
            [None, None, None, None, None],  # an empty row: skipped, not counted
            [1044, datetime(2025, 12, 8), "Pas de note", "douze", "Lyon"],
            [1045, datetime(2025, 12, 8), "Trop de cellules", 3, "Nice", "en trop"],
        ],
        extra_sheet=True,
    )
    result = ingest_file(sessions, settings, path, source="xl")
    assert (result.read, result.stored, result.duplicates, result.rejected) == (4, 2, 0, 2)
    assert result.reasons == {"bad_rating": 1, "wrong_field_count": 1}
    rows = {f.external_id: f for f in session.scalars(select(Feedback))}
    assert set(rows) == {"1042", "1043"}  # a whole number, not "1042.0"
    assert rows["1042"].created_at.replace(tzinfo=None) == datetime(2025, 12, 7, 14, 30)
    assert rows["1042"].rating == 5.0 and rows["1042"].meta == {"ville": "Paris"}
    assert rows["1043"].created_at.replace(tzinfo=None) == datetime(2025, 12, 7, 12, 0)
    assert rows["1043"].rating == 1.5 and rows["1043"].text == "Colis abîmé, déçu"
    assert _reasons(session) == {3: ("bad_rating", "rating"), 4: ("wrong_field_count", None)}

    # --map names a sheet column; a column not in the sheet is refused before anything.
    again = ingest_file(
        sessions, settings, path, source="xl2", mapping={"text": "avis", "customer": "ville"}
    )
    assert again.stored == 2 and again.mapping["customer"] == "ville"
    with pytest.raises(MappingError, match="commentaire"):
        ingest_file(sessions, settings, path, source="xl3", mapping={"text": "commentaire"})


def test_xlsx_empty_ods_and_other_zip(
    tmp_path: Path, settings: Settings, sessions: sessionmaker
) -> None:
    import zipfile

    empty = _workbook(tmp_path / "vide.xlsx", [])
    assert ingest_file(sessions, settings, empty, source="xl").run_id is None
    ods = tmp_path / "avis.ods"
    with zipfile.ZipFile(ods, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(ReaderError, match=r"OpenDocument spreadsheet \(\.ods\).*\.xlsx"):
        ingest_file(sessions, settings, ods, source="xl")
    # An old binary .xls (OLE2): Excel saves it as .xlsx, which is read; the message said
    # « not CSV or JSONL; export it as CSV », as if a workbook never were.
    xls = tmp_path / "avis.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(ReaderError, match=r"old Excel.*not read; save it as Excel \(\.xlsx\)"):
        ingest_file(sessions, settings, xls, source="xl")
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.txt", "bonjour")
    with pytest.raises(ReaderError, match="ZIP archive but not a readable .xlsx"):
        ingest_file(sessions, settings, other, source="xl")
    # A workbook cut short (a half-copied file) is one clear error, not a traceback.
    cut = tmp_path / "coupe.xlsx"
    whole = _workbook(tmp_path / "entier.xlsx", [["avis"], ["ok"]]).read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ReaderError, match="spreadsheet|workbook"):
        ingest_file(sessions, settings, cut, source="xl")
    # A sheet damaged past its header (its XML cut short in a sound ZIP): openpyxl parses it
    # as it is read, and the ParseError was a traceback after the header had been mapped.
    damaged = tmp_path / "abime.xlsx"
    with (
        zipfile.ZipFile(tmp_path / "entier.xlsx") as src,
        zipfile.ZipFile(damaged, "w") as dst,
    ):
        for name in src.namelist():
            data = src.read(name)
            if name == "xl/worksheets/sheet1.xml":
                data = data[: data.index(b'<row r="2"') + 8]
            dst.writestr(name, data)
    with pytest.raises(ReaderError, match=r"unreadable \.xlsx workbook \(ParseError"):
        ingest_file(sessions, settings, damaged, source="xl")


def test_cli_ingest_xlsx_and_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    path = _workbook(tmp_path / "avis.xlsx", [["avis", "note"], ["Très bien", 5]])
    res = CliRunner().invoke(app, ["ingest", str(path), "--source", "s", "-q"])
    assert res.exit_code == 0, res.output
    assert "read 1, stored 1" in res.output
    # Piped in (spooled to a file without an Excel extension, which openpyxl refused by name).
    piped = CliRunner().invoke(app, ["ingest", "-", "--source", "s2"], input=path.read_bytes())
    assert piped.exit_code == 0, piped.output
    assert "read 1, stored 1" in piped.output
    helped = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "200"})
    assert ".xlsx" in helped.output


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("livraison tr&egrave;s rapide&nbsp;!<br>Merci", "livraison très rapide !\nMerci"),
        ("<p>Bonjour</p><p>Super &amp; rapide</p>", "Bonjour\nSuper & rapide"),
        ("x<br/>y<BR />z &#233;t&#xE9;", "x\ny\nz été"),
        ('<b>Top</b> <a href="https://x.fr">lien</a>', "Top lien"),
        ("livraison trÃ¨s rapide", "livraison très rapide"),
        ("dÃ©Ã§u, Ã\u00a0 revoir", "déçu, à revoir"),
        ("lâ€™appli plante, 20 â‚¬ perdus Å“uvre", "l'appli plante, 20 € perdus œuvre"),
        ("ÃƒÂ©tÃƒÂ©", "été"),  # garbled twice
        ("Â« nul Â» ðŸ˜¡", '" nul " 😡'),
        # A tag is removed, a word in angle brackets beside it is prose (it went too).
        ("<b>on verra</b>, <a plus tard>", "on verra, <a plus tard>"),
    ],
)
def test_html_and_mojibake_are_repaired(typed: str, stored: str) -> None:
    """Texts were stored as typed by a web form (« tr&egrave;s&nbsp;!<br> ») or garbled by
    an encoding mix-up (« trÃ¨s », « dÃ©Ã§u »): the analysis read neither word."""
    from core.store import clean_text

    assert clean_text(typed) == stored


@pytest.mark.parametrize(
    "text",
    [
        "prix < 20 € chez Dupont & fils",
        "Q&A : R&D; a <b c < d > e",
        "je vous dis <a bientôt>, moi &notamment",
        "bon, <a plus tard> <p lus tard> <b c d> <i love it>",  # no name=value: no attribute
        "« CAFÉ\u00a0» ARNAQUÉ\u00a0! déjà vu\u00a0— très bien, naïve",
        "SÃO PAULO, pâte… â€",
        "Très déçu ! Arnaque à 50 € — jamais <3",
        # A word ending in « ï » before a no-break space and « » »: decodes as UTF-8 to a
        # private-use character (U+F83B), which took the « ï » and the « » ».
        "« Séjour à Dubaï\u00a0», « c'est inouï\u00a0», Hanoï\u00a0»\u00a0!",
    ],
)
def test_correct_text_is_never_repaired(text: str) -> None:
    from nlp.text.repair import repair_text

    assert repair_text(text) == text


def test_ingest_counts_repaired_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "avis.csv"
    path.write_text(
        "id;avis\n"
        '1;"livraison tr&egrave;s rapide&nbsp;!<br>Merci"\n'
        "2;prix < 20 € chez Dupont & fils\n"
        "3;livraison trÃ¨s rapide, dÃ©Ã§u\n",
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["ingest", str(path), "--source", "s", "-q"])
    assert res.exit_code == 0, res.output
    assert "stored 3" in res.output and "repaired 2 text(s)" in " ".join(res.output.split())
    # Read again: every row a duplicate, none stored, so none repaired (it said « repaired 2 »).
    again = CliRunner().invoke(app, ["ingest", str(path), "--source", "s", "-q", "--force"])
    assert again.exit_code == 0, again.output
    assert "stored 0, duplicates 3" in again.output and "repaired" not in again.output
    # Piped in (`ingest -`, as folder and HTTP sources: the connectors' pull) the summary
    # said nothing of the repair.
    piped = CliRunner().invoke(app, ["ingest", "-", "--source", "p"], input=path.read_bytes())
    assert piped.exit_code == 0, piped.output
    assert "stored 3" in piped.output and "repaired 2 text(s)" in " ".join(piped.output.split())
    twice = CliRunner().invoke(app, ["ingest", "-", "--source", "p"], input=path.read_bytes())
    assert "stored 0, duplicates 3" in twice.output and "repaired" not in twice.output


def test_metadata_values_are_repaired_as_the_text_is(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """The text was repaired at ingest, not the other columns kept as metadata, which the
    incidents' drivers quote (Slack, /incidents, the dashboard): « transporteur
    « Chronopost&nbsp;Express » », « CafÃ©tiÃ¨re », and « jean&#64;free.fr » escaped the
    masking. The id and the duplicate key stay as read."""
    rows_in = [
        {"id": "A&amp;1", "text": "Livraison en retard", "transporteur": "Chronopost&nbsp;Express",
         "produit": "CafÃ©tiÃ¨re <b>Pro</b>", "contact": "jean&#64;free.fr",
         "Soci&eacute;t&eacute;": "La Poste", "tags": ["colis&nbsp;ab&icirc;m&eacute;"]},
        {"id": "2", "text": "Très bien", "transporteur": "prix < 20 € chez Dupont & fils",
         "produit": "SÃO PAULO"},
    ]  # fmt: skip
    path = tmp_path / "avis.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows_in), encoding="utf-8")
    assert ingest_file(sessions, settings, path, source="s").stored == 2
    rows = {fb.external_id: fb for fb in session.scalars(select(Feedback))}
    assert set(rows) == {"A&amp;1", "2"} and rows["A&amp;1"].dedup_key == "id:A&amp;1"
    assert rows["A&amp;1"].meta == {
        "transporteur": "Chronopost Express",
        "produit": "Cafétière Pro",
        "contact": "<EMAIL>",
        "Société": "La Poste",
        "tags": '["colis abîmé"]',
    }
    # Never prose: a lone « < » or « & » and correct text stay.
    assert rows["2"].meta == {
        "transporteur": "prix < 20 € chez Dupont & fils",
        "produit": "SÃO PAULO",
    }


def test_rows_stored_before_the_repair_are_duplicates_after_it(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """A file of rows without ids ingested before the text repair, read again after the
    upgrade (`--force`, a folder or file source re-reading it): the rows whose text had an
    entity or garbled accents were stored a second time, their key now hashing the repaired
    text. The keys below are those the code before the repair stored (a10cfef)."""
    path = tmp_path / "avis.csv"
    path.write_text(
        "date;avis\n"
        '2025-11-02;"livraison tr&egrave;s rapide&nbsp;!<br>Merci"\n'
        "2025-11-03;Je suis dÃ©Ã§u par le SAV\n"
        "2025-11-04;Rien à dire, parfait\n",
        encoding="utf-8",
    )
    before = {
        2: "h:e3d30a8c0f3c2a06d7649d63afa32cec8fe9a502de53e89096d6e8ada6799b5a",
        3: "h:eb15dcc2afce2282e43042586f7fb8c1b975c866a345de0ba1ba59093e0dc41c",
        4: "h:5d26ab96fc529c5e58f8cd4e1b3f481f9c687830b116f6fddf021892bf78b6f3",
    }
    assert ingest_file(sessions, settings, path, source="s").stored == 3
    for fb in session.scalars(select(Feedback)):  # as the old code stored them
        fb.dedup_key = before[fb.created_at.day]
    session.commit()

    again = ingest_file(sessions, settings, path, source="s", force=True)

    assert (again.stored, again.duplicates) == (0, 3)
    assert _count(session, Feedback) == 3


def test_french_excel_csv_serial_dates_with_decimal_comma(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    """A French Excel « CSV (séparateur : point-virgule) » of a date column in « Standard »
    format writes « 45998,5833 »: every row was `bad_date`. A comma-separated CSV keeps the
    commas inside its quoted texts."""
    from datetime import datetime

    semicolon = tmp_path / "excel.csv"
    semicolon.write_bytes("id;date;avis\n1;45998,5833;Très bien\n2;46328,5;Bof\n".encode("cp1252"))
    result = ingest_file(sessions, settings, semicolon, source="fr", encoding="cp1252")
    assert (result.stored, result.rejected) == (2, 0)
    comma = tmp_path / "comma.csv"
    comma.write_text(
        'id,date,avis\n3,45998.5,"Bien, rapide, efficace"\n'
        '4,2025-12-08,"Dit ""top"", sinon, bof"\n',
        encoding="utf-8",
    )
    result = ingest_file(sessions, settings, comma, source="fr")
    assert (result.stored, result.rejected) == (2, 0)
    rows = {f.external_id: f for f in session.scalars(select(Feedback))}
    stamp = {k: f.created_at.replace(tzinfo=None, microsecond=0) for k, f in rows.items()}
    assert stamp["1"] == datetime(2025, 12, 7, 13, 59, 57)
    assert stamp["2"] == datetime(2026, 11, 2, 12, 0) and stamp["3"] == datetime(2025, 12, 7, 12)
    assert rows["3"].text == "Bien, rapide, efficace"
    assert rows["4"].text == 'Dit "top", sinon, bof'


def test_ratings_on_another_scale_are_out_of_5_or_refused_with_the_scale_to_declare(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], monkeypatch
) -> None:
    """An internal 0-10 « note » column was stored as given (8) and averaged with 1-5 stars:
    the report's « Note » and the dashboard's « x / 5 » came out too high. A written scale is
    converted; a bare number above 5 is refused naming the option that declares the scale."""
    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    path = tmp_path / "interne.csv"
    path.write_text(
        "id;avis;note\n1;Colis abîmé;8\n2;Livraison rapide;8/10\n3;Service lent;4\n"
        "4;Très bien;★★★★\n5;Correct;80 %\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    out = runner.invoke(app, ["ingest", str(path), "-s", "stars", "-q"], env=env)
    assert out.exit_code == 0, out.output
    assert "stored 4" in out.output and "rejected 1" in out.output, out.output
    listed = runner.invoke(app, ["quarantine", "--source", "stars"], env=env)
    assert "bad_rating" in listed.output and "--rating-scale" in listed.output, listed.output
    out = runner.invoke(
        app, ["ingest", str(path), "-s", "tens", "-q", "--rating-scale", "10"], env=env
    )
    assert out.exit_code == 0 and "stored 5" in out.output, out.output
    bad = runner.invoke(app, ["ingest", str(path), "-s", "x", "--rating-scale", "0"], env=env)
    assert bad.exit_code == 2 and "Traceback" not in bad.output, bad.output
    with sessions() as session:
        ratings = dict(
            session.execute(
                select(Feedback.external_id, Feedback.rating)
                .where(Feedback.source == "stars")
                .order_by(Feedback.external_id)
            ).all()
        )
        assert ratings == {"2": 4.0, "3": 4.0, "4": 4.0, "5": 4.0}
        tens = session.scalars(
            select(Feedback.rating).where(Feedback.source == "tens").order_by(Feedback.external_id)
        ).all()
        assert tens == [4.0, 4.0, 2.0, 4.0, 4.0]  # « 4 » on 0-10 is 2 stars; ★★★★ stays 4


def test_a_source_declares_its_rating_scale(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    from core.settings import SourceConfig
    from jobs.connectors import pull_source

    path = tmp_path / "nps_interne.csv"
    path.write_text("id,text,note\n1,Colis abîmé,3\n2,Très bien,9\n", encoding="utf-8")
    cfg = SourceConfig(source="interne", path=path, rating_scale=10)
    result = pull_source(sessions, settings, cfg)
    assert (result.stored, result.rejected) == (2, 0)
    with sessions() as session:
        assert session.scalars(select(Feedback.rating).order_by(Feedback.id)).all() == [1.5, 4.5]
    http = SourceConfig(source="api", kind="http", url="http://127.0.0.1:1/", rating_scale=10)
    assert http.rating_scale == 10  # a common option, not "does not read rating_scale"
    with pytest.raises(ValueError, match="rating_scale"):
        SourceConfig(source="interne", path=path, rating_scale=1)

"""`verbatim backtest` and `verbatim analyze` on the files analysts really export: BOM, CRLF,
`;` CSV with French column names, Latin-1 lines, written-out dates, duplicates, other
languages, the output named as the input, interruptions. Small feeds, lexicon backend."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

import jobs.analyze as an
import jobs.backtest as bt
from nlp.analyzer import Analyzer
from nlp.sentiment.lexicon import LexiconSentiment
from nlp.taxonomy import Taxonomy, load_taxonomy
from nlp.themes import RuleThemeDetector

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy("ecommerce")


@pytest.fixture(scope="module")
def analyzer(tax: Taxonomy) -> Analyzer:
    sentiment = LexiconSentiment()
    return Analyzer(sentiment, RuleThemeDetector(tax, scorer=sentiment), tax)


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("VERBATIM_") and not key.startswith("VERBATIM_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VERBATIM_SENTIMENT_BACKEND", "lexicon")


# --- backtest: reading ------------------------------------------------------------------


def test_parse_day_reads_the_dates_ingest_reads() -> None:
    assert bt.parse_day("26 février 2026", NOW) == date(2026, 2, 26)
    assert bt.parse_day("01/03/2026 14h30", NOW) == date(2026, 3, 1)  # DD/MM, not MM/DD
    assert bt.parse_day(1772323200000, NOW) == date(2026, 3, 1)  # epoch milliseconds
    assert bt.parse_day("2026-03-01T23:30:00-02:00", NOW) == date(2026, 3, 2)
    # 1e20 crashed the whole run (OSError from fromtimestamp); a typo'd year in the future
    # stretched the replay over millennia. Both are now one rejected row.
    for bad in (1e20, -1e20, "9999-12-31", "2062-01-01", "1901-01-01", "hier", None, True):
        with pytest.raises(ValueError):
            bt.parse_day(bad, NOW)


def test_read_feed_bom_duplicates_and_ingest_rejections() -> None:
    warnings: list[str] = []
    line = {"id": "a1", "text": "Colis jamais reçu", "created_at": "2026-03-01"}
    rows, bad = bt.read_feed(
        [
            "\ufeff" + json.dumps(line, ensure_ascii=False),  # a BOM on the first line
            json.dumps(line, ensure_ascii=False),  # the same id again: counted once
            json.dumps({**line, "id": "a2", "channel": "fax"}),  # ingest refuses the channel
            json.dumps({**line, "id": "a3", "created_at": 1e20}),
        ],
        warnings.append,
        now=NOW,
    )
    assert [r.id for r in rows] == ["a1"] and bad == 2
    assert any("bad_channel" in w for w in warnings)
    assert any("1 duplicate row(s) counted once" in w for w in warnings)


def test_read_feed_file_names_the_line_of_a_bad_row(tmp_path: Path) -> None:
    """ "line 2: skipped" pointed at a good row when blank lines came before the bad one (the
    count skipped them): the line given is the file's, as `read_feed` and an editor count."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        '{"id": 1, "text": "Colis perdu", "created_at": "2026-03-01"}\n\n\n'
        '{"id": 2, "text": "Colis perdu", "created_at": "hier"}\n',
        encoding="utf-8",
    )
    warnings: list[str] = []
    rows, reader = bt.read_feed_file(feed, warnings.append, now=NOW)
    assert len(rows) == 1 and reader.bad == 1
    assert warnings == ["line 4: skipped (bad_date: 'hier' is not a date)"]


def _csv_feed(path: Path) -> None:
    lines = [
        "sep=;",
        "identifiant;commentaire;date;canal",
        "1;Colis jamais reçu, livraison en retard;26 février 2026;review",
        "2;Livraison en retard encore;01/03/2026 14h30;social",
        "2;Livraison en retard encore;01/03/2026 14h30;social",  # duplicate id
        "3;Livraison ok;;",  # no date
        "4;Prix trop cher;2026-03-01",  # a field short
    ]
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    latin1 = "5;Livraison très en retard;2026-03-02;review\r\n".encode("latin-1")
    path.write_bytes(b"\xef\xbb\xbf" + data + latin1)


def test_backtest_reads_a_semicolon_csv_export(
    analyzer: Analyzer, tax: Taxonomy, tmp_path: Path
) -> None:
    feed, out = tmp_path / "export.csv", tmp_path / "alerts.jsonl"
    _csv_feed(feed)
    warnings: list[str] = []
    res = bt.run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=warnings.append, now=NOW)
    assert res.rows == 2 and res.duplicates == 1 and res.bad == 3
    assert res.read == res.rows + res.bad + res.duplicates == 6  # everything accounted for
    assert res.reasons == {"bad_date": 1, "wrong_field_count": 1, "encoding_error": 1}
    assert res.days == 4  # 2026-02-26 .. 2026-03-01
    assert any("UTF-8" in w for w in warnings)
    assert out.read_text(encoding="utf-8") == ""


def test_backtest_says_which_days_the_warm_up_leaves_untested(
    analyzer: Analyzer, tax: Taxonomy, tmp_path: Path
) -> None:
    """A feed shorter than the detector's warm-up (21 days) read « 0 alert line(s) » as a
    quiet period: no day of it could raise an alert, and nothing said so."""
    feed, out = tmp_path / "export.csv", tmp_path / "alerts.jsonl"
    _csv_feed(feed)  # 2026-02-26 .. 2026-03-02: 4 French days
    warnings: list[str] = []
    res = bt.run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=warnings.append, now=NOW)
    assert any(w.startswith("no day tested for spikes") and "covers 4" in w for w in warnings)
    assert res.days == 4 and res.tested_from is None and res.alerts == []
    rows = [
        {"id": i, "text": "Colis jamais reçu", "created_at": f"2026-03-{i:02d}"}
        for i in range(1, 31)
    ]
    feed = tmp_path / "month.jsonl"
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    warnings.clear()
    res = bt.run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=warnings.append, now=NOW)
    assert res.days == 30 and res.tested_from == date(2026, 3, 22) and warnings == []
    from verbatim_cli import app

    res = CliRunner().invoke(app, ["backtest", str(feed), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "spikes tested from 2026-03-22: the feed's first 21 day(s)" in res.output


def test_backtest_whole_file_errors_are_one_clear_line(
    analyzer: Analyzer, tax: Taxonomy, tmp_path: Path
) -> None:
    out = tmp_path / "alerts.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    nodate = tmp_path / "nodate.csv"
    nodate.write_text("id;text\n1;Colis jamais reçu\n", encoding="utf-8")
    for feed, words in ((empty, "empty"), (nodate, "no date column")):
        with pytest.raises(bt.FeedError, match=words):
            bt.run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, now=NOW)
    # The output named as the feed: the feed used to be replaced by the (empty) alerts.
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"text": "Colis perdu", "created_at": "2026-03-01"}\n', encoding="utf-8")
    with pytest.raises(an.OutputError):
        bt.run_backtest(feed, feed, analyzer=analyzer, taxonomy=tax, now=NOW)
    assert "Colis perdu" in feed.read_text(encoding="utf-8")
    with pytest.raises(an.OutputError):  # wrote a file named "-"
        bt.run_backtest(feed, Path("-"), analyzer=analyzer, taxonomy=tax, now=NOW)


def test_cli_backtest_bad_dates_never_crash(tmp_path: Path) -> None:
    from verbatim_cli import app

    feed, out = tmp_path / "feed.jsonl", tmp_path / "alerts.jsonl"
    feed.write_text(
        '{"id": 1, "text": "Colis jamais reçu", "created_at": "2026-03-01"}\n'
        '{"id": 2, "text": "Colis perdu", "created_at": 1e20}\n'
        '{"id": 3, "text": "Colis perdu", "created_at": "2026-03-02"}\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["backtest", str(feed), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "read 3 row(s): 2 verbatim(s) over 2 day(s), 0 duplicate(s), 1 rejected" in res.output
    assert "line 2: skipped" in res.output and out.exists()


def test_cli_backtest_maps_a_date_column_named_otherwise(tmp_path: Path) -> None:
    """A review export whose date is `date_experience` (Trustpilot's): « no date column »,
    and no way to name it short of rewriting the file; `verbatim ingest --map` had one."""
    from verbatim_cli import app

    feed, out = tmp_path / "avis.jsonl", tmp_path / "alerts.jsonl"
    feed.write_text(
        '{"id": 1, "text": "Colis jamais reçu", "date_experience": "20 février 2026"}\n'
        '{"id": 2, "text": "Colis perdu", "date_experience": "01/03/2026"}\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["backtest", str(feed), "-o", str(out)])
    assert res.exit_code == 2 and "name it with --map created_at=COLUMN" in res.output
    args = ["backtest", str(feed), "-o", str(out), "--map", "created_at=date_experience"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "read 2 row(s): 2 verbatim(s) over 10 day(s), 0 duplicate(s), 0 rejected" in res.output
    res = CliRunner().invoke(app, [*args[:-1], "created_at"])
    assert res.exit_code == 2 and "expected field=column" in res.output


# --- backtest: the same counts as aggregate + detect --------------------------------------


class _Doc:
    def __init__(self, *themes: tuple[str, str]) -> None:
        self.themes = [type("M", (), {"theme": t, "polarity": p})() for t, p in themes]


def test_backtest_counts_what_daily_aggregates_counts(tax: Taxonomy) -> None:
    """English verbatims are not in `daily_aggregates` (French and unknown only): the backtest
    counted them, and raised alerts `verbatim detect` never raises on the same feed."""
    day = date(2026, 3, 1)
    rows = [
        bt.FeedRow("1", "Colis jamais reçu", day, "review", language="fr"),
        bt.FeedRow("2", "Parcel never came", day, "social", language="en"),
        bt.FeedRow("3", "ok", day, None, language="und"),
    ]
    docs = [_Doc(("livraison", "negative"))] * 3
    assert set(bt.AGGREGATED_LANGUAGES) == {"fr", "und"}
    counts = bt.aggregate_mentions(rows, docs, tax)
    assert counts == {("livraison", None): {day: (2, 2)}}
    # --per-channel tests the overall series too (as `detect --per-channel`), and a row
    # without a channel is a "review" (ingest's default).
    by_channel = bt.aggregate_mentions(rows, docs, tax, per_channel=True)
    assert by_channel == {
        ("livraison", None): {day: (2, 2)},
        ("livraison", "review"): {day: (2, 2)},
    }


def test_backtest_warm_up_starts_on_the_first_french_day(
    analyzer: Analyzer, tax: Taxonomy, tmp_path: Path
) -> None:
    """`verbatim detect` tests the days of `daily_aggregates` (French only): a few English
    reviews weeks before the French ones started the backtest's warm-up early, and it raised
    an alert on a spike that ingest + detect, still warming up, never raise."""
    from datetime import timedelta

    first = date(2026, 3, 1)
    lines = [
        {"id": f"en{i}", "text": text, "created_at": "2026-02-10T12:00:00Z"}
        for i, text in enumerate(
            [
                "The parcel never arrived and nobody answers the phone, terrible service.",
                "Great product, fast delivery, I recommend this shop to everyone.",
            ]
        )
    ]
    for d in range(20):
        day = (first + timedelta(days=d)).isoformat()
        late = 30 if d in (15, 16) else 2  # a delivery spike on days 15-16, in the warm-up
        lines += [
            {"id": f"{d}-l{k}", "text": f"Colis perdu, livraison en retard ({k})"}
            | {"created_at": day}
            for k in range(late)
        ]
        lines += [
            {"id": f"{d}-p{k}", "text": f"Très bon produit, je recommande ({k})", "created_at": day}
            for k in range(8)
        ]
    feed, out = tmp_path / "feed.jsonl", tmp_path / "alerts.jsonl"
    feed.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    res = bt.run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=lambda _m: None, now=NOW)
    assert res.not_aggregated == 2
    assert res.alerts == []  # days 15-16 are in the 21-day warm-up from 2026-03-01
    assert res.days == 20  # the French days, as `verbatim detect` tests them


def test_aggregated_languages_match_core() -> None:
    from core.queries import AGGREGATED_LANGUAGES as CORE

    assert tuple(CORE) == bt.AGGREGATED_LANGUAGES


# --- analyze ------------------------------------------------------------------------------


def test_analyze_bom_crlf_and_latin1_lines(analyzer: Analyzer, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(
        b"\xef\xbb\xbf"
        + '{"id": 1, "text": "Colis jamais reçu"}\r\n'.encode()
        + '{"id": 2, "text": "Livraison très en retard"}\r\n'.encode("latin-1")
        + b'{"id": 3, "text": "Parfait, je recommande"}\r\n'
    )
    summary = an.analyze_file(analyzer, src, dst)
    out = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert [o.get("id") for o in out] == [1, 2, 3]
    assert "sentiment" in out[0] and "sentiment" in out[2]  # the BOM line is analysed
    assert "encoding error" in out[1]["error"] and "sentiment" not in out[1]  # not garbled
    assert summary.total == 3 == summary.analyzed + summary.errors and summary.errors == 1
    # With its encoding named, the Latin-1 file reads whole.
    src.write_bytes('{"id": 2, "text": "Livraison très en retard"}\n'.encode("latin-1"))
    an.analyze_file(analyzer, src, dst, encoding="cp1252")
    row = json.loads(dst.read_text(encoding="utf-8"))
    assert row["text"] == "Livraison très en retard" and "sentiment" in row


def test_analyze_reads_csv(analyzer: Analyzer, tmp_path: Path) -> None:
    src, dst = tmp_path / "export.csv", tmp_path / "out.jsonl"
    src.write_bytes(
        b"\xef\xbb\xbfid;commentaire;note\r\n1;Colis ab\xc3\xaem\xc3\xa9, rembours\xc3\xa9 "
        b"jamais;1\r\n2;;3\r\n"
    )
    summary = an.analyze_file(analyzer, src, dst)
    out = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert out[0]["commentaire"].startswith("Colis abîmé") and out[0]["note"] == "1"
    assert out[0]["sentiment"]["label"] == "negative"
    assert "empty" in out[1]["error"]
    assert summary.total == 2 and summary.analyzed == 1 and summary.errors == 1
    src.write_text("id;body_x\n1;Colis\n", encoding="utf-8")
    with pytest.raises(an.InputError, match="--text-field"):
        an.analyze_file(analyzer, src, dst)


def test_analyze_and_backtest_name_the_file_line_of_a_bad_csv_row(
    analyzer: Analyzer, tmp_path: Path
) -> None:
    """A bad CSV row was named by its record number ("line 2" for the file's line 4, after a
    `sep=` line and the header; a quoted comment over two lines shifted every later one)."""
    src, dst = tmp_path / "export.csv", tmp_path / "out.jsonl"
    src.write_text(
        "sep=;\nid;commentaire;date\n1;Colis perdu;01/03/2026\n2;   ;02/03/2026\n"
        '3;"Sur deux\nlignes";03/03/2026\n4;trop;de;champs\n5;Top;hier\n',
        encoding="utf-8",
    )
    summary = an.analyze_file(analyzer, src, dst)
    out = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert summary.error_lines == [4, 7] == [o["line"] for o in out if "error" in o]
    warnings: list[str] = []
    bt.read_feed_file(src, warnings.append, now=NOW)
    assert [w.split(":")[0] for w in warnings] == ["line 4", "line 7", "line 8"]


def test_analyze_reads_jsonl_whatever_its_name(analyzer: Analyzer, tmp_path: Path) -> None:
    """The `analyze` contract is JSONL in, JSONL out: a JSONL file named `.txt` (or with no
    extension) was read as CSV once CSV input came, and refused ("no 'text' column")."""
    line = '{"id": "1", "text": "Colis abîmé, livreur désagréable; remboursé"}\n'
    for name in ("feed.txt", "feed", "feed.json"):
        src, dst = tmp_path / name, tmp_path / f"{name}.out.jsonl"
        src.write_text(line, encoding="utf-8")
        summary = an.analyze_file(analyzer, src, dst)
        assert summary.analyzed == 1, name
        assert json.loads(dst.read_text(encoding="utf-8"))["sentiment"]["label"] == "negative"
    src = tmp_path / "export.txt"  # a CSV saved as .txt is still read as CSV
    src.write_text("id;texte\n1;Colis abîmé\n", encoding="utf-8")
    assert an.analyze_file(analyzer, src, tmp_path / "csv.out.jsonl").analyzed == 1


def test_analyze_never_overwrites_its_input(analyzer: Analyzer, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Colis perdu"}\n', encoding="utf-8")
    with pytest.raises(an.OutputError):
        an.analyze_file(analyzer, src, src)
    assert src.read_text(encoding="utf-8") == '{"text": "Colis perdu"}\n'


def test_analyze_json_array_is_one_clear_error(analyzer: Analyzer, tmp_path: Path) -> None:
    src, dst = tmp_path / "export.json", tmp_path / "out.jsonl"
    src.write_text('[\n  {"text": "Colis perdu"},\n  {"text": "Top"}\n]\n', encoding="utf-8")
    with pytest.raises(an.InputError, match="JSON array"):  # was one error line per line
        an.analyze_file(analyzer, src, dst)
    assert not dst.exists()


def test_analyze_to_stdout(
    analyzer: Analyzer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Colis perdu"}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    an.analyze_file(analyzer, src, Path("-"))
    assert json.loads(capsys.readouterr().out)["sentiment"]["label"] == "negative"
    assert not (tmp_path / "-").exists()  # it used to write a file named "-"


class _Interrupting:
    """Analyses the first batch, then is interrupted (Ctrl-C) in the second."""

    def __init__(self, inner: Analyzer) -> None:
        self.inner, self.calls = inner, 0

    def analyze(self, texts: list[str]):  # noqa: ANN201
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return self.inner.analyze(texts)


def test_interrupted_analyze_leaves_the_previous_output(analyzer: Analyzer, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        "".join(json.dumps({"id": i, "text": f"Colis perdu {i}"}) + "\n" for i in range(6)),
        encoding="utf-8",
    )
    dst.write_text("previous\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        an.analyze_file(_Interrupting(analyzer), src, dst, batch_size=2)  # type: ignore[arg-type]
    assert dst.read_text(encoding="utf-8") == "previous\n"  # not half a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    with an.atomic_output(dst) as fh:
        fh.write("new\n")
    assert dst.read_text(encoding="utf-8") == "new\n"


def test_output_to_a_pipe_or_a_symlink_keeps_it(analyzer: Analyzer, tmp_path: Path) -> None:
    """`-o /dev/stdout`, `-o /dev/null`, a named pipe: written in place. The temporary file
    renamed over them replaced the device or the pipe with a regular file (as root: /dev/null
    itself), and the reader of the pipe got nothing."""
    import threading

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "Colis perdu"}\n', encoding="utf-8")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(
        target=lambda: got.append(fifo.read_text(encoding="utf-8")), daemon=True
    )
    reader.start()
    an.analyze_file(analyzer, src, fifo)
    reader.join(timeout=10)
    assert fifo.is_fifo()  # still the pipe
    assert json.loads(got[0])["sentiment"]["label"] == "negative"
    # A link to the output file stays a link; the file it names gets the output.
    target, link = tmp_path / "target.jsonl", tmp_path / "link.jsonl"
    target.write_text("previous\n", encoding="utf-8")
    link.symlink_to(target)
    an.analyze_file(analyzer, src, link)
    assert link.is_symlink()
    assert json.loads(target.read_text(encoding="utf-8"))["id"] == 1


def test_cli_output_to_dev_stdout_redirected_to_a_file(tmp_path: Path) -> None:
    """`-o /dev/stdout >> log`: the log was replaced by a new file with the output only (its
    previous lines gone, the summary lost). Written through stdout, as `-o -`; the backtest
    refuses it as it refuses `-o -` (its summary goes to stdout)."""
    import subprocess
    import sys

    src, log = tmp_path / "in.jsonl", tmp_path / "log.txt"
    src.write_text('{"id": 1, "text": "Colis perdu", "created_at": "2026-03-01"}\n')
    log.write_text("previous\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for command, code in (("analyze", 0), ("backtest", 2)):
        with log.open("a", encoding="utf-8") as out:
            run = subprocess.run(
                [sys.executable, "-m", "verbatim_cli", command, str(src), "-o", "/dev/stdout"],
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                timeout=120,
            )
        assert run.returncode == code, run.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "previous" and json.loads(lines[1])["id"] == 1 and len(lines) == 2
    assert "-o /dev/stdout: write the alerts to a file" in run.stderr


def test_cli_output_to_dev_stderr_appended_to_a_log_keeps_the_log(tmp_path: Path) -> None:
    """`-o /dev/stderr 2>> log`: /dev/stderr links (through /proc/self/fd/2) to the log file,
    which the output renamed over it replaced (its earlier lines and the summary lost). It is
    written through stderr, where the stream stands (`>>`: at the end)."""
    import subprocess
    import sys

    src, log = tmp_path / "in.jsonl", tmp_path / "log.txt"
    src.write_text('{"id": 1, "text": "Colis perdu", "created_at": "2026-03-01"}\n')
    log.write_text("previous\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for command in ("analyze", "backtest"):
        with log.open("a", encoding="utf-8") as err:
            run = subprocess.run(
                [sys.executable, "-m", "verbatim_cli", command, str(src), "-o", "/dev/stderr"],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
                timeout=120,
            )
        assert run.returncode == 0, log.read_text(encoding="utf-8")
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "previous"
    assert [json.loads(line)["id"] for line in lines if line.startswith("{")] == [1]
    assert any(line.startswith("analyzed 1/1 lines -> /dev/stderr") for line in lines)
    assert "alert line(s) -> /dev/stderr" in run.stdout


def test_output_link_to_a_directory_or_into_a_missing_one_is_one_clear_error(
    tmp_path: Path,
) -> None:
    """A link to a folder, a dangling link into a folder that does not exist: a raw
    IsADirectoryError / FileNotFoundError naming the temporary file, once the work was done
    (the backtest's whole replay). One clear error, before the work in the CLI."""
    from verbatim_cli import app

    feed, folder = tmp_path / "feed.jsonl", tmp_path / "exports"
    feed.write_text('{"id": 1, "text": "Colis perdu", "created_at": "2026-03-01"}\n')
    folder.mkdir()
    to_folder, dangling = tmp_path / "to_folder.jsonl", tmp_path / "dangling.jsonl"
    to_folder.symlink_to(folder)
    dangling.symlink_to(tmp_path / "missing" / "alerts.jsonl")
    cases = (
        (to_folder, "is a directory"),
        (dangling, "is a link to .* in a directory that does not exist"),
        (tmp_path / "missing" / "out.jsonl", "directory .* does not exist"),
    )
    for path, message in cases:
        with pytest.raises(an.OutputError, match=message), an.atomic_output(path) as fh:
            fh.write("x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dangling.jsonl",
        "exports",
        "feed.jsonl",
        "to_folder.jsonl",
    ]
    res = CliRunner().invoke(app, ["backtest", str(feed), "-o", str(dangling)])
    assert res.exit_code == 2 and "link into a directory that does not exist" in res.output


def test_cli_analyze_stdin_and_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from verbatim_cli import app

    monkeypatch.chdir(tmp_path)
    dst = tmp_path / "out.jsonl"
    runner = CliRunner()
    res = runner.invoke(
        app, ["analyze", "-", "-o", str(dst)], input='{"text": "Colis jamais reçu"}\n'
    )
    assert res.exit_code == 0, res.output
    assert json.loads(dst.read_text(encoding="utf-8"))["sentiment"]["label"] == "negative"
    src = tmp_path / "latin.jsonl"
    src.write_bytes('{"text": "Livraison très en retard"}\n'.encode("latin-1"))
    res = runner.invoke(app, ["analyze", str(src), "-o", str(dst), "--encoding", "cp1252"])
    assert res.exit_code == 0 and "analyzed 1/1" in res.output
    res = runner.invoke(app, ["analyze", str(src), "-o", str(dst), "--encoding", "klingon"])
    assert res.exit_code == 2 and "unknown encoding" in res.output
    res = runner.invoke(app, ["analyze", str(src), "-o", str(src)])
    assert res.exit_code == 2 and "is the input file" in res.output


def test_incidents_use_each_themes_cooldown() -> None:
    """A taxonomy may give a theme its own cooldown: `verbatim detect` groups its alerts with
    that gap, the backtest used the global one for every theme."""
    alerts = [
        {"theme": "livraison", "kind": "volume", "day": "2026-03-01"},
        {"theme": "livraison", "kind": "negativity", "day": "2026-03-09"},
        {"theme": "prix", "kind": "volume", "day": "2026-03-01"},
        {"theme": "prix", "kind": "negativity", "day": "2026-03-09"},
    ]
    incs = bt.group_incidents(alerts, {"livraison": 11}, 4)
    assert [(i["theme"], i["first_day"], i["alerts"]) for i in incs] == [
        ("livraison", "2026-03-01", 2),
        ("prix", "2026-03-01", 1),
        ("prix", "2026-03-09", 1),
    ]


def test_backtest_feed_of_broken_lines_reports_each(
    analyzer: Analyzer, tax: Taxonomy, tmp_path: Path
) -> None:
    feed, out = tmp_path / "feed.jsonl", tmp_path / "alerts.jsonl"
    feed.write_text("{oops\n{\"text\": 'single quotes'}\n", encoding="utf-8")
    warnings: list[str] = []
    res = bt.run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=warnings.append)
    assert res.rows == 0 and res.bad == 2 == res.read and len(warnings) == 2
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\xef\xbb\xbf\r\n\n  \n")
    with pytest.raises(bt.FeedError, match="empty"):
        bt.run_backtest(blank, out, analyzer=analyzer, taxonomy=tax)


def test_cli_backtest_reads_a_latin1_export_and_uses_the_detect_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command passed neither `--encoding` (the reader had it) nor the settings
    `verbatim detect` runs with (`detection_warmup_days`, `max_text_chars`), so a team that
    had changed the warm-up got other alerts from the backtest than from detect."""
    from verbatim_cli import app

    seen: dict[str, object] = {}
    real = bt.run_backtest

    def spy(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bt, "run_backtest", spy)
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VERBATIM_SENTIMENT_BACKEND", "lexicon")
    monkeypatch.setenv("VERBATIM_DETECTION_WARMUP_DAYS", "5")
    monkeypatch.setenv("VERBATIM_MAX_TEXT_CHARS", "300")
    feed, out = tmp_path / "feed.csv", tmp_path / "alerts.jsonl"
    feed.write_bytes(
        "id;texte;date\n1;Colis abîmé, très déçu;2026-03-01\n2;Livré à temps;2026-03-02\n".encode(
            "cp1252"
        )
    )
    res = CliRunner().invoke(app, ["backtest", str(feed), "-o", str(out), "--encoding", "cp1252"])
    assert res.exit_code == 0, res.output
    assert "read 2 row(s): 2 verbatim(s)" in res.output and "rejected" in res.output
    assert seen["config"].warmup_days == 5  # type: ignore[attr-defined]
    assert seen["max_text_chars"] == 300 and seen["encoding"] == "cp1252"


def test_cli_output_errors_come_before_the_analyzer_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o -` and an output that is the input itself were refused only once the analyzer had
    loaded (25-30 s with the default model): they are refused at once."""
    import core.analysis
    from verbatim_cli import app

    def no_load(*_a: object, **_k: object) -> None:
        raise AssertionError("the analyzer was loaded")

    monkeypatch.setattr(core.analysis, "build_analyzer", no_load)
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"text": "Colis perdu", "created_at": "2026-03-01"}\n', encoding="utf-8")
    runner = CliRunner()
    for args, words in (
        (["backtest", str(feed), "-o", "-"], "-o -"),
        (["backtest", str(feed), "-o", str(feed)], "input file itself"),
        (["analyze", str(feed), "-o", str(feed)], "input file itself"),
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and words in res.output, (args, res.output)
    assert "Colis perdu" in feed.read_text(encoding="utf-8")


def test_a_backtest_reads_ratings_as_ingest_does_with_their_scale(tmp_path: Path) -> None:
    """A feed with a 0-10 `note` column: ingest refuses its bare « 8 » unless the scale is
    declared (`--rating-scale 10`); the replay, which counts the rows ingest stores, takes
    the same option, else its volumes lose those verbatims with no way to keep them."""
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "id;avis;date;note\n1;Colis perdu;2026-03-01;8\n2;Colis perdu encore;2026-03-01;3\n",
        encoding="utf-8",
    )
    warnings: list[str] = []
    rows, reader = bt.read_feed_file(feed, warnings.append, now=NOW)
    assert len(rows) == 1 and reader.bad == 1 and "is above 5" in warnings[0], warnings
    rows, reader = bt.read_feed_file(feed, warnings.append, now=NOW, rating_scale=10)
    assert len(rows) == 2 and reader.bad == 0
    from verbatim_cli import app

    out = tmp_path / "alerts.jsonl"
    args = ["backtest", str(feed), "-o", str(out), "--backend", "lexicon", "--rating-scale", "10"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "2 verbatim(s)" in res.output, res.output

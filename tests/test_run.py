"""enrich (real lexicon analyzer), `run` end to end with zero config, and the CLI commands."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.models import Analysis, DailyAggregate, Feedback, ThemeMention
from core.queries import AGGREGATED_LANGUAGES
from core.settings import Settings, SourceConfig
from jobs.demo import DemoSpec, write_demo
from jobs.enrich import enrich
from jobs.ingest import ingest_file
from jobs.run import demo_feed_path, run_pipeline

REPO = Path(__file__).resolve().parents[1]
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def analyzer():  # type: ignore[no-untyped-def]
    from core.analysis import build_analyzer

    return build_analyzer(Settings(data_dir=Path("unused")))


def _count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_enrich_in_batches_and_resumable(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    feed = tmp_path / "feed.jsonl"
    count = write_demo(feed, DemoSpec(days=4, seed=1, end=date(2026, 11, 10), per_day=12))
    ingest_file(sessions, settings, feed, source="demo", mapping={"channel": "channel"})
    small = settings.model_copy(update={"batch_size": 7})

    part = enrich(sessions, small, analyzer=analyzer, limit=10)
    assert part.analyzed == 10
    assert _count(session, Feedback, Feedback.analyzed.is_(True)) == 10
    rest = enrich(sessions, small, analyzer=analyzer)
    assert rest.analyzed == count - 10 and rest.model_version == analyzer.model_version
    assert enrich(sessions, small, analyzer=analyzer).analyzed == 0
    session.expire_all()
    assert _count(session, Analysis) == count
    assert _count(session, Feedback, Feedback.analyzed.is_(False)) == 0
    # Mentions are dated by the verbatim's day and are one per theme and verbatim.
    for mention in session.scalars(select(ThemeMention)).all():
        fb = session.get(Feedback, mention.feedback_id)
        assert mention.day == fb.created_at.date()
    dup = session.execute(
        select(ThemeMention.feedback_id, ThemeMention.theme)
        .group_by(ThemeMention.feedback_id, ThemeMention.theme)
        .having(func.count() > 1)
    ).all()
    assert dup == []
    assert _count(session, ThemeMention) > count / 2
    assert rest.days | part.days == {date(2026, 11, 10) - timedelta(days=i) for i in range(4)}
    # Recurrence: a customer's later verbatims are flagged, the first one is not.
    rec = session.execute(
        select(Feedback.customer_key, Feedback.created_at, Analysis.is_recurrent)
        .join(Analysis, Analysis.feedback_id == Feedback.id)
        .order_by(Feedback.customer_key, Feedback.created_at, Feedback.id)
    ).all()
    seen: set[str] = set()
    for key, _created, recurrent in rec:
        assert recurrent == (key in seen)
        seen.add(key)
    assert any(r.is_recurrent for r in rec)


def _small_demo(settings: Settings) -> int:
    return write_demo(demo_feed_path(settings), DemoSpec(days=10, seed=7, per_day=15, end=TODAY))


def test_run_with_zero_config_uses_the_demo_feed(
    settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    count = _small_demo(settings)  # pre-placed (smaller) so the test stays fast
    summary = run_pipeline(settings, sessions, analyzer=analyzer)
    assert summary.demo and not summary.errors
    assert summary.ingested[0][1].stored == count
    assert summary.enriched.analyzed == count
    totals = session.scalar(
        select(func.sum(DailyAggregate.volume)).where(DailyAggregate.theme == "*")
    )
    # The demo has a few English/Spanish/German rows: counted apart, not in the French figures.
    others = session.scalar(
        select(func.count()).where(Feedback.language.not_in(AGGREGATED_LANGUAGES))
    )
    assert others and totals == count - others
    emb = session.execute(
        select(DailyAggregate.day, func.sum(DailyAggregate.negatives))
        .where(DailyAggregate.theme == "emballage")
        .group_by(DailyAggregate.day)
    ).all()
    by_day = dict(emb)
    recent = [n for d, n in by_day.items() if (TODAY - d).days < 3]
    older = [n for d, n in by_day.items() if (TODAY - d).days >= 3]
    assert min(recent) > 2 * max(older)  # the injected packaging spike is visible
    # detect ran after aggregation (over the recent days); no webhooks: nothing delivered
    assert summary.detected is not None and summary.delivered is None
    assert summary.detected.days and max(summary.detected.days) == max(by_day)

    def must_not_load() -> None:
        raise AssertionError("nothing new: the analyzer must not be loaded")

    again = run_pipeline(settings, sessions, analyzer_factory=must_not_load)
    assert again.ingested[0][1].skipped and again.enriched.analyzed == 0
    # Nothing new, no day rebuilt: the English rows (never in the French "*" volume) made
    # every run rebuild every day, as if the aggregates were behind.
    assert again.aggregated_rows == 0
    assert again.detected is not None and again.detected.new == again.detected.queued == 0
    session.expire_all()
    assert (
        session.scalar(select(func.sum(DailyAggregate.volume)).where(DailyAggregate.theme == "*"))
        == count - others
    )


def test_run_continues_after_a_bad_source(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("text,date\nColis jamais reçu,2026-11-01\nTrès bon produit,2026-11-02\n")
    configured = settings.model_copy(
        update={
            "sources": [
                SourceConfig(path=tmp_path / "missing.csv", source="gone"),
                SourceConfig(path=good, source="shop", channel="complaint"),
            ]
        }
    )
    summary = run_pipeline(configured, sessions, analyzer=analyzer)
    assert [s.source for s, _ in summary.errors] == ["gone"]
    assert summary.ingested[0][1].stored == 2
    assert _count(session, DailyAggregate, DailyAggregate.theme == "*") == 2
    assert not demo_feed_path(settings).exists()  # configured sources: no demo


@pytest.mark.parametrize("pattern", ["", "/srv/exports/*.csv", "**.csv"])
def test_run_continues_after_a_folder_source_with_a_bad_pattern(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer, pattern
) -> None:
    """An empty, absolute or malformed glob raised ValueError / NotImplementedError from
    pathlib: a traceback that ended `verbatim run` before the other sources were read."""
    good = tmp_path / "good.csv"
    good.write_text("text,date\nColis jamais reçu,2026-11-01\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = SourceConfig(source="inbox", kind="folder", path=inbox, pattern=pattern)
    configured = settings.model_copy(
        update={"sources": [bad, SourceConfig(path=good, source="shop")]}
    )
    summary = run_pipeline(configured, sessions, analyzer=analyzer)
    [(src, message)] = summary.errors
    assert src.source == "inbox" and "is not a glob relative to the folder" in message
    assert [s.source for s, _ in summary.ingested] == ["shop"]
    assert summary.ingested[0][1].stored == 1


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_DATA_DIR=str(settings.data_dir),
        VERBATIM_CONFIG=os.devnull,
        COLUMNS="160",  # rich wraps long labels on narrow terminals
    )
    return env


@pytest.mark.slow
def test_cli_run_then_report(tmp_path: Path, settings: Settings) -> None:
    _small_demo(settings)
    proc = subprocess.run(
        [sys.executable, "-m", "verbatim_cli", "run", "--quiet"],
        cwd=tmp_path,
        env=_env(settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo: read" in proc.stdout and "Emballage" in proc.stdout
    assert "Tous les verbatims" in proc.stdout
    assert "alerts: " in proc.stdout and "verbatim alert --dry-run" in proc.stdout

    runner = CliRunner()
    from verbatim_cli import app

    env = _env(settings, tmp_path)
    res = runner.invoke(app, ["report", "--days", "3", "--channel", "complaint"], env=env)
    assert res.exit_code == 0 and "Thèmes du" in res.output
    res = runner.invoke(app, ["aggregate", "--since", str(TODAY - timedelta(days=2))], env=env)
    assert res.exit_code == 0 and "aggregate rows" in res.output
    res = runner.invoke(app, ["aggregate", "--since", "hier"], env=env)
    assert res.exit_code == 2 and "not a YYYY-MM-DD" in res.output
    res = runner.invoke(app, ["report", "--days", "0"], env=env)
    assert res.exit_code == 2
    res = runner.invoke(app, ["enrich", "--backend", "nope", "--reanalyze"], env=env)
    assert res.exit_code == 2 and "cannot build the analyzer" in res.output


def test_cli_demo_writes_the_feed(tmp_path: Path) -> None:
    from verbatim_cli import app

    out = tmp_path / "feed.jsonl"
    res = CliRunner().invoke(app, ["demo", "-o", str(out), "--days", "3", "--per-day", "5"])
    assert res.exit_code == 0, res.output
    assert out.exists() and str(len(out.read_text().splitlines())) in res.output


def test_run_repairs_aggregates_after_a_stop_between_enrich_and_aggregate(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    feed = tmp_path / "f.jsonl"
    count = write_demo(feed, DemoSpec(days=3, seed=2, per_day=10))
    src = SourceConfig(path=feed, source="s", mapping={"channel": "channel"})
    configured = settings.model_copy(update={"sources": [src]})
    run_pipeline(configured, sessions, analyzer=analyzer)
    # A later feed is ingested and analysed, then the job dies before aggregating.
    feed2 = tmp_path / "g.jsonl"
    extra = write_demo(feed2, DemoSpec(days=3, seed=5, per_day=10))
    ingest_file(sessions, settings, feed2, source="t", mapping={"channel": "channel"})
    enrich(sessions, settings, analyzer=analyzer)
    summary = run_pipeline(configured, sessions, analyzer=analyzer)
    assert summary.enriched.analyzed == 0  # nothing new to analyse...
    total = session.scalar(
        select(func.sum(DailyAggregate.volume)).where(DailyAggregate.theme == "*")
    )
    others = session.scalar(
        select(func.count()).where(Feedback.language.not_in(AGGREGATED_LANGUAGES))
    )
    assert total == count + extra - others  # ...but the missing days were aggregated


class _Flaky:
    """The real analyzer, made to raise on one text (fault injection)."""

    def __init__(self, inner, poison: str) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.poison, self.model_version = inner, poison, inner.model_version

    def analyze(self, texts):  # type: ignore[no-untyped-def]
        if any(self.poison in t for t in texts):
            raise ValueError("cannot analyse this one")
        return self.inner.analyze(texts)


def test_one_bad_text_does_not_block_enrich(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("text\nColis jamais reçu\nPOISON ici\nTrès bon produit\nCarton écrasé\n")
    ingest_file(sessions, settings, path, source="s")
    result = enrich(sessions, settings, analyzer=_Flaky(analyzer, "POISON"))
    assert (result.analyzed, result.failed) == (3, 1)
    left = session.scalars(select(Feedback.text).where(Feedback.analyzed.is_(False))).all()
    assert left == ["POISON ici"]
    # A broken analyzer (fails on everything) is an error, not silently skipped data.
    with pytest.raises(ValueError):
        enrich(sessions, settings, analyzer=_Flaky(analyzer, ""))


@pytest.mark.slow
def test_cli_run_with_a_toml_config(tmp_path: Path, settings: Settings) -> None:
    feed = tmp_path / "avis.csv"
    feed.write_text(
        "ref;quand;commentaire\n"
        "a1;01/11/2026;Carton écrasé, produit cassé\n"
        "a2;02/11/2026;Livraison rapide, merci\n"
        "a3;pas de date;Texte\n",
        encoding="utf-8",
    )
    config = tmp_path / "verbatim.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\n\n'
        "[[sources]]\n"
        f'path = "{feed}"\n'
        'source = "boutique"\n'
        'channel = "complaint"\n'
        'mapping = { text = "commentaire", id = "ref", created_at = "quand" }\n',
        encoding="utf-8",
    )
    env = _env(settings, tmp_path)
    env["VERBATIM_CONFIG"] = str(config)
    del env["VERBATIM_DATA_DIR"]
    proc = subprocess.run(
        [sys.executable, "-m", "verbatim_cli", "run", "--quiet", "--days", "30"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "boutique: read 3, stored 2" in proc.stdout and "rejected 1" in proc.stdout
    assert "Emballage" in proc.stdout
    assert not demo_feed_path(settings).exists()


def test_overlapping_runs_are_refused(settings: Settings, sessions: sessionmaker) -> None:
    from jobs.run import AlreadyRunning, run_lock

    with run_lock(settings), pytest.raises(AlreadyRunning, match="in progress"):
        run_pipeline(settings, sessions, analyzer=object())
    with run_lock(settings):  # released after use
        pass


@pytest.mark.postgres
def test_pipeline_on_postgres(tmp_path: Path, settings: Settings, pg_sessions, analyzer) -> None:
    from core.db import session_scope
    from core.queries import other_language_volumes, theme_summary
    from jobs.aggregate import aggregate

    feed = tmp_path / "f.jsonl"
    # Ending TODAY, not "now": a suite that crosses midnight UTC shifted the feed a day.
    count = write_demo(feed, DemoSpec(days=5, seed=4, per_day=12, end=TODAY))
    source = SourceConfig(path=feed, source="pg", mapping={"channel": "channel"})
    configured = settings.model_copy(update={"sources": [source]})
    summary = run_pipeline(configured, pg_sessions, analyzer=analyzer)
    assert summary.ingested[0][1].stored == summary.enriched.analyzed == count
    with session_scope(pg_sessions) as session:
        assert aggregate(session) > 0
        period = {"start": TODAY - timedelta(days=4), "end": TODAY}
        rows = theme_summary(session, **period, include_total=True)
        # The demo mixes in a few English rows (which ones depends on the date): they are
        # counted apart from the French aggregates, never lost.
        others = sum(other_language_volumes(session, **period).values())
        assert rows[-1].theme == "*" and rows[-1].volume + others == count
        assert rows[-1].volume >= count * 0.9


class _Versioned:
    """The real analyzer under another model version name (a "new model" was shipped)."""

    def __init__(self, inner, version: str) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.model_version = inner, version

    def analyze(self, texts):  # type: ignore[no-untyped-def]
        return self.inner.analyze(texts)


def test_reanalyze_with_a_new_model_version(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    from core.db import session_scope
    from jobs.aggregate import aggregate

    path = tmp_path / "f.csv"
    path.write_text("text,date\nColis jamais reçu,2026-11-01\nTrès bon produit,2026-11-02\n")
    ingest_file(sessions, settings, path, source="s")
    enrich(sessions, settings, analyzer=_Versioned(analyzer, "old-1"))
    assert enrich(sessions, settings, analyzer=_Versioned(analyzer, "new-2")).analyzed == 0
    again = enrich(sessions, settings, analyzer=_Versioned(analyzer, "new-2"), reanalyze=True)
    assert again.analyzed == 2 and again.days == {date(2026, 11, 1), date(2026, 11, 2)}
    assert (
        enrich(sessions, settings, analyzer=_Versioned(analyzer, "new-2"), reanalyze=True).analyzed
        == 0
    )
    versions = session.scalars(select(Analysis.model_version)).all()
    assert sorted(versions) == ["new-2", "new-2", "old-1", "old-1"]
    with session_scope(sessions) as s:
        aggregate(s)
    total = session.scalar(
        select(func.sum(DailyAggregate.volume)).where(DailyAggregate.theme == "*")
    )
    assert total == 2  # the latest analysis counts, not both


def test_cli_reanalyze_says_how_many_verbatims_it_redoes(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    """After an upgrade that changes the model version (« +nc1 »), `enrich --reanalyze` said
    nothing before its last line: a year of verbatims re-scored for hours without a count."""
    from verbatim_cli import app

    path = tmp_path / "f.csv"
    path.write_text("text,date\nColis jamais reçu,2026-11-01\nTrès bon produit,2026-11-02\n")
    ingest_file(sessions, settings, path, source="s")
    enrich(sessions, settings, analyzer=_Versioned(analyzer, "old-1"))
    env = {**_env(settings, tmp_path), "VERBATIM_DATABASE_URL": settings.resolved_database_url}
    args = ["enrich", "--reanalyze", "--backend", "lexicon"]
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0, res.output
    assert "2 verbatim(s) analysed by another model version, marked for re-analysis by" in (
        res.output
    )
    again = CliRunner().invoke(app, args, env=env)
    assert "no verbatim analysed by another model version than" in again.output, again.output


def test_cli_enrich_with_nothing_pending_names_an_older_model_version(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    """A database analysed by an older release (model version « embedded-1.0+learned-0.2 »),
    migrated by this one: `verbatim enrich` said « nothing to analyse: every stored verbatim
    is analysed » and every figure stayed the older model's, with no hint that only
    `--reanalyze` re-scores them."""
    from verbatim_cli import app

    path = tmp_path / "f.csv"
    path.write_text("text,date\nColis jamais reçu,2026-11-01\nTrès bon produit,2026-11-02\n")
    ingest_file(sessions, settings, path, source="s")
    enrich(sessions, settings, analyzer=_Versioned(analyzer, "embedded-1.0+learned-0.2"))
    env = {**_env(settings, tmp_path), "VERBATIM_DATABASE_URL": settings.resolved_database_url}
    args = ["enrich", "--backend", "lexicon"]
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0, res.output
    said = " ".join(res.stdout.split())  # rich wraps at the terminal's width
    assert said.startswith(
        "nothing to analyse: every stored verbatim is analysed; 2 of them by another model "
        "version than lexicon-"
    ), said
    assert said.endswith(": `verbatim enrich --reanalyze` re-scores them"), said
    assert CliRunner().invoke(app, [*args, "--reanalyze"], env=env).exit_code == 0
    again = CliRunner().invoke(app, args, env=env)
    assert again.stdout.strip() == "nothing to analyse: every stored verbatim is analysed"


def test_reanalyze_goes_back_to_an_earlier_model(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    """old-1, then new-2 with --reanalyze, then old-1 again with --reanalyze: "analysed 0",
    every verbatim kept counting new-2 (old-1's rows were there, older than new-2's)."""
    from core.queries import latest_analysis

    path = tmp_path / "f.csv"
    path.write_text("text,date\nColis jamais reçu,2026-11-01\nTrès bon produit,2026-11-02\n")
    ingest_file(sessions, settings, path, source="s")
    enrich(sessions, settings, analyzer=_Versioned(analyzer, "old-1"))
    enrich(sessions, settings, analyzer=_Versioned(analyzer, "new-2"), reanalyze=True)
    back = enrich(sessions, settings, analyzer=_Versioned(analyzer, "old-1"), reanalyze=True)
    assert back.analyzed == 2
    counted = session.scalars(select(Analysis.model_version).where(latest_analysis())).all()
    assert counted == ["old-1", "old-1"]
    kept = session.scalars(select(Analysis.model_version)).all()
    assert sorted(kept) == ["new-2", "new-2", "old-1", "old-1"]


def test_reanalyze_detects_the_language_again(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    """Rows stored before a language-detection fix kept their language through `enrich
    --reanalyze` (same model version or not): a French review stored "en" stayed out of every
    French figure, an English one stored "fr" stayed in them."""
    from sqlalchemy import update

    from core.db import session_scope
    from jobs.aggregate import aggregate

    path = tmp_path / "f.csv"
    path.write_text(
        "text,date\n"
        "Colis jamais reçu vraiment nul,2026-11-01\n"
        "Impeccable produit conforme et rapide,2026-11-02\n"
        "The parcel arrived broken and nobody answered,2026-11-02\n"
    )
    ingest_file(sessions, settings, path, source="s")
    enrich(sessions, settings, analyzer=analyzer)
    with session_scope(sessions) as s:  # what an older detector stored
        s.execute(update(Feedback).where(Feedback.id == 2).values(language="en", is_french=False))
        s.execute(update(Feedback).where(Feedback.id == 3).values(language="fr", is_french=True))
        aggregate(s)
    again = enrich(sessions, settings, analyzer=analyzer, reanalyze=True)
    session.expire_all()
    stored = session.execute(select(Feedback.language, Feedback.is_french).order_by(Feedback.id))
    assert stored.all() == [("fr", True), ("fr", True), ("en", False)]
    assert again.analyzed == 0 and again.relabelled == 2  # nothing re-scored twice
    assert again.days == {date(2026, 11, 2)}  # the days to re-aggregate
    with session_scope(sessions) as s:
        aggregate(s, days=again.days)
    french = session.scalar(
        select(func.sum(DailyAggregate.volume)).where(DailyAggregate.theme == "*")
    )
    assert french == 2
    assert enrich(sessions, settings, analyzer=analyzer, reanalyze=True).relabelled == 0


def test_a_retrained_model_has_its_own_version(tmp_path: Path, settings: Settings) -> None:
    """Two trainings into one directory gave one version ("tfidf-0.1"): `enrich --reanalyze`
    after re-training re-scored nothing. User-trained weights are named by their digest."""
    from core.analysis import build_analyzer
    from nlp.sentiment.baseline import TfidfSentiment

    texts = ["super produit top", "colis jamais reçu", "produit moyen bof", "top merci"] * 3
    labels = ["positive", "negative", "neutral", "positive"] * 3
    model_dir = tmp_path / "tfidf"
    TfidfSentiment().fit(texts, labels).save(model_dir)
    tuned = settings.model_copy(
        update={"sentiment_backend": "tfidf", "sentiment_model_path": model_dir}
    )
    first = build_analyzer(tuned).model_version
    assert first.startswith("tfidf-") and "@" in first
    TfidfSentiment().fit(texts, list(reversed(labels))).save(model_dir)
    assert build_analyzer(tuned).model_version != first
    assert "@" not in build_analyzer(settings).model_version  # the packaged models: unchanged


def test_enrich_interrupted_then_resumed(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    feed = tmp_path / "f.jsonl"
    count = write_demo(feed, DemoSpec(days=2, seed=9, per_day=12))
    ingest_file(sessions, settings, feed, source="s", mapping={"channel": "channel"})
    small = settings.model_copy(update={"batch_size": 5})

    def stop(done: int) -> None:
        raise KeyboardInterrupt  # after the first committed batch

    with pytest.raises(KeyboardInterrupt):
        enrich(sessions, small, analyzer=analyzer, on_batch=stop)
    assert _count(session, Analysis) == 5
    rest = enrich(sessions, small, analyzer=analyzer)
    assert rest.analyzed == count - 5
    session.expire_all()
    assert _count(session, Analysis) == count
    assert _count(session, Feedback, Feedback.analyzed.is_(False)) == 0


def test_run_recomputes_the_days_of_analyses_stored_since_the_last_rebuild(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session, analyzer
) -> None:
    """A standalone `verbatim enrich --reanalyze` (or the API) stores analyses that no run
    aggregated: re-scored verbatims change no count, so the scheduler's next `verbatim run`
    found the aggregates "in step" and kept the old figures for ever. It recomputes their
    days, and only theirs."""
    from sqlalchemy import update

    from core.db import session_scope
    from core.store import utcnow

    path = tmp_path / "f.csv"
    path.write_text(
        "text,date\n"
        "Colis jamais reçu vraiment nul,2026-11-01\n"
        "Impeccable produit conforme et rapide,2026-11-02\n"
        "Produit correct livraison rapide,2026-11-03\n"
    )
    settings = settings.model_copy(update={"sources": [SourceConfig(path=path, source="s")]})
    run_pipeline(settings, sessions, analyzer=analyzer)

    def negatives() -> dict[date, int]:
        session.expire_all()
        rows = session.execute(
            select(DailyAggregate.day, DailyAggregate.negatives).where(DailyAggregate.theme == "*")
        )
        return dict(rows.all())

    before = negatives()
    assert before[date(2026, 11, 2)] == 0
    with session_scope(sessions) as s:  # what a re-analysis by a retrained model stores
        s.execute(
            update(Analysis)
            .where(Analysis.feedback_id == 2)
            .values(sentiment="negative", analyzed_at=utcnow())
        )
    again = run_pipeline(settings, sessions, analyzer=analyzer)
    assert again.enriched.analyzed == 0
    after = negatives()
    assert after[date(2026, 11, 2)] == 1
    assert after[date(2026, 11, 1)] == before[date(2026, 11, 1)]
    # Only that day was recomputed; a run with nothing new recomputes nothing.
    that_day = select(func.count()).where(DailyAggregate.day == date(2026, 11, 2))
    assert again.aggregated_rows == session.scalar(that_day)
    assert run_pipeline(settings, sessions, analyzer=analyzer).aggregated_rows == 0

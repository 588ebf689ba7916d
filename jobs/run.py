"""`verbatim run`: every configured source -> ingest -> enrich -> aggregate -> hooks -> report.

With no source configured, a demo feed is generated once into data_dir and used, so that
`verbatim run` works on a fresh machine with zero configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.settings import Settings, SourceConfig
from jobs.aggregate import aggregate
from jobs.alerts import DeliveryResult
from jobs.connectors import ConnectorError, PullResult, pull_source
from jobs.detect import DetectResult
from jobs.enrich import EnrichResult, enrich
from jobs.ingest import IngestResult, LazyMasker, MappingError, ReaderError
from jobs.retheme import RethemeResult, retheme
from nlp.errors import VerbatimError

log = logging.getLogger(__name__)

DEMO_SOURCE = "demo"
DEMO_MAPPING = {"channel": "channel"}


@dataclass
class RunSummary:
    ingested: list[tuple[SourceConfig, IngestResult | PullResult]] = field(default_factory=list)
    errors: list[tuple[SourceConfig, str]] = field(default_factory=list)
    enriched: EnrichResult | None = None
    aggregated_rows: int = 0
    demo: bool = False
    rethemed: RethemeResult | None = None  # a taxonomy change applied to the recent window
    detected: DetectResult | None = None  # None: detection failed (logged), retried next run
    delivered: DeliveryResult | None = None  # None: nothing delivered (no webhooks / failure)


def demo_feed_path(settings: Settings) -> Path:
    return settings.data_dir / "demo" / "demo-feed.jsonl"


def demo_source(settings: Settings) -> SourceConfig:
    """The zero-config source: a demo feed generated once (kept, so runs stay idempotent)."""
    from jobs.demo import write_demo

    path = demo_feed_path(settings)
    if not path.exists():
        write_demo(path)
    return SourceConfig(path=path, source=DEMO_SOURCE, channel="review", mapping=DEMO_MAPPING)


def post_aggregate_steps(
    settings: Settings,
    session_factory: sessionmaker[Session],
    stop: Callable[[], bool] | None = None,
) -> tuple[DetectResult | None, DeliveryResult | None]:
    """Hook run after aggregation, before the report: spike detection, then alert delivery.

    Detection runs on the latest aggregated day (idempotent: re-runs add nothing). Delivery
    only runs when webhooks are configured; otherwise messages stay queued for later. A
    failure here is logged and does not fail the run: ingested data is already committed and
    the next run retries (pending outbox rows are kept). `stop()` (SIGTERM) is checked between
    detected days and between messages: `Stopped` once the day / message in progress is done.
    """
    from jobs.alerts import deliver_pending
    from jobs.detect import run_detect

    try:
        detected = run_detect(settings, session_factory, stop=stop)
    except Exception:  # noqa: BLE001 - alerts must not fail the ingestion run
        log.exception("spike detection failed; the next run retries")
        return None, None
    if detected.stopped:
        raise Stopped(f"stop requested after {len(detected.days)} day(s) of spike detection")
    if not settings.slack_webhooks:
        log.info("no slack_webhooks configured: alert messages stay queued")
        return detected, None
    try:
        delivered = deliver_pending(settings, session_factory, stop=stop)
    except Exception:  # noqa: BLE001
        log.exception("alert delivery failed; pending messages are retried next run")
        return detected, None
    if delivered.stopped:
        raise Stopped(f"stop requested: {delivered.sent} message(s) sent, the rest pending")
    return detected, delivered


class Stopped(RuntimeError):
    """A stop was requested (the scheduler got SIGTERM): the run ended between two steps or
    batches, everything before is committed, the next run continues from there."""


class AlreadyRunning(VerbatimError, RuntimeError):
    """Another `verbatim run` holds the lock (overlapping cron runs)."""

    exit_code = 1  # not the user's input: a later run succeeds


@contextmanager
def run_lock(settings: Settings) -> Iterator[None]:
    """One pipeline run at a time per data_dir (an OS file lock: released if the process dies)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / ".run.lock"
    with path.open("a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"another `verbatim run` is in progress (lock {path}); try again later"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_pipeline(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    progress: bool = False,
    analyzer: object | None = None,
    on_enrich_batch: Callable[[int], None] | None = None,
    analyzer_factory: Callable[[], object] | None = None,
    stop: Callable[[], bool] | None = None,
    masker: Callable[[str], str] | None = None,
) -> RunSummary:
    """Run the pipeline once. A source that fails is reported and the others still run.

    Give `analyzer`, or `analyzer_factory` (called only when there is something to analyse).
    `masker`: the PII masker to reuse (a scheduler keeps one); one per run otherwise.
    `stop()` is checked between steps and batches: when it turns true the run raises
    `Stopped` at the next safe point (what was stored stays stored).
    """
    with run_lock(settings):
        return _run(
            settings,
            sessions,
            progress=progress,
            analyzer=analyzer,
            on_batch=on_enrich_batch,
            analyzer_factory=analyzer_factory,
            stop=stop,
            masker=masker or LazyMasker(settings),
        )


def _run(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    progress: bool,
    analyzer: object | None,
    on_batch: Callable[[int], None] | None,
    analyzer_factory: Callable[[], object] | None,
    stop: Callable[[], bool] | None = None,
    masker: Callable[[str], str] | None = None,
) -> RunSummary:
    summary = RunSummary()
    sources = list(settings.sources)
    if not sources:
        sources = [demo_source(settings)]
        summary.demo = True
    for src in sources:
        try:
            result = pull_source(
                sessions, settings, src, progress=progress, stop=stop, masker=masker
            )
            summary.ingested.append((src, result))
            summary.errors.extend((src, error) for error in getattr(result, "errors", []))
        except (MappingError, ReaderError, ConnectorError, FileNotFoundError, OSError) as exc:
            summary.errors.append((src, str(exc)))
        if stop is not None and stop():
            raise Stopped("stop requested after ingestion")

    def batch_done(done: int) -> None:
        if on_batch is not None:
            on_batch(done)
        if stop is not None and stop():
            raise Stopped(f"stop requested after {done} verbatims analysed")

    with session_scope(sessions) as session:
        from core import taxonomy_store

        pending = taxonomy_store.pending_retheme(session) is not None
    if pending:
        # A taxonomy edit: re-detect the recent window's themes (stored sentiment kept) so
        # this run's aggregates, detection and report use the new version.
        if analyzer is None and analyzer_factory is not None:
            analyzer = analyzer_factory()
        summary.rethemed = retheme(
            settings, sessions, sentiment=getattr(analyzer, "sentiment", None)
        )
    summary.enriched = enrich(
        sessions,
        settings,
        analyzer=analyzer,
        on_batch=batch_done,
        analyzer_factory=analyzer_factory,
    )
    with session_scope(sessions) as session:
        days = _days_to_aggregate(session, summary.enriched.days)
        summary.aggregated_rows = aggregate(session, days=days)
        if days is not None and _needs_full(session):
            summary.aggregated_rows = aggregate(session, days=None)
    summary.detected, summary.delivered = post_aggregate_steps(settings, sessions, stop)
    return summary


def _days_to_aggregate(session: Session, analysed: set[date]) -> set[date] | None:
    """The days this run analysed, and those of every analysis stored since the aggregates'
    last rebuild by anything else: a standalone `verbatim enrich --reanalyze` (a re-scored
    verbatim changes no count, so `_needs_full` cannot see it), the API, a run that stopped
    before this step. None (every day) when nothing was ever aggregated."""
    from sqlalchemy import func, select

    from core.aggregate import feedback_day
    from core.models import AggregateChange, Analysis, Feedback

    last = session.scalar(select(func.max(AggregateChange.changed_at)))
    if last is None:
        return None
    since = session.scalars(
        select(feedback_day(session))
        .select_from(Analysis)
        .join(Feedback, Feedback.id == Analysis.feedback_id)
        .where(Analysis.analyzed_at > last)
        .distinct()
    )
    return analysed | set(since)


def _needs_full(session: Session) -> bool:
    """Aggregates still out of step with the analysed verbatims after the days above were
    recomputed (a verbatim deleted, a rebuild lost): recompute every day."""
    from sqlalchemy import func, select

    from core.aggregate import feedback_day, retention_horizon
    from core.models import DailyAggregate, Feedback
    from core.queries import AGGREGATED_LANGUAGES

    # The "*" volume counts French verbatims only: counting every language made any English
    # review look like a missed day, and every run rebuilt every day.
    stored = [Feedback.analyzed.is_(True), Feedback.language.in_(AGGREGATED_LANGUAGES)]
    totals = [DailyAggregate.theme == "*"]
    horizon = retention_horizon(session)
    if horizon is not None:
        # Days purged by `retention_days` keep their counts without their verbatims: compared
        # with the rows left, every run saw a mismatch and started a full rebuild.
        stored.append(feedback_day(session) >= horizon)
        totals.append(DailyAggregate.day >= horizon)
    analysed = session.scalar(select(func.count()).select_from(Feedback).where(*stored))
    counted = session.scalar(
        select(func.coalesce(func.sum(DailyAggregate.volume), 0)).where(*totals)
    )
    return int(analysed or 0) != int(counted or 0)

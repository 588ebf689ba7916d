"""`verbatim enrich`: analyse stored feedback not analysed yet, batch by batch.

Each batch writes its analyses, theme mentions and the `analyzed` flags in one transaction, so
an interrupted run simply continues with the rows still marked `analyzed=False`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from core.db import lock_aggregates, session_scope
from core.models import CORRECTION_MODEL, Analysis, Embedding, Feedback
from core.settings import Settings
from core.store import as_utc, language_columns, store_analyses, utcnow
from jobs.progress import ProgressLog

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)


@dataclass
class EnrichResult:
    analyzed: int = 0
    mentions: int = 0
    model_version: str = ""
    days: set[date] = field(default_factory=set)  # feedback days touched (for aggregation)
    failed: int = 0  # verbatims the analyzer raised on (left for the next run)
    skipped: int = 0  # already analysed by this model version (e.g. by a concurrent run)
    relabelled: int = 0  # --reanalyze: verbatims whose detected language changed
    reanalysed: int = 0  # --reanalyze: verbatims analysed by another version, marked pending

    @property
    def stored(self) -> int:
        """Verbatims this run analysed and stored (not those another run stored first)."""
        return self.analyzed - self.skipped


def _analyze(analyzer: Any, texts: list[str]) -> list[Any]:
    """The batch at once; if it raises, text by text so one bad text cannot block the rest.
    A failure on every text is an analyzer problem, not a data problem: it propagates."""
    try:
        docs = analyzer.analyze(texts)
    except Exception:  # noqa: BLE001 - retried one by one below
        docs = None
    if docs is not None:
        if len(docs) != len(texts):
            raise RuntimeError(f"analyzer returned {len(docs)} results for {len(texts)} texts")
        return list(docs)
    out: list[Any] = []
    last: Exception | None = None
    for text in texts:
        try:
            out.append(analyzer.analyze([text])[0])
        except Exception as exc:  # noqa: BLE001
            out.append(None)
            last = exc
    if last is not None and all(d is None for d in out):
        raise last
    return out


def _kept(
    rows: Sequence[Any], docs: Sequence[Any], kept: frozenset[int]
) -> tuple[list[Any], list[Any]]:
    """`rows` (and their results) still stored when `store_analyses` marked them analysed:
    a verbatim `forget` or `purge` deleted meanwhile gets no embedding and is not counted."""
    pairs = [(r, d) for r, d in zip(rows, docs, strict=True) if r.id in kept]
    return [r for r, _ in pairs], [d for _, d in pairs]


def _recurrent(session: Session, rows: Sequence[Any]) -> set[int]:
    """Feedback ids whose customer already wrote before (an earlier verbatim, same key)."""
    keys = {r.customer_key for r in rows if r.customer_key}
    if not keys:
        return set()
    first: dict[str, tuple[datetime, int]] = {}
    keys_list = sorted(keys)
    for start in range(0, len(keys_list), 500):
        chunk = keys_list[start : start + 500]
        stmt = (
            select(Feedback.customer_key, func.min(Feedback.created_at), func.min(Feedback.id))
            .where(Feedback.customer_key.in_(chunk))
            .group_by(Feedback.customer_key)
        )
        for key, created, fid in session.execute(stmt):
            first[key] = (as_utc(created), fid)
    out = set()
    for r in rows:
        if r.customer_key and r.customer_key in first:
            created, fid = first[r.customer_key]
            if as_utc(r.created_at) > created or (as_utc(r.created_at) == created and r.id != fid):
                out.add(r.id)
    return out


def _store_embeddings(
    session: Session, rows: Sequence[Any], docs: Sequence[Any], key: str | None, now: datetime
) -> None:
    """The analysis pass's document vectors (float16), one row per verbatim (replaced)."""
    pairs = [
        (r.id, d.embedding)
        for r, d in zip(rows, docs, strict=True)
        if getattr(d, "embedding", None) is not None
    ]
    if not key or not pairs:
        return
    session.execute(delete(Embedding).where(Embedding.feedback_id.in_([i for i, _ in pairs])))
    session.add_all(
        Embedding(
            feedback_id=i,
            model=key[:100],
            dim=int(v.shape[0]),
            vector=v.astype("<f2").tobytes(),
            created_at=now,
        )
        for i, v in pairs
    )


def stored_embeddings(session: Session, feedback_ids: Sequence[int], key: str) -> dict[int, Any]:
    """feedback id -> float32 vector stored by enrich with weights `key` (others skipped)."""
    import numpy as np

    out: dict[int, Any] = {}
    ids = list(feedback_ids)
    for start in range(0, len(ids), 500):
        stmt = select(Embedding.feedback_id, Embedding.vector).where(
            Embedding.feedback_id.in_(ids[start : start + 500]), Embedding.model == key[:100]
        )
        for fid, blob in session.execute(stmt):
            out[fid] = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    return out


def has_pending(sessions: sessionmaker[Session]) -> bool:
    """Is any stored verbatim waiting for analysis?"""
    with session_scope(sessions) as session:
        first = session.execute(
            select(Feedback.id).where(Feedback.analyzed.is_(False)).limit(1)
        ).first()
    return first is not None


def not_analysed_by(sessions: sessionmaker[Session], version: str) -> int:
    """Analysed verbatims without an analysis by model `version`: what `--reanalyze` would
    mark (prepare_reanalysis), counted without marking them."""
    with session_scope(sessions) as session:
        mine = select(Analysis.id).where(
            Analysis.feedback_id == Feedback.id, Analysis.model_version == version
        )
        return int(
            session.scalar(
                select(func.count())
                .select_from(Feedback)
                .where(Feedback.analyzed.is_(True), ~mine.exists())
            )
            or 0
        )


def prepare_reanalysis(sessions: sessionmaker[Session], version: str, result: EnrichResult) -> None:
    """`--reanalyze` before any analysis (both engines): the language of every stored verbatim
    detected again, then every verbatim without an analysis by `version` marked pending."""
    result.relabelled, days = redetect_languages(sessions)
    result.days.update(days)
    with session_scope(sessions) as session:
        # A roll-back: this version's analysis of a verbatim that another model analysed
        # since is never counted (the latest wins), and store_analyses' ON CONFLICT DO
        # NOTHING would skip the new one: it goes (its mentions with it, ON DELETE
        # CASCADE), so that the verbatim is re-scored by the run like any other.
        newer = aliased(Analysis)
        session.execute(
            delete(Analysis).where(
                Analysis.model_version == version,
                select(newer.id)
                .where(
                    newer.feedback_id == Analysis.feedback_id,
                    newer.model_version != CORRECTION_MODEL,
                    newer.id > Analysis.id,
                )
                .exists(),
            )
        )
        # Every verbatim without an analysis by this version is re-scored. NOT EXISTS (an
        # index probe per row): NOT IN over a subquery was quadratic on PostgreSQL.
        mine = select(Analysis.id).where(
            Analysis.feedback_id == Feedback.id, Analysis.model_version == version
        )
        marked = session.execute(
            update(Feedback)
            .where(Feedback.analyzed.is_(True), ~mine.exists())
            .values(analyzed=False)
        )
        result.reanalysed = max(cast("CursorResult[Any]", marked).rowcount or 0, 0)


def redetect_languages(
    sessions: sessionmaker[Session], *, batch_size: int = 1000
) -> tuple[int, set[date]]:
    """Detect the language of every stored verbatim again, as ingest does: rows stored before
    a detector change kept their language (an "en" French review out of every French figure)
    whatever the model re-analysis. Returns how many changed and their days, to re-aggregate."""
    changed, days, cursor = 0, set[date](), 0
    while True:
        with session_scope(sessions) as session:
            rows = session.execute(
                select(
                    Feedback.id,
                    Feedback.text,
                    Feedback.language,
                    Feedback.is_french,
                    Feedback.created_at,
                )
                .where(Feedback.id > cursor)
                .order_by(Feedback.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return changed, days
            cursor = rows[-1].id
            updates = []
            for r in rows:
                now = language_columns(r.text or "")
                if (now["language"], now["is_french"]) != (r.language, r.is_french):
                    updates.append({"id": r.id, **now})
                    days.add(as_utc(r.created_at).date())
            if updates:
                lock_aggregates(session, shared=True)  # as an analysis batch writes
                session.execute(update(Feedback), updates)
                changed += len(updates)


def enrich(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    analyzer: Any | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    reanalyze: bool = False,
    analyzer_factory: Callable[[], Any] | None = None,
    on_reanalysis: Callable[[EnrichResult], None] | None = None,
) -> EnrichResult:
    """Analyse every feedback row with analyzed=False (at most `limit`). Returns counts + days.

    Without `analyzer`, one is built (by `analyzer_factory`, else from settings) only when
    there is something to analyse: loading models costs seconds. `reanalyze`: first mark
    for analysis every verbatim with no analysis by this model version yet (a new model was
    shipped); older analyses are kept, the latest one counts. `on_reanalysis` is then told
    how many it marked (`reanalysed`), before the first batch: a year of verbatims takes hours.
    """
    if analyzer is None:
        if not reanalyze and not has_pending(sessions):
            return EnrichResult()
        if analyzer_factory is None:
            from core.analysis import build_analyzer
            from core.taxonomy_store import for_job

            analyzer = build_analyzer(settings, taxonomy=for_job(sessions, settings).taxonomy)
        else:
            analyzer = analyzer_factory()
    size = batch_size or settings.batch_size
    version = str(getattr(analyzer, "model_version", "unknown"))[:100]
    result = EnrichResult(model_version=version)
    if reanalyze:
        prepare_reanalysis(sessions, version, result)
        if on_reanalysis is not None:
            on_reanalysis(result)
    progress = _progress_log(sessions, limit)
    cursor = 0
    while limit is None or result.analyzed < limit:
        take = size if limit is None else min(size, limit - result.analyzed)
        with session_scope(sessions) as session:
            rows = session.execute(
                select(Feedback.id, Feedback.text, Feedback.created_at, Feedback.customer_key)
                .where(Feedback.analyzed.is_(False), Feedback.id > cursor)
                .order_by(Feedback.id)
                .limit(take)
            ).all()
            if not rows:
                break
            cursor = rows[-1].id
            docs = _analyze(analyzer, [r.text for r in rows])
            failed = [r.id for r, d in zip(rows, docs, strict=True) if d is None]
            if failed:
                # Left analyzed=False (retried on the next run); the cursor moves past them.
                result.failed += len(failed)
                log.warning("analyzer failed on feedback ids %s", failed[:20])
                pairs = [(r, d) for r, d in zip(rows, docs, strict=True) if d is not None]
                rows, docs = [r for r, _ in pairs], [d for _, d in pairs]
            recurrent = _recurrent(session, rows)
            stored = store_analyses(
                session, rows, docs, model_version=version, recurrent=recurrent, now=utcnow()
            )
            rows, docs = _kept(rows, docs, stored.kept)
            result.days.update(as_utc(r.created_at).date() for r in rows)
            result.mentions += stored.mentions
            result.skipped += len(rows) - stored.analyses
            _store_embeddings(
                session, rows, docs, getattr(analyzer, "embedding_key", None), utcnow()
            )
        result.analyzed += len(rows)
        if not rows:
            continue
        if on_batch is not None:
            on_batch(result.analyzed)
        if progress is not None:
            progress.update(result.analyzed)
    if progress is not None:
        progress.finish(result.analyzed)
    return result


def _progress_log(sessions: sessionmaker[Session], limit: int | None) -> ProgressLog | None:
    """Progress lines (rate, ETA) when they will be shown: INFO enabled (`verbatim -v`)."""
    if not log.isEnabledFor(logging.INFO):
        return None  # skip the count query
    with session_scope(sessions) as session:
        pending = session.scalar(
            select(func.count()).select_from(Feedback).where(Feedback.analyzed.is_(False))
        )
    total = pending if limit is None else min(pending or 0, limit)
    return ProgressLog(log, "enrich", total=total)

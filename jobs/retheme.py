"""Re-detect themes after a taxonomy change, for the recent window only, then re-aggregate.

Cheap by design: no sentiment pass. Stored sentiment (and severity) is kept; only the theme
detector runs on the stored (masked) texts of the last `settings.retheme_days` days of data,
and the theme mentions of their latest model analysis are replaced (an analyst's theme
correction is kept as it is). The theme detector gets the encoder for its document vectors
but no sentiment model, so theme polarity uses its lexicon-based variant for these
verbatims (no clause goes through the sentiment model).
Mentions older than the window keep their ids: renamed and merged themes still resolve
through aliases; a theme added by the edit is warmed up by detection from the window's start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from core import taxonomy_store
from core.corrections import themes_corrected
from core.db import lock_aggregates, session_scope
from core.models import CORRECTION_MODEL, Analysis, Feedback, TaxonomyVersion, ThemeMention
from core.settings import Settings
from core.store import as_utc
from jobs.aggregate import aggregate
from nlp.text.content import has_content

log = logging.getLogger(__name__)


@dataclass
class RethemeResult:
    version: int
    start: date | None = None
    verbatims: int = 0
    mentions: int = 0
    days: set[date] = field(default_factory=set)


class _EncoderOnly:
    """Hands the theme heads the encoder (document vectors) and nothing that would run the
    sentiment model: its signature matches no trained head, so polarity stays lexical."""

    name = "encoder-only"
    version = "0"

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def predict(self, texts: Any) -> Any:  # pragma: no cover - never called (signature)
        raise RuntimeError("re-theming never runs the sentiment model")


def analysis_sentiment(settings: Settings) -> Any | None:
    """The sentiment backend `enrich` analyses with, loaded for its encoder only (the embedded
    one; the other backends have none). Without it, `taxonomy import`, `taxonomy retheme` and
    `detect` re-detected with the heads' encoder-free variant: a team-only edit moved the
    window's figures (qualite_produit +11 % on the demo) where `run` kept them."""
    if settings.sentiment_backend != "embedded":
        return None
    from core.analysis import sentiment_for

    try:
        return sentiment_for(settings)
    except Exception as exc:  # noqa: BLE001 - the encoder-free heads always work
        log.warning("re-detection without the encoder (%s): theme heads run without it", exc)
        return None


def theme_model_for(settings: Settings, taxonomy: Any, sentiment: Any | None = None) -> Any:
    from core.analysis import build_theme_model

    if sentiment is None:
        sentiment = analysis_sentiment(settings)
    encoder = getattr(sentiment, "encoder", None) if sentiment is not None else None
    return build_theme_model(
        taxonomy,
        settings.themes_model,
        _EncoderOnly(encoder) if encoder is not None else None,
        settings.lemmatizer,
        settings.resolved_model_dir,
    )


def retheme(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    sentiment: Any | None = None,
    theme_model: Any | None = None,
    batch_size: int | None = None,
) -> RethemeResult | None:
    """Apply the current taxonomy version to the recent window if not done yet (else None)."""
    with session_scope(sessions) as session:
        row = taxonomy_store.pending_retheme(session)
        if row is None:
            return None
        version = row.version
        cur = taxonomy_store.current(session, settings)
        last = session.execute(select(func.max(ThemeMention.day))).scalar()
        if last is None:
            last_fb = session.execute(select(func.max(Feedback.created_at))).scalar()
            last = as_utc(last_fb).date() if last_fb is not None else None
    result = RethemeResult(version=version)
    if last is not None and settings.retheme_days > 0:
        start = last - timedelta(days=settings.retheme_days - 1)
        result.start = start
        model = theme_model or theme_model_for(settings, cur.taxonomy, sentiment)
        _redetect(sessions, model, start, batch_size or settings.batch_size, result)
    with session_scope(sessions) as session:
        if result.days:
            aggregate(session, days=result.days)
        # This version and any earlier one never re-detected (imported with --no-retheme,
        # then edited again): their added themes' mentions start at this window too. Left
        # "" (not re-detected), such a theme was skipped by detection for good.
        origin = (result.start or datetime.now(UTC).date()).isoformat()
        pending = session.execute(
            select(TaxonomyVersion).where(
                TaxonomyVersion.version <= version, TaxonomyVersion.rethemed_at.is_(None)
            )
        ).scalars()
        for stored in pending:
            since = dict(stored.theme_since or {})
            stored.theme_since = {k: (v or origin) for k, v in since.items()}
            stored.rethemed_at = datetime.now(UTC)
    log.info(
        "taxonomy v%d: themes re-detected on %d verbatims since %s (%d mentions)",
        version,
        result.verbatims,
        result.start,
        result.mentions,
    )
    return result


def _redetect(
    sessions: sessionmaker[Session], model: Any, start: date, size: int, result: RethemeResult
) -> None:
    since = datetime.combine(start, time.min, tzinfo=UTC)
    cursor = 0
    while True:
        with session_scope(sessions) as session:
            lock_aggregates(session, shared=True)  # it rewrites mentions: as enrich does
            # FOR UPDATE (PostgreSQL): two re-detections at once (an import while the
            # scheduler's detect applies the same edit) each deleted the old mentions and
            # inserted theirs, the other's inserts unseen by its delete: every mention of the
            # window twice. The second waits for the first's batch, then replaces its rows.
            rows = session.execute(
                select(Feedback.id, Feedback.text, Feedback.created_at)
                .where(Feedback.analyzed.is_(True), Feedback.created_at >= since)
                .where(Feedback.id > cursor)
                .order_by(Feedback.id)
                .limit(size)
                .with_for_update(of=Feedback)
            ).all()
            if not rows:
                return
            cursor = rows[-1].id
            _apply(session, model, rows, result)


def _targets(session: Session, ids: list[int]) -> dict[int, list[int]]:
    """Per verbatim, the analyses whose mentions are replaced: its latest model analysis, and
    its correction's analysis unless an analyst corrected the themes (a correction beats any
    model, re-detection included; a sentiment-only one copies the model's themes)."""
    targets: dict[int, list[int]] = {}
    latest = session.execute(
        select(Analysis.feedback_id, func.max(Analysis.id))
        .where(Analysis.feedback_id.in_(ids), Analysis.model_version != CORRECTION_MODEL)
        .group_by(Analysis.feedback_id)
    ).all()
    corrections = session.execute(
        select(Analysis.feedback_id, Analysis.id).where(
            Analysis.feedback_id.in_(ids), Analysis.model_version == CORRECTION_MODEL
        )
    ).all()
    kept = themes_corrected(session, ids) if corrections else set()
    for feedback_id, analysis_id in latest:
        targets.setdefault(feedback_id, []).append(analysis_id)
    for feedback_id, analysis_id in corrections:
        if feedback_id not in kept:
            targets.setdefault(feedback_id, []).append(analysis_id)
    return targets


def _apply(session: Session, model: Any, rows: list[Any], result: RethemeResult) -> None:
    targets = _targets(session, [r.id for r in rows])
    predicted = model.predict([r.text for r in rows])
    replaced = [a for ids in targets.values() for a in ids]
    session.execute(delete(ThemeMention).where(ThemeMention.analysis_id.in_(replaced)))
    for row, mentions in zip(rows, predicted, strict=True):
        analyses = targets.get(row.id)
        if not analyses:
            continue
        day = as_utc(row.created_at).date()
        if not has_content(row.text or ""):
            # As `enrich` judges it (nlp.analyzer.NO_CONTENT): a link or placeholders only
            # ("https://www.colissimo.fr/suivi", "<CARD>") have no theme, whatever the model says.
            mentions = []
        best: dict[str, Any] = {}
        for m in mentions:  # one mention per theme and verbatim, as `enrich` stores them
            if m.theme not in best or m.score > best[m.theme].score:
                best[m.theme] = m
        for analysis_id in analyses:
            for m in best.values():
                span = m.evidence
                session.add(
                    ThemeMention(
                        analysis_id=analysis_id,
                        feedback_id=row.id,
                        theme=m.theme,
                        polarity=m.polarity,
                        score=float(m.score),
                        day=day,
                        evidence_start=span.start if span else None,
                        evidence_end=span.end if span else None,
                        evidence_text=span.text if span else None,
                    )
                )
        result.mentions += len(best)
        result.verbatims += 1
        result.days.add(day)

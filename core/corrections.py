"""Analysts' corrections: fix a verbatim's sentiment and/or themes.

Every fix is kept (`corrections`: who, when, what). The latest one is materialised as an
`Analysis` with model_version "correction" whose mentions are the corrected themes; the
aggregates and the read queries prefer it to any model's analysis (even a later
re-analysis), so a correction overrides the model in every figure once its day is
re-aggregated. `training_rows` turns corrections into rows for `verbatim train`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import CORRECTION_MODEL, Analysis, Correction, Feedback, ThemeMention
from nlp.errors import VerbatimError

if TYPE_CHECKING:
    from nlp.taxonomy import Taxonomy

POLARITIES = ("negative", "neutral", "positive")


class CorrectionError(VerbatimError, ValueError):
    """A correction that cannot be applied; `field` names the culprit. A VerbatimError (the
    CLI's `user_errors` prints it as one line), still a ValueError for older callers; the API
    answers it with `status` (service/routers/corrections.py)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True, slots=True)
class AppliedCorrection:
    correction: Correction
    days: list[date]  # days whose aggregates must be rebuilt


def _model_analysis(session: Session, feedback_id: int) -> Analysis | None:
    """The latest analysis by a model (not a correction)."""
    return session.scalars(
        select(Analysis)
        .where(Analysis.feedback_id == feedback_id, Analysis.model_version != CORRECTION_MODEL)
        .order_by(Analysis.id.desc())
        .limit(1)
    ).first()


def apply_correction(
    session: Session,
    feedback_id: int,
    *,
    author: str,
    taxonomy: Taxonomy,
    sentiment: str | None = None,
    themes: Sequence[tuple[str, str]] | None = None,
    note: str | None = None,
    mask: Callable[[str], str] | None = None,
) -> AppliedCorrection:
    """Store the correction and materialise it (in the caller's transaction); the caller
    re-aggregates `days`. `themes` is the complete corrected list of (theme id, polarity):
    [] means "no theme"; None keeps the model's themes. Former theme ids resolve. `mask`:
    the caller's PII masker (the API's has NER: a note may name the customer), else rules."""
    feedback = session.get(Feedback, feedback_id)
    if feedback is None:
        raise CorrectionError(f"no verbatim with id {feedback_id}", "feedback_id", 404)
    if sentiment is None and themes is None:
        raise CorrectionError("nothing to correct: give sentiment and/or themes", "sentiment")
    if sentiment is not None and sentiment not in POLARITIES:
        raise CorrectionError(f"sentiment must be one of {', '.join(POLARITIES)}", "sentiment")
    resolved: dict[str, str] | None = None
    if themes is not None:
        resolved = {}
        for i, (theme_id, polarity) in enumerate(themes):
            theme = taxonomy.resolve(theme_id)
            if theme is None or theme.retired:
                raise CorrectionError(f"unknown theme {theme_id!r}", f"themes[{i}].theme")
            if polarity not in POLARITIES:
                raise CorrectionError(
                    f"polarity must be one of {', '.join(POLARITIES)}", f"themes[{i}].polarity"
                )
            if resolved.get(theme.id, polarity) != polarity:  # "the last one wins" would hide it
                raise CorrectionError(
                    f"theme {theme.id!r} is given twice with different polarities",
                    f"themes[{i}].polarity",
                )
            resolved[theme.id] = polarity
    from nlp.text import mask_pii

    if note:
        note = note.replace("\x00", "")  # as in stored texts: PostgreSQL refuses NUL (a 500)
    correction = Correction(
        feedback_id=feedback_id,
        sentiment=sentiment,
        themes=None
        if resolved is None
        else [{"theme": t, "polarity": p} for t, p in resolved.items()],
        author=author[:100],
        # Masked like any stored text (rules): a note may quote the customer's e-mail or IBAN.
        note=(mask or mask_pii)(note) if note else note,
        created_at=datetime.now(UTC),
    )
    session.add(correction)
    days = _materialise(session, feedback, taxonomy, sentiment, resolved)
    return AppliedCorrection(correction, days)


def refresh_corrections(session: Session, feedback_ids: Collection[int]) -> list[date]:
    """Rebuild the corrected analyses of `feedback_ids` (those that have corrections) over
    their latest model analysis: what the analyst left to the model (the themes after a
    sentiment-only fix, severity, stars) follows a new analysis, and a verbatim corrected
    before it was ever analysed gets its model's part once it is. Returns the days to
    re-aggregate. Called where model analyses are stored (core.store.store_analyses)."""
    if not feedback_ids:
        return []
    corrected = session.scalars(
        select(Correction.feedback_id)
        .where(Correction.feedback_id.in_(list(feedback_ids)))
        .distinct()
    ).all()
    days: set[date] = set()
    for feedback_id in corrected:
        feedback = session.get(Feedback, feedback_id)
        if feedback is not None:
            days.update(_materialise(session, feedback, None, None, None))
    return sorted(days)


def _materialise(
    session: Session,
    feedback: Feedback,
    taxonomy: Taxonomy | None,
    sentiment: str | None,
    resolved: dict[str, str] | None,
) -> list[date]:
    """Replace the verbatim's correction analysis: the corrections folded (newest first;
    `sentiment` / `resolved` are the one being applied, if any) over its latest model
    analysis. `taxonomy` maps the model's stored theme ids to current ones (None: as
    stored). Returns the days whose aggregates change."""
    feedback_id = feedback.id
    # One rebuild at a time per verbatim (PostgreSQL; SQLite serialises writers anyway): an
    # analyst's correction and an `enrich` batch storing its analysis both rebuild this row,
    # and the second one failed its whole transaction on the unique (verbatim, model) key.
    session.execute(select(Feedback.id).where(Feedback.id == feedback_id).with_for_update())
    base = _model_analysis(session, feedback_id)
    now = datetime.now(UTC)
    # Fold in earlier corrections: a sentiment fix followed by a themes fix keeps both.
    earlier = session.scalars(
        select(Correction)
        .where(Correction.feedback_id == feedback_id)
        .order_by(Correction.id.desc())
    ).all()
    if sentiment is None:
        sentiment = next((c.sentiment for c in earlier if c.sentiment), None)
    if resolved is None:
        last = next((c.themes for c in earlier if c.themes is not None), None)
        if last is not None:
            resolved = {m["theme"]: m["polarity"] for m in last}

    old = session.scalars(
        select(Analysis).where(
            Analysis.feedback_id == feedback_id, Analysis.model_version == CORRECTION_MODEL
        )
    ).first()
    days = {m.day for m in old.mentions} if old is not None else set()
    if old is not None:
        session.delete(old)  # its mentions go with it (cascade)
        session.flush()
    created = feedback.created_at
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    day = created.date()
    days.add(day)
    analysis = Analysis(
        feedback_id=feedback_id,
        model_version=CORRECTION_MODEL,
        sentiment=sentiment or (base.sentiment if base else "neutral"),
        sentiment_score=1.0 if sentiment else (base.sentiment_score if base else 0.0),
        expected_stars=base.expected_stars if base else None,
        severity=base.severity if base else 0.0,
        is_recurrent=base.is_recurrent if base else False,
        analyzed_at=now,
    )
    model_mentions = {m.theme: m for m in base.mentions} if base is not None else {}
    if resolved is None:  # the model's themes, as they were
        wanted = {m.theme: m.polarity for m in model_mentions.values()}
    else:
        wanted = resolved
    current = taxonomy.current_id if taxonomy is not None else str
    by_current = {current(stored): m for stored, m in model_mentions.items()}
    for theme_id, polarity in wanted.items():
        source = by_current.get(theme_id)  # keep the model's evidence span when it had one
        analysis.mentions.append(
            ThemeMention(
                feedback_id=feedback_id,
                theme=theme_id,
                polarity=polarity,
                score=1.0,
                day=source.day if source is not None else day,
                evidence_start=source.evidence_start if source is not None else None,
                evidence_end=source.evidence_end if source is not None else None,
                evidence_text=source.evidence_text if source is not None else None,
            )
        )
        if source is not None:
            days.add(source.day)
    session.add(analysis)
    # `feedback.analyzed` is left as it is: a verbatim not analysed yet (never, or again after
    # `enrich --reanalyze`) is analysed by the next `enrich`, and its correction is rebuilt
    # over that analysis. Marking it analysed here took it out of both for good.
    session.flush()
    return sorted(days)


def history(session: Session, feedback_id: int) -> list[Correction]:
    return list(
        session.scalars(
            select(Correction)
            .where(Correction.feedback_id == feedback_id)
            .order_by(Correction.id.desc())
        )
    )


def themes_corrected(session: Session, feedback_ids: Collection[int] | None = None) -> set[int]:
    """Verbatims whose themes an analyst corrected (among `feedback_ids`, else all). Read in
    Python: a sentiment-only correction stores `themes` as JSON null, which SQL's `IS NOT
    NULL` counts as a value (its analysis only copies the model's themes)."""
    query = select(Correction.feedback_id, Correction.themes)
    if feedback_ids is not None:
        query = query.where(Correction.feedback_id.in_(list(feedback_ids)))
    return {fid for fid, themes in session.execute(query) if themes is not None}


def training_rows(session: Session, *, need: str) -> list[dict[str, Any]]:
    """Corrected verbatims as training rows (`need`: "sentiment" or "themes"): the current
    corrected analysis of each verbatim that has a correction of that kind. Rows look like
    the training files: {"id", "text", "sentiment"} or {"id", "text", "themes": {id: pol}},
    plus the verbatim's `content_hash` (core.store.text_hash), which finds its row in a
    training file: the stored text is normalised and masked, the file's is as written."""
    if need not in ("sentiment", "themes"):
        raise ValueError("need must be 'sentiment' or 'themes'")
    ids: Any = select(Correction.feedback_id).where(Correction.sentiment.is_not(None))
    if need == "themes":  # the model's themes copied into a sentiment-only correction: no label
        ids = themes_corrected(session)
    rows = session.execute(
        select(Feedback.id, Feedback.text, Feedback.content_hash, Analysis)
        .join(Analysis, Analysis.feedback_id == Feedback.id)
        .where(Analysis.model_version == CORRECTION_MODEL, Feedback.id.in_(ids))
        .order_by(Feedback.id)
    ).all()
    out: list[dict[str, Any]] = []
    for fid, text, content_hash, analysis in rows:
        row: dict[str, Any] = {
            "id": f"correction:{fid}",
            "text": text,
            "source": "corrections",
            "content_hash": content_hash,
        }
        if need == "sentiment":
            row["sentiment"] = analysis.sentiment
        else:
            row["themes"] = {m.theme: m.polarity for m in analysis.mentions}
        out.append(row)
    return out


LABELS = ("sentiment", "themes")


@dataclass(frozen=True, slots=True)
class CorrectedVerbatim:
    """One corrected verbatim as exported: the analysts' labels folded over its corrections
    (newest first, as `_materialise` folds them). `sentiment` / `themes` are None where no
    analyst fixed them (the model's part is no label); `themes` are named as the taxonomy names
    them now, those it removed or retired since are in `left_out`. `text` is the stored text,
    PII-masked at ingest: an export never holds more than the dashboard shows."""

    feedback_id: int
    source: str
    dedup_key: str
    channel: str
    created_at: datetime
    text: str
    content_hash: str
    sentiment: str | None
    themes: dict[str, str] | None
    corrected_at: datetime
    author: str
    note: str | None
    corrections: int
    left_out: tuple[str, ...]

    def as_example(self) -> dict[str, Any]:
        """A row of the labelled files `verbatim evaluate --data`, `verbatim train themes
        --examples` and `train sentiment --data` read ({"id", "text", "sentiment",
        "themes": {id: polarity}}), plus what finds the verbatim again on another install
        (`verbatim corrections import`) and what a reviewer reads."""
        row: dict[str, Any] = {"id": f"correction:{self.feedback_id}", "text": self.text}
        if self.sentiment is not None:
            row["sentiment"] = self.sentiment
        if self.themes is not None:
            row["themes"] = dict(self.themes)
        row.update(
            feedback_id=self.feedback_id,
            source=self.source,
            dedup_key=self.dedup_key,
            channel=self.channel,
            created_at=_iso_utc(self.created_at),
            content_hash=self.content_hash,
            corrected_at=_iso_utc(self.corrected_at),
            author=self.author,
            note=self.note,
        )
        return row


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_utc(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


def corrected_verbatims(
    session: Session,
    taxonomy: Taxonomy,
    *,
    since: date | None = None,
    theme: str | None = None,
    label: str | None = None,
) -> list[CorrectedVerbatim]:
    """Every corrected verbatim (by id), its labels folded over its corrections. `since`: last
    corrected on or after that UTC day; `theme`: an analyst put that theme (current or former
    id) on it; `label` ("sentiment" or "themes"): only verbatims with that kind of fix, and only
    that label in the row (a sentiment-only row read by `train themes` would teach "no
    theme"). A theme the taxonomy does not know is a CorrectionError."""
    if label is not None and label not in LABELS:
        raise CorrectionError(f"label must be one of {', '.join(LABELS)}", "label")
    wanted: str | None = None
    if theme is not None:
        found = taxonomy.resolve(theme)
        if found is None:
            raise CorrectionError(
                f"unknown theme {theme!r} (taxonomy {taxonomy.name!r} has: "
                f"{', '.join(taxonomy.ids)})",
                "theme",
            )
        if found.retired:  # its corrections are left out of every row: say so, not 0 rows
            raise CorrectionError(f"theme {found.id!r} is retired", "theme")
        wanted = found.id
    rows = session.execute(
        select(Correction, Feedback)
        .join(Feedback, Feedback.id == Correction.feedback_id)
        .order_by(Correction.feedback_id, Correction.id.desc())
    ).all()
    out: list[CorrectedVerbatim] = []
    for _, group in groupby(rows, key=lambda r: r[0].feedback_id):
        group_rows = list(group)
        fixes: list[Correction] = [r[0] for r in group_rows]
        feedback: Feedback = group_rows[0][1]
        newest = fixes[0]
        sentiment = next((c.sentiment for c in fixes if c.sentiment), None)
        stored = next((c.themes for c in fixes if c.themes is not None), None)
        themes: dict[str, str] | None = None
        left_out: list[str] = []
        if stored is not None:
            themes = {}
            for mention in stored:
                current = taxonomy.resolve(mention["theme"])
                if current is None or current.retired:
                    left_out.append(mention["theme"])
                else:  # two former ids merged into one theme: the first one's polarity
                    themes.setdefault(current.id, mention["polarity"])
        if label == "sentiment":
            if sentiment is None:
                continue
            themes, left_out = None, []
        elif label == "themes":
            if themes is None:
                continue
            sentiment = None
        if since is not None and _utc(newest.created_at).date() < since:
            continue
        if wanted is not None and wanted not in (themes or {}):
            continue
        out.append(
            CorrectedVerbatim(
                feedback_id=feedback.id,
                source=feedback.source,
                dedup_key=feedback.dedup_key,
                channel=feedback.channel,
                created_at=feedback.created_at,
                text=feedback.text,
                content_hash=feedback.content_hash,
                sentiment=sentiment,
                themes=themes,
                corrected_at=newest.created_at,
                author=newest.author,
                note=newest.note,
                corrections=len(fixes),
                left_out=tuple(left_out),
            )
        )
    return out

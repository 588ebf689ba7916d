"""/feedback/{id}: one verbatim with its analyses; analysts' corrections and erasure (write
scope)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.aggregate import aggregate
from core.corrections import CorrectionError, apply_correction, corrected_verbatims, history
from core.db import AggregatesBusy, lock_aggregates
from core.erasure import Target, audit, erase
from core.exports import corrections_table
from core.models import CORRECTION_MODEL, Analysis, ApiKey, Feedback
from nlp.taxonomy import Taxonomy
from service.auth import require
from service.deps import MAX_ID, SessionDep, app_state, check_days
from service.errors import BUSY_HEADERS, ApiError
from service.exporting import CSV_RESPONSE, MAX_EXPORT_ROWS, csv_response, jsonl_response
from service.schemas import (
    AnalysisOut,
    CorrectedVerbatimOut,
    CorrectionIn,
    CorrectionOut,
    CorrectionResult,
    CorrectionsOut,
    ErasureOut,
    ErrorOut,
    EvidenceOut,
    FeedbackOut,
    IsoDay,
    MentionOut,
)
from service.text_route import TextRoute

CORRECTION_LOCK_WAIT_S = 5.0  # PostgreSQL: the longest a correction or erasure waits for a rebuild

router = APIRouter(
    route_class=TextRoute,
    tags=["corrections"],
    responses={
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        404: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
FeedbackId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _analysis_out(a: Analysis | None, taxonomy: Taxonomy) -> AnalysisOut | None:
    """Theme ids as the current taxonomy names them: a mention stored before a rename says
    the former id, which a client (the dashboard's correction form) would not recognise and
    would drop from the corrected list. Merged themes keep their first mention."""
    if a is None:
        return None
    themes: dict[str, MentionOut] = {}
    for m in a.mentions:
        theme = taxonomy.current_id(m.theme)
        themes.setdefault(
            theme,
            MentionOut(
                theme=theme,
                polarity=m.polarity,
                evidence=None
                if m.evidence_start is None and m.evidence_text is None
                else EvidenceOut(start=m.evidence_start, end=m.evidence_end, text=m.evidence_text),
            ),
        )
    return AnalysisOut(
        model_version=a.model_version,
        sentiment=a.sentiment,
        severity=round(a.severity, 3),
        themes=list(themes.values()),
    )


def feedback_out(session: Session, feedback_id: int, taxonomy: Taxonomy) -> FeedbackOut:
    fb = session.get(Feedback, feedback_id)
    if fb is None:
        raise ApiError(404, f"no verbatim with id {feedback_id}", "feedback_id")
    analyses = session.scalars(
        select(Analysis).where(Analysis.feedback_id == feedback_id).order_by(Analysis.id.desc())
    ).all()
    model = next((a for a in analyses if a.model_version != CORRECTION_MODEL), None)
    corrected = next((a for a in analyses if a.model_version == CORRECTION_MODEL), None)
    return FeedbackOut(
        id=fb.id,
        created_at=fb.created_at,
        channel=fb.channel,
        source=fb.source,
        language=fb.language,
        rating=fb.rating,
        nps=fb.nps,
        csat=fb.csat,
        ces=fb.ces,
        text=fb.text,
        model=_analysis_out(model, taxonomy),
        current=_analysis_out(corrected or model, taxonomy),
        corrections=[CorrectionOut.model_validate(c) for c in history(session, feedback_id)],
    )


def _lock_or_busy(session: Session) -> None:
    """Take the aggregates lock a write's re-aggregation needs, or answer 503 with
    Retry-After rather than hold the request through a full rebuild."""
    try:
        lock_aggregates(session, timeout_s=CORRECTION_LOCK_WAIT_S)
    except AggregatesBusy as exc:
        session.rollback()
        raise ApiError(503, str(exc), headers=BUSY_HEADERS) from None


@router.get(
    "/feedback/{feedback_id}",
    response_model=FeedbackOut,
    dependencies=[Depends(require("read"))],
    summary="One verbatim: model analysis, what counts, corrections",
)
def get_feedback(request: Request, session: SessionDep, feedback_id: FeedbackId) -> FeedbackOut:
    return feedback_out(session, feedback_id, app_state(request).current_taxonomy().taxonomy)


@router.post(
    "/feedback/{feedback_id}/corrections",
    response_model=CorrectionResult,
    status_code=201,
    responses={
        413: {"model": ErrorOut, "description": "body over `max_body_bytes`"},
        503: {"model": ErrorOut, "description": "aggregates being rebuilt: retry later"},
    },
    summary="Correct a verbatim's sentiment and/or themes (overrides the model)",
)
def post_correction(
    request: Request,
    session: SessionDep,
    feedback_id: FeedbackId,
    body: CorrectionIn,
    key: Annotated[ApiKey | None, Depends(require("write"))],
) -> CorrectionResult:
    """Stored with the API key's name and the time; the verbatim's days are re-aggregated at
    once, so every figure (themes, trends, alerts to come) counts the corrected analysis.
    `themes` is the complete list after correction."""
    taxonomy = app_state(request).current_taxonomy().taxonomy
    # The rebuild below takes this lock anyway: take it before apply_correction's row locks
    # (an enrich batch holds the shared lock and waits for this verbatim's row otherwise),
    # and answer 503 rather than hold the request through a full rebuild.
    _lock_or_busy(session)
    try:
        applied = apply_correction(
            session,
            feedback_id,
            author=key.name if key is not None else "anonymous",
            taxonomy=taxonomy,
            sentiment=body.sentiment,
            themes=None if body.themes is None else [(t.theme, t.polarity) for t in body.themes],
            note=body.note,
            mask=app_state(request).get_masker(),
        )
        aggregate(session, days=applied.days)
        session.commit()
    except CorrectionError as exc:
        session.rollback()
        raise ApiError(exc.status, str(exc), exc.field) from None
    except IntegrityError:
        # SQLite: the verbatim erased (DELETE /feedback/{id}, `verbatim forget`) between its
        # read above and this write, which then referenced nothing: a 500 instead of a 404.
        session.rollback()
        if session.get(Feedback, feedback_id) is not None:
            raise
        raise ApiError(404, f"no verbatim with id {feedback_id}", "feedback_id") from None
    return CorrectionResult(
        correction=CorrectionOut.model_validate(applied.correction),
        reaggregated_days=applied.days,
        feedback=feedback_out(session, feedback_id, taxonomy),
    )


@router.delete(
    "/feedback/{feedback_id}",
    response_model=ErasureOut,
    responses={503: {"model": ErrorOut, "description": "aggregates being rebuilt: retry later"}},
    summary="Erase one verbatim and everything derived from it (right to erasure)",
)
def delete_feedback(
    request: Request,
    session: SessionDep,
    feedback_id: FeedbackId,
    key: Annotated[ApiKey | None, Depends(require("write"))],
) -> ErasureOut:
    """As `verbatim forget --id N`: its analyses, mentions and evidence, corrections and
    notes, embedding, topic assignment and its quotes in topic and incident examples and
    stored Slack messages go in one transaction; its day is re-aggregated at once.
    Anonymous lines (`by`: `api:<key name>`) go to `<data_dir>/erasure-audit.jsonl`."""
    # As a correction: answer 503 rather than hold the request through a full rebuild
    # (erase() then takes the lock this transaction already holds).
    _lock_or_busy(session)
    target = Target(ids=(feedback_id,))
    erased = erase(session, target, app_state(request).settings.alert_language)
    if not erased.verbatims:
        session.rollback()
        raise ApiError(404, f"no verbatim with id {feedback_id}", "feedback_id")
    who = f"api:{key.name}" if key is not None else "api"
    audit(session, app_state(request).settings.data_dir, "forget", who, erased, target.criteria())
    session.commit()
    return ErasureOut(
        verbatims=erased.verbatims,
        analyses=erased.analyses,
        mentions=erased.mentions,
        corrections=erased.corrections,
        embeddings=erased.embeddings,
        topic_assignments=erased.topic_assignments,
        topic_examples=erased.topic_examples,
        incident_examples=erased.incident_examples,
        messages=erased.messages,
        incidents=erased.incidents,
        reaggregated_days=erased.days,
    )


@router.get(
    "/corrections",
    response_model=CorrectionsOut,
    responses={
        200: {
            "content": {
                **CSV_RESPONSE[200]["content"],
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
    dependencies=[Depends(require("read"))],
    summary="Corrected verbatims with the analysts' labels (JSON, CSV or labelled JSONL)",
)
def get_corrections(
    request: Request,
    session: SessionDep,
    since: Annotated[
        IsoDay | None, Query(description="last corrected on or after this UTC day, YYYY-MM-DD")
    ] = None,
    theme: Annotated[
        str | None, Query(max_length=64, description="an analyst put this theme on it")
    ] = None,
    label: Annotated[
        Literal["sentiment", "themes"] | None,
        Query(description="only that kind of fix, and only that label in each row"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=18, pattern=r"^[0-9]+$", description="next_cursor of the previous page"),
    ] = None,
    format: Annotated[
        Literal["json", "csv", "jsonl"],
        Query(
            description="json (default, one page), csv (to review) or jsonl (the labelled "
            "rows `verbatim evaluate --data` and `verbatim train` read); csv and jsonl: every "
            "matching verbatim from `cursor` on"
        ),
    ] = "json",
) -> Response | CorrectionsOut:
    """By verbatim id. `jsonl` is what `verbatim corrections export` writes."""
    check_days(since=since)
    after = 0
    if cursor is not None:
        if not cursor.isdigit() or int(cursor) > MAX_ID:
            raise ApiError(422, "invalid cursor (use next_cursor from the previous page)", "cursor")
        after = int(cursor)
    taxonomy = app_state(request).current_taxonomy().taxonomy
    try:
        rows = corrected_verbatims(session, taxonomy, since=since, theme=theme, label=label)
    except CorrectionError as exc:
        raise ApiError(exc.status, str(exc), exc.field) from None
    rows = [r for r in rows if r.feedback_id > after]
    if format != "json":
        if len(rows) > MAX_EXPORT_ROWS:
            raise ApiError(
                422,
                f"more than {MAX_EXPORT_ROWS} rows to export: narrow the period or the filters",
                "format",
            )
        if format == "csv":
            return csv_response(corrections_table(rows), "corrections")
        return jsonl_response((r.as_example() for r in rows), "corrections")
    page = rows[:limit]
    return CorrectionsOut(
        items=[CorrectedVerbatimOut.model_validate(r) for r in page],
        next_cursor=str(page[-1].feedback_id) if len(rows) > limit else None,
    )

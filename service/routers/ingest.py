"""POST /feedback (batch ingest, idempotent) and POST /analyze (ad-hoc scoring)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from core.db import session_scope
from core.store import TOO_DEEP, masked_key, too_deep
from nlp.text import mask_nested
from service.auth import require
from service.deps import app_state
from service.errors import ApiError
from service.ingest import ingest_batch
from service.schemas import AnalyzeIn, AnalyzeOut, ErrorOut, FeedbackBatch, FeedbackResult
from service.text_route import TextRoute

router = APIRouter(
    route_class=TextRoute,
    dependencies=[Depends(require("write"))],
    responses={
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        413: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)


def _check_batch(request: Request, items: list[Any]) -> None:
    limit = app_state(request).settings.max_batch_rows
    if len(items) > limit:
        raise ApiError(413, f"batch of {len(items)} rows exceeds max_batch_rows={limit}", "items")
    if not items:
        raise ApiError(422, "items must hold at least one row", "items")


class _RowsRoute(TextRoute):
    """POST /feedback: a row with a lone surrogate is rejected on its own (service.ingest)."""

    row_keys = frozenset({"items"})


def post_feedback(request: Request, batch: FeedbackBatch) -> FeedbackResult:
    """Same preparation (normalisation, PII masking) and dedup as `verbatim ingest`: each row
    is `stored`, `duplicate` (same id, or same text + date + customer) or `rejected` with
    the reason and field. The batch is one transaction."""
    _check_batch(request, batch.items)
    state = app_state(request)
    with session_scope(state.sessions) as session:
        result = ingest_batch(session, state.settings, batch, mask=state.get_masker())
    for status, count in (
        ("stored", result.stored),
        ("duplicate", result.duplicates),
        ("rejected", result.rejected),
    ):
        state.metrics.feedback_ingested.labels(status).inc(count)
    return result


router.add_api_route(
    "/feedback",
    post_feedback,
    methods=["POST"],
    response_model=FeedbackResult,
    tags=["feedback"],
    summary="Store a batch of verbatims (re-posting the same rows is a no-op)",
    route_class_override=_RowsRoute,
)


@router.post(
    "/analyze",
    response_model=AnalyzeOut,
    tags=["analyze"],
    summary="Score texts now (same records as `verbatim analyze`); nothing is stored",
)
def post_analyze(request: Request, body: AnalyzeIn) -> AnalyzeOut:
    _check_batch(request, body.items)
    max_chars = app_state(request).settings.max_text_chars
    texts: list[str] = []
    for i, item in enumerate(body.items):
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(422, "each item needs a non-empty string 'text'", f"items[{i}].text")
        if len(text) > max_chars:
            raise ApiError(422, f"text longer than {max_chars} characters", f"items[{i}].text")
        deep = too_deep(item)
        if deep is not None:  # echoing it would meet the recursion limit: a 500
            raise ApiError(422, TOO_DEEP, f"items[{i}]")
        texts.append(text)
    # Mask before analysis: evidence spans are cut from the masked text, and no field of the
    # response echoes raw personal data.
    state = app_state(request)
    mask = state.get_masker()
    texts = [mask(t) for t in texts]
    analyzer = state.get_analyzer()
    from core.analysis import analysis_record

    docs = analyzer.analyze(texts)
    items = []
    for item, doc in zip(body.items, docs, strict=True):
        record = analysis_record(doc)
        # Echoed fields, keys and values, at any depth ({"jean@x.fr": …} -> {"<EMAIL>": …}).
        out = mask_nested(item, mask, mask_key=lambda key: masked_key(key, mask))
        out["sentiment"] = record["sentiment"]
        out["themes"] = record["themes"]
        for extra in ("severity", "language"):
            out.setdefault(extra, record[extra])
        items.append(out)
    return AnalyzeOut(model_version=str(getattr(analyzer, "model_version", "unknown")), items=items)

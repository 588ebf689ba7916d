"""POST /feedback: the same preparation and dedup as the file ingester (core.store), per row."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Feedback, IngestionRun
from core.settings import Settings
from core.store import (
    FIELDS,
    MAX_NESTING,
    Rejection,
    _clean,
    add_quarantine,
    advance_run,
    finish_run,
    float_keyed,
    insert_feedback,
    nesting_depth,
    prepare_feedback,
    start_run,
    too_deep,
    utcnow,
)
from nlp.text import mask_pii
from nlp.text.validity import non_text
from service.schemas import FeedbackBatch, FeedbackResult, RowStatus


def _existing(session: Session, source: str, keys: list[str]) -> dict[str, tuple[int, int | None]]:
    """dedup_key -> (feedback id, run id) for keys already stored for this source."""
    out: dict[str, tuple[int, int | None]] = {}
    for start in range(0, len(keys), 500):
        chunk = float_keyed(keys[start : start + 500])  # and `id:77.0`, stored before
        rows = session.execute(
            select(Feedback.dedup_key, Feedback.id, Feedback.run_id).where(
                Feedback.source == source, Feedback.dedup_key.in_(chunk)
            )
        )
        out.update({chunk[key]: (fid, run) for key, fid, run in rows})
    return out


def _not_text(item: dict[str, Any], mask: Callable[[str], str]) -> Rejection | None:
    """A row holding a lone UTF-16 surrogate anywhere (JSON's "\\ud800" escape) is rejected
    on its own, `encoding_error` as `verbatim ingest` quarantines an undecodable line: the
    other rows of the batch are stored (the whole batch used to be a 422)."""
    if too_deep(item) is not None:
        return None  # prepare_feedback rejects it as too_deep; non_text would recurse
    for key, value in item.items():
        if non_text(key, allow_nul=True) or non_text(value, allow_nul=True):
            field = key if key in FIELDS else mask(_clean(key))[:100]
            detail = "invalid unicode (lone surrogate)"
            return Rejection("encoding_error", field, detail, quotes_input=False)
    return None


def _raw(item: dict[str, Any]) -> str:
    """The row as JSON for the quarantine; fields nested too deep are summarised."""
    shallow = {
        k: v if nesting_depth(v) <= MAX_NESTING else f"<nested over {MAX_NESTING} levels>"
        for k, v in item.items()
    }
    return json.dumps(shallow, ensure_ascii=False, default=str)


def ingest_batch(
    session: Session,
    settings: Settings,
    batch: FeedbackBatch,
    mask: Callable[[str], str] | None = None,
) -> FeedbackResult:
    """Store a batch in the caller's transaction (all rows or, on failure, none). `mask` is
    the app's PII masker; rejection reasons echoed back are masked too."""
    source = batch.source.strip()
    now = utcnow()
    run: IngestionRun = start_run(
        session, source=source, channel=batch.channel, location="api", fingerprint=None
    )
    statuses: list[RowStatus | None] = [None] * len(batch.items)
    prepared: list[tuple[int, dict[str, Any]]] = []
    rejected: list[tuple[int | None, Rejection, str]] = []
    for i, item in enumerate(batch.items):
        canonical = {k: v for k, v in item.items() if k in FIELDS}
        extra = {k: v for k, v in item.items() if k not in FIELDS}
        row = _not_text(item, mask or mask_pii) or prepare_feedback(
            canonical,
            source=source,
            channel=batch.channel,
            max_text_chars=settings.max_text_chars,
            extra=extra,
            run_id=run.id,
            now=now,
            mask=mask,
        )
        if isinstance(row, Rejection):
            reason = (mask or mask_pii)(row.message) if row.quotes_input else row.message
            statuses[i] = RowStatus(index=i, status="rejected", reason=reason, field=row.field)
            rejected.append((i + 1, row, _raw(item)))
        else:
            prepared.append((i, row))

    keys = list(dict.fromkeys(row["dedup_key"] for _, row in prepared))
    before = _existing(session, source, keys)
    first: dict[str, int] = {}
    fresh: list[dict[str, Any]] = []
    for i, row in prepared:
        key = row["dedup_key"]
        if key not in before and key not in first:
            first[key] = i
            fresh.append(row)
    insert_feedback(session, fresh)
    after = _existing(session, source, list(first))

    for i, row in prepared:
        key = row["dedup_key"]
        fid, run_id = after.get(key) or before.get(key) or (None, None)
        # Stored by this request only if this row is the first of its key and carries our run.
        ours = first.get(key) == i and run_id == run.id
        statuses[i] = RowStatus(index=i, status="stored" if ours else "duplicate", feedback_id=fid)

    rows = [s for s in statuses if s is not None]
    stored = sum(s.status == "stored" for s in rows)
    duplicates = sum(s.status == "duplicate" for s in rows)
    add_quarantine(session, rejected, source=source, run_id=run.id, now=now, mask=mask)
    advance_run(
        session,
        run.id,
        watermark=len(batch.items),
        read=len(batch.items),
        stored=stored,
        duplicates=duplicates,
        rejected=len(rejected),
    )
    finish_run(session, run.id, status="done")
    return FeedbackResult(
        run_id=run.id, stored=stored, duplicates=duplicates, rejected=len(rejected), rows=rows
    )

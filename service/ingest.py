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
    Rejection,
    add_quarantine,
    advance_run,
    finish_run,
    insert_feedback,
    prepare_feedback,
    start_run,
    utcnow,
)
from nlp.text import mask_pii
from service.schemas import FeedbackBatch, FeedbackResult, RowStatus


def _existing(session: Session, source: str, keys: list[str]) -> dict[str, tuple[int, int | None]]:
    """dedup_key -> (feedback id, run id) for keys already stored for this source."""
    out: dict[str, tuple[int, int | None]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(Feedback.dedup_key, Feedback.id, Feedback.run_id).where(
                Feedback.source == source, Feedback.dedup_key.in_(chunk)
            )
        )
        out.update({key: (fid, run) for key, fid, run in rows})
    return out


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
        row = prepare_feedback(
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
            reason = (mask or mask_pii)(row.message)
            statuses[i] = RowStatus(index=i, status="rejected", reason=reason, field=row.field)
            raw = json.dumps(item, ensure_ascii=False, default=str)
            rejected.append((i + 1, row, raw))
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

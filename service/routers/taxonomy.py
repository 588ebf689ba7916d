"""/taxonomy: read it, edit it (add/rename/merge/retire or a full document), its history.

The taxonomy lives in the database (`core/taxonomy_store.py`): every API replica and every job
reads the same current version; an edit records who (the API key's name), when and a summary.
"""

from __future__ import annotations

import random
import threading
import time

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import IntegrityError

from core import taxonomy_store
from core.models import ApiKey
from service.auth import require
from service.deps import app_state, cached_json, current_taxonomy, json_body
from service.errors import ApiError
from service.schemas import (
    ErrorOut,
    TaxonomyHistoryOut,
    TaxonomyOut,
    TaxonomyUpdate,
    TaxonomyVersionOut,
)
from service.taxonomy_store import apply_update
from service.text_route import TextRoute

ATTEMPTS = 8  # concurrent edits of the taxonomy, each retried on the new current version
# Edits from one process's threads take turns (each would otherwise redo its edit after each
# other's commit); other processes and replicas are caught by the version check of `save`.
_EDIT_LOCK = threading.Lock()

router = APIRouter(
    route_class=TextRoute,
    tags=["taxonomy"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)


@router.get(
    "/taxonomy",
    response_model=TaxonomyOut,
    dependencies=[Depends(require("read"))],
    summary="The current taxonomy",
)
def get_taxonomy(request: Request) -> Response:
    return cached_json(request, _out(current_taxonomy(request)))


@router.get(
    "/taxonomy/history",
    response_model=TaxonomyHistoryOut,
    dependencies=[Depends(require("read"))],
    summary="Every version: who, when, what changed",
)
def taxonomy_history(request: Request) -> TaxonomyHistoryOut:
    current_taxonomy(request)  # seeds version 1 on a fresh database
    with app_state(request).sessions() as session:
        rows = taxonomy_store.history(session)
        return TaxonomyHistoryOut(
            items=[
                TaxonomyVersionOut(
                    version=r.version,
                    author=r.author,
                    created_at=r.created_at,
                    summary=r.summary,
                    rethemed_at=r.rethemed_at,
                )
                for r in rows
            ]
        )


def _out(cur: taxonomy_store.Current) -> TaxonomyOut:
    return TaxonomyOut(version=cur.version, taxonomy=cur.taxonomy.model_dump(mode="json"))


def check_if_match(header: str | None, cur: taxonomy_store.Current) -> None:
    """`If-Match`: the ETag `GET /taxonomy` returned, or a version number; 412 unless it names
    the current version (another client edited the taxonomy since the caller read it)."""
    if header is None:
        return
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    etag = json_body(_out(cur))[1].strip('"')
    if "*" in tags or etag in tags or str(cur.version) in tags:
        return
    raise ApiError(
        412,
        f"If-Match {header[:80]!r} does not match the current taxonomy (version {cur.version}, "
        f'ETag "{etag}"): it changed since you read it. GET /taxonomy again and reapply '
        "your edit",
        "If-Match",
    )


@router.put(
    "/taxonomy",
    response_model=TaxonomyOut,
    responses={
        409: {"model": ErrorOut},
        412: {"model": ErrorOut},
        413: {"model": ErrorOut, "description": "body over `max_body_bytes`"},
    },
    summary="Edit the taxonomy (old ids stay resolvable through aliases)",
    description=(
        "Operations (add, rename, merge, retire; applied in order, each to the previous "
        "one's result) or a full document. Send `If-Match` (the ETag of `GET /taxonomy`, or "
        "its version number) to store the edit only if nobody changed the taxonomy since: "
        "412 otherwise; without it, the last writer wins (a full document replaces the "
        "taxonomy whatever changed since it was read). An edit that changes nothing stores "
        "no new version."
    ),
)
def put_taxonomy(
    request: Request, update: TaxonomyUpdate, key: ApiKey | None = Depends(require("write"))
) -> TaxonomyOut:
    state = app_state(request)
    author = f"api:{key.name}" if key is not None else "api"
    if_match = request.headers.get("if-match")  # not in the schema: fuzzers would send any
    with _EDIT_LOCK:
        for attempt in range(ATTEMPTS):  # another writer may store a version meanwhile
            with state.sessions() as session:
                cur = state.taxonomy_cache.get(session)
                check_if_match(if_match, cur)
                new = apply_update(cur.taxonomy, update)
                try:
                    stored = taxonomy_store.save(
                        session, state.settings, new, author, base=cur.version
                    )
                    session.commit()
                except (IntegrityError, taxonomy_store.TaxonomyConflict):
                    # Applied to a version that is no longer current: again on the new one
                    # (operations are re-applied; If-Match, if sent, now answers 412).
                    session.rollback()
                    time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter
                    continue
            if stored.changed:
                state.taxonomy_cache.put(stored)
            return _out(stored)
    raise ApiError(409, "the taxonomy changed concurrently; retry", "taxonomy")

"""/taxonomy: read it, edit it (add/rename/merge/retire or a full document), its history.

The taxonomy lives in the database (`core/taxonomy_store.py`): every API replica and every job
reads the same current version; an edit records who (the API key's name), when and a summary.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import IntegrityError

from core import taxonomy_store
from core.models import ApiKey
from service.auth import require
from service.deps import app_state, cached_json, current_taxonomy
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
    cur = current_taxonomy(request)
    return cached_json(
        request, TaxonomyOut(version=cur.version, taxonomy=cur.taxonomy.model_dump(mode="json"))
    )


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


@router.put(
    "/taxonomy",
    response_model=TaxonomyOut,
    summary="Edit the taxonomy (old ids stay resolvable through aliases)",
)
def put_taxonomy(
    request: Request, update: TaxonomyUpdate, key: ApiKey | None = Depends(require("write"))
) -> TaxonomyOut:
    state = app_state(request)
    author = f"api:{key.name}" if key is not None else "api"
    for _attempt in range(3):  # another replica may store a version between read and write
        with state.sessions() as session:
            cur = state.taxonomy_cache.get(session)
            new = apply_update(cur.taxonomy, update)
            try:
                stored = taxonomy_store.save(session, state.settings, new, author)
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
        state.taxonomy_cache.put(stored)
        return TaxonomyOut(version=stored.version, taxonomy=stored.taxonomy.model_dump(mode="json"))
    raise ApiError(409, "the taxonomy changed concurrently; retry", "taxonomy")

"""/taxonomy: read it, edit it (add/rename/merge/retire or a full document)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from service.auth import require
from service.deps import app_state, cached_json
from service.errors import ApiError
from service.schemas import ErrorOut, TaxonomyOut, TaxonomyUpdate
from service.taxonomy_store import apply_update, save, taxonomy_file

router = APIRouter(
    tags=["taxonomy"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)


def _out(request: Request) -> TaxonomyOut:
    state = app_state(request)
    path = state.taxonomy_path
    return TaxonomyOut(
        path=str(path) if path else None, taxonomy=state.taxonomy.model_dump(mode="json")
    )


@router.get(
    "/taxonomy",
    response_model=TaxonomyOut,
    dependencies=[Depends(require("read"))],
    summary="The current taxonomy",
)
def get_taxonomy(request: Request) -> Response:
    return cached_json(request, _out(request))


@router.put(
    "/taxonomy",
    response_model=TaxonomyOut,
    dependencies=[Depends(require("write"))],
    summary="Edit the taxonomy (old ids stay resolvable through aliases)",
)
def put_taxonomy(request: Request, update: TaxonomyUpdate) -> TaxonomyOut:
    state = app_state(request)
    with state.taxonomy_lock:  # one edit at a time: each builds on the previous version
        current = state.taxonomy
        new = apply_update(current, update)
        try:
            state.taxonomy_path = save(state.settings, new, current)
        except OSError as exc:
            raise ApiError(
                500, f"cannot write {taxonomy_file(state.settings)}: {exc}", "taxonomy"
            ) from exc
        state.taxonomy = new
        state.analyzer_stale = True  # rebuilt with the new taxonomy at the next /analyze
    return _out(request)

"""/incidents: list them, acknowledge and resolve them with a note (who = the API key's name)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from core.models import ApiKey, Incident
from core.queries import IncidentConflict, incident_fields, list_incidents, set_incident_status
from core.versions import ViewDeps
from service.auth import require
from service.deps import (
    MAX_ID,
    app_state,
    cached_json,
    declare_view,
    get_session,
    invalid_cursor,
    pick_taxonomy,
)
from service.errors import ApiError
from service.schemas import ErrorOut, IncidentAction, IncidentList, IncidentOut
from service.text_route import TextRoute
from service.views import theme_filter

router = APIRouter(
    route_class=TextRoute,
    tags=["incidents"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)


ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
    413: {"model": ErrorOut, "description": "body over `max_body_bytes`"},
}


def _out(request: Request, inc: Incident) -> IncidentOut:
    url = app_state(request).settings.dashboard_url
    # The id stored when it opened may be a former id (renamed or merged since): show the
    # current one, as the digest and the theme pages do.
    theme = pick_taxonomy(request, None).current_id(inc.theme)
    return IncidentOut(**incident_fields(inc, theme, url))


@router.get(
    "/incidents",
    response_model=IncidentList,
    dependencies=[Depends(require("read"))],
    summary="Incidents (one per theme and period), latest first",
)
def get_incidents(
    request: Request,
    status: Literal["open", "acknowledged", "resolved"] | None = Query(None),
    theme: str | None = Query(None, max_length=64, description="a theme id (former ids resolve)"),
    historical: bool = Query(True, description="include incidents raised on old days"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=24, description="next_cursor of the previous page"),
    session: Session = Depends(get_session),
) -> Response:
    """Latest first (by last day, then id); `next_cursor` pages through the older ones."""
    before = _decode_cursor(cursor) if cursor is not None else None
    # Read before declare_view: a first read seeds the taxonomy, which the view's token
    # must already include (else the next identical request misses the kept view).
    tax = pick_taxonomy(request, None)
    # `theme=` (an empty select) filters nothing, as on /alerts: it listed none.
    themes = theme_filter(session, tax, theme) if theme else None
    declare_view(request, session, ViewDeps(incidents=True))
    rows = list_incidents(
        session,
        status=status,
        themes=themes,
        include_historical=historical,
        limit=limit + 1,
        before=before,
    )
    nxt = (
        f"{rows[limit - 1].last_day.isoformat()}.{rows[limit - 1].id}"
        if len(rows) > limit
        else None
    )
    out = IncidentList(items=[_out(request, r) for r in rows[:limit]], next_cursor=nxt)
    return cached_json(request, out, max_age=10)


# `next_cursor` as written above, ASCII digits only (`date.fromisoformat` also reads
# « 20260328 » and week dates, `int` full-width digits).
_CURSOR = re.compile(r"(\d{4}-\d{2}-\d{2})\.(\d{1,10})", re.ASCII)


def _decode_cursor(cursor: str) -> tuple[date, int]:
    """`next_cursor`: the last day and id of the previous page's last incident."""
    match = _CURSOR.fullmatch(cursor)
    try:
        if match is None or int(match[2]) > MAX_ID:
            raise ValueError(cursor)
        return date.fromisoformat(match[1]), int(match[2])
    except ValueError:
        raise invalid_cursor() from None


def _act(
    request: Request,
    incident_id: int,
    action: str,
    body: IncidentAction | None,
    key: ApiKey | None,
    session: Session,
) -> IncidentOut:
    who = key.name if key is not None else "api"
    mask = app_state(request).get_masker()  # with NER: a note may name the customer
    note = body.note.strip() if body is not None else ""
    try:
        inc = set_incident_status(session, incident_id, action, who, note, mask)
    except IncidentConflict as exc:
        session.rollback()
        raise ApiError(409, str(exc), "incident_id") from None
    if inc is None:
        raise ApiError(404, f"no incident {incident_id}", "incident_id")
    session.commit()
    return _out(request, inc)


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=IncidentOut,
    responses=ACTION_ERRORS,
    summary="Acknowledge an incident (who and when are recorded, with an optional note)",
)
def acknowledge(
    request: Request,
    body: IncidentAction | None = None,  # the note is optional: no body at all is fine
    incident_id: int = Path(ge=1, le=2**31 - 1),
    key: ApiKey | None = Depends(require("write")),
    session: Session = Depends(get_session),
) -> IncidentOut:
    return _act(request, incident_id, "acknowledge", body, key, session)


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentOut,
    responses=ACTION_ERRORS,
    summary="Resolve an incident with a note (who and when are recorded)",
)
def resolve(
    request: Request,
    body: IncidentAction | None = None,  # the note is optional: no body at all is fine
    incident_id: int = Path(ge=1, le=2**31 - 1),
    key: ApiKey | None = Depends(require("write")),
    session: Session = Depends(get_session),
) -> IncidentOut:
    return _act(request, incident_id, "resolve", body, key, session)

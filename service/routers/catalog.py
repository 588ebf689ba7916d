"""/topics and /alerts listings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from core.exports import alerts_table
from core.queries import (
    incident_statuses,
    list_alerts,
    list_topics,
    topic_trends,
    topics_last_day,
)
from core.versions import ViewDeps
from service.auth import require
from service.deps import (
    MAX_ID,
    SessionDep,
    cached_json,
    declare_view,
    invalid_cursor,
    pick_taxonomy,
)
from service.exporting import CSV_RESPONSE, FormatQ, csv_response, every_row
from service.schemas import AlertOut, AlertsOut, ErrorOut, TopicDay, TopicOut, TopicsOut
from service.text_route import TextRoute
from service.views import theme_filter

router = APIRouter(
    route_class=TextRoute,
    dependencies=[Depends(require("read"))],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)


@router.get("/topics", response_model=TopicsOut, tags=["topics"], summary="Discovered topics")
def get_topics(
    request: Request,
    session: SessionDep,
    emerging: Annotated[bool | None, Query(description="only emerging (true) or not")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    trend_days: Annotated[int, Query(ge=0, le=366, description="days of per-day sizes")] = 28,
) -> Response:
    # Read before declare_view (as /alerts): the view's token must include the taxonomy.
    tax = pick_taxonomy(request, None)
    declare_view(request, session, ViewDeps(topics=True))
    rows, total = list_topics(session, emerging=emerging, limit=limit, offset=offset)
    items = [TopicOut.model_validate(r) for r in rows]
    for item in items:  # a theme renamed or merged since the run: shown as the current id
        if item.theme is not None:
            item.theme = tax.current_id(item.theme)
    if items and trend_days:
        # The window ends on the last day any of these topics was seen; only its days are
        # read (index on topic_id, day), not every assignment of the page's topics.
        last = topics_last_day(session, [t.id for t in items])
        if last is not None:
            first = last - timedelta(days=trend_days - 1)
            trends = topic_trends(session, [t.id for t in items], start=first, end=last)
            for item in items:
                item.trend = [TopicDay(day=d, count=n) for d, n in trends.get(item.id, [])]
    out = TopicsOut(items=items, total=total, limit=limit, offset=offset)
    return cached_json(request, out)


@router.get(
    "/alerts",
    response_model=AlertsOut,
    responses=CSV_RESPONSE,
    tags=["alerts"],
    summary="Spike alerts",
)
def get_alerts(
    request: Request,
    session: SessionDep,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    theme: Annotated[str | None, Query(max_length=64, description="theme id or former id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=18, pattern=r"^[0-9]+$", description="next_cursor of the previous page"),
    ] = None,
    format: FormatQ = "json",
) -> Response:
    """Newest first. `format=csv`: every matching alert (from `cursor` on), not one page."""
    before = None
    if cursor is not None:
        if not cursor.isdigit() or int(cursor) > MAX_ID:
            raise invalid_cursor()
        before = int(cursor)
    # Read before declare_view: a first read seeds the taxonomy, which the view's token
    # must already include (else the next identical request misses the kept view).
    tax = pick_taxonomy(request, None)
    keys = theme_filter(session, tax, theme) if theme else None
    if format == "csv":
        found = every_row(
            lambda at: list_alerts(session, status=status, themes=keys, limit=1000, before_id=at),
            before,
        )
        statuses = incident_statuses(session, {a.incident_id for a in found})
        return csv_response(alerts_table(found, tax.current_id, statuses), "alerts")
    declare_view(request, session, ViewDeps())  # alerts and taxonomy are in every token
    rows, nxt = list_alerts(session, status=status, themes=keys, limit=limit, before_id=before)
    incidents = incident_statuses(session, {r.incident_id for r in rows})
    out = AlertsOut(
        items=[  # a former id (renamed or merged since) shown as the current one
            AlertOut.model_validate(r).model_copy(
                update={
                    "theme": tax.current_id(r.theme),
                    "incident_status": incidents.get(r.incident_id),
                }
            )
            for r in rows
        ],
        next_cursor=str(nxt) if nxt is not None else None,
    )
    return cached_json(request, out, max_age=10)

"""/drivers: which themes move NPS, CSAT, CES or the rating (key-driver regression)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from core.exports import SCORE_UNITS, driver_json
from core.queries import key_driver_report
from nlp.drivers import DriverConfig
from service.auth import require
from service.deps import MAX_DAYS, cached_json, get_session, pick_taxonomy, resolve_period
from service.schemas import (
    ChannelName,
    DriverOut,
    DriversOut,
    ErrorOut,
    Period,
    ScoreName,
)
from service.views import _period

router = APIRouter(
    tags=["insights"],
    dependencies=[Depends(require("read"))],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("/drivers", response_model=DriversOut, summary="Key drivers of a score")
def get_drivers(
    request: Request,
    session: SessionDep,
    score: Annotated[ScoreName, Query(description="nps | csat | ces | rating")] = "nps",
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 90,
    channel: Annotated[ChannelName | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
    min_mentions: Annotated[int, Query(ge=5, le=10_000)] = 20,
    taxonomy: Annotated[Literal["ecommerce", "restaurant"] | None, Query()] = None,
) -> Response:
    """How much naming each theme moves the score, other themes held fixed (multiple
    regression on theme presence, HC3 robust 95 % intervals). NPS is coded +100 promoter /
    0 passive / -100 detractor, so an effect reads in NPS points; CSAT as 100 for a 4-5
    answer, so in CSAT points; CES and rating as given. Default period: 90 days."""
    first, last = resolve_period(session, start, end, days)
    tax = pick_taxonomy(request, taxonomy)
    found = key_driver_report(
        session,
        score,
        start=first,
        end=last,
        channel=channel,
        source=source,
        taxonomy=tax,
        config=DriverConfig(min_mentions=min_mentions),
    )
    labels = {t.id: t.label for t in tax.themes}
    period: Period = _period(first, last)
    out = DriversOut(
        score=score,
        unit=SCORE_UNITS[score],
        period=period,
        answers=found.answers,
        coded_mean=None if found.coded_mean is None else round(found.coded_mean, 3),
        drivers=[
            DriverOut(label=labels.get(d.theme, d.theme), **driver_json(d)) for d in found.effects
        ],
    )
    return cached_json(request, out)

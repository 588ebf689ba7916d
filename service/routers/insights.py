"""/drivers: which themes move NPS, CSAT, CES or the rating (key-driver regression)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from core.exports import SCORE_UNITS, driver_json
from core.queries import (
    key_driver_report,
    list_sources,
    listed_summary,
    open_alerts_count,
    other_language_volumes,
    score_summary,
    theme_breakdown,
    theme_gravity,
    theme_keys,
)
from nlp.drivers import DriverConfig
from nlp.taxonomy import Taxonomy, Theme
from service.auth import require
from service.deps import (
    MAX_DAYS,
    SessionDep,
    cached_view,
    check_filters,
    pick_taxonomy,
    resolve_period,
    view_key,
)
from service.schemas import (
    BreakdownItem,
    ChannelName,
    DriverOut,
    DriversOut,
    ErrorOut,
    GravityDay,
    IsoDay,
    MoverOut,
    OverviewOut,
    Period,
    ScoreName,
    ScoreOut,
    ThemeBreakdownOut,
)
from service.text_route import TextRoute
from service.views import _period, theme_or_404

router = APIRouter(
    route_class=TextRoute,
    tags=["insights"],
    dependencies=[Depends(require("read"))],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)


@router.get("/drivers", response_model=DriversOut, summary="Key drivers of a score")
def get_drivers(
    request: Request,
    session: SessionDep,
    score: Annotated[ScoreName, Query(description="nps | csat | ces | rating")] = "nps",
    start: Annotated[IsoDay | None, Query()] = None,
    end: Annotated[IsoDay | None, Query()] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 90,
    channel: Annotated[ChannelName | None, Query()] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    min_mentions: Annotated[int, Query(ge=5, le=10_000)] = 20,
    taxonomy: Annotated[Literal["ecommerce", "restaurant"] | None, Query()] = None,
) -> Response:
    """How much naming each theme moves the score, other themes held fixed (multiple
    regression on theme presence, HC3 robust 95 % intervals). NPS is coded +100 promoter /
    0 passive / -100 detractor, so an effect reads in NPS points; CSAT as 100 for a 4-5
    answer, so in CSAT points; CES and rating as given. Default period: 90 days."""
    first, last = resolve_period(session, start, end, days)
    check_filters(session, source=source)
    tax = pick_taxonomy(request, taxonomy)
    key = view_key(
        request,
        session,
        tax,
        "drivers",
        score,
        taxonomy,
        channel,
        source,
        min_mentions,
        period=(first, last),
    )
    # A regression over the period's verbatims: computed once per data version, then served
    # from the view cache (single flight).
    return cached_view(
        request,
        key,
        lambda: _drivers(session, tax, score, first, last, channel, source, min_mentions),
    )


def _drivers(
    session: Session,
    tax: Taxonomy,
    score: str,
    first: date,
    last: date,
    channel: str | None,
    source: str | None,
    min_mentions: int,
) -> DriversOut:
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
    return out


@router.get(
    "/overview",
    response_model=OverviewOut,
    summary="The morning view: volume, negative share, NPS/CSAT, top movers, open alerts",
)
def get_overview(
    request: Request,
    session: SessionDep,
    start: Annotated[IsoDay | None, Query()] = None,
    end: Annotated[IsoDay | None, Query()] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
    channel: Annotated[ChannelName | None, Query()] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Response:
    first, last = resolve_period(session, start, end, days)
    check_filters(session, source=source)
    tax = pick_taxonomy(request, None)
    key = view_key(request, session, tax, "overview", channel, source, period=(first, last))
    return cached_view(request, key, lambda: _overview(session, tax, first, last, channel, source))


def _overview(
    session: Session,
    tax: Taxonomy,
    first: date,
    last: date,
    channel: str | None,
    source: str | None,
) -> OverviewOut:
    rows = listed_summary(
        session, start=first, end=last, channel=channel, source=source, taxonomy=tax
    )
    total = rows.pop()
    stages = {t.id: t.stage for t in tax.themes}
    movers = sorted(
        (r for r in rows if r.volume > r.previous_volume),
        key=lambda r: (-(r.volume - r.previous_volume), r.theme),
    )[:5]
    scores = [
        score_summary(session, s, start=first, end=last, channel=channel, source=source)
        for s in ("nps", "csat", "ces")
    ]
    out = OverviewOut(
        period=_period(first, last),
        verbatims=total.volume,
        previous_verbatims=total.previous_volume,
        negatives=total.negatives,
        negative_share=round(total.negative_share, 4),
        # null, not 0.0, when the previous period had no verbatim (as the themes' change).
        previous_negative_share=round(total.previous_negative_share, 4)
        if total.previous_volume
        else None,
        scores=[
            ScoreOut(
                score=s.score,
                answers=s.answers,
                value=None if s.value is None else round(s.value, 2),
                previous_answers=s.previous_answers,
                previous_value=None if s.previous_value is None else round(s.previous_value, 2),
            )
            for s in scores
            if s.answers or s.previous_answers
        ],
        top_movers=[
            MoverOut(
                id=r.theme,
                label=r.label,
                stage=stages.get(r.theme, "experience"),
                volume=r.volume,
                previous_volume=r.previous_volume,
                volume_change=None if r.volume_change is None else round(r.volume_change, 4),
                negatives=r.negatives,
                negative_share=round(r.negative_share, 4),
                negative_share_change=None
                if r.negative_share_change is None
                else round(r.negative_share_change, 4),
            )
            for r in movers
        ],
        open_alerts=open_alerts_count(session),
        sources=list_sources(session),
        other_languages=other_language_volumes(
            session, start=first, end=last, channel=channel, source=source
        ),
    )
    return out


@router.get(
    "/themes/{theme_id}/breakdown",
    response_model=ThemeBreakdownOut,
    tags=["themes"],
    responses={404: {"model": ErrorOut}},
    summary="A theme's mentions by channel, source, language and severity band",
)
def get_breakdown(
    request: Request,
    session: SessionDep,
    theme_id: Annotated[str, Path(min_length=1, max_length=64)],
    start: Annotated[IsoDay | None, Query()] = None,
    end: Annotated[IsoDay | None, Query()] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
    channel: Annotated[ChannelName | None, Query()] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Response:
    """The theme page sends its channel and source filters here too: without them its
    split tables and gravity counts covered every channel beside a filtered summary."""
    tax, theme = theme_or_404(request, session, theme_id, None)
    first, last = resolve_period(session, start, end, days)
    check_filters(session, source=source)
    key = view_key(
        request, session, tax, "breakdown", theme.id, channel, source, period=(first, last)
    )
    return cached_view(
        request, key, lambda: _breakdown(session, tax, theme, first, last, channel, source)
    )


def _breakdown(
    session: Session,
    tax: Taxonomy,
    theme: Theme,
    first: date,
    last: date,
    channel: str | None,
    source: str | None,
) -> ThemeBreakdownOut:
    keys = theme_keys(tax, theme.id)
    found = theme_breakdown(session, keys, start=first, end=last, channel=channel, source=source)
    gravity = theme_gravity(session, keys, start=first, end=last, channel=channel, source=source)

    def items(split: str) -> list[BreakdownItem]:
        return [
            BreakdownItem(
                key=r.key,
                mentions=r.mentions,
                negatives=r.negatives,
                negative_share=round(r.negatives / r.mentions, 4) if r.mentions else 0.0,
            )
            for r in found[split]
        ]

    out = ThemeBreakdownOut(
        id=theme.id,
        label=theme.label,
        period=_period(first, last),
        by_channel=items("channel"),
        by_source=items("source"),
        by_language=items("language"),
        by_severity=items("severity"),
        severe=sum(p.severe for p in gravity),
        recurrent=sum(p.recurrent for p in gravity),
        by_day=[
            GravityDay(day=p.day, mentions=p.mentions, severe=p.severe, recurrent=p.recurrent)
            for p in gravity
        ],
    )
    return out

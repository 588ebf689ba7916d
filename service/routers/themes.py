"""/themes: per-theme figures, one theme's daily series, its day/hour trend, its verbatims."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from core.exports import themes_table, verbatims_table
from core.queries import (
    RatingImpact,
    listed_summary,
    rating_impacts,
    theme_keys,
    theme_trend,
    theme_verbatims,
)
from core.versions import ViewDeps
from service.auth import require
from service.deps import (
    MAX_DAYS,
    SessionDep,
    app_state,
    cached_json,
    cached_view,
    check_days,
    check_filters,
    declare_view,
    decode_cursor,
    encode_cursor,
    pick_taxonomy,
    previous_period,
    resolve_period,
    view_key,
)
from service.errors import ApiError
from service.exporting import CSV_RESPONSE, FormatQ, csv_response, every_row
from service.schemas import (
    ChannelName,
    ErrorOut,
    EvidenceOut,
    IsoDay,
    Period,
    Polarity,
    RatingImpactOut,
    ThemeDetailOut,
    ThemesOut,
    ThemeTrendOut,
    TrendPointOut,
    VerbatimOut,
    VerbatimsOut,
)
from service.text_route import TextRoute
from service.views import theme_detail_view, theme_or_404, themes_view

router = APIRouter(
    route_class=TextRoute,
    tags=["themes"],
    dependencies=[Depends(require("read"))],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)


StartQ = Annotated[IsoDay | None, Query(description="first day (inclusive), YYYY-MM-DD")]
EndQ = Annotated[
    IsoDay | None,
    Query(description="last day (inclusive), YYYY-MM-DD; default: last day with data"),
]
# The verbatims list has no default period: without `end` it runs to the newest verbatim.
OpenEndQ = Annotated[
    IsoDay | None,
    Query(description="last day (inclusive), YYYY-MM-DD; default: no upper limit"),
]
ChannelQ = Annotated[ChannelName | None, Query()]
SourceQ = Annotated[str | None, Query(min_length=1, max_length=100)]
TaxonomyQ = Annotated[
    Literal["ecommerce", "restaurant"] | None,
    Query(description="a built-in taxonomy; default: the service's current taxonomy"),
]
ThemeId = Annotated[str, Path(min_length=1, max_length=64, description="theme id or former id")]


MAX_HOURLY_DAYS = 31  # an hourly trend spans at most this many days (744 buckets)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _impact_out(impact: RatingImpact) -> RatingImpactOut:
    return RatingImpactOut(
        rated_with=impact.rated_with,
        rated_without=impact.rated_without,
        mean_with=_r(impact.mean_with, 3),
        mean_without=_r(impact.mean_without, 3),
        difference=_r(impact.difference),
        effect_on_mean=_r(impact.effect_on_mean),
    )


@router.get(
    "/themes",
    response_model=ThemesOut,
    responses=CSV_RESPONSE,
    summary="Per-theme figures over a period",
)
def list_themes(
    request: Request,
    session: SessionDep,
    start: StartQ = None,
    end: EndQ = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
    channel: ChannelQ = None,
    source: SourceQ = None,
    taxonomy: TaxonomyQ = None,
    format: FormatQ = "json",
) -> Response:
    """Volume, negative share, net sentiment, change vs the previous period of equal length,
    spike status (open alert), top keywords, journey stage and team of every theme.

    `format=csv`: the themes table (theme rows count mentions; the last row, `*`, counts
    verbatims by their document sentiment)."""
    first, last = resolve_period(session, start, end, days)
    check_filters(session, source=source)
    tax = pick_taxonomy(request, taxonomy)
    if format == "csv":
        rows = listed_summary(
            session, start=first, end=last, channel=channel, source=source, taxonomy=tax
        )
        return csv_response(themes_table(rows, first, last), f"themes_{first}_{last}")
    key = view_key(
        request,
        session,
        tax,
        "themes",
        taxonomy,
        channel,
        source,
        period=(first, last),
    )

    def build() -> ThemesOut:
        view = themes_view(
            session,
            tax,
            taxonomy or "current",
            start=first,
            end=last,
            channel=channel,
            source=source,
            keywords=app_state(request).keyword_cache,
        )
        impacts = rating_impacts(
            session,
            {t.id: theme_keys(tax, t.id) for t in view.themes},
            start=first,
            end=last,
            channel=channel,
            source=source,
        )
        for item in view.themes:
            item.rating_impact = _impact_out(impacts[item.id])
        return view

    return cached_view(request, key, build)


@router.get(
    "/themes/{theme_id}",
    response_model=ThemeDetailOut,
    responses={404: {"model": ErrorOut}},
    summary="One theme: summary and daily series",
)
def get_theme(
    request: Request,
    session: SessionDep,
    theme_id: ThemeId,
    start: StartQ = None,
    end: EndQ = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
    channel: ChannelQ = None,
    source: SourceQ = None,
    taxonomy: TaxonomyQ = None,
) -> Response:
    tax, theme = theme_or_404(request, session, theme_id, taxonomy)
    first, last = resolve_period(session, start, end, days)
    check_filters(session, source=source)
    key = view_key(
        request,
        session,
        tax,
        "theme",  # the view's name first: a theme id "themes" shared the list's key
        theme.id,
        taxonomy,
        channel,
        source,
        period=(first, last),
    )

    def build() -> ThemeDetailOut:
        view = theme_detail_view(
            session,
            tax,
            theme.id,
            start=first,
            end=last,
            channel=channel,
            source=source,
            keywords=app_state(request).keyword_cache,
        )
        impact = rating_impacts(
            session,
            {theme.id: theme_keys(tax, theme.id)},
            start=first,
            end=last,
            channel=channel,
            source=source,
        )[theme.id]
        view.summary.rating_impact = _impact_out(impact)
        return view

    return cached_view(request, key, build)


@router.get(
    "/themes/{theme_id}/trend",
    response_model=ThemeTrendOut,
    responses={404: {"model": ErrorOut}},
    summary="One theme by UTC day or hour (optionally split by channel/source)",
)
def get_theme_trend(
    request: Request,
    session: SessionDep,
    theme_id: ThemeId,
    granularity: Annotated[Literal["day", "hour"], Query()] = "day",
    split: Annotated[
        Literal["none", "channel", "source", "channel_source"],
        Query(description="one point per bucket x channel and/or source (non-empty only)"),
    ] = "none",
    start: StartQ = None,
    end: EndQ = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
    channel: ChannelQ = None,
    source: SourceQ = None,
    taxonomy: TaxonomyQ = None,
) -> Response:
    """Volume, negatives and share, net sentiment and mean rating per bucket, read from the
    stored mentions; with `split=none` the series is dense (empty buckets are zeros). Hourly
    trends span at most 31 days. Also the theme's impact on ratings over the period."""
    tax, theme = theme_or_404(request, session, theme_id, taxonomy)
    first, last = resolve_period(session, start, end, days)
    check_filters(session, source=source)
    if granularity == "hour" and (last - first).days + 1 > MAX_HOURLY_DAYS:
        raise ApiError(422, f"an hourly trend spans at most {MAX_HOURLY_DAYS} days", "start")
    key = view_key(
        request,
        session,
        tax,
        "trend",
        theme.id,
        taxonomy,
        granularity,
        split,
        channel,
        source,
        period=(first, last),
    )

    def build() -> ThemeTrendOut:
        keys = theme_keys(tax, theme.id)
        points = theme_trend(
            session,
            keys,
            start=first,
            end=last,
            granularity=granularity,
            channel=channel,
            source=source,
            by_channel=split in ("channel", "channel_source"),
            by_source=split in ("source", "channel_source"),
        )
        impact = rating_impacts(
            session, {theme.id: keys}, start=first, end=last, channel=channel, source=source
        )[theme.id]
        prev_start, prev_end = previous_period(first, last)
        view = ThemeTrendOut(
            id=theme.id,
            label=theme.label,
            granularity=granularity,
            split=split,
            period=Period(start=first, end=last, previous_start=prev_start, previous_end=prev_end),
            channel=channel,
            source=source,
            rating_impact=_impact_out(impact),
            points=[
                TrendPointOut(
                    start=p.bucket,
                    channel=p.channel,
                    source=p.source,
                    volume=p.volume,
                    negatives=p.negatives,
                    neutrals=p.neutrals,
                    positives=p.positives,
                    negative_share=round(p.negative_share, 4),
                    net_sentiment=round(p.net_sentiment, 4),
                    mean_rating=_r(p.mean_rating, 3),
                )
                for p in points
            ],
        )
        return view

    return cached_view(request, key, build)


@router.get(
    "/themes/{theme_id}/verbatims",
    response_model=VerbatimsOut,
    responses={404: {"model": ErrorOut}, **CSV_RESPONSE},
    summary="Verbatims mentioning a theme (newest first, cursor pagination)",
)
def get_theme_verbatims(
    request: Request,
    session: SessionDep,
    theme_id: ThemeId,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    polarity: Annotated[Polarity | None, Query()] = None,
    severity_min: Annotated[float | None, Query(ge=0.0, le=1.0, allow_inf_nan=False)] = None,
    channel: ChannelQ = None,
    source: SourceQ = None,
    start: StartQ = None,
    end: OpenEndQ = None,
    language: Annotated[str | None, Query(max_length=8, description="e.g. fr, en")] = None,
    taxonomy: TaxonomyQ = None,
    format: FormatQ = "json",
) -> Response:
    """Newest first: by UTC day, then time, then verbatim id (a total order: a correction or
    a re-analysis moves no verbatim). `format=csv`: every matching verbatim (from `cursor`
    on), not one page."""
    check_days(start=start, end=end)  # the period views' bounds
    if start is not None and end is not None and end < start:  # as the period views say
        raise ApiError(422, "end must not be before start", "end")
    tax, theme = theme_or_404(request, session, theme_id, taxonomy)
    check_filters(session, source=source, language=language)
    after = decode_cursor(cursor) if cursor else None
    filters = dict(
        polarity=polarity,
        severity_min=severity_min,
        channel=channel,
        source=source,
        start=start,
        end=end,
        language=language,
    )
    if format == "csv":
        keys = theme_keys(tax, theme.id)
        found = every_row(
            lambda at: theme_verbatims(session, keys, limit=1000, after=at, **filters), after
        )
        return csv_response(verbatims_table(theme.id, found), f"verbatims_{theme.id}")
    declare_view(request, session, ViewDeps(analyses=True))
    rows, nxt = theme_verbatims(
        session,
        theme_keys(tax, theme.id),
        limit=limit,
        after=after,
        **filters,
    )
    out = VerbatimsOut(
        theme=theme.id,
        label=theme.label,
        items=[
            VerbatimOut(
                feedback_id=r.feedback_id,
                created_at=r.created_at,
                channel=r.channel,
                source=r.source,
                rating=r.rating,
                text=r.text,
                polarity=r.polarity,
                score=r.score,
                sentiment=r.sentiment,
                severity=r.severity,
                language=r.language,
                evidence=None
                if r.evidence_start is None and r.evidence_text is None
                else EvidenceOut(start=r.evidence_start, end=r.evidence_end, text=r.evidence_text),
            )
            for r in rows
        ],
        next_cursor=encode_cursor(*nxt) if nxt else None,
    )
    return cached_json(request, out, max_age=10)

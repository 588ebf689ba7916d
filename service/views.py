"""Compose query-layer results (core.queries) into API response models."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Alert, Incident, TaxonomyVersion
from core.queries import (
    DayPoint,
    ThemeRow,
    daily_series,
    listed_summary,
    negative_share,
    net_sentiment,
    open_alerts_by_theme,
    other_language_volumes,
    period_version,
    theme_keys,
    theme_summary,
    top_keywords_many,
)
from nlp.taxonomy import Taxonomy, TaxonomyError, Theme, parse_taxonomy
from service.deps import known_list, pick_taxonomy, previous_period
from service.errors import ApiError
from service.schemas import DayOut, Period, SpikeOut, ThemeDetailOut, ThemeOut, ThemesOut


class KeywordCache:
    """Top keywords per (theme ids, period, filters), valid while the period's aggregates are
    unchanged (`core.queries.period_version`: a rebuild of the period's days changes the key):
    /themes and each theme's detail share one period's words instead of each summing
    `daily_keywords`."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._data: dict[tuple, list[str]] = {}
        self._lock = threading.Lock()

    def get_many(
        self,
        session: Session,
        themes: dict[str, list[str]],
        *,
        start: date,
        end: date,
        channel: str | None,
        source: str | None,
        version: tuple[int, ...],
    ) -> dict[str, list[str]]:
        """theme -> keywords; misses are computed together in one query."""

        def key(ids: list[str]) -> tuple:
            return (tuple(ids), start, end, channel, source, version)

        with self._lock:
            out = {t: self._data[key(ids)] for t, ids in themes.items() if key(ids) in self._data}
        missing = {t: ids for t, ids in themes.items() if t not in out}
        if missing:
            found = top_keywords_many(
                session, missing, start=start, end=end, channel=channel, source=source
            )
            with self._lock:
                if len(self._data) + len(found) > self.size:
                    self._data.clear()  # simple bound; recomputing is cheap enough
                for t, words in found.items():
                    self._data[key(missing[t])] = words
            out.update(found)
        return out


class _Flight:
    """One computation in progress; waiters block on `done`."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: tuple[bytes, str] | None = None


class ViewCache:
    """Small LRU of rendered responses. Keys must include the view's data token
    (`service.deps.view_key`) so that a rebuild of what it reads invalidates them."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[tuple, _Flight] = {}
        self.stats = {"hits": 0, "shared": 0, "computed": 0}

    def get(self, key: tuple) -> tuple[bytes, str] | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key: tuple, value: tuple[bytes, str]) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def get_or_compute(
        self, key: tuple, compute: Callable[[], tuple[bytes, str]], wait_s: float = 60.0
    ) -> tuple[bytes, str]:
        """The cached value, else compute it once however many requests ask at the same time
        (single flight per key): the first computes, the others wait for its result instead
        of each running the same queries (a cold-cache stampede)."""
        hit = self.get(key)
        if hit is not None:
            self._count("hits")
            return hit
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if flight.done.wait(wait_s) and flight.value is not None:
                self._count("shared")
                return flight.value
            return compute()  # the leader failed or is stuck: answer this request anyway
        try:
            value = compute()
            self.put(key, value)
            flight.value = value
            self._count("computed")
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()


def _period(start: date, end: date) -> Period:
    prev_start, prev_end = previous_period(start, end)
    return Period(start=start, end=end, previous_start=prev_start, previous_end=prev_end)


_REMOVED: OrderedDict[tuple[int, str], tuple[Taxonomy, tuple[Taxonomy, Theme] | None]] = (
    OrderedDict()
)
_REMOVED_LOCK = threading.Lock()


def with_removed_theme(
    session: Session, taxonomy: Taxonomy, theme_id: str
) -> tuple[Taxonomy, Theme] | None:
    """For an id the current taxonomy no longer knows but an earlier stored version had (a
    new version was saved without the theme): the taxonomy with that theme appended as
    retired (its former ids the current taxonomy does not use kept), so its page, trend,
    verbatims and breakdown open on its stored mentions, saying it is retired, while every
    list leaves it out. None for an id no version had. Only the versions whose text names
    the id are parsed, newest first; answers are kept per taxonomy object and id."""
    key = (id(taxonomy), theme_id)
    with _REMOVED_LOCK:
        kept = _REMOVED.get(key)
    if kept is not None and kept[0] is taxonomy:  # the same object, not a reused id
        return kept[1]
    found: tuple[Taxonomy, Theme] | None = None
    bodies = session.execute(
        select(TaxonomyVersion.version, TaxonomyVersion.body)
        .where(TaxonomyVersion.body.contains(theme_id, autoescape=True))
        .order_by(TaxonomyVersion.version.desc())
    )
    for version, body in bodies:
        try:
            old = parse_taxonomy(body, origin=f"taxonomy version {version}", stored=True).resolve(
                theme_id
            )
        except TaxonomyError:
            continue
        if old is None:
            continue
        if taxonomy.resolve(old.id) is None:  # else a current theme owns it: not removed
            aliases = [a for a in old.aliases if taxonomy.resolve(a) is None]
            theme = old.model_copy(update={"retired": True, "aliases": aliases})
            found = (taxonomy.model_copy(update={"themes": [*taxonomy.themes, theme]}), theme)
        break
    with _REMOVED_LOCK:
        _REMOVED[key] = (taxonomy, found)
        while len(_REMOVED) > 256:
            _REMOVED.popitem(last=False)
    return found


def theme_or_404(
    request: Request, session: Session, theme_id: str, taxonomy_name: str | None
) -> tuple[Taxonomy, Theme]:
    """The taxonomy (the current one or a built-in by name) and the theme of an id or former
    id; with the current taxonomy, also a theme removed by a later version (retired, see
    `with_removed_theme`). ApiError(404) for an id it never had."""
    taxonomy = pick_taxonomy(request, taxonomy_name)
    theme = taxonomy.resolve(theme_id)
    if theme is not None:
        return taxonomy, theme
    removed = with_removed_theme(session, taxonomy, theme_id) if taxonomy_name is None else None
    if removed is None:
        raise ApiError(404, f"unknown theme {theme_id!r}", "theme_id")
    return removed


def theme_filter(session: Session, taxonomy: Taxonomy, theme_id: str) -> list[str]:
    """The stored ids a `theme` filter (`/alerts`, `/incidents`) reads: a current theme's id
    and former ids, a removed theme's (`with_removed_theme`), or an id only stored alerts or
    incidents carry. Any other is a 422 naming the known themes: a misspelt `livraisn`
    listed nothing, read as « no alert »."""
    theme = taxonomy.resolve(theme_id)
    if theme is None and (removed := with_removed_theme(session, taxonomy, theme_id)):
        theme = removed[1]
    if theme is not None:
        return [theme.id, *theme.aliases]
    if not any(
        session.scalar(select(model.id).where(model.theme == theme_id).limit(1)) is not None
        for model in (Alert, Incident)
    ):
        known = known_list([t.id for t in taxonomy.themes if not t.retired])
        raise ApiError(422, f"unknown theme {theme_id!r}; known: {known}", "theme")
    return [theme_id]


def _theme_out(
    row: ThemeRow,
    taxonomy: Taxonomy,
    spike: object | None,
    keywords: list[str],
    trend: list[DayPoint],
) -> ThemeOut:
    theme = taxonomy.resolve(row.theme)
    return ThemeOut(
        id=row.theme,
        label=row.label,
        team=theme.team if theme else "default",
        stage=theme.stage if theme else "experience",
        volume=row.volume,
        negatives=row.negatives,
        neutrals=row.neutrals,
        positives=row.positives,
        negative_share=round(row.negative_share, 4),
        net_sentiment=round(row.net_sentiment, 4),
        mean_rating=None if row.mean_rating is None else round(row.mean_rating, 3),
        previous_volume=row.previous_volume,
        volume_change=None if row.volume_change is None else round(row.volume_change, 4),
        negative_share_change=None
        if row.negative_share_change is None
        else round(row.negative_share_change, 4),
        spike=None
        if spike is None
        else SpikeOut(
            alert_id=spike.id,  # type: ignore[attr-defined]
            kind=spike.kind,  # type: ignore[attr-defined]
            severity=spike.severity,  # type: ignore[attr-defined]
            first_day=spike.first_day,  # type: ignore[attr-defined]
            last_day=spike.last_day,  # type: ignore[attr-defined]
        ),
        keywords=keywords,
        trend=[p.volume for p in trend],
    )


def themes_view(
    session: Session,
    taxonomy: Taxonomy,
    taxonomy_name: str,
    *,
    start: date,
    end: date,
    channel: str | None,
    source: str | None,
    keywords: KeywordCache | None = None,
) -> ThemesOut:
    rows = listed_summary(
        session, start=start, end=end, channel=channel, source=source, taxonomy=taxonomy
    )
    total = rows.pop() if rows and rows[-1].theme == "*" else None
    series = daily_series(
        session, start=start, end=end, channel=channel, source=source, taxonomy=taxonomy
    )
    spikes = open_alerts_by_theme(session, taxonomy)
    empty = [DayPoint(start + timedelta(days=i), 0, 0, 0, 0) for i in range((end - start).days + 1)]
    words = (keywords or KeywordCache()).get_many(
        session,
        {r.theme: theme_keys(taxonomy, r.theme) for r in rows if r.volume},
        start=start,
        end=end,
        channel=channel,
        source=source,
        version=period_version(session, start, end),
    )
    themes = [
        _theme_out(
            row,
            taxonomy,
            spikes.get(row.theme),
            words.get(row.theme, []),
            series.get(row.theme, empty),
        )
        for row in rows
    ]
    return ThemesOut(
        period=_period(start, end),
        taxonomy=taxonomy_name,
        channel=channel,
        source=source,
        total_volume=total.volume if total else 0,
        themes=themes,
        other_languages=other_language_volumes(
            session, start=start, end=end, channel=channel, source=source
        ),
    )


def theme_detail_view(
    session: Session,
    taxonomy: Taxonomy,
    theme_id: str,
    *,
    start: date,
    end: date,
    channel: str | None,
    source: str | None,
    keywords: KeywordCache | None = None,
) -> ThemeDetailOut:
    theme = taxonomy.get(theme_id)
    keys = theme_keys(taxonomy, theme.id)
    rows = theme_summary(
        session, start=start, end=end, channel=channel, source=source, taxonomy=taxonomy
    )
    row = next((r for r in rows if r.theme == theme.id), None)
    if row is None:  # a retired theme without data in the period
        row = ThemeRow(theme.id, theme.label, 0, 0, 0, 0, 0.0, 0.0, None, None, 0, 0.0, None, None)
    series = daily_series(
        session,
        start=start,
        end=end,
        channel=channel,
        source=source,
        themes=keys,
        taxonomy=taxonomy,
    ).get(theme.id)
    if series is None:
        days = (end - start).days + 1
        series = [DayPoint(start + timedelta(days=i), 0, 0, 0, 0) for i in range(days)]
    words = (
        (keywords or KeywordCache())
        .get_many(
            session,
            {theme.id: keys},
            start=start,
            end=end,
            channel=channel,
            source=source,
            version=period_version(session, start, end),
        )
        .get(theme.id, [])
    )
    summary = _theme_out(
        row, taxonomy, open_alerts_by_theme(session, taxonomy).get(theme.id), words, series
    )
    return ThemeDetailOut(
        id=theme.id,
        label=theme.label,
        description=theme.description,
        team=theme.team,
        stage=theme.stage,
        aliases=theme.aliases,
        retired=theme.retired,
        period=_period(start, end),
        summary=summary,
        series=[
            DayOut(
                day=p.day,
                volume=p.volume,
                negatives=p.negatives,
                neutrals=p.neutrals,
                positives=p.positives,
                negative_share=round(negative_share(p.negatives, p.volume), 4),
                net_sentiment=round(net_sentiment(p.positives, p.negatives, p.volume), 4),
            )
            for p in series
        ],
    )

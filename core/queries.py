"""Read-side queries over the aggregates (shared by the CLI report, the API and alerts).

`theme_summary` comes first (pipeline helper); other query functions follow below it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, case, func, or_, select, true, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from core.models import (
    ALL_THEMES,
    COLUMNS,
    CORRECTION_MODEL,
    KEY_COLUMNS,
    KEYWORDS_ALL,
    Alert,
    Analysis,
    DailyAggregate,
    DailyFacet,
    DailyKeyword,
    DataVersion,
    DriverCell,
    Feedback,
    HourlyAggregate,
    Incident,
    ThemeMention,
    Topic,
    TopicAssignment,
)
from core.versions import PERIOD_MEMO, session_versions
from nlp.drivers import DriverConfig, DriverEffect, csat_points, key_drivers, nps_points
from nlp.errors import VerbatimError
from nlp.spikes import topic_id_of

if TYPE_CHECKING:
    from nlp.taxonomy import Taxonomy


@dataclass(frozen=True, slots=True)
class ThemeRow:
    """One theme over a period, compared with the previous period of the same length."""

    theme: str
    label: str
    volume: int
    negatives: int
    neutrals: int
    positives: int
    negative_share: float  # negatives / volume
    net_sentiment: float  # (positives - negatives) / volume, in -1..1
    mean_rating: float | None
    severity_mean: float | None
    previous_volume: int
    previous_negative_share: float
    volume_change: float | None  # relative change of volume; None when previous volume is 0
    # Difference in share points (0.10 = +10 points); None when the previous period had no
    # mention (a new theme's 93 % was shown as "+93 pts", a rise from a share that never was),
    # or this one has none (a theme gone quiet read "-100 pts", a fall to a share of nothing).
    negative_share_change: float | None


@dataclass
class _Sums:
    volume: int = 0
    negatives: int = 0
    neutrals: int = 0
    positives: int = 0
    rating_sum: float = 0.0
    rating_count: int = 0
    severity_sum: float = 0.0

    def add(self, row: _Sums | tuple) -> None:
        values = (
            row
            if isinstance(row, tuple)
            else (
                row.volume,
                row.negatives,
                row.neutrals,
                row.positives,
                row.rating_sum,
                row.rating_count,
                row.severity_sum,
            )
        )
        self.volume += int(values[0] or 0)
        self.negatives += int(values[1] or 0)
        self.neutrals += int(values[2] or 0)
        self.positives += int(values[3] or 0)
        self.rating_sum += float(values[4] or 0.0)
        self.rating_count += int(values[5] or 0)
        self.severity_sum += float(values[6] or 0.0)

    @property
    def negative_share(self) -> float:
        return negative_share(self.negatives, self.volume)


def _period_sums(
    session: Session,
    start: date,
    end: date,
    channel: str | None,
    source: str | None,
) -> dict[str, _Sums]:
    """Sums of `daily_aggregates` per theme over [start, end] (read-only result: through a
    `core.versions.PeriodMemo` in `session.info`, the API shares it between views)."""
    memo = session.info.get(PERIOD_MEMO)
    if memo is None:
        return _sum_period(session, start, end, channel, source)
    key = memo.key(session, channel, source, days=(start, end))
    found = memo.get(key)
    if found is None:
        found = _sum_period(session, start, end, channel, source)
        memo.put(key, found)
    return found


_SUM_COLUMNS = COLUMNS[len(KEY_COLUMNS) :]  # daily_aggregates' sums, in _Sums' field order


def _sum_period(
    session: Session,
    start: date,
    end: date,
    channel: str | None,
    source: str | None,
) -> dict[str, _Sums]:
    rows = _group_sums(
        session,
        DailyAggregate,
        _SUM_COLUMNS,
        start=start,
        end=end,
        by=("theme",),
        where=_cells(channel, source),
    )
    out: dict[str, _Sums] = {}
    for theme, *values in rows:
        sums: list[Any] = [v or 0 for v in values]
        out[theme] = _Sums(*sums)
    return out


def _row(theme: str, label: str, cur: _Sums, prev: _Sums) -> ThemeRow:
    return ThemeRow(
        theme=theme,
        label=label,
        volume=cur.volume,
        negatives=cur.negatives,
        neutrals=cur.neutrals,
        positives=cur.positives,
        negative_share=cur.negative_share,
        net_sentiment=net_sentiment(cur.positives, cur.negatives, cur.volume),
        mean_rating=cur.rating_sum / cur.rating_count if cur.rating_count else None,
        severity_mean=cur.severity_sum / cur.volume if cur.volume else None,
        previous_volume=prev.volume,
        previous_negative_share=prev.negative_share,
        volume_change=(cur.volume - prev.volume) / prev.volume if prev.volume else None,
        negative_share_change=cur.negative_share - prev.negative_share
        if cur.volume and prev.volume
        else None,
    )


def theme_summary(
    session: Session,
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
    taxonomy: Taxonomy | None = None,
    include_total: bool = False,
) -> list[ThemeRow]:
    """Per-theme figures for [start, end] (inclusive) vs the previous period of equal length.

    With a taxonomy, former ids (renamed/merged themes) are folded into the current theme,
    labels come from it, every active theme is listed, even at zero volume, and ids it does
    not know (themes a later version removed) are left out. Sorted by
    negatives, then volume (descending). `include_total` appends the "*" row (all verbatims,
    by document sentiment) last.
    """
    if end < start:
        raise ValueError("end must not be before start")
    length = (end - start).days + 1
    prev_end = start - timedelta(days=1)
    prev_start = prev_end - timedelta(days=length - 1)
    current = _period_sums(session, start, end, channel, source)
    previous = _period_sums(session, prev_start, prev_end, channel, source)

    labels: dict[str, str] = {}
    if taxonomy is not None:
        labels = {t.id: t.label for t in taxonomy.active}

    def fold(sums: dict[str, _Sums]) -> dict[str, _Sums]:
        out: dict[str, _Sums] = {}
        for theme, s in sums.items():
            if theme == ALL_THEMES:
                continue
            resolved = taxonomy.resolve(theme) if taxonomy is not None else None
            if taxonomy is not None and resolved is None:
                continue  # removed by a later version: not a theme of this taxonomy any more
            key = resolved.id if resolved is not None else theme
            if resolved is not None:
                labels.setdefault(key, resolved.label)
            out.setdefault(key, _Sums()).add(s)
        return out

    cur, prev = fold(current), fold(previous)
    themes = list(dict.fromkeys([*labels, *cur, *prev]))
    rows = [_row(t, labels.get(t, t), cur.get(t, _Sums()), prev.get(t, _Sums())) for t in themes]
    rows.sort(key=lambda r: (-r.negatives, -r.volume, r.theme))
    if include_total:
        rows.append(
            _row(
                ALL_THEMES,
                "Tous les verbatims",
                current.get(ALL_THEMES, _Sums()),
                previous.get(ALL_THEMES, _Sums()),
            )
        )
    return rows


def listed_summary(
    session: Session,
    *,
    start: date,
    end: date,
    taxonomy: Taxonomy,
    channel: str | None = None,
    source: str | None = None,
) -> list[ThemeRow]:
    """`theme_summary` as every theme list shows it: the rows of `listed_theme` themes, then
    the total row (last)."""
    rows = theme_summary(
        session,
        start=start,
        end=end,
        channel=channel,
        source=source,
        taxonomy=taxonomy,
        include_total=True,
    )
    return [r for r in rows if r.theme == ALL_THEMES or listed_theme(taxonomy, r.theme)]


def listed_theme(taxonomy: Taxonomy, theme_id: str) -> bool:
    """Whether a stored theme id belongs in the theme lists (/themes, its CSV, the overview's
    and the digest's movers, the report): a theme of the taxonomy, not retired. A retired
    theme keeps its page (/themes/{id}) and its stored mentions; the mentions of a theme
    removed from the taxonomy are listed nowhere, under its bare id, until a version adds it
    back."""
    theme = taxonomy.resolve(theme_id)
    return theme is not None and not theme.retired


def latest_day(session: Session) -> date | None:
    """The last day that has aggregates (None on an empty database)."""
    return session.execute(select(func.max(DailyAggregate.day))).scalar_one_or_none()


# --- API read queries (service helper): /themes drill-down, verbatims, topics, alerts --------


def _channel_source(stmt: Any, table: Any, channel: str | None, source: str | None) -> Any:
    """`stmt` restricted to one channel and/or one source of `table` (Feedback or aggregates)."""
    if channel:
        stmt = stmt.where(table.channel == channel)
    if source:
        stmt = stmt.where(table.source == source)
    return stmt


def _cells(channel: str | None, source: str | None, **where: object) -> dict[str, object]:
    """The `where` of `_group_sums` for an optional channel and source, plus `where`."""
    return {
        **where,
        **({"channel": channel} if channel else {}),
        **({"source": source} if source else {}),
    }


def _group_sums(
    session: Session,
    model: Any,
    columns: Sequence[str],
    *,
    start: date,
    end: date,
    by: Sequence[str] = (),
    where: Mapping[str, object] | None = None,
    exclude: Mapping[str, object] | None = None,
) -> list[tuple[Any, ...]]:
    """Rows `(*by, *SUM(columns))` of a per-day table (`core.versions.DAY_TABLES`) over
    days start..end, grouped by `by`; `where` / `exclude` keep / drop rows whose column is a
    value (or in a list of values). Read from the API's in-memory copy of the table when the
    session carries one (`core.day_table`), else from the database: the same rows either way
    (sums of an empty selection are 0 in memory, NULL in SQL; callers read both as 0)."""
    memo = session.info.get(PERIOD_MEMO)
    table = memo.table(session, model) if memo is not None else None
    if table is not None:
        return table.sums(start, end, columns, by=by, where=where, exclude=exclude)
    stmt = select(
        *(getattr(model, c) for c in by), *(func.sum(getattr(model, c)) for c in columns)
    ).where(model.day >= start, model.day <= end)
    for name, value in (where or {}).items():
        col = getattr(model, name)
        many = isinstance(value, list | tuple | set | frozenset)
        stmt = stmt.where(col.in_(list(value)) if many else col == value)  # type: ignore[call-overload]
    for name, value in (exclude or {}).items():
        stmt = stmt.where(getattr(model, name).not_in(list(value)))  # type: ignore[call-overload]
    if by:
        stmt = stmt.group_by(*(getattr(model, c) for c in by))
    return [tuple(row) for row in session.execute(stmt)]


def negative_share(negatives: int, volume: int) -> float:
    """Share of negative verbatims, 0 on an empty period."""
    return negatives / volume if volume else 0.0


def net_sentiment(positives: int, negatives: int, volume: int) -> float:
    """(positives - negatives) / volume, in -1..1; 0 on an empty period."""
    return (positives - negatives) / volume if volume else 0.0


@dataclass(frozen=True, slots=True)
class DayPoint:
    day: date
    volume: int
    negatives: int
    neutrals: int
    positives: int


@dataclass(frozen=True, slots=True)
class VerbatimRow:
    mention_id: int
    feedback_id: int
    created_at: datetime
    day: date
    channel: str
    source: str
    rating: float | None
    text: str
    polarity: str
    score: float
    sentiment: str
    severity: float
    evidence_start: int | None
    evidence_end: int | None
    evidence_text: str | None
    language: str = "fr"


# Where the next page of a theme's verbatims starts: (day, created_at, feedback id, mention id).
VerbatimCursor = tuple[date, datetime, int, int]


def theme_keys(taxonomy: Taxonomy | None, theme_id: str) -> list[str]:
    """Every stored id that counts for a theme: its id and its former ids (aliases)."""
    theme = taxonomy.resolve(theme_id) if taxonomy is not None else None
    return [theme.id, *theme.aliases] if theme is not None else [theme_id]


def daily_series(
    session: Session,
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
    themes: Sequence[str] | None = None,
    taxonomy: Taxonomy | None = None,
) -> dict[str, list[DayPoint]]:
    """Dense per-day figures for [start, end] per theme (former ids folded with a taxonomy)."""
    where = _cells(channel, source, **({"theme": list(themes)} if themes is not None else {}))
    rows = _group_sums(
        session,
        DailyAggregate,
        ("volume", "negatives", "neutrals", "positives"),
        start=start,
        end=end,
        by=("theme", "day"),
        where=where,
    )
    sums: dict[str, dict[date, list[int]]] = {}
    for theme, day, *values in rows:
        resolved = taxonomy.resolve(theme) if taxonomy is not None and theme != ALL_THEMES else None
        key = resolved.id if resolved is not None else theme
        acc = sums.setdefault(key, {}).setdefault(day, [0, 0, 0, 0])
        for i, v in enumerate(values):
            acc[i] += int(v or 0)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return {
        key: [DayPoint(d, *by_day.get(d, (0, 0, 0, 0))) for d in days]
        for key, by_day in sums.items()
    }


def open_alerts_by_theme(session: Session, taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """The most severe open alert per (current) theme id (rows with id, theme, kind,
    severity, first_day, last_day: no ORM objects, this runs on every /themes build).

    With the API's period memo in the session, kept per alerts version and taxonomy: every
    change to an alert moves that version (count, latest update, open count), and most views
    of a cold start would otherwise each read the same rows."""
    memo = session.info.get(PERIOD_MEMO)
    if memo is None:
        return _open_alerts_by_theme(session, taxonomy)
    key = ("open_alerts", session_versions(session).alerts, id(taxonomy))
    kept = memo.get(key)
    if isinstance(kept, tuple) and kept[0] is taxonomy:  # the same object, not a reused id
        return kept[1]
    out = _open_alerts_by_theme(session, taxonomy)
    memo.put(key, (taxonomy, out))
    return out


def _open_alerts_by_theme(session: Session, taxonomy: Taxonomy | None) -> dict[str, Any]:
    rank = {"critical": 4, "high": 3, "medium": 2, "low": 1}
    out: dict[str, Any] = {}
    stmt = (
        select(Alert.id, Alert.theme, Alert.kind, Alert.severity, Alert.first_day, Alert.last_day)
        .outerjoin(Incident, Incident.id == Alert.incident_id)
        .where(Alert.status == "open", _incident_not_closed())
    )
    for alert in session.execute(stmt):
        resolved = taxonomy.resolve(alert.theme) if taxonomy is not None else None
        key = resolved.id if resolved is not None else alert.theme
        kept = out.get(key)
        if kept is None or rank.get(alert.severity, 0) > rank.get(kept.severity, 0):
            out[key] = alert
    return out


def _incident_not_closed() -> ColumnElement[bool]:
    """An alert still to handle: no incident, or its incident not resolved (an analyst's
    « Résoudre » closes the incident only; its alerts stay open for the detector)."""
    return or_(Alert.incident_id.is_(None), Incident.status != "resolved")


def open_alerts_count(session: Session) -> int:
    stmt = (
        select(func.count())
        .select_from(Alert)
        .outerjoin(Incident, Incident.id == Alert.incident_id)
        .where(Alert.status == "open", _incident_not_closed())
    )
    return int(session.scalar(stmt) or 0)


def top_keywords(
    session: Session,
    theme_ids: Sequence[str],
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
    limit: int = 5,
) -> list[str]:
    """Most frequent content words in the theme's evidence spans over the period."""
    found = top_keywords_many(
        session,
        {"_": theme_ids},
        start=start,
        end=end,
        channel=channel,
        source=source,
        limit=limit,
    )
    return found.get("_", [])


def top_keywords_many(
    session: Session,
    themes: Mapping[str, Sequence[str]],
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
    limit: int = 5,
) -> dict[str, list[str]]:
    """`top_keywords` for several themes (name -> stored ids) in one pass, summed from the
    precomputed `daily_keywords` (each day's top words per theme and cell; the API's in-memory
    copy when the session carries one, see `_group_sums`)."""
    if not themes:
        return {}
    name_of = {stored: name for name, ids in themes.items() for stored in ids}
    # One kind of row per filter: a channel's own "*" rows, a source's (channel, source)
    # cells, or the all-channel rows.
    where: dict[str, object] = {"theme": list(name_of), "source": source or KEYWORDS_ALL}
    exclude = None
    if channel:
        where["channel"] = channel
    elif source:
        exclude = {"channel": [KEYWORDS_ALL]}
    else:
        where["channel"] = KEYWORDS_ALL
    rows = _group_sums(
        session,
        DailyKeyword,
        ("count",),
        start=start,
        end=end,
        by=("theme", "word"),
        where=where,
        exclude=exclude,
    )
    counts: dict[str, Counter[str]] = {name: Counter() for name in themes}
    for stored, word, n in rows:
        counts[name_of[stored]][word] += int(n or 0)
    return {
        name: [w for w, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
        for name, c in counts.items()
    }


def theme_verbatims(
    session: Session,
    theme_ids: Sequence[str],
    *,
    limit: int = 20,
    after: VerbatimCursor | None = None,
    polarity: str | None = None,
    severity_min: float | None = None,
    channel: str | None = None,
    source: str | None = None,
    start: date | None = None,
    end: date | None = None,
    language: str | None = None,
) -> tuple[list[VerbatimRow], VerbatimCursor | None]:
    """Newest-first verbatims mentioning a theme: by day, then time, verbatim id and mention
    id (a total order); keyset pagination on those four. The mention id alone followed the
    analysis order within a day: a corrected or re-analysed verbatim (a new mention) jumped
    to the top of its day, and a page walk around the correction skipped it.

    Returns (rows, cursor of the next page or None).
    """
    stmt = (
        select(
            ThemeMention.id,
            ThemeMention.feedback_id,
            Feedback.created_at,
            ThemeMention.day,
            Feedback.channel,
            Feedback.source,
            Feedback.rating,
            Feedback.text,
            ThemeMention.polarity,
            ThemeMention.score,
            Analysis.sentiment,
            Analysis.severity,
            ThemeMention.evidence_start,
            ThemeMention.evidence_end,
            ThemeMention.evidence_text,
            Feedback.language,
        )
        .join(Feedback, Feedback.id == ThemeMention.feedback_id)
        .join(Analysis, Analysis.id == ThemeMention.analysis_id)
        .where(ThemeMention.theme.in_(list(theme_ids)), latest_analysis())
        .order_by(
            ThemeMention.day.desc(),
            Feedback.created_at.desc(),
            ThemeMention.feedback_id.desc(),
            ThemeMention.id.desc(),
        )
        .limit(limit + 1)
    )
    if after is not None:
        day, created, feedback_id, mention_id = after
        same = Feedback.created_at == created
        stmt = stmt.where(
            ThemeMention.day <= day,  # bounds the (theme, day) index scan
            or_(
                ThemeMention.day < day,
                Feedback.created_at < created,
                and_(same, ThemeMention.feedback_id < feedback_id),
                and_(same, ThemeMention.feedback_id == feedback_id, ThemeMention.id < mention_id),
            ),
        )
    if polarity:
        stmt = stmt.where(ThemeMention.polarity == polarity)
    if severity_min is not None:
        stmt = stmt.where(Analysis.severity >= severity_min)
    stmt = _channel_source(stmt, Feedback, channel, source)
    if start is not None:
        stmt = stmt.where(ThemeMention.day >= start)
    if end is not None:
        stmt = stmt.where(ThemeMention.day <= end)
    if language:
        stmt = stmt.where(Feedback.language == language)
    rows = [VerbatimRow(*tuple(r)) for r in session.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    from core.store import as_utc  # SQLite reads times back naive (UTC)

    last = rows[-1] if more and rows else None
    cursor = (
        None
        if last is None
        else (last.day, as_utc(last.created_at), last.feedback_id, last.mention_id)
    )
    return rows, cursor


def list_topics(
    session: Session, *, emerging: bool | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Topic], int]:
    """Live topics (holding verbatims), emerging first then by size; returns (page, total).

    A topic whose verbatims all went to other topics in a later run keeps its row (and id,
    should a later run revive it) with size 0: it is no longer a topic to show."""
    stmt = select(Topic).where(Topic.size > 0)
    count = select(func.count()).select_from(Topic).where(Topic.size > 0)
    if emerging is not None:
        stmt = stmt.where(Topic.is_emerging.is_(emerging))
        count = count.where(Topic.is_emerging.is_(emerging))
    stmt = stmt.order_by(Topic.is_emerging.desc(), Topic.size.desc(), Topic.id).limit(limit)
    rows = list(session.execute(stmt.offset(offset)).scalars())
    return rows, int(session.execute(count).scalar_one())


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    themes: Sequence[str] | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[Alert], int | None]:
    """Alerts, newest first; keyset pagination on id. Returns (page, next cursor id or None)."""
    stmt = select(Alert).order_by(Alert.id.desc()).limit(limit + 1)
    if status:
        stmt = stmt.where(Alert.status == status)
    if themes is not None:
        stmt = stmt.where(Alert.theme.in_(list(themes)))
    if before_id is not None:
        stmt = stmt.where(Alert.id < before_id)
    rows = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def incident_statuses(session: Session, ids: Iterable[int | None]) -> dict[int | None, str]:
    """Status of each of these incidents (absent ids are left out)."""
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int | None, str] = {}
    # In chunks: a CSV export of every alert asks for thousands (bound parameters are capped).
    for at in range(0, len(wanted), 1000):
        chunk = wanted[at : at + 1000]
        rows = session.execute(select(Incident.id, Incident.status).where(Incident.id.in_(chunk)))
        found.update({int(i): str(status) for i, status in rows})
    return found


def feedback_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Feedback)).scalar_one())


def aggregates_version(session: Session) -> tuple[int, int, int]:
    """Changes whenever `daily_aggregates` is rebuilt: a cheap key for caches of values
    derived from the aggregated data (the rebuild's counter, plus the id range for rows
    written by older code)."""
    # max/min of the primary key are O(log n) (count(*) would scan the table).
    # (Scalar subqueries: SQLite only uses the index shortcut for a lone min() or max().)
    top, bottom, counter = session.execute(
        select(
            select(func.max(DailyAggregate.id)).scalar_subquery(),
            select(func.min(DailyAggregate.id)).scalar_subquery(),
            select(DataVersion.version).where(DataVersion.name == "aggregates").scalar_subquery(),
        )
    ).one()
    return int(top or 0), int(bottom or 0), int(counter or 0)


def period_version(session: Session, start: date, end: date) -> tuple[int, ...]:
    """A version of the aggregates over days start..end, for caches of values derived from
    them: with the API's period memo in the session, the latest rebuild that touched one of
    those days (no query when the request already read the version); else `aggregates_version`
    (any rebuild)."""
    memo = session.info.get(PERIOD_MEMO)
    if memo is None:
        return aggregates_version(session)
    return (memo.key(session, days=(start, end))[-1],)


def topic_trends(
    session: Session,
    topic_ids: Sequence[int] | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
) -> dict[int, list[tuple[date, int]]]:
    """Verbatims per topic per day (from `topic_assignments`), days ascending."""
    stmt = (
        select(TopicAssignment.topic_id, TopicAssignment.day, func.count())
        .group_by(TopicAssignment.topic_id, TopicAssignment.day)
        .order_by(TopicAssignment.topic_id, TopicAssignment.day)
    )
    if topic_ids is not None:
        stmt = stmt.where(TopicAssignment.topic_id.in_(list(topic_ids)))
    if start is not None:
        stmt = stmt.where(TopicAssignment.day >= start)
    if end is not None:
        stmt = stmt.where(TopicAssignment.day <= end)
    out: dict[int, list[tuple[date, int]]] = {}
    for topic_id, day, n in session.execute(stmt):
        out.setdefault(topic_id, []).append((day, int(n)))
    return out


def topics_last_day(session: Session, topic_ids: Sequence[int]) -> date | None:
    """The last day any of these topics was seen (one index seek per topic on
    (topic_id, day), not a scan of the assignments)."""
    last: date | None = None
    for topic_id in topic_ids:
        day = session.scalar(
            select(func.max(TopicAssignment.day)).where(TopicAssignment.topic_id == topic_id)
        )
        if day is not None and (last is None or day > last):
            last = day
    return last


# --- trends by day / hour and a theme's impact on ratings ----------------------------------

Granularity = str  # "day" | "hour"
GRANULARITIES = ("day", "hour")


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One time bucket (start of the UTC day or hour) of one theme x channel x source.

    `channel`/`source` are None when the trend is not split by them (summed)."""

    bucket: datetime
    channel: str | None
    source: str | None
    volume: int
    negatives: int
    neutrals: int
    positives: int
    rating_sum: float
    rating_count: int

    @property
    def negative_share(self) -> float:
        return negative_share(self.negatives, self.volume)

    @property
    def net_sentiment(self) -> float:
        return net_sentiment(self.positives, self.negatives, self.volume)

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.rating_count if self.rating_count else None


def latest_analysis() -> ColumnElement[bool]:
    """`Analysis` is the one that counts for its verbatim: an analyst's correction beats any
    model analysis, then the newest wins (no better analysis of the same verbatim exists)."""
    newer = aliased(Analysis)

    def rank(a: type[Analysis]) -> ColumnElement[int]:
        return case((a.model_version == CORRECTION_MODEL, 1), else_=0)

    return ~(
        select(newer.id)
        .where(
            newer.feedback_id == Analysis.feedback_id,
            or_(
                rank(newer) > rank(Analysis),
                and_(rank(newer) == rank(Analysis), newer.id > Analysis.id),
            ),
        )
        .exists()
    )


_latest_analysis = latest_analysis


def _bucket_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value)
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def theme_trend(
    session: Session,
    theme_ids: Sequence[str],
    *,
    start: date,
    end: date,
    granularity: Granularity = "day",
    channel: str | None = None,
    source: str | None = None,
    by_channel: bool = False,
    by_source: bool = False,
) -> list[TrendPoint]:
    """Figures of one theme (its stored ids: `theme_keys`) per UTC day or hour of
    [start, end], read from the precomputed `daily_facets` / `hourly_aggregates` (latest
    analysis of each verbatim: a mention's polarity, the verbatim's rating). French only
    (AGGREGATED_LANGUAGES), as the theme's summary and its alerts: the chart read under a
    spike alert shows the alert's counts (`hourly_aggregates` is built French only).

    Split by channel and/or source when asked (one point per non-empty bucket x split);
    unsplit, the series is dense (empty buckets are zeros). Ordered by bucket, then split.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}")
    if end < start:
        raise ValueError("end must not be before start")
    table: Any = DailyFacet if granularity == "day" else HourlyAggregate
    bucket = ["day"] if granularity == "day" else ["day", "hour"]
    split = [c for c, on in (("channel", by_channel), ("source", by_source)) if on]
    columns = ("volume", "negatives", "neutrals", "positives", "rating_sum", "rating_count")
    where = _cells(channel, source, theme=list(theme_ids))
    if granularity == "day":  # hourly_aggregates holds French verbatims only
        where["language"] = list(AGGREGATED_LANGUAGES)
    # hourly_aggregates has no in-memory copy: _group_sums reads it from the database.
    found = _group_sums(
        session, table, columns, start=start, end=end, by=(*bucket, *split), where=where
    )
    points: list[TrendPoint] = []
    for row in found:
        rest = list(row)
        at = _bucket_datetime(rest.pop(0))
        if granularity == "hour":
            at += timedelta(hours=int(rest.pop(0)))
        ch = rest.pop(0) if by_channel else None
        src = rest.pop(0) if by_source else None
        vol, neg, neu, pos, rsum, rcount = rest
        points.append(
            TrendPoint(
                at,
                ch,
                src,
                int(vol or 0),
                int(neg or 0),
                int(neu or 0),
                int(pos or 0),
                float(rsum or 0.0),
                int(rcount or 0),
            )
        )
    if not split:
        step = timedelta(days=1) if granularity == "day" else timedelta(hours=1)
        first = datetime(start.year, start.month, start.day, tzinfo=UTC)
        last = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        have = {p.bucket: p for p in points}
        dense: list[TrendPoint] = []
        at = first
        while at < last:
            dense.append(have.get(at) or TrendPoint(at, None, None, 0, 0, 0, 0, 0.0, 0))
            at += step
        return dense
    points.sort(key=lambda p: (p.bucket, p.channel or "", p.source or ""))
    return points


@dataclass(frozen=True, slots=True)
class RatingImpact:
    """Mean rating of rated verbatims that mention a theme vs those that do not (a period).

    `difference` = with - without (negative: the theme goes with lower ratings);
    `effect_on_mean` = overall mean - mean without the theme's verbatims, i.e. how much the
    theme moves the period's average rating (share of rated verbatims x difference)."""

    rated_with: int
    rated_without: int
    mean_with: float | None
    mean_without: float | None
    difference: float | None
    effect_on_mean: float | None


def _impact(w_sum: float, w_n: int, all_sum: float, all_n: int) -> RatingImpact:
    o_sum, o_n = all_sum - w_sum, max(all_n - w_n, 0)
    mean_with = w_sum / w_n if w_n else None
    mean_without = o_sum / o_n if o_n else None
    mean_all = all_sum / all_n if all_n else None
    diff = mean_with - mean_without if mean_with is not None and mean_without is not None else None
    effect = mean_all - mean_without if mean_all is not None and mean_without is not None else None
    return RatingImpact(w_n, o_n, mean_with, mean_without, diff, effect)


def rating_impacts(
    session: Session,
    themes: Mapping[str, Sequence[str]],
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
) -> dict[str, RatingImpact]:
    """`RatingImpact` per theme (name -> stored ids) over [start, end], from the precomputed
    `daily_facets` (rated verbatims mentioning the theme in their latest analysis, each once;
    one naming both a theme and its former id counts twice) and the period's French "*"
    aggregates ("without" is every other analysed, rated verbatim of the period, same
    filters). French only on both sides, as /themes: "without" is the French total less
    "with", so another language's ratings in "with" skewed both means."""
    if not themes:
        return {}
    name_of = {stored: name for name, ids in themes.items() for stored in ids}
    rows = _group_sums(
        session,
        DailyFacet,
        ("rated_sum", "rated"),
        start=start,
        end=end,
        by=("theme",),
        where=_cells(channel, source, theme=list(name_of), language=list(AGGREGATED_LANGUAGES)),
    )
    per_theme: dict[str, tuple[float, int]] = {}
    for stored, summed, n in rows:
        have = per_theme.get(name_of[stored], (0.0, 0))
        per_theme[name_of[stored]] = (have[0] + float(summed or 0.0), have[1] + int(n or 0))
    totals = _period_sums(session, start, end, channel, source).get(ALL_THEMES, _Sums())
    return {
        name: _impact(*per_theme.get(name, (0.0, 0)), totals.rating_sum, totals.rating_count)
        for name in themes
    }


# --- incidents ------------------------------------------------------------------------------
INCIDENT_STATUSES = ("open", "acknowledged", "resolved")


def list_incidents(
    session: Session,
    *,
    status: str | Sequence[str] | None = None,
    themes: Sequence[str] | None = None,
    team: str | None = None,
    include_historical: bool = True,
    limit: int = 50,
    before: tuple[date, int] | None = None,
) -> list[Incident]:
    """Incidents, latest first (by last day, then id). `status`: one, or several (the
    CLI's default lists the open and the acknowledged ones). `before`: the (last day, id)
    of the previous page's last incident (keyset pagination on the sort key)."""
    query = select(Incident)
    if before is not None:
        day, ident = before
        query = query.where(
            or_(Incident.last_day < day, and_(Incident.last_day == day, Incident.id < ident))
        )
    if isinstance(status, str):
        query = query.where(Incident.status == status)
    elif status is not None:
        query = query.where(Incident.status.in_(list(status)))
    if themes:
        query = query.where(Incident.theme.in_(list(themes)))
    if team is not None:
        query = query.where(Incident.team == team)
    if not include_historical:
        query = query.where(Incident.historical.is_(False))
    query = query.order_by(Incident.last_day.desc(), Incident.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def set_incident_status(
    session: Session,
    incident_id: int,
    action: str,
    who: str,
    note: str,
    mask: Callable[[str], str] | None = None,
) -> Incident | None:
    """Acknowledge or resolve an incident (who, when, note); None when it does not exist.
    An action already taken raises IncidentConflict instead of overwriting it (a second
    resolution's note was dropped while the API answered 200; an acknowledgement after the
    resolution replaced the first one's note and dated it after the resolution). An incident
    the detector closed can still be resolved by an analyst. The note is PII-masked (`mask`,
    else the rules): an analyst may paste a customer's e-mail, phone or name."""
    from nlp.text import mask_pii

    # Locked (PostgreSQL): two analysts resolving at once both passed the check below.
    inc = session.get(Incident, incident_id, with_for_update=True)
    if inc is None:
        return None
    if inc.status == "resolved" and inc.resolved_by != "detector":
        raise IncidentConflict(
            f"incident {incident_id} was resolved by {inc.resolved_by} at "
            f"{_when(inc.resolved_at)}: nothing left to {action}"
        )
    if action == "acknowledge" and inc.acknowledged_by is not None:
        raise IncidentConflict(
            f"incident {incident_id} was acknowledged by {inc.acknowledged_by} at "
            f"{_when(inc.acknowledged_at)}"
        )
    if note:
        note = note.replace("\x00", "")  # as in stored texts: PostgreSQL refuses NUL (a 500)
    note = (mask or mask_pii)(note) if note else note
    now = datetime.now(UTC)
    if action == "acknowledge":
        if inc.status == "open":
            inc.status = "acknowledged"
        inc.acknowledged_by, inc.acknowledged_at, inc.ack_note = who, now, note or None
    else:
        inc.status, inc.resolved_by, inc.resolved_at = "resolved", who, now
        inc.resolve_note = note or None
        # Its alerts leave the open counts and spike badges (_incident_not_closed): move the
        # alerts' version so that kept views (/overview, /themes) are rebuilt.
        session.execute(update(Alert).where(Alert.incident_id == inc.id).values(updated_at=now))
    inc.updated_at = now
    return inc


class IncidentConflict(VerbatimError):
    """An incident action that was already taken (answered 409: nothing is overwritten)."""


def _when(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def dashboard_link(base_url: str, theme: str, first: date, last: date) -> str:
    """Opens the dashboard on the theme and an incident's period (a week of context before).
    A topic's incident ("topic:12") opens the topics view: there is no page per topic, and
    `#theme=topic:12` showed "unknown theme"."""
    start = first - timedelta(days=7)
    target = "view=topics" if topic_id_of(theme) is not None else f"theme={theme}"
    return f"{base_url.rstrip('/')}/#{target}&start={start.isoformat()}&end={last.isoformat()}"


def incident_fields(inc: Incident, theme: str, dashboard_url: str) -> dict[str, Any]:
    """An incident as `GET /incidents` and `verbatim incidents --json` give it, `theme` its
    current id (the one stored may be a former one: renamed, merged)."""
    return {
        "id": inc.id,
        "theme": theme,
        "team": inc.team,
        "status": inc.status,
        "first_day": inc.first_day,
        "last_day": inc.last_day,
        "severity": inc.severity,
        "kinds": list(inc.kinds or []),
        "signals": dict(inc.signals or {}),
        "drivers": list(inc.drivers or []),
        "examples": list(inc.examples or []),
        "historical": inc.historical,
        "revision": inc.revision,
        "link": dashboard_link(dashboard_url, theme, inc.first_day, inc.last_day),
        "acknowledged_by": inc.acknowledged_by,
        "acknowledged_at": inc.acknowledged_at,
        "ack_note": inc.ack_note,
        "resolved_by": inc.resolved_by,
        "resolved_at": inc.resolved_at,
        "resolve_note": inc.resolve_note,
    }


# --- key drivers: how much a theme's presence moves a score (rating, NPS, CSAT, CES) --------

SCORES = ("nps", "csat", "ces", "rating")


@dataclass(frozen=True, slots=True)
class DriverReport:
    """Key drivers of one score over a period. `coded_mean` is the mean of the coded score
    (NPS in points -100..100, CSAT as the share of 4-5 answers in points, CES and rating as
    given); effects are in the same units."""

    score: str
    start: date
    end: date
    answers: int  # analysed French verbatims of the period that carry this score
    coded_mean: float | None
    effects: list[DriverEffect]


def _code_score(score: str, values: Sequence[float]) -> np.ndarray:
    if score == "nps":
        return nps_points(values)
    if score == "csat":
        return csat_points(values)
    return np.asarray(values, dtype=float)


def key_driver_report(
    session: Session,
    score: str,
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
    taxonomy: Taxonomy | None = None,
    config: DriverConfig | None = None,
) -> DriverReport:
    """Regress the (coded) score of each analysed French verbatim (AGGREGATED_LANGUAGES) of
    [start, end] on the presence of each theme in its latest analysis (former theme ids
    folded into the current one; retired themes and, with a taxonomy, themes it no longer
    has left out). Reads the precomputed `driver_cells` (verbatims grouped by answer and set
    of themes) and regresses the groups with frequency weights: the same figures as one row
    per verbatim, without reading the verbatims."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}")
    found = _group_sums(
        session,
        DriverCell,
        ["count"],
        start=start,
        end=end,
        by=("themes", "value"),
        where=_cells(channel, source, score=score),
    )
    # In one order whatever read them (SQL groups come back in any order): the regression's
    # last digits then do not depend on the database or the in-memory copy.
    cells = sorted((themes, float(value), int(n)) for themes, value, n in found if n)
    if not cells:
        return DriverReport(score, start, end, 0, None, [])
    folded: dict[str, set[str]] = {}
    for signature, _, _ in cells:
        if signature in folded:
            continue
        keys = set()
        for theme in filter(None, signature.split(",")):
            if taxonomy is None:
                keys.add(theme)
                continue
            resolved = taxonomy.resolve(theme)
            if resolved is None or resolved.retired:  # removed from the taxonomy, or retired
                continue
            keys.add(resolved.id)
        folded[signature] = keys
    presence: dict[str, np.ndarray] = {}
    for i, (signature, _, _) in enumerate(cells):
        for key in folded[signature]:
            presence.setdefault(key, np.zeros(len(cells), dtype=bool))[i] = True
    weights = np.array([n for _, _, n in cells], dtype=float)
    coded = _code_score(score, [v for _, v, _ in cells])
    effects = key_drivers(
        {k: v.tolist() for k, v in presence.items()}, coded.tolist(), config, weights.tolist()
    )
    answers = int(weights.sum())
    mean = float((coded * weights).sum() / weights.sum())
    return DriverReport(score, start, end, answers, mean, effects)


# --- dashboard read models: a theme's breakdown, the overview's score summary ---------------

SEVERITY_BANDS = (("faible", 0.25), ("moyenne", 0.5), ("haute", 0.75), ("critique", 1.01))


def severity_band(value: float) -> str:
    return next(name for name, upper in SEVERITY_BANDS if value < upper)


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    key: str
    mentions: int
    negatives: int


def theme_breakdown(
    session: Session,
    theme_ids: Sequence[str],
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
) -> dict[str, list[BreakdownRow]]:
    """A theme's mentions over [start, end] (optionally one channel and/or source) split by
    channel, source, language and severity band (latest analysis of each verbatim), biggest
    first; read from `daily_facets`."""
    found = _group_sums(
        session,
        DailyFacet,
        ("volume", "negatives"),
        start=start,
        end=end,
        by=("channel", "source", "language", "band"),
        where=_cells(channel, source, theme=list(theme_ids)),
    )
    sums: dict[str, dict[str, list[int]]] = {
        "channel": {},
        "source": {},
        "language": {},
        "severity": {},
    }
    for channel, source, language, band, n, neg in found:
        keys = {"language": language}
        if language in AGGREGATED_LANGUAGES:  # as the theme's summary counts: French only
            keys.update(channel=channel, source=source, severity=SEVERITY_BANDS[int(band)][0])
        for split, key in keys.items():
            acc = sums[split].setdefault(key, [0, 0])
            acc[0] += int(n or 0)
            acc[1] += int(neg or 0)
    out: dict[str, list[BreakdownRow]] = {}
    for split, by_key in sums.items():
        rows = [BreakdownRow(k, v[0], v[1]) for k, v in by_key.items()]
        if split == "severity":
            order = [name for name, _ in SEVERITY_BANDS]
            rows.sort(key=lambda r: order.index(r.key))
        else:
            rows.sort(key=lambda r: (-r.mentions, r.key))
        out[split] = rows
    return out


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    score: str
    answers: int
    value: float | None  # NPS in points (-100..100), CSAT in % of 4-5, CES / rating mean
    previous_answers: int
    previous_value: float | None


def score_summary(
    session: Session,
    score: str,
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
) -> ScoreSummary:
    """The period's NPS / CSAT / CES / mean rating and the previous period's, over the
    analysed French verbatims (AGGREGATED_LANGUAGES) that carry the score (the "*" rows of
    `daily_facets`): the population of every other figure beside it (/overview's verbatim
    count, the key drivers, the digest's headline). Other languages' answers are counted
    apart with their verbatims (`other_language_volumes`); they made "NPS, 42 answers" sit
    beside "21 verbatims"."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}")
    count, total = {
        "nps": ("nps_count", "nps_points"),
        "csat": ("csat_count", "csat_points"),
        "ces": ("ces_count", "ces_sum"),
        "rating": ("rating_count", "rating_sum"),
    }[score]
    length = (end - start).days + 1
    prev_start = start - timedelta(days=length)

    def one(lo_day: date, hi_day: date) -> tuple[int, float | None]:
        ((n, summed),) = _group_sums(
            session,
            DailyFacet,
            (count, total),
            start=lo_day,
            end=hi_day,
            where=_cells(channel, source, theme=ALL_THEMES, language=list(AGGREGATED_LANGUAGES)),
        )
        return int(n or 0), (None if not n else float(summed or 0.0) / int(n))

    n, value = one(start, end)
    pn, pvalue = one(prev_start, start - timedelta(days=1))
    return ScoreSummary(score, n, value, pn, pvalue)


def list_sources(session: Session, limit: int = 200) -> list[str]:
    """Source names present in the aggregates: the "*" rows of `daily_facets` (on the theme
    index: a source with analysed verbatims has them), every language. `daily_aggregates`
    is French only, so a source of English verbatims only was missing from the filters
    while /breakdown (by language), `other_languages` and the verbatim list count it. From
    the API's in-memory copy when the session carries one: on PostgreSQL the DISTINCT walks
    most of the table (measured 0.3 s at 1M verbatims), for every /overview built."""
    memo = session.info.get(PERIOD_MEMO)
    table = memo.table(session, DailyFacet) if memo is not None else None
    if table is not None:
        return table.distinct("source", where={"theme": ALL_THEMES})[:limit]
    stmt = (
        select(DailyFacet.source)
        .where(DailyFacet.theme == ALL_THEMES)
        .distinct()
        .order_by(DailyFacet.source)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def list_languages(session: Session) -> list[str]:
    """Languages of the analysed verbatims (the "*" rows of `daily_facets`), as `list_sources`."""
    memo = session.info.get(PERIOD_MEMO)
    table = memo.table(session, DailyFacet) if memo is not None else None
    if table is not None:
        return table.distinct("language", where={"theme": ALL_THEMES})
    stmt = (
        select(DailyFacet.language)
        .where(DailyFacet.theme == ALL_THEMES)
        .distinct()
        .order_by(DailyFacet.language)
    )
    return list(session.scalars(stmt))


def stored_value(session: Session, column: str, value: str) -> bool:
    """Whether some stored verbatim has `value` in Feedback's `column` (source: on its index;
    language is asked only of a value the aggregates do not know)."""
    field = getattr(Feedback, column)
    return session.scalar(select(Feedback.id).where(field == value).limit(1)) is not None


@dataclass(frozen=True, slots=True)
class GravityPoint:
    day: date
    mentions: int
    severe: int  # severity >= 0.5 (bands "haute" and "critique")
    recurrent: int  # the customer / order had complained before


def theme_gravity(
    session: Session,
    theme_ids: Sequence[str],
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
) -> list[GravityPoint]:
    """Per day of [start, end] (dense): a theme's mentions, the severe ones and the ones from
    repeat complainers (latest analysis of each verbatim, optionally one channel and/or
    source), from `daily_facets`."""
    rows = _group_sums(
        session,
        DailyFacet,
        ("volume", "severe", "recurrent"),
        start=start,
        end=end,
        by=("day",),
        where=_cells(channel, source, theme=list(theme_ids), language=list(AGGREGATED_LANGUAGES)),
    )
    have = {d: (int(n or 0), int(s or 0), int(r or 0)) for d, n, s, r in rows}
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [GravityPoint(d, *have.get(d, (0, 0, 0))) for d in days]


# --- scheduler ------------------------------------------------------------------------------


def job_runs_status(session: Session, jobs: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Per scheduler job: its latest run (status, tick, lag, duration) and its last success.
    `jobs`: only those (the configured ones); a job removed from the configuration was
    listed for ever, its last run (`failed`, or a success ever older) paging for nothing."""

    from core.models import JobRun
    from core.store import as_utc

    only = JobRun.job.in_(jobs) if jobs else true()
    latest = (
        select(JobRun.job, func.max(JobRun.id).label("id"))
        .where(only)
        .group_by(JobRun.job)
        .subquery()
    )
    last_ok = dict(
        session.execute(
            select(JobRun.job, func.max(JobRun.finished_at))
            .where(JobRun.status == "ok", only)
            .group_by(JobRun.job)
        ).all()
    )
    out: list[dict[str, Any]] = []
    for run in session.scalars(
        select(JobRun).join(latest, JobRun.id == latest.c.id).order_by(JobRun.job)
    ):
        finished = as_utc(run.finished_at) if run.finished_at else None
        ok_at = last_ok.get(run.job)
        out.append(
            {
                "job": run.job,
                "command": run.command,
                "status": run.status,
                "scheduled_for": as_utc(run.scheduled_for).isoformat(),
                "started_at": as_utc(run.started_at).isoformat(),
                "finished_at": finished.isoformat() if finished else None,
                "lag_seconds": round(float(run.lag_seconds), 3),
                "duration_seconds": (
                    round((finished - as_utc(run.started_at)).total_seconds(), 3)
                    if finished
                    else None
                ),
                "last_success_at": as_utc(ok_at).isoformat() if ok_at else None,
                "host": run.host,
                "detail": run.detail,
            }
        )
    return out


# Aggregates, alerts, /themes (and a theme's trend), /overview (its scores too), the key
# drivers and the report count French verbatims only (plus rows with no letters at all,
# "und"): the sentiment and theme models are trained on French, so rows detected at ingest as
# another language are kept and analysed but reported apart.
AGGREGATED_LANGUAGES = ("fr", "und")


def other_language_volumes(
    session: Session,
    *,
    start: date,
    end: date,
    channel: str | None = None,
    source: str | None = None,
) -> dict[str, int]:
    """Analysed verbatims per detected language outside AGGREGATED_LANGUAGES, UTC days
    start..end (the "*" rows of `daily_facets`)."""
    rows = _group_sums(
        session,
        DailyFacet,
        ("volume",),
        start=start,
        end=end,
        by=("language",),
        where=_cells(channel, source, theme=ALL_THEMES),
        exclude={"language": list(AGGREGATED_LANGUAGES)},
    )
    return {str(lang): int(n) for lang, n in rows if n}

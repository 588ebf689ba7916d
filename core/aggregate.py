"""Rebuild `daily_aggregates`, `daily_facets` and `hourly_aggregates` with SQL GROUP BY
(INSERT ... SELECT).

Rows per day x theme x channel x source, plus theme "*" for all analysed verbatims of the day.
A theme row counts the verbatims mentioning the theme, by the mention's polarity; a "*" row
counts verbatims by their document sentiment. When a verbatim has several analyses (model
versions), the latest one counts. Days are UTC days of `feedback.created_at`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    Integer,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from core.db import lock_aggregates
from core.models import (
    ALL_THEMES,
    COLUMNS,
    COUNT_COLUMNS,
    FACET_KEYS,
    FACET_VALUES,
    KEY_COLUMNS,
    KEYWORDS_ALL,
    AggregateChange,
    Analysis,
    DailyAggregate,
    DailyFacet,
    DailyKeyword,
    DataVersion,
    DriverCell,
    Feedback,
    HourlyAggregate,
    ThemeMention,
)
from core.queries import AGGREGATED_LANGUAGES, SEVERITY_BANDS, latest_analysis


def feedback_day(session: Session) -> ColumnElement[date]:
    """The UTC day of feedback.created_at, in the dialect's SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", Feedback.created_at), Date)
    return type_coerce(func.date(Feedback.created_at), Date)


def feedback_hour(session: Session) -> ColumnElement[int]:
    """The UTC hour (0-23) of feedback.created_at, in the dialect's SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("hour", func.timezone("UTC", Feedback.created_at)), Integer)
    return cast(func.strftime("%H", Feedback.created_at), Integer)


def _count(
    polarity_col: ColumnElement[str] | InstrumentedAttribute[str], label: str
) -> ColumnElement[int]:
    return func.sum(cast(polarity_col == label, Integer))


def _sum_if(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def severity_band_index(severity: Any) -> ColumnElement[int]:
    """Index of core.queries.SEVERITY_BANDS, in SQL (the bands' upper bounds, in order)."""
    sev = func.coalesce(severity, 0.0)
    *lower, _ = SEVERITY_BANDS
    return case(*((sev < upper, i) for i, (_, upper) in enumerate(lower)), else_=len(lower))


MAX_DAY_LIST = 500  # beyond this, recompute the whole span (bounded SQL parameters)

HOURLY_COLUMNS = ("day", "hour", *KEY_COLUMNS[1:], *COUNT_COLUMNS)


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# data_versions row whose version is the last day `verbatim purge` deleted verbatims of, as
# date.toordinal() (a counter table the rebuild already writes: no schema change for one date).
RETENTION_SCOPE = "retention"


def retention_horizon(session: Session) -> date | None:
    """The first day still rebuilt from stored rows; None when nothing was ever purged. The
    days before it lost their verbatims to `retention_days` (core.erasure.purge) but keep
    their counts: rebuilding them from the rows left would zero the trends and the spike
    baselines, so `aggregate` never touches them."""
    last = session.scalar(select(DataVersion.version).where(DataVersion.name == RETENTION_SCOPE))
    return None if not last else date.fromordinal(last) + timedelta(days=1)


def set_retention_horizon(session: Session, last_purged: date) -> None:
    """Record `last_purged` as the last day whose verbatims were purged (see above)."""
    row = session.get(DataVersion, RETENTION_SCOPE)
    if row is None:
        session.add(DataVersion(name=RETENTION_SCOPE, version=last_purged.toordinal()))
    else:
        row.version = last_purged.toordinal()


def aggregate(
    session: Session, *, days: Iterable[date] | None = None, since: date | None = None
) -> int:
    """Recompute the given days (or every day from `since`, or all days when both are None)
    in the caller's transaction. Recomputing is idempotent: rows are replaced, never added to.

    One pass over the analyses of those days fills `daily_facets` (every language, by
    language) and `hourly_aggregates` (French only: it has no language column); then
    `daily_aggregates` (French only) is summed from the facets, and `daily_keywords` and
    `driver_cells` (French only) are built. The
    jobs call this with the days they touched, so the precomputed views stay current
    incrementally. Returns the number of `daily_aggregates` rows written.
    """
    day_list = None if days is None else sorted(set(days))
    if day_list is not None and not day_list:
        return 0
    lock_aggregates(session)  # one rebuild at a time, no analysis batch committing mid-way
    horizon = retention_horizon(session)  # read under the lock: a purge takes it too
    if horizon is not None:  # purged days keep the counts they had (see retention_horizon)
        if day_list is not None:
            day_list = [d for d in day_list if d >= horizon]
            if not day_list:
                return 0
        elif since is None or since < horizon:
            since = horizon
    until: date | None = None
    if day_list is not None and len(day_list) > MAX_DAY_LIST:
        since, until, day_list = day_list[0], day_list[-1], None
    # "Latest analysis of its verbatim": no newer analysis of the same feedback exists.
    # (A NOT EXISTS on the (feedback_id, model_version) index; a join on a GROUP BY subquery
    # made SQLite scan theme_mentions once per analysis.)
    # An analyst's correction beats any model analysis (core.queries.latest_analysis).
    is_latest = latest_analysis()
    fday = feedback_day(session)
    band = severity_band_index(Analysis.severity)
    rating_sum = func.coalesce(func.sum(Feedback.rating), literal(0.0, Float))
    severity_sum = func.coalesce(func.sum(Analysis.severity), literal(0.0, Float))
    severe = _sum_if(Analysis.severity >= 0.5)
    recurrent = _sum_if(Analysis.is_recurrent.is_(True))
    zero, zero_f = literal(0), literal(0.0, Float)

    def counts(col: Any) -> tuple[Any, ...]:
        return (
            func.count(),
            _count(col, "negative"),
            _count(col, "neutral"),
            _count(col, "positive"),
        )

    nps_points = case((Feedback.nps >= 9, 100.0), (Feedback.nps >= 7, 0.0), else_=-100.0)
    total_facets = (
        select(
            fday,
            literal(ALL_THEMES),
            Feedback.channel,
            Feedback.source,
            Feedback.language,
            band,
            *counts(Analysis.sentiment),
            rating_sum,
            func.count(Feedback.rating),
            severity_sum,
            severe,
            recurrent,
            func.count(Feedback.rating),
            rating_sum,
            func.count(Feedback.nps),
            _sum_if(Feedback.nps.is_not(None), nps_points),
            func.count(Feedback.csat),
            _sum_if(Feedback.csat >= 4, 100.0),
            func.count(Feedback.ces),
            func.coalesce(func.sum(Feedback.ces), literal(0.0, Float)),
        )
        .join(Analysis, Analysis.feedback_id == Feedback.id)
        .where(is_latest)
        .group_by(fday, Feedback.channel, Feedback.source, Feedback.language, band)
    )
    hour = feedback_hour(session)
    hourly = (
        select(
            ThemeMention.day,
            hour,
            ThemeMention.theme,
            Feedback.channel,
            Feedback.source,
            *counts(ThemeMention.polarity),
            rating_sum,
            func.count(Feedback.rating),
        )
        .join(Analysis, Analysis.id == ThemeMention.analysis_id)
        .join(Feedback, Feedback.id == ThemeMention.feedback_id)
        # French only, as the theme's figures and its alerts: the hourly trend counted every
        # language (6 mentions an hour against 3 in the theme's summary).
        .where(is_latest, Feedback.language.in_(AGGREGATED_LANGUAGES))
        .group_by(ThemeMention.day, hour, ThemeMention.theme, Feedback.channel, Feedback.source)
    )
    # Conditions on each table's day, mirrored on the source queries. The verbatim totals
    # also get a created_at range so the index is used (the UTC day itself is an expression).
    lo = day_list[0] if day_list is not None else since
    hi = day_list[-1] if day_list is not None else until
    mention_scope: list[ColumnElement[bool]] = []
    total_scope: list[ColumnElement[bool]] = []
    if day_list is not None:
        mention_scope.append(ThemeMention.day.in_(day_list))
        total_scope.append(fday.in_(day_list))
    if since is not None:
        mention_scope.append(ThemeMention.day >= since)
        total_scope.append(fday >= since)
    if until is not None:
        mention_scope.append(ThemeMention.day <= until)
        total_scope.append(fday <= until)
    if lo is not None:  # a day starts at 00:00 UTC; one day of margin for stored offsets
        total_scope.append(Feedback.created_at >= _utc_midnight(lo) - timedelta(days=1))
    if hi is not None:
        total_scope.append(Feedback.created_at < _utc_midnight(hi) + timedelta(days=2))

    def scope(table: Any) -> list[ColumnElement[bool]]:
        out = []
        if day_list is not None:
            out.append(table.day.in_(day_list))
        if since is not None:
            out.append(table.day >= since)
        if until is not None:
            out.append(table.day <= until)
        return out

    # Mentions first summed per verbatim and theme (a verbatim may name a theme twice): the
    # rating impact counts each rated verbatim once per theme; the other figures count
    # mentions, as the daily aggregates always have.
    per_verbatim = (
        select(
            ThemeMention.analysis_id.label("analysis_id"),
            ThemeMention.feedback_id.label("feedback_id"),
            ThemeMention.day.label("day"),
            ThemeMention.theme.label("theme"),
            func.count().label("n"),
            _count(ThemeMention.polarity, "negative").label("neg"),
            _count(ThemeMention.polarity, "neutral").label("neu"),
            _count(ThemeMention.polarity, "positive").label("pos"),
        )
        .where(*mention_scope)
        .group_by(
            ThemeMention.analysis_id,
            ThemeMention.feedback_id,
            ThemeMention.day,
            ThemeMention.theme,
        )
        .subquery()
    )
    m = per_verbatim.c
    theme_facets = (
        select(
            m.day,
            m.theme,
            Feedback.channel,
            Feedback.source,
            Feedback.language,
            band,
            func.sum(m.n),
            func.sum(m.neg),
            func.sum(m.neu),
            func.sum(m.pos),
            func.coalesce(func.sum(Feedback.rating * m.n), literal(0.0, Float)),
            _sum_if(Feedback.rating.is_not(None), m.n),
            func.coalesce(func.sum(Analysis.severity * m.n), literal(0.0, Float)),
            _sum_if(Analysis.severity >= 0.5, m.n),
            _sum_if(Analysis.is_recurrent.is_(True), m.n),
            func.count(Feedback.rating),
            func.coalesce(func.sum(Feedback.rating), literal(0.0, Float)),
            zero,
            zero_f,
            zero,
            zero_f,
            zero,
            zero_f,
        )
        .join(Analysis, Analysis.id == m.analysis_id)
        .join(Feedback, Feedback.id == m.feedback_id)
        .where(is_latest)
        .group_by(m.day, m.theme, Feedback.channel, Feedback.source, Feedback.language, band)
    )
    for table in (DailyFacet, HourlyAggregate, DailyAggregate, DailyKeyword, DriverCell):
        session.execute(delete(table).where(*scope(table)))
    facet_columns = (*FACET_KEYS, *FACET_VALUES)
    session.execute(insert(DailyFacet).from_select(facet_columns, theme_facets))
    session.execute(insert(DailyFacet).from_select(facet_columns, total_facets.where(*total_scope)))
    session.execute(
        insert(HourlyAggregate).from_select(HOURLY_COLUMNS, hourly.where(*mention_scope))
    )
    # French only: other languages are reported apart (core.queries.other_language_volumes).
    french = (
        select(
            DailyFacet.day,
            DailyFacet.theme,
            DailyFacet.channel,
            DailyFacet.source,
            *(func.sum(getattr(DailyFacet, c)) for c in COLUMNS[len(KEY_COLUMNS) :]),
        )
        .where(DailyFacet.language.in_(AGGREGATED_LANGUAGES), *scope(DailyFacet))
        .group_by(DailyFacet.day, DailyFacet.theme, DailyFacet.channel, DailyFacet.source)
    )
    session.execute(insert(DailyAggregate).from_select(COLUMNS, french))
    _keywords(session, mention_scope)
    _driver_cells(session, total_scope)
    _record_change(session, day_list, since, until)
    # Counted afterwards: drivers disagree on rowcount for INSERT ... SELECT (psycopg: -1).
    return int(
        session.scalar(
            select(func.count()).select_from(DailyAggregate).where(*scope(DailyAggregate))
        )
        or 0
    )


KEYWORDS_PER_DAY = 30  # words kept per day x theme (x channel x source)
_KEYWORD_CHUNK = 20_000


def _keywords(session: Session, mention_scope: list[ColumnElement[bool]]) -> None:
    """Fill `daily_keywords` for the scope (already emptied), French verbatims only: per day x
    theme x channel x source, per channel over its sources (source "*") and over every channel
    ("*", "*"). Identical spans are counted by SQL and tokenised once, with nlp's French analyser
    (accents kept, elisions split, stop words out), each word once per span."""
    from nlp.topics.vectorize import FrenchAnalyzer

    words = FrenchAnalyzer(ngram_max=1, min_length=3).words
    spans = (
        select(
            ThemeMention.day,
            ThemeMention.theme,
            Feedback.channel,
            Feedback.source,
            ThemeMention.evidence_text,
            func.count(),
        )
        .join(Analysis, Analysis.id == ThemeMention.analysis_id)
        .join(Feedback, Feedback.id == ThemeMention.feedback_id)
        .where(
            latest_analysis(),
            ThemeMention.evidence_text.is_not(None),
            # French only, as the theme's figures: "delivery", "and", "arrived" were Livraison's
            # top keywords on /themes when English reviews named it.
            Feedback.language.in_(AGGREGATED_LANGUAGES),
            *mention_scope,
        )
        .group_by(
            ThemeMention.day,
            ThemeMention.theme,
            Feedback.channel,
            Feedback.source,
            ThemeMention.evidence_text,
        )
    )
    counts: dict[tuple[date, str, str, str], dict[str, int]] = {}
    cache: dict[str, set[str]] = {}
    for day, theme, channel, source, span, n in session.execute(spans):
        text = str(span or "")
        found = cache.get(text)
        if found is None:
            found = {w for clause in words(text) for w in clause if len(w) <= 100}
            if len(cache) < 100_000:
                cache[text] = found
        cells = (
            (day, theme, channel, source),
            (day, theme, channel, KEYWORDS_ALL),
            (day, theme, KEYWORDS_ALL, KEYWORDS_ALL),
        )
        for key in cells:
            acc = counts.setdefault(key, {})
            for word in found:
                acc[word] = acc.get(word, 0) + int(n)
    rows = [
        {"day": day, "theme": theme, "channel": ch, "source": src, "word": word, "count": c}
        for (day, theme, ch, src), acc in counts.items()
        for word, c in sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))[:KEYWORDS_PER_DAY]
    ]
    for i in range(0, len(rows), _KEYWORD_CHUNK):
        session.execute(insert(DailyKeyword), rows[i : i + _KEYWORD_CHUNK])


SCORE_COLUMNS = ("nps", "csat", "ces", "rating")


def _driver_cells(session: Session, total_scope: list[ColumnElement[bool]]) -> None:
    """Fill `driver_cells` for the scope (already emptied), streaming the answered French
    verbatims with their latest analysis' themes (one row per verbatim x theme, a verbatim's
    rows together). French only, as the theme figures: the theme models mislabel other
    languages, and /drivers counted them (60 answers, 30 of them English)."""
    fday = feedback_day(session)
    scores = [getattr(Feedback, c) for c in SCORE_COLUMNS]
    stmt = (
        select(Feedback.id, fday, Feedback.channel, Feedback.source, *scores, ThemeMention.theme)
        .join(Analysis, Analysis.feedback_id == Feedback.id)
        .outerjoin(ThemeMention, ThemeMention.analysis_id == Analysis.id)
        .where(
            latest_analysis(),
            Feedback.language.in_(AGGREGATED_LANGUAGES),
            or_(*(c.is_not(None) for c in scores)),
            *total_scope,
        )
        # created_at first: the scope's range is read in index order (one feedback's rows
        # stay together); ordering by id alone made PostgreSQL walk the whole table.
        .order_by(Feedback.created_at, Feedback.id)
    )
    cells: dict[tuple[Any, ...], int] = {}

    def flush(row: Any, themes: set[str]) -> None:
        signature = ",".join(sorted(themes))
        for name, value in zip(SCORE_COLUMNS, row[4:8], strict=True):
            if value is not None:
                key = (row[1], row[2], row[3], name, float(value), signature)
                cells[key] = cells.get(key, 0) + 1

    current: Any = None
    themes: set[str] = set()
    for row in session.execute(stmt.execution_options(yield_per=10_000)):
        if current is not None and row[0] != current[0]:
            flush(current, themes)
            themes = set()
        current = row
        if row[8] is not None:
            themes.add(row[8])
    if current is not None:
        flush(current, themes)
    rows = [
        {
            "day": k[0],
            "channel": k[1],
            "source": k[2],
            "score": k[3],
            "value": k[4],
            "themes": k[5],
            "count": n,
        }
        for k, n in cells.items()
    ]
    for i in range(0, len(rows), _KEYWORD_CHUNK):
        session.execute(insert(DriverCell), rows[i : i + _KEYWORD_CHUNK])


def bump_version(session: Session, name: str) -> None:
    """+1 on the named data version (in the caller's transaction: readers see the new data
    and the new version together)."""
    if session.get(DataVersion, name) is None:
        session.add(DataVersion(name=name, version=0))
        session.flush()
    session.execute(
        update(DataVersion).where(DataVersion.name == name).values(version=DataVersion.version + 1)
    )


def _record_change(
    session: Session, day_list: list[date] | None, since: date | None, until: date | None
) -> None:
    """Bump the "aggregates" version and log the day range this rebuild touched under it.
    The row is added after the bump's row lock is taken, so concurrent rebuilds log their
    versions in commit order and a reader never misses one (core.versions.ChangeLog)."""
    bump_version(session, "aggregates")
    if day_list:
        first, last = day_list[0], day_list[-1]
    else:
        first, last = since or date.min, until or date.max
    version = session.execute(
        select(DataVersion.version).where(DataVersion.name == "aggregates")
    ).scalar_one()
    session.add(AggregateChange(version=version, first_day=first, last_day=last, changed_at=_now()))
    # Bounded: readers only keep the latest few hundred (older versions read as "all days").
    session.execute(delete(AggregateChange).where(AggregateChange.version <= version - 5000))


def _now() -> datetime:
    return datetime.now(UTC)


def aggregate_all(session: Session) -> int:
    return aggregate(session, days=None)

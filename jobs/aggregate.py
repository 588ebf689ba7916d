"""`verbatim aggregate`: rebuild `daily_aggregates` with SQL GROUP BY (INSERT ... SELECT).

Rows per day x theme x channel x source, plus theme "*" for all analysed verbatims of the day.
A theme row counts the verbatims mentioning the theme, by the mention's polarity; a "*" row
counts verbatims by their document sentiment. When a verbatim has several analyses (model
versions), the latest one counts. Days are UTC days of `feedback.created_at`. Only French
verbatims are counted (core.queries.AGGREGATED_LANGUAGES): other languages are reported apart
(`other_language_volumes`), never mixed into French figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Date, Float, Integer, cast, delete, func, literal, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.models import ALL_THEMES, Analysis, DailyAggregate, Feedback, ThemeMention
from core.queries import AGGREGATED_LANGUAGES, latest_analysis

COLUMNS = (
    "day",
    "theme",
    "channel",
    "source",
    "volume",
    "negatives",
    "neutrals",
    "positives",
    "rating_sum",
    "rating_count",
    "severity_sum",
)


def feedback_day(session: Session) -> ColumnElement[date]:
    """The UTC day of feedback.created_at, in the dialect's SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", Feedback.created_at), Date)
    return type_coerce(func.date(Feedback.created_at), Date)


def _count(polarity_col: ColumnElement[str], label: str) -> ColumnElement[int]:
    return func.sum(cast(polarity_col == label, Integer))


MAX_DAY_LIST = 500  # beyond this, recompute the whole span (bounded SQL parameters)


def aggregate(
    session: Session, *, days: Iterable[date] | None = None, since: date | None = None
) -> int:
    """Recompute the given days (or every day from `since`, or all days when both are None)
    in the caller's transaction. Recomputing is idempotent: rows are replaced, never added to.

    Returns the number of aggregate rows written.
    """
    day_list = None if days is None else sorted(set(days))
    if day_list is not None and not day_list:
        return 0
    until: date | None = None
    if day_list is not None and len(day_list) > MAX_DAY_LIST:
        since, until, day_list = day_list[0], day_list[-1], None
    # "Latest analysis of its verbatim": no newer analysis of the same feedback exists.
    # (A NOT EXISTS on the (feedback_id, model_version) index; a join on a GROUP BY subquery
    # made SQLite scan theme_mentions once per analysis.)
    is_latest = latest_analysis()
    fday = feedback_day(session)
    french = Feedback.language.in_(AGGREGATED_LANGUAGES)

    themes = (
        select(
            ThemeMention.day,
            ThemeMention.theme,
            Feedback.channel,
            Feedback.source,
            func.count(),
            _count(ThemeMention.polarity, "negative"),
            _count(ThemeMention.polarity, "neutral"),
            _count(ThemeMention.polarity, "positive"),
            func.coalesce(func.sum(Feedback.rating), literal(0.0, Float)),
            func.count(Feedback.rating),
            func.coalesce(func.sum(Analysis.severity), literal(0.0, Float)),
        )
        .join(Analysis, Analysis.id == ThemeMention.analysis_id)
        .join(Feedback, Feedback.id == ThemeMention.feedback_id)
        .where(is_latest, french)
        .group_by(ThemeMention.day, ThemeMention.theme, Feedback.channel, Feedback.source)
    )
    totals = (
        select(
            fday,
            literal(ALL_THEMES),
            Feedback.channel,
            Feedback.source,
            func.count(),
            _count(Analysis.sentiment, "negative"),
            _count(Analysis.sentiment, "neutral"),
            _count(Analysis.sentiment, "positive"),
            func.coalesce(func.sum(Feedback.rating), literal(0.0, Float)),
            func.count(Feedback.rating),
            func.coalesce(func.sum(Analysis.severity), literal(0.0, Float)),
        )
        .join(Analysis, Analysis.feedback_id == Feedback.id)
        .where(is_latest, french)
        .group_by(fday, Feedback.channel, Feedback.source)
    )
    table = DailyAggregate.__table__
    scope = []  # conditions on DailyAggregate.day, mirrored on the two queries
    if day_list is not None:
        scope.append(DailyAggregate.day.in_(day_list))
        themes = themes.where(ThemeMention.day.in_(day_list))
        totals = totals.where(fday.in_(day_list))
    if since is not None:
        scope.append(DailyAggregate.day >= since)
        themes = themes.where(ThemeMention.day >= since)
        totals = totals.where(fday >= since)
    if until is not None:
        scope.append(DailyAggregate.day <= until)
        themes = themes.where(ThemeMention.day <= until)
        totals = totals.where(fday <= until)
    session.execute(delete(DailyAggregate).where(*scope))
    for query in (themes, totals):
        session.execute(table.insert().from_select(COLUMNS, query))
    # Counted afterwards: drivers disagree on rowcount for INSERT ... SELECT (psycopg: -1).
    return int(session.scalar(select(func.count()).select_from(DailyAggregate).where(*scope)) or 0)


def aggregate_all(session: Session) -> int:
    return aggregate(session, days=None)

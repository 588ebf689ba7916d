"""Data versions: what a cached view depends on, read in one query per request.

A rendered view (API response) stays valid while its *token* is unchanged: the version of the
aggregates over the days it reads (a rebuild of other days does not count, see `ChangeLog`),
the alerts' version, the taxonomy version and the last day with data (the default period
ends there), plus, for views that read them, the latest analysis, the topics or the
incidents.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Date, column, event, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from core.day_table import DayTable
from core.models import (
    COLUMNS,
    FACET_KEYS,
    FACET_VALUES,
    KEY_COLUMNS,
    AggregateChange,
    Alert,
    Analysis,
    ApiKey,
    Correction,
    DailyAggregate,
    DailyFacet,
    DailyKeyword,
    DataVersion,
    DriverCell,
    Incident,
    TaxonomyVersion,
)

if TYPE_CHECKING:
    from core.change_feed import ChangeFeed

ALL_DAYS = (date.min, date.max)


@dataclass(frozen=True, slots=True)
class Versions:
    aggregates: int  # the "aggregates" data version (bumped by every rebuild)
    aggregate_ids: tuple[int, int]  # max/min row id: rows written by code older than the counter
    alerts: tuple[int, str, int]  # count, last update, open alerts
    taxonomy: int | None
    latest_day: date | None
    analyses: int  # latest analysis id: a new or corrected analysis
    topics: int  # the "topics" data version (bumped by every topic run)
    incidents: tuple[int, str]  # count, last update
    # latest analyst correction: every view's token changes at once, in every API process
    # (a job's write may be served stale while the view is rebuilt; an analyst's own fix not)
    corrections: int = 0
    # the "erasures" data version (`verbatim forget`, DELETE /feedback/{id}, `purge`): likewise, an
    # erased verbatim's text is never answered late from a kept view
    erasures: int = 0
    key_scopes: str | None = None  # scopes of the API key asked about (None: no such live key)


@dataclass(frozen=True, slots=True)
class ViewDeps:
    """What a view reads besides the alerts, taxonomy and last day (always in its token)."""

    days: tuple[date, date] | None = None  # the aggregates of these days (None: not read)
    analyses: bool = False  # stored verbatims and their analyses (any aggregate rebuild too)
    topics: bool = False
    incidents: bool = False


def _versions_sql(with_key: bool) -> TextualSelect:
    """One statement of scalar subqueries, each an indexed lookup (or a count over the small
    alerts/incidents tables). Written as text: building and cache-keying the equivalent
    expression cost more than running it, on every request."""
    t = {
        m.__name__: m.__tablename__
        for m in (
            Alert,
            Analysis,
            ApiKey,
            Correction,
            DailyAggregate,
            DataVersion,
            Incident,
            TaxonomyVersion,
        )
    }
    # (Separate subqueries: SQLite only uses the index shortcut for a lone min() or max().)
    parts = [
        f"(SELECT version FROM {t['DataVersion']} WHERE name = 'aggregates') AS aggregates",
        f"(SELECT max(id) FROM {t['DailyAggregate']}) AS agg_max",
        f"(SELECT min(id) FROM {t['DailyAggregate']}) AS agg_min",
        f"(SELECT count(*) FROM {t['Alert']}) AS alerts_n",
        f"(SELECT max(updated_at) FROM {t['Alert']}) AS alerts_updated",
        f"(SELECT count(*) FROM {t['Alert']} WHERE status = 'open') AS alerts_open",
        f"(SELECT max(version) FROM {t['TaxonomyVersion']}) AS taxonomy",
        f"(SELECT max(day) FROM {t['DailyAggregate']}) AS latest_day",
        f"(SELECT max(id) FROM {t['Analysis']}) AS analyses",
        f"(SELECT version FROM {t['DataVersion']} WHERE name = 'topics') AS topics",
        f"(SELECT count(*) FROM {t['Incident']}) AS incidents_n",
        f"(SELECT max(updated_at) FROM {t['Incident']}) AS incidents_updated",
        f"(SELECT max(id) FROM {t['Correction']}) AS corrections",
        f"(SELECT version FROM {t['DataVersion']} WHERE name = 'erasures') AS erasures",
    ]
    if with_key:
        parts.append(
            f"(SELECT scopes FROM {t['ApiKey']} WHERE key_hash = :key_hash"
            " AND revoked_at IS NULL) AS key_scopes"
        )
    return text("SELECT " + ", ".join(parts)).columns(
        *(column(p.rsplit(" AS ", 1)[1]) for p in parts[:7]),
        column("latest_day", Date()),
        *(column(p.rsplit(" AS ", 1)[1]) for p in parts[8:]),
    )


_WITHOUT_KEY = _versions_sql(False)
_WITH_KEY = _versions_sql(True)


def read_versions(
    conn: Session | Connection,
    key_hash: str | None = None,
    feed: ChangeFeed | None = None,
) -> Versions:
    """Every version a view token needs, in one statement (and, given an API key's hash,
    that key's scopes when it is live).

    On SQLite the result is kept with the connection and reused while `PRAGMA data_version`
    (commits by any other connection) and the connection's own change count are unchanged:
    two integer reads instead of 15 subqueries, on every cached and cold API read. On
    PostgreSQL, given the process's change `feed`, it is reused until a change is notified
    (`core.change_feed`): no statement at all."""
    if feed is not None:
        return feed.versions(key_hash, lambda: _read_versions(conn, key_hash))
    connection = conn.connection() if isinstance(conn, Session) else conn
    stamp = _sqlite_stamp(connection)
    if stamp is None:
        return _read_versions(conn, key_hash)
    info = connection.connection.info
    memo: tuple[tuple[int, int], dict[str | None, Versions]] | None = info.get(_VERSIONS_MEMO)
    if memo is not None and memo[0] == stamp and key_hash in memo[1]:
        return memo[1][key_hash]
    # Read after the stamp: a commit in between leaves a newer result under an older stamp,
    # which the next call's stamp then replaces (never an older result under a newer one).
    versions = _read_versions(conn, key_hash)
    if memo is None or memo[0] != stamp or len(memo[1]) >= _MEMO_KEYS:
        memo = (stamp, {})
        info[_VERSIONS_MEMO] = memo
    memo[1][key_hash] = versions
    return versions


_VERSIONS_MEMO = "verbatim.versions_memo"  # DBAPI connection info: (stamp, key hash -> Versions)
_MEMO_KEYS = 64  # API keys remembered per stamp


def _sqlite_stamp(connection: Connection) -> tuple[int, int] | None:
    """(data_version, total_changes) of a pysqlite connection, None for other databases.
    data_version moves when another connection commits; total_changes when this one writes
    (its own commits do not move data_version)."""
    if connection.dialect.name != "sqlite":
        return None
    raw = connection.connection.driver_connection
    changes = getattr(raw, "total_changes", None)
    if changes is None:
        return None
    row = raw.execute("PRAGMA data_version").fetchone()  # type: ignore[union-attr]
    return int(row[0]), int(changes)


def _read_versions(conn: Session | Connection, key_hash: str | None) -> Versions:
    if key_hash is None:
        row = conn.execute(_WITHOUT_KEY).one()
    else:
        row = conn.execute(_WITH_KEY, {"key_hash": key_hash}).one()
    return Versions(
        aggregates=int(row[0] or 0),
        aggregate_ids=(int(row[1] or 0), int(row[2] or 0)),
        alerts=(int(row[3] or 0), str(row[4]), int(row[5] or 0)),
        taxonomy=row[6],
        latest_day=row[7],
        analyses=int(row[8] or 0),
        topics=int(row[9] or 0),
        incidents=(int(row[10] or 0), str(row[11])),
        corrections=int(row[12] or 0),
        erasures=int(row[13] or 0),
        key_scopes=row[14] if key_hash is not None else None,
    )


def session_versions(session: Session, key_hash: str | None = None) -> Versions:
    """`read_versions` once per transaction of `session`: a request's API key check, its
    default period, its taxonomy and its view token share one read (a commit or rollback
    forgets it). A read made for a key also answers reads without one; another key reads
    again. Read before the view's data, the token can only be older than that data: the
    view is then rebuilt sooner, never served past a change."""
    kept: tuple[str | None, Versions] | None = session.info.get(_SESSION_VERSIONS)
    if kept is not None and (key_hash is None or kept[0] == key_hash):
        return kept[1]
    versions = read_versions(session, key_hash, session.info.get(CHANGE_FEED))
    session.info[_SESSION_VERSIONS] = (key_hash, versions)
    return versions


def forget_versions(session: Session) -> None:
    """Drop what `session_versions` kept (the request itself changed a version, e.g. seeded
    the taxonomy): the next call reads again."""
    session.info.pop(_SESSION_VERSIONS, None)


class ChangeLog:
    """In-process copy of the latest `aggregate_changes` rows: the version of a day range.

    `version(first, last)` is the latest aggregates version whose rebuild touched a day of
    [first, last], so a view of last month keeps its token while today's data is rebuilt
    every few minutes. Versions with no logged range (older code, pruned rows) count as
    touching every day. The copy is refreshed from `Versions.aggregates` (a no-op unless
    a rebuild happened) and trimmed in blocks, so tokens of old periods change only once
    per `keep` rebuilds."""

    def __init__(self, keep: int = 512) -> None:
        self.keep = keep
        self._rows: list[tuple[int, date, date]] = []  # (version, first day, last day), ascending
        self._floor = 0  # versions <= floor are not in _rows: they may have touched any day
        self._seen = 0
        self._lock = threading.Lock()

    def refresh(self, session: Session | Connection, current: int) -> None:
        """Fetch the ranges of versions after the last seen one, up to `current`. An older
        `current` (a reader whose snapshot predates another's: readers alternate under
        PostgreSQL's read-committed) changes nothing: resetting the copy for it dropped the
        ranges a newer reader was about to read (core.day_table)."""
        if current <= self._seen:
            return
        with self._lock:
            if current <= self._seen:
                return
            start = max(self._seen, current - self.keep)
            found = {
                v: (a, b)
                for v, a, b in session.execute(
                    select(
                        AggregateChange.version, AggregateChange.first_day, AggregateChange.last_day
                    ).where(AggregateChange.version > start, AggregateChange.version <= current)
                )
            }
            if start > self._seen:  # versions between were skipped: unknown ranges
                self._rows, self._floor = [], start
            for v in range(start + 1, current + 1):
                first, last = found.get(v, ALL_DAYS)
                self._rows.append((v, first, last))
            self._seen = current
            if len(self._rows) > 2 * self.keep:
                cut = len(self._rows) - self.keep
                self._floor = self._rows[cut - 1][0]
                self._rows = self._rows[cut:]

    def touched_after(self, version: int) -> tuple[date, date] | None:
        """The day range covering every rebuild after `version` (None: there was none;
        ALL_DAYS when one of them is no longer, or never was, in the copy)."""
        if version < self._floor:
            return ALL_DAYS
        spans = [(a, b) for v, a, b in self._rows if v > version]
        if not spans:
            return None
        return min(a for a, _ in spans), max(b for _, b in spans)

    def version(self, first: date, last: date) -> int:
        """Latest version that touched a day in [first, last] (the floor when none did)."""
        rows = self._rows
        for v, a, b in reversed(rows):
            if a <= last and b >= first:
                return v
        return self._floor


ViewToken = tuple[tuple[object, ...], tuple[object, ...]]


def only_job_data_differs(kept: ViewToken, current: ViewToken) -> bool:
    """True when two tokens of a view differ only in what the jobs write (see `view_token`)."""
    return kept[0] == current[0]


def view_token(versions: Versions, changes: ChangeLog, deps: ViewDeps) -> ViewToken:
    """The token of a view with these dependencies (`changes` refreshed first), in two parts:
    what the API changes too (alerts, taxonomy, incidents, corrections, erasures: an
    acknowledgement, a taxonomy edit, an analyst's fix, a verbatim erased), then what only
    the jobs write (ingest, enrich, aggregate, topics)."""
    every_rebuild = (versions.aggregates, versions.aggregate_ids)
    return (
        (
            versions.alerts,
            versions.taxonomy,
            versions.incidents if deps.incidents else None,
            versions.corrections,
            versions.erasures,
        ),
        (
            versions.latest_day,
            None if deps.days is None else changes.version(*deps.days),
            (versions.analyses, every_rebuild) if deps.analyses else None,
            (versions.topics, every_rebuild) if deps.topics else None,
        ),
    )


class PeriodMemo:
    """What the API's period views share across requests (`core.queries` reads it from
    `session.info[PERIOD_MEMO]`):
    - per-period sums of the aggregates, so the views of one period (every theme's detail,
      trend, breakdown, the overview) do not each sum the same rows; keyed by the period's
      aggregates version, refreshed on each use (one primary-key lookup), so a rebuild of
      those days is seen at once;
    - in-memory copies of `daily_aggregates` and `daily_facets` (`core.day_table`) that the
      period queries read instead of the database, up to `table_rows` rows each (0: off)."""

    def __init__(self, changes: ChangeLog, size: int = 4096, table_rows: int = 0) -> None:
        self.changes = changes
        self.size = size
        self._data: dict[tuple[object, ...], object] = {}
        self._lock = threading.Lock()
        self.tables = {
            model.__tablename__: DayTable(model, keys, values, table_rows)
            for model, keys, values in DAY_TABLES
        }

    def current(self, session: Session) -> int:
        """The aggregates version `session` reads (the change log refreshed to it), read once
        per transaction (the views of one request share it; a commit forgets it)."""
        current = session.info.get(_SEEN_VERSION)
        if current is None:
            current = int(session.execute(_AGGREGATES_VERSION).scalar() or 0)
            session.info[_SEEN_VERSION] = current
            self.changes.refresh(session, current)
        return int(current)

    def note(self, session: Session, current: int) -> None:
        """`current` is the aggregates version `session` read elsewhere (with the view
        token's statement): the change log is refreshed to it and `current()` needs no query."""
        session.info[_SEEN_VERSION] = current
        self.changes.refresh(session, current)

    def key(self, session: Session, *params: object, days: tuple[date, date]) -> tuple:
        self.current(session)
        return (*params, *days, self.changes.version(*days))

    def table(self, session: Session, model: Any) -> DayTable | None:
        """The in-memory copy of `model`'s table, up to date for `session`; None when it is
        not kept (off, or too big)."""
        table = self.tables.get(model.__tablename__)
        if table is None or table.max_rows <= 0:
            return None
        return table if table.sync(session, self.current(session), self.changes) else None

    def get(self, key: tuple[object, ...]) -> object | None:
        return self._data.get(key)

    def put(self, key: tuple[object, ...], value: object) -> None:
        with self._lock:
            if len(self._data) >= self.size:
                self._data.clear()  # simple bound: recomputing a period is cheap
            self._data[key] = value


# The per-day tables the period views read, their key columns (the day apart) and their
# summed columns.
DAY_TABLES: tuple[tuple[Any, tuple[str, ...], tuple[str, ...]], ...] = (
    (DailyAggregate, KEY_COLUMNS[1:], COLUMNS[len(KEY_COLUMNS) :]),
    (DailyFacet, FACET_KEYS[1:], FACET_VALUES),
    # Rebuilt by the same aggregate runs (same logged day ranges): each day's top words.
    (DailyKeyword, ("theme", "channel", "source", "word"), ("count",)),
    # The key-driver regression's input (answers per set of themes), rebuilt with them too.
    (DriverCell, ("channel", "source", "score", "value", "themes"), ("count",)),
)

PERIOD_MEMO = "verbatim.period_memo"  # the session.info key of a PeriodMemo
CHANGE_FEED = "verbatim.change_feed"  # session.info: the process's ChangeFeed (PostgreSQL)
_SEEN_VERSION = "verbatim.aggregates_version"  # session.info: what PeriodMemo.current read
_SESSION_VERSIONS = "verbatim.versions"  # session.info: (key hash, Versions), see session_versions


@event.listens_for(Session, "after_transaction_end")
def _forget_seen_version(session: Session, _transaction: object) -> None:
    session.info.pop(_SEEN_VERSION, None)
    forget_versions(session)


_AGGREGATES_VERSION = select(DataVersion.version).where(DataVersion.name == "aggregates")

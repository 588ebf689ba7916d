"""Engine/session factory and schema migration (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nlp.errors import VerbatimError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


POOL_SIZE, POOL_OVERFLOW = 10, 30
POOL_CONNECTIONS = POOL_SIZE + POOL_OVERFLOW  # the most one engine opens at once


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL + foreign keys so readers never block the jobs."""
    _check_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # said "[Errno 17] File exists: '/srv/verbatim'"
                raise VerbatimError(
                    f"the database's directory {Path(path).parent} is a file: set data_dir "
                    "(VERBATIM_DATA_DIR) or database_url to a directory"
                ) from None
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            # The API admits POOL_CONNECTIONS // 2 requests at once (service.middleware).
            **(
                {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
                if path and path != ":memory:"
                else {}
            ),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            # Deleted rows are overwritten, not left in free pages (`verbatim forget`/`purge`
            # erase texts): some builds default to it, others do not.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    # The API admits POOL_CONNECTIONS // 2 requests at once (service.middleware).
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    _ping_when_idle(engine)
    return engine


def _check_url(url: str) -> None:
    """Refuse a URL SQLAlchemy misreads, without echoing it (it may hold a password). An `@`
    left in a password ends the user part early: the rest of the password became the host
    ("failed to resolve host 'ss@db'") or, with a `:` after it, the port (a ValueError
    traceback quoting the password's end)."""
    hint = "percent-encode @, :, / and % in the user name and password (@ is %40)"
    try:
        parsed = make_url(url)
    except ValueError:  # not ArgumentError (an unparsable URL: the CLI already says so)
        raise VerbatimError(f"invalid database_url: the port is not a number; {hint}") from None
    if parsed.host and "@" in parsed.host:
        raise VerbatimError(f"invalid database_url: '@' in the host name; {hint}")


IDLE_PING_S = 5.0  # a pooled connection unused this long is pinged before it is handed out


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for connections idle over IDLE_PING_S: a
    database restart or a dropped idle connection is still caught before use, and a busy API
    does not pay a round trip per request (measured: 5 % of its time under load). A
    connection that fails the ping is replaced (the pool retries the checkout)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: a new connection
            raise DisconnectionError("pooled connection failed its ping") from exc


AGGREGATES_LOCK = 7401208816  # pg_advisory_xact_lock key: aggregate rebuilds vs analysis writes


class AggregatesBusy(VerbatimError):
    """`lock_aggregates` waited its `timeout_s`: a long rebuild holds the lock."""


def lock_aggregates(
    session: Session, *, shared: bool = False, timeout_s: float | None = None
) -> None:
    """PostgreSQL: serialise aggregate rebuilds (exclusive) against each other and against
    transactions that write analyses (shared), until the transaction ends. Take it before any
    row lock of the transaction (no lock-order cycle). READ COMMITTED gives each statement of
    a rebuild its own snapshot: without it, a concurrent rebuild's rows make the second one
    fail on the unique keys, and a batch committed mid-rebuild lands in the '*' rows but not
    in the theme rows. SQLite serialises writers anyway: nothing to do."""
    if session.get_bind().dialect.name != "postgresql":
        return
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    if timeout_s is None:
        session.execute(text(f"select {fn}(:k)"), {"k": AGGREGATES_LOCK})
        return
    # A request must not wait for a full rebuild (minutes at 1M rows): `timeout_s`, then
    # AggregatesBusy. A savepoint keeps the transaction usable after the timeout.
    before = session.execute(text("select current_setting('lock_timeout')")).scalar()
    session.execute(text(f"SET LOCAL lock_timeout = '{int(timeout_s * 1000)}ms'"))
    try:
        with session.begin_nested():
            session.execute(text(f"select {fn}(:k)"), {"k": AGGREGATES_LOCK})
    except OperationalError as exc:
        raise AggregatesBusy(
            "the aggregates are being rebuilt (verbatim aggregate / run): retry in a moment"
        ) from exc
    finally:  # this transaction's value back (RESET would change the connection's default)
        session.execute(text("select set_config('lock_timeout', :v, true)"), {"v": before})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DETECTION_LOCK = 7401208817  # pg_advisory_xact_lock key: one spike-detection day at a time


@contextmanager
def detection_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """`session_scope` for one day of spike detection, one at a time across processes: the
    scheduler's `detect` or `run` tick, `verbatim detect` and `verbatim run` may detect at
    once (only `run` holds the run lock). Two on the same day both raised its new alerts: the
    second failed on alerts.alert_key (an IntegrityError traceback, the tick failed), or both
    opened an incident for an alert already stored (two messages). PostgreSQL: an advisory
    lock to the end of the transaction (READ COMMITTED: the second then reads the first's
    rows); SQLite: a file lock next to the database, released after the commit (SQLite's own
    write lock comes at the first write, after the reads)."""
    lock = sqlite_file_lock(factory.kw.get("bind"), "detect")
    if lock is not None:
        with lock, session_scope(factory) as session:
            yield session
        return
    with session_scope(factory) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": DETECTION_LOCK})
        yield session


class SchemaError(VerbatimError):
    """The database cannot be migrated by this version: newer than the code, not Verbatim's,
    or not a database at all. The CLI prints it as one line."""

    exit_code = 1


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (idempotent).

    Refuses, with one `SchemaError`, a database this code cannot own: one migrated by a newer
    Verbatim (a downgraded package), Verbatim tables without a migration record, a SQLite file
    with other tables or not a SQLite database. Nothing is created in those."""
    from alembic import command
    from alembic.config import Config

    known, heads = _revisions()
    # Several processes may start on a fresh database at once (API + scheduler containers,
    # two schedulers): one migrates, the others wait and then find it done.
    with (
        _migration_lock(engine),
        _connect(engine) as conn,
        foreign_keys_off(conn),
        ddl_transaction(conn),
    ):
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("select pg_advisory_xact_lock(7401208815)")
        versions = _check_owned(conn, set(known), list(heads))
        # Every command and API start calls this: at head, Alembic (which loads each revision
        # file again, 0.1 s) has nothing to do.
        if sorted(versions) != sorted(heads):
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        _run_pending_rebuild(conn)


@functools.cache
def _revisions() -> tuple[frozenset[str], tuple[str, ...]]:
    """The known revisions and the heads of the migration scripts (read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    return frozenset(s.revision for s in script.walk_revisions()), tuple(script.get_heads())


def _connect(engine: Engine) -> Connection:
    try:
        return engine.connect()
    except DatabaseError as exc:
        if isinstance(exc, OperationalError):
            raise  # a server down, a missing directory: the CLI already says it in one line
        if engine.dialect.name != "sqlite":
            # psycopg refuses a URL's unknown option (`?schema=x`) before connecting: a
            # ProgrammingError traceback. Its message names the option, never the password.
            raise VerbatimError(f"invalid database_url: {exc.orig}") from None
        # "file is not a database" (a text file, an encrypted file).
        raise SchemaError(
            f"{engine.url.database} is not a SQLite database ({exc.orig}); "
            "point database_url at a Verbatim database or a new file"
        ) from None


@contextmanager
def foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while migrations run, on again after.

    Batch mode rewrites a table as copy, DROP, rename; with foreign keys on, SQLite's DROP
    TABLE first deletes every row, and ON DELETE CASCADE then emptied the referencing tables
    (0002_incidents_taxonomy rewrote `alerts`, and every `outbox` row was gone). The pragma
    is a no-op inside a transaction: it runs before `conn.begin()`."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    off = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    conn.commit()
    if off != 0:
        raise RuntimeError("SQLite foreign keys could not be turned off for the migration")
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


@contextmanager
def ddl_transaction(conn: Connection) -> Iterator[None]:
    """`conn.begin()`, whose CREATE / ALTER / DROP also roll back on SQLite.

    Python's sqlite3 opens a transaction before INSERT / UPDATE / DELETE only: each DDL statement
    of a migration committed on its own, so a first start cut short (Ctrl-C, a full disk, a
    kill) left Verbatim tables without `alembic_version`, and every later start refused the
    database ("no migration record"). Here the driver opens nothing and BEGIN is ours: the
    whole upgrade lands, or nothing does."""
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    level = dbapi.isolation_level
    dbapi.isolation_level = None  # no implicit BEGIN (nor COMMIT) by the driver
    try:
        with conn.begin():
            conn.exec_driver_sql("BEGIN")
            yield
    finally:
        dbapi.isolation_level = level


def _check_owned(conn: Connection, known: set[str], heads: list[str]) -> list[str]:
    """Raise SchemaError unless `conn`'s database is Verbatim's at a known revision or new;
    return its revisions (none for a new database)."""
    from core.models import Base

    tables = set(inspect(conn).get_table_names())
    versions: list[str] = []
    if "alembic_version" in tables:
        versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    where = conn.engine.url.database if conn.dialect.name == "sqlite" else "the database"
    unknown = [v for v in versions if v not in known]
    if unknown:
        raise SchemaError(
            f"{where} is at schema revision {', '.join(unknown)}, newer than this Verbatim "
            f"knows (latest: {', '.join(heads)}): it was migrated by a newer version. Install "
            "that version again, or restore a backup taken before the upgrade"
        )
    if versions:
        return versions
    ours = sorted(tables & set(Base.metadata.tables))
    if ours:
        raise SchemaError(
            f"{where} has Verbatim tables ({', '.join(ours[:3])}, ...) but no migration record "
            "(alembic_version): it was not created by `verbatim`'s migrations. Restore it "
            "from a backup or point database_url at a new database"
        )
    others = sorted(tables - {"alembic_version"})
    if others and conn.dialect.name == "sqlite":
        raise SchemaError(
            f"{where} is not a Verbatim database (it holds other tables: "
            f"{', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
            "point database_url at a Verbatim database or a new file"
        )
    return versions


# A migration that changes what the aggregates hold sets this `data_versions` row; the rebuild
# then runs here, with the schema at head (code run inside a migration meets an older schema).
REBUILD_MARKER = "rebuild:aggregates"


def _run_pending_rebuild(conn: Any) -> None:
    marker = {"n": REBUILD_MARKER}
    if conn.execute(text("SELECT 1 FROM data_versions WHERE name = :n"), marker).first() is None:
        return
    from core.aggregate import aggregate_all

    session = Session(bind=conn)
    try:
        aggregate_all(session)
        session.flush()
    finally:
        session.close()
    conn.execute(text("DELETE FROM data_versions WHERE name = :n"), marker)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """A file lock next to a SQLite database file (PostgreSQL uses an advisory lock)."""
    lock = sqlite_file_lock(engine, "migrate", timeout=300)
    if lock is None:
        yield
        return
    with lock:
        yield


def sqlite_file_lock(engine: object, name: str, timeout: float = -1) -> Any | None:
    """A file lock `<database>.<name>.lock` next to a SQLite database file; None for another
    database or an in-memory one. `timeout` -1: wait as long as it takes."""
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    from filelock import FileLock

    return FileLock(str(Path(database).resolve()) + f".{name}.lock", timeout=timeout)

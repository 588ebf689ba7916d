"""Engine/session factory and schema migration (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


POOL_SIZE, POOL_OVERFLOW = 10, 30
POOL_CONNECTIONS = POOL_SIZE + POOL_OVERFLOW  # the most one engine opens at once


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL + foreign keys so readers never block the jobs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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
            cur.close()

        return engine
    # The API admits POOL_CONNECTIONS // 2 requests at once (service.middleware).
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    _ping_when_idle(engine)
    return engine


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


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Several processes may start on a fresh database at once (API + scheduler containers,
    # two schedulers): one migrates, the others wait and then find it done.
    with _migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("select pg_advisory_xact_lock(7401208815)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        _run_pending_rebuild(conn)


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
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    from filelock import FileLock

    with FileLock(str(Path(database).resolve()) + ".migrate.lock", timeout=300):
        yield

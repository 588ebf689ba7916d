"""Concurrent writers and readers: two enrich runs over the same rows (SQLite and PostgreSQL)
and identical cold GET /themes computed once."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Analysis, Feedback, ThemeMention
from core.settings import Settings
from jobs.demo import DemoSpec, write_demo
from jobs.enrich import enrich
from jobs.ingest import ingest_file


@pytest.fixture(scope="module")
def analyzer() -> Any:
    from core.analysis import build_analyzer

    return build_analyzer(Settings(data_dir=Path("unused"), sentiment_backend="lexicon"))


class InLockstep:
    """Analyzer wrapper: both runs analyse the same batch before either writes it, so they
    always collide on UNIQUE(feedback_id, model_version)."""

    def __init__(self, inner: Any, barrier: threading.Barrier) -> None:
        self.inner, self.barrier = inner, barrier
        self.model_version = inner.model_version

    def analyze(self, texts: list[str]) -> Any:
        docs = self.inner.analyze(texts)
        # BrokenBarrierError: the other run is done, nothing left to collide with.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=20)
        return docs


def _two_concurrent_enrich_runs(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], analyzer: Any
) -> None:
    feed = tmp_path / "feed.jsonl"
    count = write_demo(feed, DemoSpec(days=3, seed=3, end=date(2026, 11, 10), per_day=10))
    ingest_file(sessions, settings, feed, source="demo")
    small = settings.model_copy(update={"batch_size": 8})
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(enrich(sessions, small, analyzer=InLockstep(analyzer, barrier)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            barrier.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with sessions() as session:
        analyses = session.scalar(select(func.count()).select_from(Analysis))
        pending = session.scalar(
            select(func.count()).select_from(Feedback).where(Feedback.analyzed.is_(False))
        )
        dup_mentions = session.execute(
            select(ThemeMention.feedback_id, ThemeMention.theme)
            .group_by(ThemeMention.feedback_id, ThemeMention.theme)
            .having(func.count() > 1)
        ).all()
        mentions = session.scalar(select(func.count()).select_from(ThemeMention))
    assert analyses == count and pending == 0 and not dup_mentions
    assert sum(r.skipped for r in results) > 0  # they did collide
    assert sum(r.mentions for r in results) == mentions


def test_two_enrich_runs_at_once_sqlite(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], analyzer: Any
) -> None:
    _two_concurrent_enrich_runs(tmp_path, settings, sessions, analyzer)


@pytest.mark.postgres
def test_two_enrich_runs_at_once_postgres(
    tmp_path: Path, settings: Settings, pg_sessions: sessionmaker[Session], analyzer: Any
) -> None:
    _two_concurrent_enrich_runs(tmp_path, settings, pg_sessions, analyzer)


# --- cache stampede --------------------------------------------------------------------------


def test_view_cache_single_flight() -> None:
    from service.views import ViewCache

    cache = ViewCache()
    calls: list[int] = []
    start = threading.Barrier(20)

    def compute() -> tuple[bytes, str]:
        calls.append(1)
        time.sleep(0.3)  # a slow cold query: the other 19 requests arrive meanwhile
        return b"{}", '"etag"'

    out: list[tuple[bytes, str]] = []

    def request() -> None:
        start.wait(timeout=10)
        out.append(cache.get_or_compute(("themes", 1), compute))

    threads = [threading.Thread(target=request) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1 and len(out) == 20 and set(out) == {(b"{}", '"etag"')}
    assert cache.stats["computed"] == 1 and cache.stats["shared"] + cache.stats["hits"] == 19

    # A failing leader does not poison the key: the next request computes again.
    def boom() -> tuple[bytes, str]:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        cache.get_or_compute(("themes", 2), boom)
    assert cache.get_or_compute(("themes", 2), compute) == (b"{}", '"etag"')


def test_identical_cold_themes_requests_compute_once(
    settings: Settings, sessions: sessionmaker[Session], engine: Any
) -> None:
    from api_seed import seed
    from fastapi.testclient import TestClient

    from service.app import create_app

    seed(sessions)
    open_read = settings.model_copy(update={"dashboard_read_without_key": True})
    client = TestClient(create_app(open_read, engine=engine), base_url="http://127.0.0.1")
    bodies: list[bytes] = []
    gate = threading.Barrier(12)

    def get() -> None:
        gate.wait(timeout=10)
        res = client.get("/themes?days=30")
        assert res.status_code == 200
        bodies.append(res.content)

    threads = [threading.Thread(target=get) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stats = client.app.state.verbatim.view_cache.stats  # type: ignore[attr-defined]
    assert len(bodies) == 12 and len(set(bodies)) == 1
    assert stats["computed"] == 1 and stats["shared"] + stats["hits"] == 11


@pytest.mark.postgres
def test_two_aggregate_rebuilds_of_one_day_at_once_postgres(
    pg_sessions: sessionmaker[Session],
) -> None:
    """`verbatim run` rebuilding a day while a correction re-aggregates it: the second rebuild's
    delete could not see the first one's rows (READ COMMITTED), and its insert failed on the
    unique keys (the correction answered 500, rolled back). Rebuilds now take turns."""
    from api_seed import LAST_DAY, seed

    from core.aggregate import aggregate
    from core.models import DailyAggregate

    seed(pg_sessions)
    first = pg_sessions()
    aggregate(first, days=[LAST_DAY])  # job A: rebuilt, not committed yet
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with pg_sessions.begin() as session:
                aggregate(session, days=[LAST_DAY])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(1.0)  # B waits for A
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    with pg_sessions() as session:
        rows = session.scalar(
            select(func.count()).select_from(DailyAggregate).where(DailyAggregate.day == LAST_DAY)
        )
        assert rows and rows > 0


@pytest.mark.postgres
def test_a_correction_does_not_wait_through_a_rebuild_postgres(
    pg_sessions: sessionmaker[Session],
) -> None:
    """A full rebuild holds the aggregates lock for minutes at 1M rows: a correction request
    waited that long, holding a connection and a worker. It gives up after its timeout (the
    API answers 503), with its transaction still usable."""
    from sqlalchemy import text

    from core.db import AggregatesBusy, lock_aggregates

    rebuild = pg_sessions()
    lock_aggregates(rebuild)  # held until the rebuild's transaction ends
    with pg_sessions() as request:
        started = time.monotonic()
        with pytest.raises(AggregatesBusy, match="being rebuilt"):
            lock_aggregates(request, timeout_s=0.3)
        assert time.monotonic() - started < 5
        assert request.execute(text("select 1")).scalar() == 1
        rebuild.rollback()
        rebuild.close()
        lock_aggregates(request, timeout_s=0.3)  # free now
        assert request.execute(text("show lock_timeout")).scalar() in ("0", "0ms")


def test_api_writes_behind_another_process_write_answer_503_sqlite(
    settings: Settings, sessions: sessionmaker[Session], engine: Any, keys: dict[str, str]
) -> None:
    """SQLite: an API write waiting past busy_timeout for another process's write (a full
    `verbatim aggregate` at 1M rows holds it for minutes) answered 500 « internal server
    error »; it is a 503 with Retry-After, and the retry once the lock is free succeeds."""
    import sqlite3

    from api_seed import seed
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from service.app import create_app

    seed(sessions)
    fid = sessions().scalar(select(Feedback.id).limit(1))

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn: Any, _record: Any) -> None:  # the 10 s wait, shortened
        dbapi_conn.execute("PRAGMA busy_timeout=200")

    engine.dispose()
    client = TestClient(create_app(settings, engine=engine), raise_server_exceptions=False)
    write = {"X-API-Key": keys["write"]}
    url = f"/feedback/{fid}/corrections"
    batch = {"source": "api", "channel": "review", "items": [{"id": "k1", "text": "Colis abîmé"}]}
    other = sqlite3.connect(settings.resolved_database_url.removeprefix("sqlite:///"))
    other.isolation_level = None
    other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        for res in (
            client.post("/feedback", json=batch, headers=write),
            client.post(url, json={"sentiment": "negative"}, headers=write),
        ):
            assert res.status_code == 503, res.text
            assert res.headers["Retry-After"] == "5"
            assert "retry" in res.json()["detail"]
    finally:
        other.execute("COMMIT")
        other.close()
    assert client.post("/feedback", json=batch, headers=write).json()["stored"] == 1


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_enrich_batch_marks_its_verbatims_analysed_once(
    tmp_path: Path, settings: Settings, request: pytest.FixtureRequest, analyzer: Any, db: str
) -> None:
    """The batch ran an UPDATE ... RETURNING to keep the rows still stored (a concurrent
    `forget`), then store_analyses updated the same rows again: two row versions each."""
    from sqlalchemy import event

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    feed = tmp_path / "feed.jsonl"
    count = write_demo(feed, DemoSpec(days=2, seed=3, end=date(2026, 11, 10), per_day=10))
    ingest_file(sessions, settings, feed, source="demo")
    updates: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE FEEDBACK"):
            updates.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        result = enrich(sessions, settings, analyzer=analyzer, batch_size=count)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert result.analyzed == result.stored == count
    assert len(updates) == 1, updates

"""PostgreSQL change feed (core.change_feed): the API reuses its read of the data versions
until a change is notified, sees another process's write once the notification arrives, its
own writes at once, and reads the database every time while it is not listening. Also the
pool's ping of idle connections (core.db). A real PostgreSQL server (VERBATIM_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from core.aggregate import bump_version
from core.change_feed import CHANNEL, ChangeFeed
from core.db import IDLE_PING_S, make_engine, session_scope
from core.settings import Settings
from core.versions import read_versions
from service.app import create_app
from service.auth import create_key, revoke_key
from tests.api_seed import seed

pytestmark = pytest.mark.postgres

VERSIONS_STATEMENT = "AS incidents_updated"  # a piece of core.versions' statement


@pytest.fixture
def other(pg_sessions: sessionmaker[Session]) -> Iterator[Engine]:
    """An engine on the same schema that is not the feed's: it stands for the jobs, the CLI
    or another API replica (its writes reach the feed only through PostgreSQL)."""
    engine = pg_sessions.kw["bind"]
    with engine.connect() as conn:
        schema = conn.execute(text("select current_schema()")).scalar_one()
    other = create_engine(engine.url, connect_args={"options": f"-csearch_path={schema}"})
    yield other
    other.dispose()


@pytest.fixture
def feed(pg_sessions: sessionmaker[Session]) -> Iterator[ChangeFeed]:
    found: ChangeFeed = ChangeFeed(pg_sessions.kw["bind"], max_age_s=60, retry_s=0.1)
    found.start()
    assert found.wait_live(10), "the feed did not start listening"
    yield found
    found.stop()


def _count_versions_reads(engine: Engine) -> list[int]:
    counted = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_c: object, _cur: object, statement: str, *_: object) -> None:
        counted[0] += VERSIONS_STATEMENT in statement

    return counted


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not seen in time")
        time.sleep(0.01)


def _topics_version(sessions: sessionmaker[Session], feed: ChangeFeed | None) -> int:
    with sessions() as session:
        return read_versions(session, None, feed).topics


def _bump_topics(engine: Engine) -> None:
    with session_scope(sessionmaker(engine)) as session:
        bump_version(session, "topics")


def test_versions_are_read_once_until_another_process_writes(
    pg_sessions: sessionmaker[Session], feed: ChangeFeed, other: Engine
) -> None:
    reads = _count_versions_reads(pg_sessions.kw["bind"])
    before = _topics_version(pg_sessions, feed)
    assert [_topics_version(pg_sessions, feed) for _ in range(4)] == [before] * 4
    assert reads[0] == 1  # one statement, then the kept result

    generation = feed.generation
    _bump_topics(other)  # a job's commit: notified by the triggers of migration 0007
    _until(lambda: feed.generation != generation)
    assert _topics_version(pg_sessions, feed) == before + 1
    assert reads[0] == 2 and feed.stats["notifications"] >= 1


def test_a_write_through_the_same_engine_is_seen_at_once(
    pg_sessions: sessionmaker[Session], feed: ChangeFeed
) -> None:
    with session_scope(pg_sessions) as session:  # no notification can come: only the engine
        session.execute(text("DROP TRIGGER verbatim_versions_notify ON data_versions"))
    before = _topics_version(pg_sessions, feed)
    _bump_topics(pg_sessions.kw["bind"])
    assert _topics_version(pg_sessions, feed) == before + 1
    assert feed.stats["notifications"] == 0
    with pg_sessions() as session:  # a write rolled back changes nothing: still reused
        session.execute(text("UPDATE data_versions SET version = 99 WHERE name = 'topics'"))
        session.rollback()
    reads = _count_versions_reads(pg_sessions.kw["bind"])
    assert _topics_version(pg_sessions, feed) == before + 1 and reads[0] == 0


def _drop_listener(other: Engine) -> None:
    """End the feed's connection from the server side (a restart, a network cut)."""
    with other.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query = :listen AND pid <> pg_backend_pid()"
            ),
            {"listen": f"LISTEN {CHANNEL}"},
        )


def test_while_not_listening_every_read_goes_to_the_database(
    pg_sessions: sessionmaker[Session], other: Engine
) -> None:
    feed: ChangeFeed = ChangeFeed(pg_sessions.kw["bind"], max_age_s=60, retry_s=60)
    feed.start()
    try:
        assert feed.wait_live(10)
        before = _topics_version(pg_sessions, feed)
        _drop_listener(other)
        _until(lambda: feed.generation is None)
        reads = _count_versions_reads(pg_sessions.kw["bind"])
        _bump_topics(other)  # a change nobody is notified of: read, not the kept result
        assert _topics_version(pg_sessions, feed) == before + 1
        assert _topics_version(pg_sessions, feed) == before + 1
        assert reads[0] == 2
    finally:
        feed.stop()


def test_the_feed_listens_again_and_forgets_what_it_kept(
    pg_sessions: sessionmaker[Session], feed: ChangeFeed, other: Engine
) -> None:
    before = _topics_version(pg_sessions, feed)
    generation = feed.generation
    assert generation is not None and feed.stats["connects"] == 1
    _drop_listener(other)
    _until(lambda: feed.stats["connects"] == 2 and feed.generation is not None)
    assert feed.generation is not None and feed.generation > generation
    reads = _count_versions_reads(pg_sessions.kw["bind"])
    assert _topics_version(pg_sessions, feed) == before and reads[0] == 1
    generation = feed.generation
    _bump_topics(other)  # notified on the new connection
    _until(lambda: feed.generation != generation)
    assert _topics_version(pg_sessions, feed) == before + 1


def _second_read_reused(
    pg_sessions: sessionmaker[Session], feed: ChangeFeed, reads: list[int]
) -> bool | None:
    """Two back-to-back reads: was the second the kept one? None when something else could
    have dropped it in between (a notification, a reconnect, or the age bound itself on a
    loaded machine): CI saw both reads go to the database once with a 1 s bound."""
    notified, connects, n = feed.stats["notifications"], feed.stats["connects"], reads[0]
    started = time.monotonic()
    _topics_version(pg_sessions, feed)
    _topics_version(pg_sessions, feed)
    elapsed = time.monotonic() - started
    quiet = (notified, connects) == (feed.stats["notifications"], feed.stats["connects"])
    if not quiet or elapsed >= feed.max_age_s:
        return None
    return reads[0] - n == 1


def test_a_kept_read_is_dropped_after_its_age_bound(pg_sessions: sessionmaker[Session]) -> None:
    feed: ChangeFeed = ChangeFeed(pg_sessions.kw["bind"], max_age_s=1.0)
    feed.start()
    try:
        assert feed.wait_live(10)
        reads = _count_versions_reads(pg_sessions.kw["bind"])
        outcomes = []
        for _ in range(5):  # the first quiet pair decides
            outcomes.append(_second_read_reused(pg_sessions, feed, reads))
            if outcomes[-1] is not None:
                break
            time.sleep(1.1)
        assert outcomes[-1] is True, outcomes
        n = reads[0]
        time.sleep(1.1)
        _topics_version(pg_sessions, feed)  # older than the bound: read again
        assert reads[0] == n + 1
    finally:
        feed.stop()


def test_the_api_reuses_versions_and_refuses_a_revoked_key_once_notified(
    settings: Settings, pg_sessions: sessionmaker[Session], other: Engine
) -> None:
    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        key, token = create_key(session, "lecture", "read")
        session.flush()
        key_id = key.id
    engine = pg_sessions.kw["bind"]
    app = create_app(settings.model_copy(update={"api_warm_up": False}), engine=engine)
    with TestClient(app) as client:
        feed = app.state.verbatim.change_feed
        assert feed is not None and feed.wait_live(10)
        h = {"X-API-Key": token}
        assert client.get("/themes?days=7", headers=h).status_code == 200
        reads = _count_versions_reads(engine)
        for path in ("/themes?days=7", "/themes?days=30", "/alerts", "/themes?days=7"):
            assert client.get(path, headers=h).status_code == 200
        assert reads[0] == 0  # hits and new views alike: no versions statement
        scraped = client.get("/metrics").text
        assert 'verbatim_change_feed_events{event="listening"} 1.0' in scraped

        generation = feed.generation
        with sessionmaker(other)() as session:  # `verbatim apikey revoke` in another process
            assert revoke_key(session, key_id)
            session.commit()
        _until(lambda: feed.generation != generation)
        res = client.get("/themes?days=7", headers=h)
        assert res.status_code == 401 and "revoked" in res.json()["detail"]


def test_a_pooled_connection_idle_too_long_is_pinged_and_replaced() -> None:
    url = os.environ.get("VERBATIM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("VERBATIM_TEST_POSTGRES_URL not set")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("select pg_backend_pid()")).scalar_one()
        with engine.connect() as conn:  # just given back: handed out without a ping
            assert conn.execute(text("select pg_backend_pid()")).scalar_one() == first
        with make_engine(url).begin() as admin:
            admin.execute(text("select pg_terminate_backend(:p)"), {"p": first})
        # Pretend it has been idle for a while: the checkout pings it, finds it dead and
        # hands out a new connection instead of failing the request.
        for record in list(engine.pool._pool.queue):  # type: ignore[attr-defined]
            record.info["idle_since"] = time.monotonic() - IDLE_PING_S - 1
        with engine.connect() as conn:
            assert conn.execute(text("select pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()


def test_the_feed_needs_postgresql(engine: Engine) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        ChangeFeed(engine)

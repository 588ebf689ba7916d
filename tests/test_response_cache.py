"""Range-scoped data versions (core.versions) and the front response cache
(service.response_cache): a kept view is served only while the data it was computed from is
unchanged, never to a caller the app would refuse, and survives rebuilds of other days."""

from __future__ import annotations

import asyncio
import gc
import os
import time as time_mod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session, sessionmaker

from core.aggregate import aggregate, bump_version
from core.db import session_scope
from core.models import Alert
from core.settings import Settings
from core.versions import ALL_DAYS, ChangeLog, read_versions
from service.app import create_app
from service.auth import create_key, revoke_key
from tests.api_seed import FIRST_DAY, LAST_DAY, _add, seed

LATER = datetime(2030, 1, 1, tzinfo=UTC)  # an alert update after the seed's
PAST_WEEK = f"/themes?end={FIRST_DAY + timedelta(days=13)}&days=7"  # previous week included
CURRENT_WEEK = "/themes?days=7"  # ends on the last day with data


def _strict(settings: Settings) -> Settings:
    """Without stale-while-revalidate: every changed view is rebuilt before it is answered
    (the token mechanics these tests check; the stale answers have their own tests)."""
    return settings.model_copy(update={"api_stale_while_revalidate_s": 0})


@pytest.fixture
def client(settings: Settings, engine: Engine, sessions: sessionmaker[Session]) -> TestClient:
    seed(sessions)
    return TestClient(create_app(_strict(settings), engine=engine))


@pytest.fixture
def read_key(sessions: sessionmaker[Session]) -> Iterator[str]:
    with session_scope(sessions) as session:
        _, token = create_key(session, "lecture", "read")
    yield token


def _stats(client: TestClient) -> dict[str, int]:
    return dict(client.app.state.verbatim.responses.stats)  # type: ignore[attr-defined]


def _add_review(sessions: sessionmaker[Session], n: int, day: object) -> None:
    """One more negative `livraison` review on `day`, then that day re-aggregated."""
    with session_scope(sessions) as session:
        _add(
            session,
            n,
            day,
            "livraison",
            "negative",
            "Colis perdu, encore.",
            "Colis perdu",
            "review",
        )  # type: ignore[arg-type]
    with session_scope(sessions) as session:
        aggregate(session, days=[day])  # type: ignore[list-item]


def _livraison(body: dict) -> int:
    return next(t["volume"] for t in body["themes"] if t["id"] == "livraison")


def test_change_log_gives_each_day_range_its_own_version(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions)
    log = ChangeLog()
    past = (FIRST_DAY, FIRST_DAY + timedelta(days=6))
    current = (LAST_DAY - timedelta(days=6), LAST_DAY)

    def versions() -> tuple[int, int]:
        with sessions() as session:
            log.refresh(session, read_versions(session).aggregates)
        return log.version(*past), log.version(*current)

    before_past, before_current = versions()
    with session_scope(sessions) as session:
        aggregate(session, days=[LAST_DAY])
    after_past, after_current = versions()
    assert after_past == before_past  # a rebuild of the last day leaves last month alone
    assert after_current > before_current
    with session_scope(sessions) as session:
        aggregate(session, days=[FIRST_DAY + timedelta(days=3)])
    assert versions()[0] > after_past
    # A version bumped without a logged range (older code) counts as touching every day.
    moved = versions()
    with session_scope(sessions) as session:
        bump_version(session, "aggregates")
    unknown = versions()
    assert unknown[0] > moved[0] and unknown[1] > moved[1]
    with session_scope(sessions) as session:
        aggregate(session)  # a full rebuild touches every day
    full = versions()
    assert full[0] > unknown[0] and full[1] > unknown[1]
    # A reader whose snapshot is older (read-committed readers alternate) changes nothing:
    # the ranges after its version stay there for the newer readers.
    assert log.touched_after(full[0] - 1) == ALL_DAYS
    with sessions() as session:
        log.refresh(session, 1)
    assert log.touched_after(full[0] - 1) == ALL_DAYS
    assert log.touched_after(full[0]) is None
    assert (log.version(*past), log.version(*current)) == full


def test_a_kept_view_survives_other_days_and_never_serves_stale_data(
    client: TestClient, sessions: sessionmaker[Session], read_key: str
) -> None:
    _check_kept_views(client, sessions, read_key)


def test_kept_views_on_postgres(settings: Settings, pg_sessions: sessionmaker[Session]) -> None:
    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        _, token = create_key(session, "lecture", "read")
    engine = pg_sessions.kw["bind"]
    _check_kept_views(TestClient(create_app(_strict(settings), engine=engine)), pg_sessions, token)


def _check_kept_views(client: TestClient, sessions: sessionmaker[Session], read_key: str) -> None:
    h = {"X-API-Key": read_key}
    first = client.get(PAST_WEEK, headers=h)
    assert first.status_code == 200
    again = client.get(PAST_WEEK, headers=h)
    assert again.content == first.content and _stats(client)["hits"] == 1
    current = client.get(CURRENT_WEEK, headers=h).json()

    _add_review(sessions, 10_001, LAST_DAY)  # today's new data
    assert client.get(PAST_WEEK, headers=h).content == first.content
    assert _stats(client)["hits"] == 2  # last month's view was not recomputed
    assert _livraison(client.get(CURRENT_WEEK, headers=h).json()) == _livraison(current) + 1

    _add_review(sessions, 10_002, FIRST_DAY + timedelta(days=10))  # a late review, in the period
    late = client.get(PAST_WEEK, headers=h)
    assert _livraison(late.json()) == _livraison(first.json()) + 1
    assert _stats(client)["stale"] >= 1


STALE = "verbatim; hit; detail=stale"


def _wait_for_rebuilds(client: TestClient, count: int) -> None:
    """Until `count` background rebuilds finished (they run on the client's event loop)."""
    for _ in range(200):
        if _stats(client)["refreshed"] >= count:
            return
        client.get("/health")  # lets the portal's loop run the rebuild task
        time_mod.sleep(0.02)
    raise AssertionError(f"no background rebuild finished: {_stats(client)}")


def _check_stale_while_revalidate(
    client: TestClient, sessions: sessionmaker[Session], read_key: str, write_key: str
) -> None:
    h = {"X-API-Key": read_key}
    first = client.get(CURRENT_WEEK, headers=h)
    before = _livraison(first.json())
    assert "cache-status" not in first.headers

    # A job writes today's data: the kept view answers at once, marked, and is rebuilt once.
    _add_review(sessions, 40_001, LAST_DAY)
    stale = client.get(CURRENT_WEEK, headers=h)
    assert stale.content == first.content and stale.headers["cache-status"] == STALE
    _wait_for_rebuilds(client, 1)
    fresh = client.get(CURRENT_WEEK, headers=h)
    assert _livraison(fresh.json()) == before + 1 and "cache-status" not in fresh.headers
    assert _stats(client)["served_stale"] == 1

    # A reader that asks for current data gets it.
    _add_review(sessions, 40_002, LAST_DAY)
    asked = client.get(CURRENT_WEEK, headers={**h, "Cache-Control": "no-cache"})
    assert _livraison(asked.json()) == before + 2 and "cache-status" not in asked.headers

    # Alerts are never answered late, even when job data changed too (the spike disappears).
    assert next(t for t in fresh.json()["themes"] if t["id"] == "livraison")["spike"]
    _add_review(sessions, 40_003, LAST_DAY)
    with session_scope(sessions) as session:
        session.execute(update(Alert).values(status="resolved", updated_at=datetime.now(UTC)))
    after_alert = client.get(CURRENT_WEEK, headers=h)
    assert "cache-status" not in after_alert.headers
    assert next(t for t in after_alert.json()["themes"] if t["id"] == "livraison")["spike"] is None
    assert _livraison(after_alert.json()) == before + 3

    # After a write through this process, its reader sees current data (read-your-writes).
    _add_review(sessions, 40_004, LAST_DAY)
    posted = client.post(
        "/feedback",
        headers={"X-API-Key": write_key},
        json={"source": "api", "items": [{"id": "swr-1", "text": "Colis arrivé ouvert."}]},
    )
    assert posted.status_code == 200, posted.text
    mine = client.get(CURRENT_WEEK, headers=h)
    assert "cache-status" not in mine.headers and _livraison(mine.json()) == before + 4


def test_job_writes_are_answered_from_the_kept_view_while_one_rebuild_runs(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], read_key: str
) -> None:
    seed(sessions)
    with session_scope(sessions) as session:
        _, write_key = create_key(session, "ecriture", "write")
    with TestClient(create_app(settings, engine=engine)) as client:  # one event loop
        _check_stale_while_revalidate(client, sessions, read_key, write_key)


def test_stale_while_revalidate_on_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        _, read_key = create_key(session, "lecture", "read")
        _, write_key = create_key(session, "ecriture", "write")
    app = create_app(settings, engine=pg_sessions.kw["bind"])
    with TestClient(app) as client:
        _check_stale_while_revalidate(client, pg_sessions, read_key, write_key)


def test_a_stale_view_is_answered_only_within_its_bound(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    read_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With its rebuild never finishing, a kept view goes on answering late only for
    `api_stale_while_revalidate_s`, then the request rebuilds it."""
    from service.response_cache import ResponseCache

    seed(sessions)
    monkeypatch.setattr(ResponseCache, "_refresh", lambda self, key, scope: None)
    bounded = settings.model_copy(update={"api_stale_while_revalidate_s": 0.5})
    h = {"X-API-Key": read_key}
    with TestClient(create_app(bounded, engine=engine)) as client:
        before = _livraison(client.get(CURRENT_WEEK, headers=h).json())
        _add_review(sessions, 50_001, LAST_DAY)
        assert client.get(CURRENT_WEEK, headers=h).headers["cache-status"] == STALE
        time_mod.sleep(0.6)
        late = client.get(CURRENT_WEEK, headers=h)
        assert "cache-status" not in late.headers and _livraison(late.json()) == before + 1
        assert _stats(client)["stale"] == 1


def test_conditional_requests_are_answered_from_the_kept_view(
    client: TestClient, read_key: str
) -> None:
    h = {"X-API-Key": read_key}
    etag = client.get(PAST_WEEK, headers=h).headers["etag"]
    res = client.get(PAST_WEEK, headers={**h, "If-None-Match": etag})
    assert res.status_code == 304 and res.headers["etag"] == etag
    assert _stats(client)["not_modified"] == 1
    assert client.get(PAST_WEEK, headers={**h, "If-None-Match": '"other"'}).status_code == 200


def test_a_kept_view_is_never_served_to_a_caller_the_app_would_refuse(
    client: TestClient, sessions: sessionmaker[Session], read_key: str
) -> None:
    assert client.get(PAST_WEEK, headers={"X-API-Key": read_key}).status_code == 200
    assert client.get(PAST_WEEK).status_code == 401  # no key: not the kept view
    assert client.get(PAST_WEEK, headers={"X-API-Key": "vb_forged"}).status_code == 401
    with session_scope(sessions) as session:
        from core.models import ApiKey

        key_id = session.query(ApiKey.id).filter(ApiKey.name == "lecture").scalar()
        assert revoke_key(session, key_id)
    res = client.get(PAST_WEEK, headers={"X-API-Key": read_key})
    assert res.status_code == 401 and "revoked" in res.json()["detail"]


def test_alerts_incidents_topics_and_verbatims_follow_their_own_data(
    client: TestClient, sessions: sessionmaker[Session], read_key: str
) -> None:
    h = {"X-API-Key": read_key}
    alerts = client.get("/alerts?status=open", headers=h).json()
    assert client.get("/alerts?status=open", headers=h).json() == alerts
    hits = _stats(client)["hits"]
    assert hits >= 1
    with session_scope(sessions) as session:
        session.execute(update(Alert).values(status="resolved", updated_at=datetime.now(UTC)))
    assert client.get("/alerts?status=open", headers=h).json()["items"] == []

    page = "/themes/livraison/verbatims?limit=1"
    newest = client.get(page, headers=h).json()["items"][0]
    assert client.get(page, headers=h).json()["items"][0] == newest
    with session_scope(sessions) as session:  # analysed, not yet aggregated: still listed
        _add(session, 20_001, LAST_DAY + timedelta(days=1), "livraison", "negative",
             "Toujours rien reçu.", "rien reçu", "review")  # fmt: skip
    assert client.get(page, headers=h).json()["items"][0]["text"] == "Toujours rien reçu."

    topics = client.get("/topics", headers=h).json()
    with session_scope(sessions) as session:
        from core.models import Topic

        session.execute(update(Topic).values(label="renommé"))
        bump_version(session, "topics")  # what the topic job does with its writes
    assert client.get("/topics", headers=h).json() != topics
    incidents = client.get("/incidents", headers=h).json()["items"]
    assert incidents and client.get("/incidents", headers=h).json()["items"] == incidents
    with session_scope(sessions) as session:
        from core.models import Incident

        session.execute(
            update(Incident).values(status="acknowledged", updated_at=datetime.now(UTC))
        )
    again = client.get("/incidents", headers=h).json()["items"]
    assert {i["status"] for i in again} == {"acknowledged"}


def test_views_of_one_period_share_its_sums_until_those_days_change(
    client: TestClient, sessions: sessionmaker[Session], read_key: str
) -> None:
    h = {"X-API-Key": read_key}
    memo = client.app.state.verbatim.period_memo  # type: ignore[attr-defined]
    end = FIRST_DAY + timedelta(days=20)
    first = client.get(f"/themes/livraison?days=7&end={end}", headers=h).json()
    kept = len(memo._data)
    assert kept >= 2  # the period and the previous one
    client.get(f"/themes/prix?days=7&end={end}", headers=h)
    assert len(memo._data) == kept  # another theme's view reused the period's sums
    _add_review(sessions, 30_001, end)
    again = client.get(f"/themes/livraison?days=7&end={end}", headers=h).json()
    assert again["summary"]["volume"] == first["summary"]["volume"] + 1


def test_a_burst_of_slow_reads_never_deadlocks_the_pool(
    settings: Settings, sessions: sessionmaker[Session], read_key: str
) -> None:
    """60 concurrent uncached views with a 4-connection pool: every request holds its
    connection across thread hops, so without the admission limit threads wait for
    connections held by requests waiting for threads (pool timeout: 500s)."""
    import asyncio

    import httpx
    from sqlalchemy import create_engine

    seed(sessions)
    url = settings.resolved_database_url
    small = create_engine(url, pool_size=2, max_overflow=2, pool_timeout=3)
    # Admission at half the pool (with api_max_inflight=60 this test fails: 500s).
    app = create_app(settings.model_copy(update={"api_max_inflight": 2}), engine=small)

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            paths = [
                # 60 distinct views (a source no verbatim has is a 422 now, not a view).
                f"/themes/livraison?days={1 + i}&end={FIRST_DAY + timedelta(days=i % 27)}"
                for i in range(60)
            ]
            found = await asyncio.gather(
                *(client.get(p, headers={"X-API-Key": read_key}) for p in paths)
            )
        return [r.status_code for r in found]

    assert asyncio.run(burst()) == [200] * 60
    small.dispose()


def test_concurrent_hits_on_a_database_server_share_their_versions_reads(
    settings: Settings, pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the versions statement is a round trip, read off the event loop: the hits
    that arrive while one is pending take its result (one read, not thirty). (This app's
    lifespan does not run: no change feed listens, the path taken while it is down.)"""
    from service import response_cache

    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        _, token = create_key(session, "lecture", "read")
    app = create_app(settings, engine=pg_sessions.kw["bind"])
    reads: list[str | None] = []
    real = response_cache.read_versions

    def counted(conn: object, key_hash: str | None = None, feed: object = None) -> object:
        reads.append(key_hash)
        return real(conn, key_hash, feed)  # type: ignore[arg-type]

    monkeypatch.setattr(response_cache, "read_versions", counted)

    async def burst() -> tuple[httpx.Response, list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"X-API-Key": token}
        ) as c:
            first = await c.get(PAST_WEEK)
            reads.clear()
            return first, list(await asyncio.gather(*(c.get(PAST_WEEK) for _ in range(30))))

    first, answers = asyncio.run(burst())
    assert first.status_code == 200
    assert all(a.status_code == 200 and a.content == first.content for a in answers)
    assert _stats(TestClient(app))["hits"] == 30
    assert 1 <= len(reads) <= 2


def test_admission_follows_the_database_unless_set() -> None:
    cores = os.cpu_count() or 1
    sqlite = Settings(database_url="sqlite:////tmp/x.db")
    server = Settings(database_url="postgresql+psycopg://u@127.0.0.1/db")
    assert sqlite.api_admission == min(2 * cores, 20)
    assert server.api_admission == min(5 * cores, 20)
    assert Settings(database_url="sqlite:////tmp/x.db", api_max_inflight=7).api_admission == 7
    assert server.model_copy(update={"api_max_inflight": 99, "api_threads": 8}).api_admission == 8


def test_start_up_objects_are_frozen_while_serving_and_released_after(
    settings: Settings, engine: Engine
) -> None:
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.get("/health").status_code == 200
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def _statements(engine: Engine) -> tuple[list[str], object]:
    """Every SQL statement `engine` runs from now on (and the listener, to remove)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return seen, note


def test_sqlite_versions_are_read_again_only_after_a_write(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed(sessions)
    seen, note = _statements(engine)
    try:
        with engine.connect() as conn:
            first = read_versions(conn)
            assert read_versions(conn) is first  # nothing written: no second statement
            assert sum("AS agg_max" in s for s in seen) == 1
            with session_scope(sessions) as session:  # another connection commits
                session.execute(update(Alert).values(status="resolved", updated_at=LATER))
            second = read_versions(conn)
            assert second.alerts != first.alerts and sum("AS agg_max" in s for s in seen) == 2
            conn.execute(update(Alert).values(status="open", updated_at=LATER + timedelta(days=1)))
            conn.commit()  # its own write (SQLite's data_version does not move for those)
            third = read_versions(conn)
            assert third.alerts[2] > second.alerts[2] and sum("AS agg_max" in s for s in seen) == 3
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_cold_view_reads_versions_once_and_open_alerts_once_per_change(
    client: TestClient, engine: Engine, sessions: sessionmaker[Session], read_key: str
) -> None:
    h = {"X-API-Key": read_key}
    assert client.get("/taxonomy", headers=h).status_code == 200  # seeds version 1
    seen, note = _statements(engine)
    try:
        assert client.get(PAST_WEEK, headers=h).status_code == 200
        # The key check, the default period, the taxonomy and the view token share one read;
        # no ORM lookup of the key, no separate max(day) or taxonomy version statements.
        assert sum("AS agg_max" in s for s in seen) == 1
        assert not [s for s in seen if "FROM api_keys" in s and "AS agg_max" not in s]
        assert not [s for s in seen if "max(daily_aggregates.day)" in s]
        open_alerts = [s for s in seen if "alerts.severity" in s]
        assert len(open_alerts) == 1
        first = client.get(f"/themes/livraison?days=30&end={LAST_DAY}", headers=h).json()
        assert first["summary"]["spike"] is not None
        assert len([s for s in seen if "alerts.severity" in s]) == 1  # kept: same alerts
        with session_scope(sessions) as session:
            session.execute(update(Alert).values(status="resolved", updated_at=LATER))
        again = client.get(f"/themes/livraison?days=30&end={LAST_DAY}", headers=h).json()
        assert again["summary"]["spike"] is None
        assert len([s for s in seen if "alerts.severity" in s]) == 2
    finally:
        event.remove(engine, "before_cursor_execute", note)

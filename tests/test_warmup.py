"""Start-up warm-up (service.warmup): the landing views are built before the first request,
with a key that exists only while it runs, and without touching the front cache or metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, session_scope
from core.settings import Settings
from service.app import create_app
from service.auth import create_key, require
from service.deps import AppState
from service.errors import ApiError
from tests.api_seed import seed


def _settings(settings: Settings, **update: object) -> Settings:
    # Analyzer and NER not preloaded: these tests are about the read views.
    return settings.model_copy(update={"api_preload_models": False, **update})


def _key(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as session:
        return create_key(session, "lecture", "read")[1]


def _state(client: TestClient) -> AppState:
    return client.app.state.verbatim  # type: ignore[attr-defined,no-any-return]


def test_landing_views_are_built_before_the_first_request(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed(sessions)
    token = _key(sessions)
    with TestClient(create_app(_settings(settings), engine=engine)) as client:
        state = _state(client)
        views = state.view_cache.stats
        assert views["computed"] >= 10  # /themes, /overview, each theme's detail, trend, ...
        # Nothing in the front cache, nothing counted as served, and the key is gone.
        assert not state.responses.entries and state.responses.stats["stored"] == 0
        metrics = client.get("/metrics").text
        assert 'route="/themes' not in metrics and 'route="/overview"' not in metrics
        assert state.warm_up_token is None
        computed = views["computed"]
        # What the dashboard asks first (its default period is 7 days, a theme page's 30).
        first = ("/themes?days=7", "/overview?days=7", "/themes/livraison?days=30")
        for path in (*first, "/themes/livraison/breakdown?days=30", "/themes"):
            response = client.get(path, headers={"X-API-Key": token})
            assert response.status_code == 200, (path, response.text)
        assert views["computed"] == computed  # each answered from what start-up built
        assert views["hits"] >= 5
        assert 'route="/themes"' in client.get("/metrics").text  # what counting looks like


def test_without_warm_up_the_first_request_builds_its_view(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed(sessions)
    token = _key(sessions)
    with TestClient(create_app(_settings(settings, api_warm_up=False), engine=engine)) as client:
        views = _state(client).view_cache.stats
        assert views["computed"] == 0
        assert client.get("/themes", headers={"X-API-Key": token}).status_code == 200
        assert views["computed"] == 1


def test_the_warm_up_key_reads_only_while_it_runs(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed(sessions)
    app = create_app(_settings(settings, api_warm_up=False), engine=engine)
    state: AppState = app.state.verbatim
    read, write = require("read"), require("write")

    class _Request:  # what the dependency reads of a request
        def __init__(self) -> None:
            self.app = app

    with sessions() as session:
        state.warm_up_token = "warming-up"
        assert read(_Request(), session, "warming-up") is None  # type: ignore[arg-type]
        with pytest.raises(ApiError) as refused:
            write(_Request(), session, "warming-up")  # type: ignore[arg-type]
        assert refused.value.status_code == 401
        state.warm_up_token = None
        with pytest.raises(ApiError) as after:
            read(_Request(), session, "warming-up")  # type: ignore[arg-type]
        assert after.value.status_code == 401


def test_a_failed_warm_up_does_not_stop_the_server(settings: Settings, tmp_path: Path) -> None:
    # A database nobody migrated: every view fails; the server still starts.
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with TestClient(create_app(_settings(settings), engine=engine)) as client:
            assert client.get("/health").status_code in (200, 503)
            assert _state(client).warm_up_token is None
    finally:
        engine.dispose()

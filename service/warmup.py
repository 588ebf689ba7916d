"""Start-up warm-up: the dashboard's landing views built once before the server listens.

A fresh API process pays one-time costs on its first requests: FastAPI builds each route's
dependency plan at its first match, SQLAlchemy compiles each statement shape once, pydantic
builds its serialisers, the current taxonomy is parsed. Measured on the load benchmark's mix
(`benchmarks/bench_cold_views.py`), the first 100 requests cost ~3x the CPU of later ones,
and under a steady load the queue they leave takes seconds to drain.

`warm_up` sends what the dashboard asks when it opens (the theme list and overview of its
default period, alerts, incidents, topics, drivers, and each theme's page: detail, breakdown,
trend, verbatims, alerts) and the API's default views through the app's router, in process,
before uvicorn accepts connections. The
views land in the view cache that every caller shares; the front response cache, the
request metrics and the access log never see these requests. They authenticate with a
random token that lives in this process only for the warm-up (`AppState.warm_up_token`).
A failure (an empty or unmigrated database) is logged and start-up goes on.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.deps import AppState

log = logging.getLogger(__name__)

# What the dashboard asks when it opens (service/static/app.js: its default period is 7 days,
# a theme page's 30, drivers' 90) and the API's own defaults.
LANDING_PATHS = (
    "/themes?days=7",
    "/overview?days=7",
    "/themes",
    "/overview",
    "/incidents?historical=false&limit=50",
    "/alerts?status=open&limit=5",
    "/alerts?limit=50",
    "/topics?limit=50",
    "/drivers?days=90&score=nps",
    "/drivers?days=90&score=nps&min_mentions=5",
)
THEME_PATHS = (
    "/themes/{id}?days=30",
    "/themes/{id}/breakdown?days=30",
    "/themes/{id}/trend",
    "/themes/{id}/verbatims?limit=20",
    "/alerts?theme={id}&limit=50",
)


# What an ASGI server puts in every request's scope, as for a loopback client.
_REQUEST: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "root_path": "",
    "client": ("127.0.0.1", 0),
    "server": ("127.0.0.1", 0),
}


async def warm_up(app: FastAPI, state: AppState) -> None:
    """Build the landing views once (see the module docstring); never raises."""
    started = time.perf_counter()
    try:
        themes = [t.id for t in state.current_taxonomy().taxonomy.themes]
    except Exception as exc:  # noqa: BLE001 - a warm-up failure must not stop the server
        log.warning("start-up warm-up skipped (%s)", exc)
        return
    paths = [*LANDING_PATHS, *(p.format(id=t) for t in themes for p in THEME_PATHS)]
    state.warm_up_token = token = secrets.token_urlsafe(32)
    answered = 0
    try:
        for path in paths:
            try:
                answered += await _get(app, path, token) == 200
            except Exception as exc:  # noqa: BLE001 - a view that fails now fails later too
                log.debug("warm-up: GET %s failed (%s)", path, exc)
    finally:
        state.warm_up_token = None
    elapsed = time.perf_counter() - started
    log.info("warm-up: %d of %d landing views built in %.2f s", answered, len(paths), elapsed)


async def _get(app: FastAPI, path: str, token: str) -> int:
    """GET `path` through the router (below the app's middleware: no front cache, metrics,
    limits or error pages); the response status."""
    route, _, query = path.partition("?")
    scope: dict[str, Any] = {
        **_REQUEST,
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), (b"x-api-key", token.encode())],
        "app": app,
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    # FastAPI's exit-stack middleware is what closes the request's dependencies (its session).
    await AsyncExitStackMiddleware(app.router)(scope, receive, send)
    return status

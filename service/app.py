"""App factory: `create_app(settings)` wires the database, taxonomy, analyzer, routers, limits."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from core import __version__
from core.change_feed import ChangeFeed
from core.db import make_engine, session_factory
from core.settings import Settings
from core.taxonomy_store import TaxonomyCache
from service.auth import redact_tokens_in_logs
from service.deps import AppState
from service.errors import install_error_handlers
from service.middleware import AdmissionLimit, HostCheck, LimitsAndMetrics, Metrics
from service.response_cache import ResponseCache, ResponseStore
from service.routers import (
    catalog,
    corrections,
    incidents,
    ingest,
    insights,
    system,
    taxonomy,
    themes,
)
from service.views import KeywordCache, ViewCache
from service.warmup import warm_up

DESCRIPTION = """French customer-feedback mining: themes, verbatims, topics, spike alerts.

Authenticate with an API key in the `X-API-Key` header (`verbatim apikey create NAME --scope
read|write`). Read endpoints answer without a key when `dashboard_read_without_key` is set
(`VERBATIM_DASHBOARD_READ_WITHOUT_KEY=1`, local single-user use). Errors are JSON
`{"detail": ..., "field": ...}`.
"""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    analyzer: Any | None = None,
    build_analyzer_at_startup: bool = True,
) -> FastAPI:
    """Build the API. The analyzer is built once (at start-up, or at the first /analyze when
    the lifespan does not run) and reused; a taxonomy edit rebuilds it once."""
    build_analyzer_at_startup = build_analyzer_at_startup and settings.api_preload_models
    owns_engine = engine is None
    engine = engine or make_engine(settings.resolved_database_url)
    metrics = Metrics()
    redact_tokens_in_logs()  # a key sent in a URL (`?api_key=vb_…`) is not logged whole

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        if state.change_feed is not None:
            state.change_feed.start()
        if build_analyzer_at_startup:
            await run_in_threadpool(state.get_analyzer)
            await run_in_threadpool(state.get_masker)  # spaCy NER: not at the first write
        # The period views' in-memory tables (core.day_table): read once here, not by the
        # first requests while others queue behind them.
        await run_in_threadpool(state.load_day_tables)
        if settings.api_warm_up:  # the landing views, before the first request (see module)
            await warm_up(app, state)
        # What start-up loaded lives as long as the process: out of the collector's sight, a
        # full collection under load walks only request garbage (measured: 250 ms pauses that
        # stalled every request down to ~40 ms).
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()  # an app built in a longer-lived process (tests) leaves nothing pinned
        if state.change_feed is not None:
            state.change_feed.stop()
        state.responses.close()
        if owns_engine:
            engine.dispose()

    # /docs and /redoc served from assets packaged by fastapi-offline (Swagger UI 5, ReDoc 2):
    # the default pages load them from a CDN and are blank on an offline server.
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="Verbatim API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        taxonomy_cache=TaxonomyCache(settings),
        metrics=metrics,
        keyword_cache=KeywordCache(),
        view_cache=ViewCache(),
        responses=ResponseStore(settings.api_response_cache_mb * 1024 * 1024),
        analyzer=analyzer,
        analyzer_version=None if analyzer is None else "given",
    )
    if engine.dialect.name == "postgresql" and settings.api_versions_max_age_s > 0:
        state.change_feed = ChangeFeed(engine, max_age_s=settings.api_versions_max_age_s)
    app.state.verbatim = state

    _document_limits(app, settings)
    install_error_handlers(app)
    for module in (themes, catalog, insights, corrections, incidents, taxonomy, ingest, system):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=system.STATIC), name="static")

    # Innermost first: admission (not for cache hits), front cache, then limits and metrics.
    app.add_middleware(AdmissionLimit, limit=settings.api_admission)
    app.add_middleware(ResponseCache, state=state)
    app.add_middleware(LimitsAndMetrics, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    if settings.dashboard_read_without_key:  # outside the front cache: kept views too
        app.add_middleware(HostCheck, names=settings.open_read_hosts)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            # DELETE: the erasure of one verbatim (DELETE /feedback/{id}) from another origin.
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            # If-Match: the conditional PUT /taxonomy; If-None-Match: the 304s; the ETag
            # both need is exposed to the page's script.
            allow_headers=[
                "X-API-Key",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Cache-Control",
            ],
            expose_headers=["ETag", "Cache-Status"],
        )
    return app


def app_from_settings() -> FastAPI:
    """The app from the environment / verbatim.toml settings: the factory each uvicorn worker
    process calls (`verbatim serve --workers N`). A worker is a new process: it configures
    logging as the CLI does (level and format from the environment `serve` leaves it)."""
    from core.logs import configure_logging
    from core.settings import load_settings

    configure_logging()
    return create_app(load_settings())


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """State this instance's batch limit (`max_batch_rows`) in the OpenAPI schema as maxItems,
    so that a client (or a fuzzer) knows a bigger batch is refused with a 413."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for name in ("FeedbackBatch", "AnalyzeIn"):
                items = schema.get("components", {}).get("schemas", {}).get(name, {})
                prop = items.get("properties", {}).get("items")
                if prop is not None:
                    prop["maxItems"] = settings.max_batch_rows
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

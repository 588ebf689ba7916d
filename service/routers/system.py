"""Open endpoints: /health, /metrics (Prometheus text) and the dashboard page; /auth/me (what
the caller's key may do)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from core.analysis import analyzer_info
from core.queries import feedback_count, job_runs_status
from core.settings import Settings
from service.auth import api_key_header, find_key, require
from service.deps import AppState, SessionDep, app_state
from service.schemas import AnalyzerOut, ErrorOut, HealthOut, KeyScopeOut
from service.text_route import TextRoute

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(route_class=TextRoute)


@cache  # a distribution lookup: not on every /health
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("verbatim")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "dev"


def _configured_jobs(settings: Settings) -> list[str]:
    """The scheduler jobs of the API's configuration (the scheduler's, when they share one):
    only they are reported. Without any, every job in `job_runs` is."""
    return [job.name for job in settings.scheduler.jobs]


@router.get("/health", response_model=HealthOut, tags=["system"], summary="Liveness + database")
def health(request: Request) -> JSONResponse:
    jobs: list = []
    state = app_state(request)
    try:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))
            jobs = job_runs_status(session, _configured_jobs(state.settings))
        db = "ok"
    except Exception as exc:  # noqa: BLE001 - report, don't crash
        db = f"error: {type(exc).__name__}"
    # A failed scheduled run is reported here, not as a 503: the API itself is fine.
    body = HealthOut(
        status="ok" if db == "ok" else "degraded",
        database=db,
        version=_version(),
        jobs=jobs,
        analyzer=_analyzer_info(state),
    )
    return JSONResponse(body.model_dump(), status_code=200 if db == "ok" else 503)


def _analyzer_info(state: AppState) -> AnalyzerOut | None:
    """The loaded analyzer's runtime and versions (never built here: None until it is)."""
    analyzer = state.analyzer
    return None if analyzer is None else AnalyzerOut(**analyzer_info(analyzer))


# Uptime checkers and load balancers often probe with HEAD (it was a 405): the same check,
# no body; kept out of the schema (one operation per route there).
@router.head("/health", include_in_schema=False)
def health_head(request: Request) -> Response:
    return Response(status_code=health(request).status_code)


@router.get(
    "/metrics",
    tags=["system"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    state = app_state(request)
    for event, count in state.responses.stats.items():
        state.metrics.response_cache.labels(event).set(count)
    if state.change_feed is not None:
        feed = state.change_feed
        state.metrics.change_feed.labels("listening").set(feed.generation is not None)
        for event, count in feed.stats.items():
            state.metrics.change_feed.labels(event).set(count)
    state.metrics.set_analyzer(_analyzer_info(state))
    try:
        with state.sessions() as session:
            state.metrics.feedback_stored.set(feedback_count(session))
            state.metrics.set_jobs(job_runs_status(session, _configured_jobs(state.settings)))
    except Exception:  # noqa: BLE001 - keep serving the request metrics
        pass
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/auth/me",
    response_model=KeyScopeOut,
    tags=["system"],
    summary="The API key's name and scope",
    dependencies=[Depends(require("read"))],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
)
def whoami(session: SessionDep, token: str | None = Security(api_key_header)) -> KeyScopeOut:
    """The key sent (none: reads open, `dashboard_read_without_key`) and what it may do: the
    dashboard disables its write actions for a read key instead of having the analyst fill a
    correction the server then refuses."""
    key = find_key(session, token) if token else None
    if key is None:  # no key (open reads) or the start-up warm-up's token: reading only
        return KeyScopeOut(name=None, scope="read")
    return KeyScopeOut(name=key.name, scope="write" if "write" in key.scopes.split(",") else "read")


# The dashboard loads only its own script and style sheet and talks only to this API: anything
# injected into the page (a verbatim, a theme label) could neither run nor call elsewhere, and
# no other site may frame it (its buttons write with the key kept in this origin's storage).
DASHBOARD_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=DASHBOARD_HEADERS)

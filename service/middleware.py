"""Pure ASGI middleware: request body size limit (413), Prometheus request metrics, and the
admission limit that keeps the connection pool and the thread pool from deadlocking."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable
from contextlib import suppress
from time import perf_counter
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.errors import ApiError

T = TypeVar("T")


class Metrics:
    """Per-app registry, so several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "verbatim_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "verbatim_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.feedback_stored = Gauge(
            "verbatim_feedback_stored", "Verbatims stored in the database", registry=self.registry
        )
        self.job_names: set[str] = set()  # the jobs of the last `set_jobs`
        self.job_last_start = Gauge(
            "verbatim_job_last_start_timestamp_seconds",
            "Start of the latest run of each scheduler job (Unix time)",
            ["job"],
            registry=self.registry,
        )
        self.job_last_success = Gauge(
            "verbatim_job_last_success_timestamp_seconds",
            "End of the latest successful run of each scheduler job (Unix time; 0: none yet)",
            ["job"],
            registry=self.registry,
        )
        self.job_lag = Gauge(
            "verbatim_job_lag_seconds",
            "Latest run of each scheduler job: start minus its scheduled tick",
            ["job"],
            registry=self.registry,
        )
        self.job_duration = Gauge(
            "verbatim_job_duration_seconds",
            "Duration of the latest finished run of each scheduler job",
            ["job"],
            registry=self.registry,
        )
        self.job_status = Gauge(
            "verbatim_job_last_status",
            "1 for the status of the latest run of each scheduler job",
            ["job", "status"],
            registry=self.registry,
        )
        self.response_cache = Gauge(
            "verbatim_response_cache_events",
            "Front response cache of this process since start: hits, not_modified (304), "
            "stale (data changed: recomputed), served_stale (answered while rebuilt in the "
            "background), refreshed (background rebuilds), stored",
            ["event"],
            registry=self.registry,
        )
        self.change_feed = Gauge(
            "verbatim_change_feed_events",
            "PostgreSQL change feed of this process since start (core.change_feed): "
            "listening (1 while it listens), connects, notifications, local_writes, reads "
            "(versions statements run), reused (reads skipped)",
            ["event"],
            registry=self.registry,
        )
        self.analyzer = Gauge(
            "verbatim_analyzer_info",
            "1 for what this process analyses with: model version, encoder runtime (empty "
            "without an encoder), the CPU kernels it reaches, theme heads (full, lite, rules); "
            "no sample until the analyzer is built",
            ["model_version", "encoder_runtime", "kernels", "theme_heads"],
            registry=self.registry,
        )
        self.feedback_ingested = Counter(
            "verbatim_api_feedback_rows",
            "Rows posted to /feedback, by outcome",
            ["status"],
            registry=self.registry,
        )

    def set_analyzer(self, info: Any | None) -> None:
        """The analyzer gauge from /health's `analyzer` (an AnalyzerOut; None: not built)."""
        self.analyzer.clear()
        if info is not None:
            self.analyzer.labels(
                info.model_version,
                info.encoder_runtime or "",
                info.kernels or "",
                info.theme_heads,
            ).set(1)

    def set_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Scheduler gauges from `core.queries.job_runs_status` (read at scrape time)."""
        from datetime import datetime

        # A job no longer listed (removed from the configuration, its runs pruned) kept its
        # start, lag and duration until the API restarted; a listed one keeps its duration
        # (the latest finished run's) while a run is going.
        listed = {str(job["job"]) for job in jobs}
        for name in self.job_names - listed:
            for gauge in (
                self.job_last_start,
                self.job_last_success,
                self.job_lag,
                self.job_duration,
            ):
                with suppress(KeyError):  # never set (no success, no finished run)
                    gauge.remove(name)
        self.job_names = listed
        self.job_status.clear()
        for job in jobs:
            name = job["job"]
            self.job_last_start.labels(name).set(
                datetime.fromisoformat(job["started_at"]).timestamp()
            )
            # A job failing since its first run had no series: the documented alert
            # (`time() - last_success > …`) never fired for it. 0 is "never", as it is for
            # every timestamp gauge, and fires it.
            success = job["last_success_at"]
            self.job_last_success.labels(name).set(
                datetime.fromisoformat(success).timestamp() if success else 0
            )
            self.job_lag.labels(name).set(job["lag_seconds"])
            if job["duration_seconds"] is not None:
                self.job_duration.labels(name).set(job["duration_seconds"])
            self.job_status.labels(name, job["status"]).set(1)


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes", "body")


class LimitsAndMetrics:
    def __init__(self, app: Any, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status = [500]
        started = [False]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                started[0] = True
            await send(message)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await self._reject(send_wrapper)
                return
            received = [0]

            async def limited_receive() -> dict:
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > self.max_body:
                        # An HTTPException: FastAPI's body reader re-raises it as is.
                        raise BodyTooLarge(self.max_body)
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except BodyTooLarge:
                if not started[0]:
                    await self._reject(send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, name, str(status[0])).inc()
            self.metrics.latency.labels(method, name).observe(perf_counter() - start)

    async def _reject(self, send: Any) -> None:
        await send_error(send, 413, f"request body is larger than {self.max_body} bytes", "body")


async def send_error(send: Any, status: int, detail: str, field: str) -> None:
    """An API error, `{"detail", "field"}`, answered by a middleware (before any route)."""
    body = json.dumps({"detail": detail, "field": field}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HostCheck:
    """Reads open without a key (`--open-read`): only requests addressed to this server by an
    IP address, `localhost` or a name of `open_read_hosts` are answered. Any web page the
    analyst opens could otherwise read every verbatim by DNS rebinding: its own name resolved
    to 127.0.0.1 again, the browser sends that name as Host and hands the page the answers.
    /health and /metrics are open whatever the mode, so they answer any name (Prometheus
    scraping `verbatim:8000` in a compose network needs no setting)."""

    OPEN_ANYWAY = frozenset({"/health", "/metrics"})

    def __init__(self, app: Any, *, names: list[str]) -> None:
        self.app = app
        # Read as a Host is: a name copied with its port (« verbatim.intra:8000 ») counts.
        self.names = {_host_name(name) for name in names} | {"localhost"}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # No Host: not a browser's request.
        host = dict(scope.get("headers") or []).get(b"host") if scope["type"] == "http" else None
        name = _host_name(host.decode("latin-1")) if host is not None else None
        if name is None or scope.get("path") in self.OPEN_ANYWAY or self._allowed(name):
            await self.app(scope, receive, send)
            return
        detail = (
            f"host {name!r} is not this server's name: reads are open without a key "
            "(--open-read), so only localhost, an IP address or a name in open_read_hosts "
            "is answered"
        )
        await send_error(send, 400, detail, "Host")

    def _allowed(self, name: str) -> bool:
        import ipaddress

        if name in self.names or name.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _host_name(host: str) -> str:
    """A Host header's name, lower case, without its port nor a final dot ("[::1]:8000":
    "::1")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class LoopLocal(Generic[T]):
    """One `factory()` object per running event loop. asyncio primitives belong to the loop
    that first waits on them; an app driven from several loops (a test client's threads,
    one loop each) would otherwise fail with "bound to a different event loop"."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        item = self._items.get(loop)
        if item is None:
            item = self._items[loop] = self._factory()
        return item


class AdmissionLimit:
    """At most `limit` HTTP requests inside the app at once; the others wait on the event loop
    (no error, no thread). A request holds its pooled connection across thread hops (auth,
    then the endpoint): unbounded, requests that hold every connection wait for a thread
    while every thread waits for a connection. With `limit` x 2 <= the pool size (a request
    takes at most two connections) and `limit` <= the threads, one always finishes. Also caps
    how many requests contend for the GIL. Answers from the front cache do not enter."""

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app = app
        self.slots = LoopLocal(lambda: asyncio.Semaphore(limit))  # per loop: see LoopLocal

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self.slots.get():
            await self.app(scope, receive, send)

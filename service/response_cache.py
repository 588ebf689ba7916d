"""Front cache of rendered read views (pure ASGI middleware, before routing).

A view endpoint that calls `service.deps.view_key` states what its response depends on (the
days it reads and the data token of those days). This middleware keeps such 200 JSON
responses per (path, query, API key) and answers a repeated request from memory after one
statement of index lookups (`core.versions.read_versions`: the data versions and the key's
scopes), without the router, the dependency graph or the thread pool: that overhead, not the
queries, is most of a cached request's cost. An entry is served only while its token is
unchanged; a rebuild of other days (today's new verbatims) leaves the views of past periods
in place. Any doubt (unknown key, missing scope, changed token) falls through to the app,
which answers (and errs) as it always does.

Stale-while-revalidate: when only job-written data changed since an entry was kept (a
scheduled ingest + enrich + aggregate wrote, `core.versions.only_job_data_differs`), the
entry is answered at once, marked `Cache-Status: verbatim; hit; detail=stale`, while one
background request rebuilds it, for at most `api_stale_while_revalidate_s` after it went
stale. Without that, a writer that touches today every few seconds sends every view of a
period that includes today back to the queries, and those rebuilds queue behind each
other. Alerts, taxonomy, incidents, erasures and key scopes are always current; a read that asks
`Cache-Control: no-cache` (the dashboard after its own writes) or that follows a write
through this process is never answered stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from core.versions import (
    Versions,
    ViewDeps,
    ViewToken,
    only_job_data_differs,
    read_versions,
    view_token,
)
from service.auth import hash_token
from service.middleware import LoopLocal

if TYPE_CHECKING:
    from service.deps import AppState

_CacheKey = tuple[str, bytes, str | None]
log = logging.getLogger(__name__)
# Requests that write nothing: they do not end stale answers (see `ResponseStore.fresh_after`).
_READ_ONLY_POSTS = frozenset({"/analyze"})


@dataclass(slots=True)
class _Entry:
    deps: ViewDeps
    token: ViewToken
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    route: Any  # the matched route, for the request metrics of a hit
    stored_at: float = field(default_factory=time.monotonic)
    stale_since: float | None = None  # first seen behind the database (monotonic)

    @property
    def size(self) -> int:
        return len(self.body) + 200


class ResponseStore:
    """The kept responses, LRU, bounded in bytes (one per app: `AppState.responses`)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[_CacheKey, _Entry] = OrderedDict()
        self.bytes = 0
        self.stats = {
            "hits": 0,
            "not_modified": 0,
            "stale": 0,
            "stored": 0,
            "served_stale": 0,
            "refreshed": 0,
        }
        # Monotonic time of the last write answered by this process: entries kept before it
        # are not served stale (a client reads its own writes on this process at once).
        self.fresh_after = 0.0
        self.refreshing: dict[_CacheKey, asyncio.Task[None]] = {}  # background rebuilds
        self._conn: Connection | None = None
        self._connecting = threading.Lock()
        self.reading = threading.Lock()

    def put(self, key: _CacheKey, entry: _Entry) -> None:
        if entry.size > self.max_bytes // 8:  # one huge view must not evict everything
            return
        self.drop(key)
        self.entries[key] = entry
        self.bytes += entry.size
        self.stats["stored"] += 1
        while self.bytes > self.max_bytes and self.entries:
            self.drop(next(iter(self.entries)))

    def connect(self, engine: Engine) -> None:
        """Take the front cache's own connection (kept; one statement at a time: `reading`)."""
        with self._connecting:  # two first hits at once take one connection, not two
            if self._conn is None:
                # Autocommit: each statement reads the latest commit, no BEGIN/ROLLBACK trips.
                self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def connection_or_none(self) -> Connection | None:
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()

    def drop(self, key: _CacheKey) -> None:
        old = self.entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size


@dataclass(slots=True)
class _Reads:
    """The shared versions reads of one event loop (`ResponseCache._shared_versions`)."""

    running: asyncio.Lock = field(default_factory=asyncio.Lock)
    next: dict[str | None, asyncio.Future[Versions | None]] = field(default_factory=dict)


class ResponseCache:
    """The middleware over `state.responses` (inside limits and metrics, which count its hits;
    outside the admission limit, which its hits skip)."""

    def __init__(self, app: Any, *, state: AppState) -> None:
        self.app = app
        self.state = state
        self.store: ResponseStore = state.responses
        # SQLite answers the versions statement in-process in ~0.2 ms: read inline. A database
        # server takes a round trip: read on a thread, one read at a time, shared (below).
        self.inline = state.engine.dialect.name == "sqlite"
        self._reads: LoopLocal[_Reads] = LoopLocal(_Reads)
        self.stale_s = state.settings.api_stale_while_revalidate_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or self.store.max_bytes <= 0:
            try:
                await self.app(scope, receive, send)
            finally:
                if scope["type"] == "http" and _writes(scope):
                    self.store.fresh_after = time.monotonic()
            return
        api_key = _header(scope, b"x-api-key")
        key: _CacheKey = (
            scope["path"],
            scope.get("query_string", b""),
            hash_token(api_key) if api_key else None,
        )
        entry = self.store.entries.get(key)
        if entry is not None and await self._answer(key, entry, scope, send):
            return
        await self._pass_and_keep(key, scope, receive, send)

    async def _answer(self, key: _CacheKey, entry: _Entry, scope: dict, send: Any) -> bool:
        """Serve `entry` when it is still valid for this caller; False: let the app answer."""
        if self.store.connection_or_none() is None:
            # Taken from the pool on a worker thread: waiting for a free connection on the
            # event loop would deadlock with the requests that hold them (they need the loop
            # to finish and give them back).
            try:
                await to_thread.run_sync(self.store.connect, self.state.engine)
            except SQLAlchemyError:
                return False
        feed = self.state.change_feed
        versions = feed.peek(key[2]) if feed is not None else None  # PostgreSQL, kept: no trip
        if versions is None:
            versions = (
                self._versions(key[2]) if self.inline else await self._shared_versions(key[2])
            )
        if versions is None:
            return False
        if key[2] is None:
            if not self.state.settings.dashboard_read_without_key:
                return False
        elif versions.key_scopes is None or "read" not in versions.key_scopes.split(","):
            return False
        headers = entry.headers
        token = view_token(versions, self.state.changes, entry.deps)
        if token != entry.token:
            if not self._may_serve_stale(entry, token, scope):
                self.store.drop(key)
                self.store.stats["stale"] += 1
                return False
            self._refresh(key, scope)
            self.store.stats["served_stale"] += 1
            headers = [*headers, (b"cache-status", b"verbatim; hit; detail=stale")]
        self.store.entries.move_to_end(key)
        scope["route"] = entry.route
        match = _header(scope, b"if-none-match")
        if match and _etag_matches(match, entry.etag):
            self.store.stats["not_modified"] += 1
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        self.store.stats["hits"] += 1
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.body})
        return True

    def _may_serve_stale(self, entry: _Entry, token: ViewToken, scope: dict) -> bool:
        """Whether `entry`, behind the database (`token`), may still answer this request."""
        if self.stale_s <= 0 or entry.stored_at <= self.store.fresh_after:
            return False
        if not only_job_data_differs(entry.token, token):
            return False
        asked = f"{_header(scope, b'cache-control') or ''},{_header(scope, b'pragma') or ''}"
        if "no-cache" in asked.lower():
            return False
        now = time.monotonic()
        if entry.stale_since is None:
            entry.stale_since = now
        return now - entry.stale_since <= self.stale_s

    def _refresh(self, key: _CacheKey, scope: dict) -> None:
        """Rebuild `key` in the background (once at a time per key) through the app, as
        the request `scope` would; `_pass_and_keep` replaces the entry when it answers 200."""
        running = self.store.refreshing.get(key)
        # (A task whose loop closed, e.g. a test client's per-request loop, never finishes.)
        if running is not None and not running.done() and not running.get_loop().is_closed():
            return
        inner = {k: v for k, v in scope.items() if k not in ("route", "endpoint", "path_params")}
        inner["state"] = dict(scope.get("state") or {})
        inner["headers"] = [(k, v) for k, v in scope["headers"] if k != b"if-none-match"]

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: dict) -> None:
            return None

        async def rebuild() -> None:
            try:
                await self._pass_and_keep(key, inner, receive, discard)
                self.store.stats["refreshed"] += 1
            except Exception:  # noqa: BLE001 - the stale entry stays until its bound ends
                log.exception("background rebuild of %s failed", scope["path"])
            finally:
                if self.store.refreshing.get(key) is task:
                    del self.store.refreshing[key]

        task = asyncio.ensure_future(rebuild())
        self.store.refreshing[key] = task  # also keeps the task referenced until it ends

    async def _shared_versions(self, key_hash: str | None) -> Versions | None:
        """`_versions` off the event loop, shared: the requests that arrive while a read is
        running wait for the next one and take its result. That read starts after they all
        arrived, so none is answered from versions older than its own arrival, and a burst
        of hits costs one round trip per read in flight instead of one per request."""
        reads = self._reads.get()
        pending = reads.next.get(key_hash)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            reads.next[key_hash] = pending
            asyncio.ensure_future(self._read_for(reads, key_hash, pending))
        return await asyncio.shield(pending)

    async def _read_for(
        self, reads: _Reads, key_hash: str | None, done: asyncio.Future[Versions | None]
    ) -> None:
        async with reads.running:  # one read at a time (per loop; `_versions` locks too)
            if reads.next.get(key_hash) is done:
                del reads.next[key_hash]  # later arrivals wait for the read after this
            try:
                done.set_result(await to_thread.run_sync(self._versions, key_hash))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter
                done.set_exception(exc)

    def _versions(self, key_hash: str | None) -> Versions | None:
        """The current data versions, on the store's own connection (inline on SQLite: one
        short indexed statement, cheaper than a thread hop): taking one from the pool here
        could block the event loop while the pool's connections wait on it. None on a database
        error (the app then answers, and reports it)."""
        with self.store.reading:  # one connection: one statement at a time
            conn = self.store.connection_or_none()
            if conn is None:
                return None
            try:
                try:
                    versions = read_versions(conn, key_hash, self.state.change_feed)
                    self.state.changes.refresh(conn, versions.aggregates)
                finally:
                    conn.rollback()  # end the read transaction: the next one sees new commits
            except SQLAlchemyError:
                self.store.close()
                return None
            return versions

    async def _pass_and_keep(self, key: _CacheKey, scope: dict, receive: Any, send: Any) -> None:
        """Let the app answer; keep its response when the endpoint stated its dependencies."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        complete = [False]

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete[0] = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        state = scope.get("state") or {}
        deps, token = state.get("view_deps"), state.get("view_token")
        if deps is None or token is None or start.get("status") != 200 or not complete[0]:
            return
        headers = list(start.get("headers", []))
        etag = next((v for k, v in headers if k.lower() == b"etag"), None)
        if etag is None:
            return
        entry = _Entry(deps, token, headers, b"".join(chunks), etag, scope.get("route"))
        self.store.put(key, entry)


def _writes(scope: dict) -> bool:
    return scope["method"] in ("POST", "PUT", "PATCH", "DELETE") and (
        scope["path"] not in _READ_ONLY_POSTS
    )


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k == name:
            return v.decode("latin-1")
    return None


def _etag_matches(header: str, etag: bytes) -> bool:
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag.decode("latin-1") in tags or "*" in tags

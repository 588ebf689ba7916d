"""Shared request helpers: the typed app state, DB session, period parameters, cached JSON
responses (ETag), and the `Annotated` dependencies every router uses (SessionDep, StateDep)."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.queries import list_languages, list_sources, stored_value
from core.settings import Settings
from core.taxonomy_store import Current, TaxonomyCache
from core.versions import (
    CHANGE_FEED,
    DAY_TABLES,
    PERIOD_MEMO,
    ChangeLog,
    PeriodMemo,
    ViewDeps,
    ViewToken,
    forget_versions,
    session_versions,
    view_token,
)
from nlp.taxonomy import Taxonomy, load_taxonomy
from nlp.text.language import LANGUAGES
from service.errors import ApiError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from core.change_feed import ChangeFeed
    from service.middleware import Metrics
    from service.response_cache import ResponseStore
    from service.views import KeywordCache, ViewCache

MAX_DAYS = 366
# Row ids are INTEGER columns: 32-bit on PostgreSQL, where a larger bound is a DataError (500).
MAX_ID = 2**31 - 1


@dataclass
class AppState:
    """Everything the routers share, built once by `create_app` (app.state.verbatim)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    taxonomy_cache: TaxonomyCache  # the database's current taxonomy (version-checked)
    metrics: Metrics
    keyword_cache: KeywordCache
    view_cache: ViewCache
    responses: ResponseStore  # the front cache of rendered views (service.response_cache)
    changes: ChangeLog = field(default_factory=ChangeLog)  # day ranges of recent rebuilds
    period_memo: PeriodMemo = field(init=False)  # period sums shared by views (core.versions)
    change_feed: ChangeFeed | None = None  # PostgreSQL's (core.change_feed)
    analyzer: Any | None = None
    # Taxonomy version the analyzer was built with ("given": a caller's, kept until an edit).
    analyzer_version: int | str | None = None
    builtin_taxonomies: dict[str, Taxonomy] = field(default_factory=dict)
    _analyzer_lock: threading.Lock = field(default_factory=threading.Lock)
    pii_masker: Any | None = None  # nlp.text.PiiMasker, built at the first write
    # Accepted as a read key while the start-up warm-up runs (service.warmup), else None.
    warm_up_token: str | None = None
    _masker_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.period_memo = PeriodMemo(self.changes, table_rows=self.settings.api_day_table_rows)

    def load_day_tables(self) -> None:
        """Fill the period memo's in-memory aggregate tables (a failure, e.g. a database
        not migrated yet, is logged: the first request that needs them loads them)."""
        try:
            with session_scope(self.sessions) as session:
                for model, _keys, _values in DAY_TABLES:
                    self.period_memo.table(session, model)
        except SQLAlchemyError as exc:
            log.warning("aggregate tables not loaded at start-up (%s)", exc)

    def get_masker(self) -> Any:
        """The PII masker (rules + spaCy NER when `pii_ner`), built once at first use."""
        with self._masker_lock:
            if self.pii_masker is None:
                from core.masking import build_masker

                self.pii_masker = build_masker(self.settings)
            return self.pii_masker

    def current_taxonomy(self, session: Session | None = None) -> Current:
        """The current taxonomy: one cheap version query, a reload only when it moved (so
        several API replicas agree from their next request). With the request's `session`
        no second connection is taken (a request holding one while waiting for another can
        exhaust the pool under load); seeding version 1 on first use commits in its own
        short transaction (left uncommitted, it would hold the seed row's lock, and block
        every other writer, until the request ends)."""
        if session is not None and (version := session_versions(session).taxonomy) is not None:
            return self.taxonomy_cache.get(session, version)
        with session_scope(self.sessions) as own:
            found = self.taxonomy_cache.get(own)
        if session is not None:
            forget_versions(session)  # read before the seed: the view token must see it
        return found

    def get_analyzer(self) -> Any:
        """The analyzer, built at first use (or after a taxonomy edit) and then reused."""
        from core.analysis import analyzer_for

        with self._analyzer_lock:
            cur = self.current_taxonomy()
            if self.analyzer is not None and self.analyzer_version in (None, "given"):
                self.analyzer_version = cur.version  # a caller's analyzer: kept until an edit
            built = self.analyzer_version if isinstance(self.analyzer_version, int) else None
            self.analyzer = analyzer_for(
                self.settings, cur.taxonomy, cur.version, self.analyzer, built
            )
            self.analyzer_version = cur.version
            return self.analyzer


def app_state(request: Request) -> AppState:
    return request.app.state.verbatim  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session (auth, taxonomy and endpoint share it: one connection).

    An async dependency on purpose: its cleanup, which gives the connection back to the
    pool, then runs on the event loop. Run on a worker thread (a sync dependency), it would
    wait for a free thread while every thread waits for a free connection: under load the
    pool and the thread pool deadlock until the pool timeout."""
    state = app_state(request)
    session = state.sessions()
    request.state.db = session  # reused by pick_taxonomy
    session.info[PERIOD_MEMO] = state.period_memo
    if state.change_feed is not None:
        session.info[CHANGE_FEED] = state.change_feed
    try:
        yield session
    finally:
        session.close()


StateDep = Annotated[AppState, Depends(app_state)]
SessionDep = Annotated[Session, Depends(get_session)]


def current_taxonomy(request: Request) -> Current:
    """The database's current taxonomy (see AppState.current_taxonomy)."""
    return app_state(request).current_taxonomy()


def pick_taxonomy(request: Request, name: str | None) -> Taxonomy:
    """The current taxonomy, or a built-in one by name (cached on the app)."""
    state = app_state(request)
    if name is None:
        return state.current_taxonomy(getattr(request.state, "db", None)).taxonomy
    cache = state.builtin_taxonomies
    if name not in cache:
        cache[name] = load_taxonomy(name)
    return cache[name]


def cached_view(request: Request, key: tuple[Any, ...], build: Callable[[], BaseModel]) -> Response:
    """The JSON of `build()` through the app's view cache (get, else build and put), with an
    ETag (304 when the client has it)."""
    cache = app_state(request).view_cache
    # Single flight: identical concurrent cold requests build once, the others wait for it.
    prepared = cache.get_or_compute(key, lambda: json_body(build()))
    return cached_json(request, prepared=prepared)


def view_key(
    request: Request,
    session: Session,
    tax: Taxonomy,
    *params: object,
    period: tuple[date, date],
) -> tuple[Any, ...]:
    """Cache key of a rendered view of `period`: reused until the aggregates of that period or
    of the previous one (the comparison), the alerts or the taxonomy change."""
    days = (previous_period(*period)[0], period[1])
    token = declare_view(request, session, ViewDeps(days=days))
    return (
        *params,
        *period,
        token,
        tax.name,  # with `taxonomy` in params: the database's current version or a built-in one
        tax.version,
    )


def declare_view(request: Request, session: Session, deps: ViewDeps) -> ViewToken:
    """The data token of a view that reads `deps` (one statement of index lookups, no
    scan), also left for the front response cache (`service.response_cache`): a 200 JSON
    response with an ETag is then kept and reused while the token holds."""
    state = app_state(request)
    versions = session_versions(session)  # usually already read by the key check
    state.period_memo.note(session, versions.aggregates)  # refreshes state.changes too
    token = view_token(versions, state.changes, deps)
    request.state.view_deps = deps
    request.state.view_token = token
    return token


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def check_days(**days: date | None) -> None:
    """Every day parameter of the API (`start`, `end`) lies in [FIRST_DAY, LAST_DAY]; a 422
    names the first one outside. Day arithmetic near 0001-01-01 / 9999-12-31 overflows
    Python's date, and one bound for every endpoint is what a client can rely on."""
    for name, day in days.items():
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ApiError(422, f"{name}: dates run from {FIRST_DAY} to {LAST_DAY}", name)


def resolve_period(
    session: Session, start: date | None, end: date | None, days: int
) -> tuple[date, date]:
    """[start, end] inclusive. Default end: the last day with data (else today, UTC)."""
    check_days(start=start, end=end)
    if start is not None and end is None:
        end = start + timedelta(days=days - 1)
    if end is None:
        end = session_versions(session).latest_day or datetime.now(UTC).date()
    if start is None:
        start = end - timedelta(days=days - 1)
    if end < start:
        raise ApiError(422, "end must not be before start", "end")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, f"a period spans at most {MAX_DAYS} days", "start")
    return start, end


def known_list(values: Sequence[str], limit: int = 20) -> str:
    """`values` for an error message: the first `limit`, then how many in all."""
    if not values:
        return "none yet"
    shown = ", ".join(values[:limit])
    return f"{shown}, … ({len(values)} in all)" if len(values) > limit else shown


def check_filters(
    session: Session, *, source: str | None = None, language: str | None = None
) -> None:
    """A `source` or `language` that no stored verbatim has is a 422 naming the known ones:
    a misspelt filter (`source=trustpilt`) answered 200 with every figure 0, which reads as
    « no complaint ». A known one without data in the period still answers its zeros."""
    if source is not None:
        sources = list_sources(session)
        if source not in sources and not stored_value(session, "source", source):
            detail = f"unknown source {source!r}; known: {known_list(sources)}"
            raise ApiError(422, detail, "source")
    # A language the detector names is known without data (the dashboard offers en, und).
    if language and language not in LANGUAGES:  # empty: no filter, as the query layer reads it
        stored = list_languages(session)
        if language not in stored and not stored_value(session, "language", language):
            known = known_list(sorted(LANGUAGES.union(stored)), limit=40)
            raise ApiError(422, f"unknown language {language!r}; known: {known}", "language")


def previous_period(start: date, end: date) -> tuple[date, date]:
    prev_end = start - timedelta(days=1)
    return prev_end - (end - start), prev_end


def json_body(model: BaseModel) -> tuple[bytes, str]:
    """(JSON bytes, strong ETag of those bytes)."""
    body = model.model_dump_json().encode("utf-8")
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def cached_json(
    request: Request,
    model: BaseModel | None = None,
    max_age: int = 30,
    *,
    prepared: tuple[bytes, str] | None = None,
) -> Response:
    """JSON with a content ETag; 304 when the client already has this exact body."""
    if prepared is None:
        assert model is not None
        prepared = json_body(model)
    body, etag = prepared
    headers = {
        "ETag": etag,
        "Cache-Control": f"private, max-age={max_age}, must-revalidate",
        "Vary": "X-API-Key",
    }
    match = request.headers.get("if-none-match")
    if match:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def encode_cursor(day: date, created: datetime, feedback_id: int, mention_id: int) -> str:
    """The next page of a theme's verbatims (`core.queries.VerbatimCursor`), opaque."""
    raw = f"{day.isoformat()}|{created.isoformat()}|{feedback_id}|{mention_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def invalid_cursor() -> ApiError:
    """The 422 of a `cursor` that no page gave (every paged endpoint's)."""
    return ApiError(422, "invalid cursor (use next_cursor from the previous page)", "cursor")


def decode_cursor(cursor: str) -> tuple[date, datetime, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, created, *idents = raw.split("|")
        numbers = [int(i) for i in idents]
        if len(numbers) != 2 or not all(0 <= n <= MAX_ID for n in numbers):  # a database int
            raise ValueError(raw)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError(created)
        return date.fromisoformat(day), moment.astimezone(UTC), numbers[0], numbers[1]
    except (ValueError, OverflowError, UnicodeDecodeError) as exc:  # Overflow: year 9999 -23:59
        raise invalid_cursor() from exc

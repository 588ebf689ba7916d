"""Shared request helpers: DB session, period parameters, cached JSON responses (ETag)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.queries import latest_day
from core.taxonomy_store import Current
from nlp.taxonomy import Taxonomy, load_taxonomy
from service.errors import ApiError

MAX_DAYS = 366


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def current_taxonomy(request: Request) -> Current:
    """The current taxonomy from the database (cached per process; one cheap version query
    per call keeps replicas in agreement)."""
    state = request.app.state
    with state.sessions() as session:
        return state.taxonomy_cache.get(session)


def pick_taxonomy(request: Request, name: str | None) -> Taxonomy:
    """The current taxonomy, or a built-in one by name (cached on the app)."""
    if name is None:
        return current_taxonomy(request).taxonomy
    cache: dict[str, Taxonomy] = request.app.state.builtin_taxonomies
    if name not in cache:
        cache[name] = load_taxonomy(name)
    return cache[name]


def resolve_period(
    session: Session, start: date | None, end: date | None, days: int
) -> tuple[date, date]:
    """[start, end] inclusive. Default end: the last day with data (else today, UTC)."""
    if start is not None and end is None:
        end = start + timedelta(days=days - 1)
    if end is None:
        end = latest_day(session) or datetime.now(UTC).date()
    if start is None:
        start = end - timedelta(days=days - 1)
    if end < start:
        raise ApiError(422, "end must not be before start", "end")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, f"a period spans at most {MAX_DAYS} days", "start")
    return start, end


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


def encode_cursor(day: date, ident: int) -> str:
    return base64.urlsafe_b64encode(f"{day.isoformat()}|{ident}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[date, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, ident = raw.split("|", 1)
        return date.fromisoformat(day), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            422, "invalid cursor (use next_cursor from the previous page)", "cursor"
        ) from exc

"""API keys: random tokens shown once, stored as sha256 hashes, scope `read` or `read,write`."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import ApiKey
from core.versions import session_versions
from service.deps import SessionDep, app_state
from service.errors import ApiError

Scope = Literal["read", "write"]
TOKEN_PREFIX = "vb_"

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="API key created with `verbatim apikey create NAME --scope read|write`.",
)


# A token in a logged line (one pasted into a URL, `?api_key=vb_…`: ignored, the key goes in
# the header, but the access log wrote it whole) keeps only its stored prefix, as
# `verbatim apikey list` shows it: enough to tell which key to revoke, nothing to reuse.
_TOKEN_IN_TEXT = re.compile(rf"({TOKEN_PREFIX}[A-Za-z0-9_-]{{7}})[A-Za-z0-9_-]+")


def redact_tokens(text: str) -> str:
    return _TOKEN_IN_TEXT.sub(r"\1…", text)


class RedactTokens(logging.Filter):
    """API tokens in a record's message and arguments (the access log's path and query) cut
    to their prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_tokens_in_logs() -> None:
    """Filter uvicorn's loggers (in each worker process: the app is built there), whatever
    handlers and format the server's logging gives them."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str, scope: Scope) -> tuple[ApiKey, str]:
    """Store a new key; returns (row, token). The token itself is never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name[:100],
        prefix=token[:10],
        key_hash=hash_token(token),
        scopes="read,write" if scope == "write" else "read",
        created_at=datetime.now(UTC),
    )
    session.add(key)
    session.flush()
    return key, token


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.execute(select(ApiKey).order_by(ApiKey.id)).scalars())


# `api_keys.id` is a 32-bit INTEGER on PostgreSQL (SQLite: 64-bit): a larger id is no key.
MAX_KEY_ID = 2**31 - 1


def revoke_key(session: Session, key_id: int) -> bool:
    """Revoke a key; False when there is no such active key."""
    if not 0 < key_id <= MAX_KEY_ID:
        # `verbatim apikey revoke 9999999999` was a DataError traceback on PostgreSQL (an
        # OverflowError on SQLite from 2**63) instead of "no active API key with id …".
        return False
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = datetime.now(UTC)
    return True


def find_key(session: Session, token: str) -> ApiKey | None:
    return session.execute(
        select(ApiKey).where(ApiKey.key_hash == hash_token(token), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()


def require(scope: Scope) -> Callable[..., ApiKey | None]:
    """Dependency: a valid key with `scope` (read endpoints may be open, see settings)."""

    def dependency(
        request: Request, session: SessionDep, token: str | None = Security(api_key_header)
    ) -> ApiKey | None:
        # The request's own session (FastAPI shares it with the endpoint): one connection.
        state = app_state(request)
        if not token:
            if scope == "read" and state.settings.dashboard_read_without_key:
                return None
            raise ApiError(
                401,
                "missing API key: send it in the X-API-Key header",
                "X-API-Key",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        warming = state.warm_up_token
        if scope == "read" and warming is not None and secrets.compare_digest(token, warming):
            return None  # the start-up warm-up (service.warmup), in process
        if scope == "read":
            # The key's scopes come with the data versions the view needs anyway (one read
            # per request, kept while nothing was written on SQLite): no ORM lookup.
            scopes = session_versions(session, hash_token(token)).key_scopes
            key = None
        else:
            key = find_key(session, token)
            scopes = key.scopes if key is not None else None
        if scopes is None:
            raise ApiError(
                401,
                "invalid or revoked API key",
                "X-API-Key",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if scope not in scopes.split(","):
            raise ApiError(403, f"this API key has no {scope!r} scope", "X-API-Key")
        return key

    return dependency

"""Every error is JSON `{"detail": ..., "field": ...}`, naming the offending field if any."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(StarletteHTTPException):
    """An HTTP error with the name of the field at fault."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.field = field


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'items', 0, 'text') -> 'items[0].text'; ('query', 'limit') -> 'limit'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _not_json(request: Request, exc: RequestValidationError) -> str | None:
    """The Content-Type of a body FastAPI did not read as JSON (a form, text/plain, CSV): it
    reaches validation as bytes, and the error said the body was not an object."""
    if not isinstance(exc.body, bytes) or not exc.body:
        return None
    kind = request.headers.get("content-type", "")
    main = kind.split(";", 1)[0].strip().lower()
    return None if main == "application/json" or main.endswith("+json") else kind


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    kind = _not_json(request, exc)
    if kind is not None:
        sent = f"not {kind[:80]!r}" if kind else "none was sent"
        detail = f"the body is read as JSON only: send Content-Type: application/json ({sent})"
        return JSONResponse(status_code=422, content={"detail": detail, "field": "Content-Type"})
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    field = _field(first)
    details = [
        {"field": _field(e), "message": _message(e), "type": e.get("type")} for e in errors[:20]
    ]
    return JSONResponse(
        status_code=422,
        content=jsonable_encoder(
            {"detail": f"{field}: {_message(first)}", "field": field, "errors": details}
        ),
    )


def _field(error: Any) -> str:
    # FastAPI locates malformed JSON at ("body", character offset): "[10]" is no field.
    return "body" if error.get("type") == "json_invalid" else field_name(error.get("loc", ()))


def _message(error: Any) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":  # pydantic: "Extra inputs are not permitted"
        return "unknown key: not a field of this body (misspelt?)"
    if kind == "json_invalid":  # "JSON decode error": say what and where
        loc, why = error.get("loc", ()), (error.get("ctx") or {}).get("error")
        where = f" at character {loc[-1]}" if len(loc) > 1 and isinstance(loc[-1], int) else ""
        return f"invalid JSON{': ' + str(why) if why else ''}{where}"
    return str(error.get("msg", "invalid"))


# FastAPI's answer to a body it cannot decode: `service.text_route` names the usual causes
# (not UTF-8, compressed, nested too deep, a number too long) with a 422, as a JSON syntax
# error is; anything else is said in the same terms.
_UNPARSED_BODY = "There was an error parsing the body"


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail, field = str(exc.detail), getattr(exc, "field", None)
    status = exc.status_code
    if status == 400 and detail == _UNPARSED_BODY:
        status, field = 422, "body"
        detail = "the body could not be read: send JSON encoded as UTF-8, uncompressed"
    return JSONResponse(
        status_code=status,
        content={"detail": detail, "field": field},
        headers=getattr(exc, "headers", None),
    )


# SQLite: "database is locked" once busy_timeout (10 s, core.db) passed behind another
# process's write (a full `verbatim aggregate` holds it for minutes at 1M rows); PostgreSQL:
# deadlock, serialization failure, lock_timeout. The client's retry succeeds: not a 500.
_BUSY_SQLITE = ("database is locked", "database table is locked", "database is busy")
_BUSY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
BUSY_HEADERS = {"Retry-After": "5"}  # seconds: a 503 for a busy database says when to retry


def database_busy(exc: BaseException) -> bool:
    """Whether `exc` is a database lock wait that ran out (the request may simply be retried)."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    return str(exc.orig).lower().startswith(_BUSY_SQLITE)


def _busy_response(request: Request) -> JSONResponse:
    log.warning("%s %s: database busy, answered 503", request.method, request.url.path)
    return JSONResponse(
        status_code=503,
        content={
            "detail": "the database is busy (another process is writing: verbatim aggregate, "
            "run, enrich or taxonomy import): retry in a moment",
            "field": None,
        },
        headers=BUSY_HEADERS,
    )


async def _database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if not database_busy(exc):
        raise exc  # a fault: the 500 below, with its traceback in the server log
    return _busy_response(request)


async def _server_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if database_busy(exc):  # raised in a middleware, outside the handler above
        return _busy_response(request)
    # Still JSON for the client; the traceback goes to the server log only.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal server error", "field": None})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(DBAPIError, _database_error_handler)
    app.add_exception_handler(Exception, _server_error_handler)

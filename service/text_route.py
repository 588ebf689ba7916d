"""JSON bodies whose strings are not text, path or query parameters holding a NUL, and a
query parameter of one value given twice, are refused with a 422 naming the field.

JSON may spell a lone UTF-16 surrogate ("\\ud800"); Python decodes it into a str that cannot
be encoded as UTF-8, so storing it or serialising a response that echoes it failed with a
500 (and a taxonomy saved with one broke every later read). Every router uses this route
class; the check costs one bytes search unless the body holds such an escape."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable, Callable
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from nlp.text.validity import non_text
from service.errors import ApiError

# A surrogate escape, paired or not: only then are the decoded strings walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


TOO_DEEP = "lists or objects nested too deep"


def _read_json(body: bytes, encoding: str) -> Any:
    """The body as JSON, or a 422 naming why it cannot be read. FastAPI answered its generic
    400 "There was an error parsing the body" to everything but a JSON syntax error (which it
    answers with a 422, `json_invalid`): a body not in UTF-8 (Latin-1, cp1252), compressed,
    nested past the parser's recursion limit, or holding an integer too long to convert."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        encoding = encoding.strip().lower()
        if (encoding not in ("", "identity")) or body[:2] == b"\x1f\x8b":  # gzip's magic
            sent = f"Content-Encoding {encoding[:40]!r}" if encoding else "gzip data"
            raise ApiError(
                422, f"the body is compressed ({sent}): send it uncompressed", "body"
            ) from None
        if isinstance(exc, json.JSONDecodeError):
            raise  # FastAPI's 422 `json_invalid`, with the position
        if isinstance(exc, UnicodeDecodeError):
            raise ApiError(
                422,
                f"the body is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start}):"
                " send JSON encoded as UTF-8",
                "body",
            ) from None
        if isinstance(exc, RecursionError):
            raise ApiError(422, f"{TOO_DEEP} to be read", "body") from None
        if "digits" in str(exc):  # int(): "Exceeds the limit (4300 digits) ..."
            limit = sys.get_int_max_str_digits()
            raise ApiError(
                422, f"a number in the body is longer than {limit} digits", "body"
            ) from None
        raise


class _TextOnlyRequest(Request):
    row_keys: frozenset[str] = frozenset()

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            data = _read_json(body, self.headers.get("content-encoding", ""))
            if _SURROGATE_ESCAPE.search(body):
                checked = data
                if self.row_keys and isinstance(data, dict):  # rows are checked one by one
                    checked = {k: v for k, v in data.items() if k not in self.row_keys}
                try:
                    problem = non_text(checked, allow_nul=True)  # NULs are dropped when stored
                except RecursionError:
                    raise ApiError(422, TOO_DEEP, "body") from None
                if problem:
                    field, message = problem
                    raise ApiError(422, f"{message} (a lone UTF-16 surrogate)", field)
            self._json = data
        return self._json


def _refuse_nul_parameters(request: Request) -> None:
    """No id, theme, source or language holds a NUL, and PostgreSQL refuses one in any
    comparison: a path or query parameter with one was a 500 there (200 on SQLite)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        problem = non_text(value, str(name))
        if problem:
            raise ApiError(422, problem[1], problem[0])


def _refuse_repeated_parameters(request: Request, read: frozenset[str]) -> None:
    """Every query parameter the endpoint reads takes one value. Given twice, the last one
    won without a word: `?channel=review&channel=social` answered the social channel's
    figures alone, read as both channels'. Parameters the endpoint does not read are ignored."""
    names = [name for name, _ in request.query_params.multi_items() if name in read]
    for name in dict.fromkeys(names):
        count = names.count(name)
        if count > 1:
            raise ApiError(422, f"{name}: given {count} times; send it once", name)


def _one_value(annotation: Any) -> bool:
    """A parameter typed as one value (`str | None`), not a list one may repeat."""
    kinds = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    return not any(get_origin(kind) in (list, set, tuple, frozenset) for kind in kinds)


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters of one value an endpoint reads, its dependencies' included."""
    names: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        names.update(
            param.alias for param in current.query_params if _one_value(param.field_info.annotation)
        )
        todo.extend(current.dependencies)
    return frozenset(names)


class TextRoute(APIRoute):
    # Body keys holding rows that the endpoint checks one by one (POST /feedback rejects the
    # one row with a lone surrogate, `encoding_error`, and stores the others).
    row_keys: frozenset[str] = frozenset()

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        row_keys = self.row_keys
        read = _query_names(self.dependant)

        async def text_only(request: Request) -> Response:
            _refuse_nul_parameters(request)
            _refuse_repeated_parameters(request, read)
            text_request = _TextOnlyRequest(request.scope, request.receive)
            text_request.row_keys = row_keys
            return await handler(text_request)

        return text_only

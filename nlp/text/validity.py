"""Strings that are not text: a lone UTF-16 surrogate (JSON's "\\ud800" escape decodes to
one) cannot be encoded as UTF-8, so it can be neither stored nor served back; a NUL is
refused by PostgreSQL's text columns. Found here, at the door, with where they sit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def non_text(value: Any, where: str = "", *, allow_nul: bool = False) -> tuple[str, str] | None:
    """(where, message) for the first string under `value` (str, list, tuple, dict keys and
    values, pydantic models) that holds a lone surrogate (or a NUL, unless `allow_nul`);
    None when all are text. `where` reads like the API's field names: `items[0].text`."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            pos = -1 if allow_nul else value.find("\x00")
        except UnicodeEncodeError as exc:
            pos = exc.start
        if pos < 0:
            return None
        where = where or "value"
        return where, f"{where}: character U+{ord(value[pos]):04X} at {pos} is not text"
    if isinstance(value, BaseModel):
        items: Any = value.__dict__.items()
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        inner = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        problem = non_text(key, where, allow_nul=allow_nul) or non_text(
            item, inner, allow_nul=allow_nul
        )
        if problem:
            return problem
    return None

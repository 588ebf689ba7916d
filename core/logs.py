"""Logging configured once, by the CLI callback: level and format for every module's logger.

Level: VERBATIM_LOG_LEVEL (a name like INFO or a number; default WARNING), raised by `-v`
(INFO) / `-vv` (DEBUG), lowered by `--quiet` (ERROR). VERBATIM_LOG_FORMAT=json writes one JSON
object a line (servers, log shippers); the default is a plain `time level logger: message`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_HANDLER_NAME = "verbatim-cli"
_CHATTY = ("alembic", "httpx", "urllib3")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (test runners and
    embedding tools swap it), never to a stream that may since have been closed."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _env_level() -> int:
    raw = os.environ.get("VERBATIM_LOG_LEVEL", "WARNING").strip()
    if raw.isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    return level if isinstance(level, int) else logging.WARNING


def configure_logging(*, verbose: int = 0, quiet: bool = False) -> int:
    """(Re)configure the root logger's one CLI handler on the current stderr; returns the level."""
    level = _env_level()
    if verbose:
        level = min(level, logging.INFO if verbose == 1 else logging.DEBUG)
    if quiet:
        level = max(level, logging.ERROR)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    if os.environ.get("VERBATIM_LOG_FORMAT", "").strip().lower() == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries' INFO chatter (Alembic lists its plugins on every start) drowns our lines.
    for name in _CHATTY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if level <= logging.DEBUG else logging.WARNING
        )
    return level

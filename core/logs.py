"""Logging configured once, by the CLI callback: level and format for every module's logger.

Level: VERBATIM_LOG_LEVEL (a name like INFO or a number; default WARNING), raised by `-v`
(INFO) / `-vv` (DEBUG), lowered by `--quiet` (ERROR). VERBATIM_LOG_FORMAT=json writes one JSON
object a line (servers, log shippers); the default is a plain `time level logger: message`.
`verbatim serve` sends uvicorn's lines (start-up, access log) through the same handler
(`server_log_level`): with its own handlers they were plain text among the JSON lines.
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


_FORMATS = ("", "json", "text")


def _env_level() -> int | None:
    """VERBATIM_LOG_LEVEL as a level (unset or empty: WARNING); None when it names none."""
    raw = os.environ.get("VERBATIM_LOG_LEVEL", "").strip() or "WARNING"
    if raw.isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    return level if isinstance(level, int) else None


def configure_logging(*, verbose: int = 0, quiet: bool = False) -> int:
    """(Re)configure the root logger's one CLI handler on the current stderr; returns the level.
    A VERBATIM_LOG_LEVEL or VERBATIM_LOG_FORMAT it cannot read is a warning (the default is
    used): `VERBATIM_LOG_LEVEL=DEBG` gave the WARNING level in silence."""
    env_level = _env_level()
    level = logging.WARNING if env_level is None else env_level
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
    log_format = os.environ.get("VERBATIM_LOG_FORMAT", "").strip().lower()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root.addHandler(handler)
    root.setLevel(level)
    log = logging.getLogger(__name__)
    if env_level is None:
        log.warning(
            "VERBATIM_LOG_LEVEL=%s is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL "
            "or a number): WARNING is used",
            os.environ.get("VERBATIM_LOG_LEVEL"),
        )
    if log_format not in _FORMATS:
        log.warning(
            "VERBATIM_LOG_FORMAT=%s is not a log format (json, or text: the default): text is used",
            os.environ.get("VERBATIM_LOG_FORMAT"),
        )
    # Libraries' INFO chatter (Alembic lists its plugins on every start) drowns our lines.
    for name in _CHATTY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if level <= logging.DEBUG else logging.WARNING
        )
    return level


def server_log_level() -> int:
    """The level of uvicorn's loggers under the level configured here: its start-up lines and
    access log (INFO) are kept at the default WARNING and above it (-v), dropped by a level
    above WARNING (`--quiet`, VERBATIM_LOG_LEVEL=ERROR). Without handlers of their own they
    propagate to the root logger, hence to `configure_logging`'s handler and format."""
    level = logging.getLogger().level
    return min(level, logging.INFO) if level <= logging.WARNING else level

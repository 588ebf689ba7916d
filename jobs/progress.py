"""Progress of long jobs as log lines (rate, ETA): what a cron or systemd log shows.

A terminal gets a rich bar instead (jobs/ingest.py); these lines go through `logging` at INFO,
so they show with `verbatim -v` or VERBATIM_LOG_LEVEL=INFO.
"""

from __future__ import annotations

import logging
import sys
import time


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class ProgressLog:
    """Logs `label: N rows, X rows/s[, P%, ETA Ts]` at the first update, then every `every`
    seconds, and a last line from `finish()`. `done`/`total` measure the fraction (rows, bytes)."""

    def __init__(
        self,
        logger: logging.Logger,
        label: str,
        *,
        total: float | None = None,
        every: float = 10.0,
    ) -> None:
        self.logger, self.label, self.total, self.every = logger, label, total, every
        self.start = time.monotonic()
        self.last: float | None = None

    def update(self, rows: int, done: float | None = None) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every:
            return
        self.last = now
        self.logger.info("%s", self._line(rows, rows if done is None else done, now))

    def finish(self, rows: int) -> None:
        now = time.monotonic()
        elapsed = max(now - self.start, 1e-9)
        self.logger.info(
            "%s: done, %d rows in %.1fs (%.0f rows/s)", self.label, rows, elapsed, rows / elapsed
        )

    def _line(self, rows: int, done: float, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        line = f"{self.label}: {rows} rows, {rows / elapsed:.0f} rows/s"
        if self.total and done > 0:
            share = min(done / self.total, 1.0)
            eta = elapsed * (1 - share) / share
            line += f", {share:.0%}, ETA {eta:.0f}s"
        return line

"""PostgreSQL change feed: the API skips the versions statement while nothing changed.

On SQLite `core.versions.read_versions` reuses its last result while `PRAGMA data_version`
is unchanged (two integer reads). PostgreSQL has no such cheap counter, so every request
paid a round trip for the versions statement (and the pool's ping and the rollback that came
with it). Here, statement-level triggers (migration 0007) `pg_notify` the channel below when
a table that the versions read changes, and one thread per API process `LISTEN`s to it:

- `generation` moves with every notification, and at once with every write committed through
  this process's engine (read-your-writes needs no round trip);
- `versions()` answers from the result read under the current generation; a result is also
  dropped after `max_age_s`, which bounds how late a change can be seen if a notification
  were ever lost;
- while the listening connection is down (PostgreSQL restarted, network cut), there is no
  generation and every call reads the database, as before; when it comes back the
  generation moves, so nothing read while it was down is reused.

Writes by other processes (the scheduled jobs, the CLI, another API replica) are seen once
their notification arrives (PostgreSQL sends it at commit; well under a millisecond on
loopback) instead of at the next statement.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

if TYPE_CHECKING:
    from core.versions import Versions

CHANNEL = "verbatim_versions"
log = logging.getLogger(__name__)

# Statements that cannot change a table (anything else counts as a write, to be safe).
_READS = ("SELECT", "SHOW", "LISTEN", "SET", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_WROTE = "verbatim.change_feed.wrote"  # connection info: a write since the last commit


class ChangeFeed:
    """One per engine (and process): see the module docstring. `start()` it, `stop()` it."""

    def __init__(self, engine: Engine, *, max_age_s: float = 1.0, retry_s: float = 2.0) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the change feed needs PostgreSQL (SQLite has PRAGMA data_version)")
        self.engine = engine
        self.max_age_s = max_age_s
        self.retry_s = retry_s
        self._generation = 0
        self._live = False
        self._memo: tuple[int, float, dict[str | None, Versions]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = {"connects": 0, "notifications": 0, "local_writes": 0, "reads": 0, "reused": 0}

    @property
    def generation(self) -> int | None:
        """The current generation; None while not listening (then nothing is reused)."""
        return self._generation if self._live else None

    def bump(self) -> None:
        """Something changed: results read before now are not reused."""
        with self._lock:
            self._generation += 1
            self._memo = None

    def versions(self, key: str | None, read: Callable[[], Versions]) -> Versions:
        """The result of `read()` for `key`, reused while the generation is unchanged and
        it is at most `max_age_s` old."""
        kept = self.peek(key)
        if kept is not None:
            return kept
        generation = self.generation
        started = time.monotonic()
        found = read()  # read after the generation: a change in between moves it (not reused)
        self.stats["reads"] += 1
        if generation is None:
            return found
        with self._lock:
            if generation != self._generation:
                return found  # moved while reading: keep nothing
            memo = self._memo
            if memo is None or memo[0] != generation or started - memo[1] > self.max_age_s:
                memo = (generation, started, {})
                self._memo = memo
            memo[2][key] = found
        return found

    def peek(self, key: str | None) -> Versions | None:
        """The kept result for `key` when it may be reused, else None (no database access:
        the caller may be on the event loop)."""
        memo = self._memo
        if (
            memo is None
            or not self._live
            or memo[0] != self._generation
            or time.monotonic() - memo[1] > self.max_age_s
        ):
            return None
        found = memo[2].get(key)
        if found is None and key is None:
            # Any key's read answers a read without one (list(): one step, safe while
            # another thread adds a key).
            found = next(iter(list(memo[2].values())), None)
        if found is not None:
            self.stats["reused"] += 1
        return found

    # --- writes through this engine ------------------------------------------------------

    def _listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("before_cursor_execute", self._note_write),
            ("after_cursor_execute", self._after_execute),
            ("commit", self._after_commit),
            ("rollback", self._after_rollback),
        ]

    def _note_write(
        self, conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        if not statement.lstrip()[:9].upper().startswith(_READS):
            conn.info[_WROTE] = True

    def _after_execute(
        self, conn: Any, _cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        # An autocommit connection's write is committed now: no commit event follows.
        if conn.info.get(_WROTE) and conn.get_execution_options().get("isolation_level") == (
            "AUTOCOMMIT"
        ):
            del conn.info[_WROTE]
            self._local_write()

    def _after_commit(self, conn: Any) -> None:
        if conn.info.pop(_WROTE, False):
            self._local_write()

    def _after_rollback(self, conn: Any) -> None:
        conn.info.pop(_WROTE, None)

    def _local_write(self) -> None:
        self.stats["local_writes"] += 1
        self.bump()

    # --- the listening thread ------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            for name, listener in self._listeners():
                event.listen(self.engine, name, listener)
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen, name="change-feed", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
            for name, listener in self._listeners():
                event.remove(self.engine, name, listener)

    def wait_live(self, timeout: float) -> bool:
        """Until the feed listens (tests, start-up); False when it did not within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self._live and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._live

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen_once()
            except Exception as exc:  # noqa: BLE001 - any failure: read the database, retry
                if self._live:
                    log.warning("change feed lost (%s): versions read on every request", exc)
                else:
                    log.debug("change feed not listening (%s), retrying", exc)
            self._go_dark()
            self._stop.wait(self.retry_s)

    def _listen_once(self) -> None:
        fairy = self.engine.raw_connection()
        raw = fairy.driver_connection
        fairy.detach()  # ours for as long as it lives, not the pool's
        if raw is None:
            raise RuntimeError("no database connection")
        try:
            raw.autocommit = True
            raw.execute(f"LISTEN {CHANNEL}")
            self.bump()  # from here no change is missed: drop what was read before
            self._live = True
            self.stats["connects"] += 1
            log.info("change feed listening on %s", CHANNEL)
            while not self._stop.is_set():
                for _ in raw.notifies(timeout=0.5, stop_after=1000):
                    self.stats["notifications"] += 1
                    self.bump()
        finally:
            with contextlib.suppress(Exception):  # closing a broken connection
                raw.close()

    def _go_dark(self) -> None:
        with self._lock:
            self._live = False
            self._memo = None

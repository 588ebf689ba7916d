"""`verbatim scheduler`: run ingestion and the pipeline on cron expressions (APScheduler 3).

Guarantees, for any number of schedulers on one database (processes or machines):
- **one run at a time**: a run holds a lock first, a PostgreSQL advisory lock
  (`pg_try_advisory_lock`, per database and schema) or, on SQLite, a file lock next to the
  database file; a tick that finds another run going waits up to `lock_wait_seconds`;
- **one run per tick**: the run then claims its tick with a row in `job_runs`, unique on
  (job, tick); a scheduler that finds the tick claimed skips it;
- **misfires**: a tick late by less than `misfire_grace_seconds` still runs, several missed
  ticks run once (coalescing);
- **clean stop**: SIGTERM / SIGINT stop the scheduler; a run in progress ends at its next safe
  point (between sources, between analysis batches: what it stored stays stored, the run is
  recorded as `aborted`, the next tick continues from there);
- status, lag (start - tick) and duration of the last run of each job in `job_runs`, shown by
  `/health` and `/metrics`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.settings import SchedulerJob, Settings
from core.store import (
    claim_job_run,
    finish_job_run,
    interrupt_stale_job_runs,
    job_run_claimed,
    prune_job_runs,
    utcnow,
)
from nlp.errors import VerbatimError

log = logging.getLogger(__name__)

Stop = Callable[[], bool]


class StopRequest:
    """The stop flag SIGTERM / SIGINT set (see `stop_on_signals`), callable as a `Stop`: jobs
    check it at their safe points (between sources, batches, days, messages)."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.event.is_set()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "stop"

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal ended: 143 for
        SIGTERM, 130 for SIGINT (the code of an interrupted command, core.cli)."""
        return 128 + (self.signum or signal.SIGTERM)


@contextmanager
def stop_on_signals(
    event: threading.Event | None = None, *, second_interrupts: bool = False
) -> Iterator[StopRequest]:
    """SIGTERM / SIGINT set the returned stop flag instead of killing the process, for the
    time of the block (the previous handlers are restored after). With `second_interrupts`
    a second signal raises KeyboardInterrupt (an impatient Ctrl-C still stops at once).
    Outside the main thread (signals cannot be caught there) the flag is only a flag."""
    stop = StopRequest(event)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, _frame: Any) -> None:
        if stop() and second_interrupts:
            raise KeyboardInterrupt
        stop.signum = stop.signum or signum
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.event.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class SchedulerConfigError(VerbatimError, ValueError):
    """No job, or a cron expression / timezone that does not parse: one clear message."""


class JobFailed(VerbatimError, RuntimeError):
    """A job that ran and reports what went wrong (a source down, a webhook refused): the
    tick is `failed` with this message, logged at ERROR without a traceback (the traceback
    was the scheduler's own lines, every 5 minutes while a remote was down, and hid those of
    real crashes)."""

    exit_code = 1


class JobResources:
    """What a scheduler's runs share from tick to tick: the PII masker (spaCy NER) and the
    analyzer (encoder, theme heads), loaded at the first tick that needs them instead of at
    every tick. The analyzer follows the database's current taxonomy, as `verbatim run` does:
    a new version rebuilds the theme heads and keeps the loaded sentiment model."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        from jobs.ingest import LazyMasker

        self.settings = settings
        self.sessions = sessions
        self.masker = LazyMasker(settings)
        self._analyzer: Any = None
        self._taxonomy_version: int | None = None

    def analyzer(self) -> Any:
        from core.analysis import analyzer_for
        from core.taxonomy_store import for_job

        current = for_job(self.sessions, self.settings)
        self._analyzer = analyzer_for(
            self.settings,
            current.taxonomy,
            current.version,
            self._analyzer,
            self._taxonomy_version,
        )
        self._taxonomy_version = current.version
        return self._analyzer

    def release(self) -> None:
        """Drop the loaded models (`scheduler.keep_models = false`): the next tick reloads."""
        from jobs.ingest import LazyMasker

        self.masker = LazyMasker(self.settings)
        self._analyzer = None
        self._taxonomy_version = None


# --- the commands a job can run ---------------------------------------------------------------


RUN_WAIT_S = 60.0  # the longest a `run` tick waits for an operator's `verbatim run`


def _cmd_run(res: JobResources, stop: Stop) -> str:
    from jobs.run import AlreadyRunning, Stopped, run_pipeline

    # An operator's `verbatim run` holds <data_dir>/.run.lock, not the scheduler's lock: wait
    # for it a while instead of failing the tick at once; not the whole lock_wait_seconds,
    # the scheduler's one worker (alert delivery, the digest) waits behind this tick.
    deadline = time.monotonic() + min(RUN_WAIT_S, res.settings.scheduler.lock_wait_seconds)
    while True:
        try:
            summary = run_pipeline(
                res.settings,
                res.sessions,
                analyzer_factory=res.analyzer,
                stop=stop,
                masker=res.masker,
            )
            break
        except AlreadyRunning:
            if stop():
                raise Stopped("stop requested while another `verbatim run` held the lock") from None
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)
    stored = sum(r.stored for _s, r in summary.ingested)
    analysed = summary.enriched.stored if summary.enriched else 0
    line = f"stored {stored}, analysed {analysed}"
    errors = [f"{s.source}: {m}" for s, m in summary.errors]
    # The pipeline logs and survives a failed detection or delivery (what was stored stays
    # stored); the tick must not read `ok` in /health while no alert can go out.
    if summary.detected is None:
        errors.append("spike detection failed (see the log)")
    else:
        line += f", alerts {summary.detected.new} new / {summary.detected.updated} updated"
        if res.settings.slack_webhooks and summary.delivered is None:
            errors.append("alert delivery failed (see the log)")
    if errors:
        raise JobFailed(line + "; errors: " + "; ".join(errors))
    return line


def _cmd_ingest(res: JobResources, stop: Stop) -> str:
    from jobs.connectors import pull_source
    from jobs.run import Stopped

    if not res.settings.sources:
        return "no source configured"
    parts, errors = [], []
    for src in res.settings.sources:
        try:
            result = pull_source(res.sessions, res.settings, src, stop=stop, masker=res.masker)
        except Exception as exc:  # noqa: BLE001 - one failing source must not block the others
            errors.append(f"{src.source}: {exc}")
            if stop():  # a pull a stop ended (its retry wait cut short): not the next source
                raise Stopped(f"stop requested: {'; '.join(errors)}") from None
            continue
        parts.append(f"{src.source} stored {result.stored}")
        errors.extend(f"{src.source}: {e}" for e in getattr(result, "errors", []))
        if stop():
            raise Stopped("stop requested between sources")
    if errors:
        raise JobFailed("; ".join(parts + errors))
    return ", ".join(parts)


def _cmd_enrich(res: JobResources, stop: Stop) -> str:
    from jobs.enrich import enrich
    from jobs.run import Stopped

    def check(done: int) -> None:
        if stop():
            raise Stopped(f"stop requested after {done} verbatims analysed")

    result = enrich(res.sessions, res.settings, analyzer_factory=res.analyzer, on_batch=check)
    return f"analysed {result.stored}"


def _cmd_aggregate(res: JobResources, stop: Stop) -> str:
    from jobs.aggregate import aggregate

    with session_scope(res.sessions) as session:
        return f"wrote {aggregate(session)} aggregate rows"


def _cmd_detect(res: JobResources, stop: Stop) -> str:
    from jobs.detect import run_detect
    from jobs.run import Stopped

    found = run_detect(res.settings, res.sessions, stop=stop)
    line = f"alerts {found.new} new, {found.updated} updated, {found.queued} queued"
    if found.stopped:  # the days done are committed; the next tick continues after them
        raise Stopped(f"stop requested after {len(found.days)} day(s) detected; {line}")
    return line


def _cmd_alert(res: JobResources, stop: Stop) -> str:
    from jobs.alerts import deliver_pending
    from jobs.run import Stopped

    sent = deliver_pending(res.settings, res.sessions, stop=stop)
    line = f"sent {sent.sent}, deferred {sent.deferred}, failed {sent.dead}"
    if sent.stopped:  # the message in flight was finished; the rest wait for the next tick
        raise Stopped(f"stop requested: {line}, {sent.left} left pending")
    if sent.dead:  # refused for good (bad webhook): `verbatim alert` exits 1 for it too
        raise JobFailed(line)
    return line


def scheduled_digest_end(latest: date | None, today: date, days: int = 7) -> date | None:
    """The last day of a scheduled digest: None (the last day with data, as `verbatim digest`)
    unless the data stopped more than a period ago; then yesterday, so the digest says the
    week was empty ("vérifier l'ingestion"). Before, a stalled feed kept the digest on its
    last data day, already sent: the weekly ticks said `already_sent` and nothing was posted.
    `today` (a UTC day, as the aggregates') is never in it: a Monday 8:00 tick summed Tuesday
    to Monday morning against seven whole days, and the rest of that Monday was in no digest."""
    yesterday = today - timedelta(days=1)
    if latest is not None and today - timedelta(days=days) <= latest <= yesterday:
        return None
    return yesterday


def _cmd_digest(res: JobResources, stop: Stop) -> str:
    from core.db import session_scope
    from core.queries import latest_day
    from core.taxonomy_store import for_job
    from jobs.digest import send_digest

    with session_scope(res.sessions) as session:
        latest = latest_day(session)
    end = scheduled_digest_end(latest, datetime.now(UTC).date())
    result = send_digest(
        res.settings,
        res.sessions,
        for_job(res.sessions, res.settings).taxonomy,
        end=end,
        stop=stop,
    )
    if result.outcome == "retry":
        raise JobFailed(f"digest kept pending (the next alert tick posts it): {result.error}")
    if result.outcome in ("dead", "unknown"):
        raise JobFailed(f"digest not delivered ({result.outcome}): {result.error}")
    stalled = end is not None and latest is not None and latest < end  # not the day in progress
    stale = f"; no data since {latest}" if stalled else ""
    return f"digest {result.outcome}: {result.digest.incidents} incidents in progress{stale}"


COMMANDS: dict[str, Callable[[JobResources, Stop], str]] = {
    "run": _cmd_run,
    "ingest": _cmd_ingest,
    "enrich": _cmd_enrich,
    "aggregate": _cmd_aggregate,
    "detect": _cmd_detect,
    "alert": _cmd_alert,
    "digest": _cmd_digest,
}


# --- cron -------------------------------------------------------------------------------------


def make_trigger(cron: str, timezone: str) -> Any:
    """5-field crontab, or 6 fields with seconds first (`*/10 * * * * *`), that fires."""
    _check_zone(timezone)
    trigger = _cron_trigger(cron, timezone)
    # A valid expression can name a date that never comes (`0 8 31 2 *`): the job then has
    # no next run time, and `verbatim scheduler` died on it with a traceback.
    if trigger.get_next_fire_time(None, utcnow()) is None:
        raise SchedulerConfigError(f"cron {cron!r} never fires (no such date)")
    return trigger


def _check_zone(timezone: str) -> None:
    """A misspelt zone was reported as an error of the first job's cron expression (`cron
    '*/5 * * * *': 'No time zone found with key Europe/Pari'`); an empty one (APScheduler
    reads it as none) ran the jobs on the machine's local time without a word."""
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(timezone)
    except (ValueError, LookupError):
        raise SchedulerConfigError(
            f"scheduler.timezone {timezone!r}: unknown time zone "
            "(an IANA name such as 'Europe/Paris' or 'UTC')"
        ) from None


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbers 0..6 (7 = sun)


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday, 1 = Monday; names; lists, ranges, steps) as
    day names, which APScheduler reads like crontab. Its own numbers start at Monday = 0, so
    `1-5` ran Tuesday to Saturday and `0` on Monday. Raises ValueError on a bad field."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"weekday step {step_text!r} is not a positive number")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        else:
            start, _, end = span.partition("-")
            first = _weekday(start)
            last = _weekday(end) if end else (6 if step_text else first)
            if end and last == 0 and first > 0:
                last = 7  # "5-0": Friday to Sunday
        if last < first:
            raise ValueError(f"weekday range {span!r} goes backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday(token: str) -> int:
    if token in _WEEKDAYS:
        return _WEEKDAYS.index(token)
    if token.isdigit() and int(token) <= 7:
        return int(token)
    raise ValueError(f"weekday {token!r}: use 0-7 (0 and 7 are Sunday) or sun..sat")


def _cron_trigger(cron: str, timezone: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    try:
        if len(fields) in (5, 6):
            second = fields[0] if len(fields) == 6 else "0"
            minute, hour, day, month, dow = fields[-5:]
            trigger_class = _once_a_night() if _fixed_time(minute, hour) else CronTrigger
            return trigger_class(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=crontab_weekdays(dow),
                timezone=timezone,
            )
    except (ValueError, LookupError) as exc:
        raise SchedulerConfigError(f"cron {cron!r}: {exc}") from None
    raise SchedulerConfigError(
        f"cron {cron!r}: expected 5 fields (minute hour day month weekday) or 6 (seconds first)"
    )


def _fixed_time(minute: str, hour: str) -> bool:
    """Crontab's "fixed-time" job: neither its minute nor its hour starts with `*` (`30 2 * * *`,
    not `*/15 * * * *` nor `0 * * * *`). Cron runs those once in the hour the autumn change
    repeats; the others ("wildcard" jobs) run in both, as by the clock."""
    return not minute.startswith("*") and not hour.startswith("*")


@cache
def _once_a_night() -> type:
    """A CronTrigger that skips the second occurrence of a wall-clock time (the repeated hour of
    the autumn change): APScheduler fired `30 2 * * *` in Europe/Paris at 02:30 CEST and again
    at 02:30 CET, two runs (two ticks, two claims) on the last Sunday of October. Made on first
    use: APScheduler is imported only by the scheduler, not by every command that imports this
    module for `stop_on_signals`."""
    from apscheduler.triggers.cron import CronTrigger

    class OnceANightCronTrigger(CronTrigger):
        __slots__ = ()

        def get_next_fire_time(self, previous_fire_time: Any, now: datetime) -> Any:
            fire = super().get_next_fire_time(previous_fire_time, now)
            while fire is not None and _repeated_wall_time(fire):
                fire = super().get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(seconds=1))
            return fire

    return OnceANightCronTrigger


def _repeated_wall_time(fire: datetime) -> bool:
    """Whether `fire` is the second time its zone's clock shows that time (02:30 CET, the
    clock having shown 02:30 CEST an hour earlier)."""
    first = fire.replace(fold=0)
    return first.astimezone(UTC) < fire.astimezone(UTC)


def current_tick(trigger: Any, now: datetime, horizon_s: float) -> datetime:
    """The latest fire time of `trigger` at or before `now` (looking back `horizon_s`): the
    tick this run stands for, the same in every scheduler process. A run that starts after
    the next tick already passed (a busy machine) stands for that newer tick: coalescing."""
    last = None
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=horizon_s + 1))
    while fire is not None and fire <= now:
        last = fire
        # Step in UTC: arithmetic on a zone-aware time is wall-clock and drops `fold`, so in
        # the repeated autumn hour 02:00+01:00 + 1 s became 02:00:01+02:00, an hour back,
        # and this loop never ended (the scheduler's only worker thread, at 100 % CPU).
        fire = trigger.get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(seconds=1))
        if fire is not None and fire.astimezone(UTC) <= last.astimezone(UTC):
            break  # never step backwards, whatever the trigger answers
    return (last or now).replace(microsecond=0)


# --- the lock ---------------------------------------------------------------------------------


class RunLock:
    """One run at a time across processes: PostgreSQL advisory lock, or a file lock (SQLite)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.conn: Any = None
        self.file_lock: Any = None
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                where = conn.execute(text("select current_database(), current_schema()")).one()
            digest = hashlib.sha256(f"verbatim-scheduler:{where[0]}:{where[1]}".encode()).digest()
            self.key = int.from_bytes(digest[:8], "big", signed=True)
        else:
            from filelock import FileLock

            database = engine.url.database
            if database and database != ":memory:":
                path = Path(database).resolve().with_suffix(".scheduler.lock")
            else:
                path = settings.data_dir.resolve() / "scheduler.lock"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file_lock = FileLock(str(path))

    def try_acquire(self) -> bool:
        if self.file_lock is not None:
            from filelock import Timeout

            try:
                self.file_lock.acquire(timeout=0)
            except Timeout:
                return False
            return True
        conn = self.engine.connect()
        got = bool(conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        conn.commit()  # the lock is held by the session, not the transaction
        if got:
            self.conn = conn
        else:
            conn.close()
        return got

    def acquire(self, wait_s: float, stop: Stop, poll_s: float = 0.5) -> bool:
        deadline = time.monotonic() + wait_s
        while True:
            if self.try_acquire():
                return True
            if stop() or time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def release(self) -> None:
        if self.file_lock is not None:
            self.file_lock.release()
        elif self.conn is not None:
            try:
                self.conn.execute(text("select pg_advisory_unlock(:k)"), {"k": self.key})
                self.conn.commit()
            finally:
                self.conn.close()
                self.conn = None


# --- running ----------------------------------------------------------------------------------


PRUNE_EVERY = timedelta(days=1)  # how often a scheduler deletes the runs past the retention


class Scheduler:
    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker[Session]) -> None:
        conf = settings.scheduler
        if not conf.jobs:
            raise SchedulerConfigError(
                "no scheduler job configured: add [scheduler] jobs = "
                '[{name="pipeline", cron="*/15 * * * *", command="run"}] to verbatim.toml'
            )
        names = [j.name for j in conf.jobs]
        if len(set(names)) != len(names):
            raise SchedulerConfigError(f"scheduler job names must be unique: {names}")
        if conf.misfire_grace_seconds < 1:  # APScheduler refuses it with a TypeError
            raise SchedulerConfigError(
                "scheduler.misfire_grace_seconds must be at least 1 "
                f"(got {conf.misfire_grace_seconds})"
            )
        pulls = [j.name for j in conf.jobs if j.command == "ingest"]
        if pulls and not settings.sources:
            # Each tick said `ok (no source configured)`: /health green, nothing ever pulled
            # (the configuration mounted without its sources, another file than meant).
            raise SchedulerConfigError(
                f"scheduler job {pulls[0]!r} runs `ingest` but no [[sources]] is configured"
            )
        if any(j.command in ("run", "ingest") for j in conf.jobs):
            from jobs.connectors import SourceConfigError, check_source

            for src in settings.sources:
                try:
                    check_source(src, settings)
                except SourceConfigError as exc:
                    raise SchedulerConfigError(str(exc)) from None
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.stop_event = threading.Event()
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self.triggers = {j.name: make_trigger(j.cron, conf.timezone) for j in conf.jobs}
        self.lock = RunLock(engine, settings)
        self.resources = JobResources(settings, sessions)
        self.pruned_at: datetime | None = None  # the first tick of a process prunes
        self.purged_at: datetime | None = None  # likewise for the verbatims' retention

    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def run_tick(self, job: SchedulerJob) -> str | None:
        """One tick of `job`: lock, claim the tick, run, record. Returns the status (None when
        the tick was skipped: claimed by another scheduler, or no lock before the deadline)."""
        from jobs.run import Stopped

        conf = self.settings.scheduler
        # Looking back twice the grace: a tick missed up to a grace before the start (see
        # `missed_tick`) runs up to a grace after it; APScheduler drops later runs.
        grace = conf.misfire_grace_seconds
        tick = current_tick(self.triggers[job.name], utcnow(), 2 * grace)
        if not self.lock.acquire(conf.lock_wait_seconds, self.stopping):
            if self.stopping():
                log.info("job %s tick %s: stop requested; not started", job.name, tick.isoformat())
            else:
                log.warning(
                    "job %s tick %s: another run held the lock too long; skipped", job.name, tick
                )
            return None
        try:
            # A tick queued behind the run SIGTERM stopped (one worker) still started once that
            # run ended: an ingest pulled a whole source, a digest was posted, during the stop.
            if self.stopping():
                log.info("job %s tick %s: stop requested; not started", job.name, tick.isoformat())
                return None
            with session_scope(self.sessions) as session:
                stale = interrupt_stale_job_runs(session)
                run_id = claim_job_run(
                    session, job=job.name, command=job.command, tick=tick, host=self.host
                )
            if stale:
                log.warning("marked %d run(s) left 'running' by a dead scheduler", stale)
            if run_id is None:
                log.info("job %s tick %s: already run by another scheduler", job.name, tick)
                return None
            log.info("job %s tick %s: started (run #%d)", job.name, tick.isoformat(), run_id)
            started = time.monotonic()
            try:
                detail = COMMANDS[job.command](self.resources, self.stopping)
                status = "ok"
            except Stopped as exc:
                status, detail = "aborted", str(exc)
            except JobFailed as exc:  # what went wrong is in its message, not in a traceback
                status, detail = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - recorded; the next tick tries again
                log.exception("job %s failed", job.name)
                status, detail = "failed", f"{type(exc).__name__}: {exc}"
            if not conf.keep_models:
                self.resources.release()
            with session_scope(self.sessions) as session:
                finish_job_run(session, run_id, status=status, detail=detail)
            # How long, in the line an operator reads (it was only in job_runs / /health).
            took = time.monotonic() - started
            when = tick.isoformat()
            # A failed tick at ERROR: an operator's filter on the level (journald's priority,
            # a log shipper's alert) saw `job x failed` only for crashes, never for a source
            # down or a webhook refused, whose line was at INFO.
            level = logging.ERROR if status == "failed" else logging.INFO
            log.log(
                level, "job %s tick %s: %s in %.1f s (%s)", job.name, when, status, took, detail
            )
            self.prune_runs()
            self.purge_verbatims()
            return status
        finally:
            self.lock.release()

    def prune_runs(self) -> None:
        """Delete the runs past `runs_retention_days` (`prune_job_runs`), at most once a
        `PRUNE_EVERY` per process, after a tick and under the run lock (no other run going)."""
        days = self.settings.scheduler.runs_retention_days
        now = utcnow()
        if not days or (self.pruned_at is not None and now - self.pruned_at < PRUNE_EVERY):
            return
        self.pruned_at = now
        jobs = [j.name for j in self.settings.scheduler.jobs]
        try:
            with session_scope(self.sessions) as session:
                gone = prune_job_runs(session, before=now - timedelta(days=days), jobs=jobs)
        except Exception:  # noqa: BLE001 - housekeeping: the tick's own outcome is recorded
            log.exception("deleting the job runs older than %d days failed", days)
            return
        if gone:
            log.info("deleted %d job run(s) older than %d days", gone, days)

    def purge_verbatims(self) -> None:
        """Delete the verbatims past `retention_days` (core.erasure.purge), at most once a
        `PRUNE_EVERY` per process, after a tick and under the run lock, as `prune_runs`."""
        from core.erasure import audit, purge
        from jobs.cli_privacy import cutoff

        days = self.settings.retention_days
        now = utcnow()
        if not days or (self.purged_at is not None and now - self.purged_at < PRUNE_EVERY):
            return
        self.purged_at = now
        try:
            with session_scope(self.sessions) as session:
                erased = purge(
                    session,
                    before=cutoff(days, now.date()),
                    now=now,
                    language=self.settings.alert_language,
                )
                if erased.verbatims or erased.quarantine:
                    audit(session, self.settings.data_dir, "purge", "scheduler", erased)
        except Exception:  # noqa: BLE001 - housekeeping: the tick's own outcome is recorded
            log.exception("deleting the verbatims older than %d days failed", days)
            return
        if erased.verbatims:
            log.info("deleted %d verbatim(s) older than %d days", erased.verbatims, days)

    def interrupt_stale_runs(self) -> None:
        """At start, the runs a killed scheduler left `running` (SIGKILL, out of memory) are
        marked `interrupted` when no other scheduler holds the lock: they stayed `running` in
        /health and /metrics until this job's next tick, the next night for a nightly job."""
        if not self.lock.try_acquire():
            return  # another scheduler's run is going: its next tick's holder marks them
        try:
            with session_scope(self.sessions) as session:
                stale = interrupt_stale_job_runs(session)
        finally:
            self.lock.release()
        if stale:
            log.warning("marked %d run(s) left 'running' by a dead scheduler", stale)

    def missed_tick(self, job: SchedulerJob, now: datetime) -> datetime | None:
        """The tick of `job` that fell less than `misfire_grace_seconds` before `now` and no
        scheduler claimed (this one was stopped, or not started yet), else None."""
        grace = self.settings.scheduler.misfire_grace_seconds
        trigger = self.triggers[job.name]
        first = trigger.get_next_fire_time(None, now - timedelta(seconds=grace))
        if first is None or first > now:
            return None
        tick = current_tick(trigger, now, grace)
        with self.sessions() as session:
            claimed = job_run_claimed(session, job=job.name, tick=tick)
        return None if claimed else tick

    def serve(self) -> None:
        """Run until SIGTERM / SIGINT; the run in progress ends at its next safe point."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        conf = self.settings.scheduler
        sched = BackgroundScheduler(
            timezone=conf.timezone,
            # One run at a time in this process too; other processes: the run lock.
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": conf.misfire_grace_seconds,
                "max_instances": 1,
            },
        )
        self.interrupt_stale_runs()
        now = utcnow()
        for job in conf.jobs:
            # APScheduler starts a job at its next fire time: a restart (a deploy) a minute
            # after the Monday 08:00 digest lost that week's digest, whatever the grace said.
            # A tick missed within the grace runs now, once (the claim still dedups it).
            missed = self.missed_tick(job, now)
            first_run: dict[str, Any] = {"next_run_time": now} if missed else {}
            if missed:
                log.info("job %s: tick %s missed; running it now", job.name, missed.isoformat())
            sched.add_job(
                self.run_tick,
                self.triggers[job.name],
                args=[job],
                id=job.name,
                name=job.name,
                **first_run,
            )

        with stop_on_signals(self.stop_event):
            sched.start()
            try:
                for job in sched.get_jobs():
                    log.info("job %s: next run at %s", job.id, job.next_run_time.isoformat())
                while not self.stop_event.wait(0.5):
                    pass
            finally:
                sched.shutdown(wait=True)
                log.info("scheduler stopped")

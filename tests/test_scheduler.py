"""`verbatim scheduler`: real scheduler processes on one real database (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, migrate, session_factory
from core.models import Feedback, JobRun, ThemeMention
from core.settings import SchedulerJob, SchedulerSettings, Settings, SourceConfig
from core.store import claim_job_run, finish_job_run
from jobs.scheduler import (
    COMMANDS,
    JobResources,
    RunLock,
    Scheduler,
    SchedulerConfigError,
    current_tick,
    make_trigger,
)
from tests.pg_schema import pg_schema_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sched.db'}"
    else:
        with pg_schema_url() as url:
            yield url


def test_cron_ticks() -> None:
    trigger = make_trigger("*/15 * * * *", "UTC")
    now = datetime(2026, 12, 2, 8, 31, 7, tzinfo=UTC)
    assert current_tick(trigger, now, 3600) == datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
    seconds = make_trigger("*/10 * * * * *", "UTC")
    assert current_tick(seconds, now, 60) == datetime(2026, 12, 2, 8, 31, 0, tzinfo=UTC)
    with pytest.raises(SchedulerConfigError, match="5 fields"):
        make_trigger("every hour", "UTC")
    with pytest.raises(SchedulerConfigError, match="cron"):
        make_trigger("99 * * * *", "UTC")


def test_cron_ticks_through_the_autumn_dst_change() -> None:
    """Europe/Paris, 2026-10-25: 02:00-03:00 happens twice. Stepping through it in local
    wall-clock time went an hour back and never ended (the scheduler's only thread, 100 % CPU,
    no job ever again). Run in a subprocess: a regression must fail, not hang the suite."""
    code = (
        "from datetime import UTC, datetime\n"
        "from jobs.scheduler import current_tick, make_trigger\n"
        "for cron in ('*/15 * * * *', '30 2 * * *', '0 * * * *'):\n"
        "    trigger = make_trigger(cron, 'Europe/Paris')\n"
        "    for minute in range(0, 180, 7):\n"
        "        now = datetime(2026, 10, 25, 0, 0, tzinfo=UTC).timestamp() + minute * 60\n"
        "        now = datetime.fromtimestamp(now, UTC)\n"
        "        tick = current_tick(trigger, now, 3 * 3600)\n"
        "        assert tick <= now, (cron, now, tick)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    trigger = make_trigger("*/15 * * * *", "Europe/Paris")
    # 01:40 UTC is 02:40 CET, the second 02:40 of the night: the tick is 02:30 CET (01:30 UTC).
    now = datetime(2026, 10, 25, 1, 40, tzinfo=UTC)
    assert current_tick(trigger, now, 3600).astimezone(UTC) == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )


def test_a_fixed_time_job_runs_once_on_the_autumn_night() -> None:
    """Europe/Paris, 2026-10-25: the clock shows 02:30 twice. `30 2 * * *` ran at 02:30 CEST and
    again at 02:30 CET (two ticks, both claimed); cron runs a fixed-time job once that night,
    and a wildcard job (`*/15 * * * *`, `0 * * * *`) in both hours, as by the clock."""

    def fires(cron: str) -> list[str]:
        trigger, at, out = make_trigger(cron, "Europe/Paris"), None, []
        now = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
        while True:
            at = trigger.get_next_fire_time(at, now)
            if at.astimezone(UTC) >= datetime(2026, 10, 25, 3, 0, tzinfo=UTC):
                return out
            out.append(at.astimezone(UTC).strftime("%H:%M"))
            now = at.astimezone(UTC) + timedelta(seconds=1)

    assert fires("30 2 * * *") == fires("0 30 2 * * *") == ["00:30"]  # 02:30 CEST only
    assert fires("0 1-3 * * *") == ["23:00", "00:00", "02:00"]  # 01:00, 02:00 CEST, 03:00 CET
    # 02:00 CEST (00:00 UTC) and 02:00 CET (01:00 UTC): hourly, as by the clock.
    assert fires("0 * * * *") == ["22:00", "23:00", "00:00", "01:00", "02:00"]
    assert len(fires("*/15 * * * *")) == 4 * 5
    # The tick a run at 02:40 CET stands for is still the night's only 02:30 (CEST).
    trigger = make_trigger("30 2 * * *", "Europe/Paris")
    now = datetime(2026, 10, 25, 1, 40, tzinfo=UTC)
    tick = current_tick(trigger, now, 7200).astimezone(UTC)  # (a repeated time equals no UTC)
    assert tick == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # The spring change (2026-03-29, no 02:30 at all): still once, at 03:30 CEST.
    spring = trigger.get_next_fire_time(None, datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    assert spring.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_unknown_timezone_is_a_clear_error_not_the_crons() -> None:
    """`timezone = "Europe/Pari"` stopped the scheduler with `cron '*/5 * * * *': 'No time
    zone found with key Europe/Pari'`, blaming a valid expression; `timezone = ""` ran every
    job on the machine's local time without a word."""
    for zone in ("Europe/Pari", "europe/paris", "", "../etc"):
        with pytest.raises(SchedulerConfigError) as err:
            make_trigger("*/5 * * * *", zone)
        assert str(err.value) == (
            f"scheduler.timezone {zone!r}: unknown time zone "
            "(an IANA name such as 'Europe/Paris' or 'UTC')"
        )
    for zone in ("Europe/Paris", "UTC"):
        assert make_trigger("*/5 * * * *", zone) is not None


def test_cron_weekdays_are_numbered_as_in_crontab() -> None:
    """APScheduler counts weekdays from Monday = 0: `0 8 * * 1-5` ran Tuesday to Saturday and
    skipped Monday, `0` ran on Monday, `7` was refused. Crontab: 0 and 7 are Sunday."""
    saturday = datetime(2026, 12, 5, 12, tzinfo=UTC)

    def days(cron: str, n: int = 7) -> list[str]:
        trigger, at, out = make_trigger(cron, "UTC"), saturday, []
        for _ in range(n):
            at = trigger.get_next_fire_time(None, at + timedelta(seconds=1))
            out.append(at.strftime("%a"))
        return out

    assert days("0 8 * * 1-5", 5) == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert days("0 8 * * 0", 2) == days("0 8 * * 7", 2) == days("0 8 * * sun", 2) == ["Sun"] * 2
    assert days("0 8 * * 6,0", 2) == ["Sun", "Sat"]
    assert days("0 8 * * */2", 4) == ["Sun", "Tue", "Thu", "Sat"]
    assert days("0 8 * * mon-fri", 5) == days("0 8 * * 1-5", 5)
    assert days("0 0 8 * * 1", 1) == ["Mon"]  # six fields, seconds first
    assert days("0 8 * * *", 7) == ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    for bad in ("0 8 * * 8", "0 8 * * 5-1", "0 8 * * 1/0", "0 8 * * lundi"):
        with pytest.raises(SchedulerConfigError, match="weekday"):
            make_trigger(bad, "UTC")


def test_cron_that_never_fires_is_a_clear_error(tmp_path: Path) -> None:
    """February 31st parses: APScheduler then drops the job silently, and `verbatim
    scheduler` (and `--list`) died on its missing next run time with a traceback."""
    with pytest.raises(SchedulerConfigError, match="never fires"):
        make_trigger("0 8 31 2 *", "Europe/Paris")
    assert make_trigger("0 8 29 2 *", "Europe/Paris") is not None  # leap years only: fine
    config = '[scheduler]\njobs = [{ name = "p", cron = "0 8 31 2 *", command = "run" }]\n'
    (tmp_path / "verbatim.toml").write_text(config, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_CONFIG=str(tmp_path / "verbatim.toml"),
        VERBATIM_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
    )
    for args in (["scheduler", "--list"], ["scheduler"]):
        out = subprocess.run(
            [sys.executable, "-m", "verbatim_cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip() == "error: cron '0 8 31 2 *' never fires (no such date)"


def test_claim_and_lock_are_exclusive(db_url: str, settings: Settings) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    tick = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
    with sessions.begin() as s:
        first = claim_job_run(s, job="p", command="run", tick=tick, host="a")
    with sessions.begin() as s:
        assert claim_job_run(s, job="p", command="run", tick=tick, host="b") is None
        finish_job_run(s, first, status="ok", detail="done")
    a, b = RunLock(engine, settings), RunLock(engine, settings)
    assert a.try_acquire()
    assert not b.try_acquire()  # another connection / file handle: as another process would
    a.release()
    assert b.try_acquire()
    b.release()
    engine.dispose()


def test_every_command_can_be_configured() -> None:
    """The settings accept exactly the commands the scheduler runs (the README's `digest` job
    was once refused by the settings' own list)."""
    allowed = set(typing.get_args(SchedulerJob.model_fields["command"].annotation))
    assert allowed == set(COMMANDS)
    Settings(scheduler={"jobs": [{"name": "weekly", "cron": "0 8 * * mon", "command": "digest"}]})


def test_a_job_name_longer_than_its_column_is_refused() -> None:
    """`job_runs.job` holds 64 characters: a longer name passed the settings, then every tick
    failed on PostgreSQL (value too long) with nothing recorded; SQLite ran it."""
    from pydantic import ValidationError

    for name in ("x" * 65, ""):
        with pytest.raises(ValidationError, match="scheduler.jobs.0.name"):
            Settings(scheduler={"jobs": [{"name": name, "cron": "* * * * *"}]})
    Settings(scheduler={"jobs": [{"name": "x" * 64, "cron": "* * * * *"}]})


def test_ticks_read_the_database_taxonomy_and_keep_their_models(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    """A scheduled `run` analyses with the taxonomy version the API edits (as `verbatim run`
    does), not the packaged file; the masker and the analyzer load once, not at every tick,
    and a new taxonomy version rebuilds the theme heads but keeps the sentiment model."""
    from core import taxonomy_store
    from nlp.taxonomy import Theme

    sessions = session_factory(engine)
    feed = tmp_path / "feed.jsonl"
    rows = [
        {"id": "a1", "text": "Le parapluie est arrivé cassé, très déçu"},
        {"id": "a2", "text": "Livraison rapide, parapluie parfait"},
    ]
    feed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    settings.sources = [SourceConfig(source="shop", path=feed)]
    with sessions.begin() as s:
        tax = taxonomy_store.current(s, settings).taxonomy
        umbrella = Theme(id="parapluies", label="Parapluies", seeds=["parapluie"])
        taxonomy_store.save(
            s, settings, tax.model_copy(update={"themes": [*tax.themes, umbrella]}), "test"
        )
    res = JobResources(settings, sessions)
    never = lambda: False  # noqa: E731 - the scheduler's stop flag

    assert COMMANDS["run"](res, never).startswith("stored 2, analysed 2")
    with sessions() as s:
        themes = set(s.scalars(select(ThemeMention.theme)))
    assert "parapluies" in themes
    first = res.analyzer()
    masker = res.masker._masker
    assert first.taxonomy.resolve("parapluies") is not None and masker is not None

    rows.append({"id": "a3", "text": "Parapluie jamais reçu"})
    feed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert COMMANDS["run"](res, never).startswith("stored 1, analysed 1")
    assert res.analyzer() is first and res.masker._masker is masker  # loaded once

    with sessions.begin() as s:
        cur = taxonomy_store.current(s, settings)
        kept = [t for t in cur.taxonomy.themes if t.id != "parapluies"]
        taxonomy_store.save(s, settings, cur.taxonomy.model_copy(update={"themes": kept}), "t")
    second = res.analyzer()
    assert second is not first and second.taxonomy.resolve("parapluies") is None
    assert second.sentiment is first.sentiment


@pytest.mark.parametrize("keep", [True, False])
def test_keep_models_between_ticks_or_not(
    tmp_path: Path, settings: Settings, engine: Engine, keep: bool
) -> None:
    """`scheduler.keep_models = false` frees the masker and analyzer after each tick."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "k1", "text": "Colis arrivé abîmé"}\n', "utf-8")
    conf = {"jobs": [{"name": "p", "cron": "* * * * * *"}], "keep_models": keep}
    settings = settings.model_copy(
        update={
            "sources": [SourceConfig(source="shop", path=feed)],
            "scheduler": SchedulerSettings(**conf),
        }
    )
    scheduler = Scheduler(settings, engine, session_factory(engine))
    assert scheduler.run_tick(settings.scheduler.jobs[0]) == "ok"
    assert (scheduler.resources._analyzer is not None) is keep
    assert (scheduler.resources.masker._masker is not None) is keep


def _one_row_run_job(tmp_path: Path, settings: Settings, **update: object) -> Settings:
    """Settings with one source of one verbatim and one `run` job every second."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "d1", "text": "Colis arrivé abîmé"}\n', "utf-8")
    job = {"name": "p", "cron": "* * * * * *", "command": "run"}
    return settings.model_copy(
        update={
            "sources": [SourceConfig(source="shop", path=feed)],
            "scheduler": SchedulerSettings(jobs=[job]),
            **update,
        }
    )


@pytest.mark.parametrize(
    ("table", "why"),
    [("detection_state", "spike detection failed"), ("outbox", "alert delivery failed")],
)
def test_a_run_tick_whose_alerting_fails_is_not_recorded_ok(
    tmp_path: Path, settings: Settings, engine: Engine, table: str, why: str
) -> None:
    """`run_pipeline` logs a failed spike detection or delivery and carries on (the data
    stays stored); the tick was then recorded `ok`, so /health and `last_success` hid that
    no alert could go out. It is now `failed`, with why, and the stored rows stay stored."""
    settings = _one_row_run_job(
        tmp_path, settings, slack_webhooks={"default": "http://127.0.0.1:9/hook"}
    )
    with engine.begin() as conn:  # a database alerting cannot use (as after a bad restore)
        conn.execute(text(f"drop table {table}"))
    sessions = session_factory(engine)
    scheduler = Scheduler(settings, engine, sessions)
    assert scheduler.run_tick(settings.scheduler.jobs[0]) == "failed"
    run = _runs(sessions)[-1]
    assert run.status == "failed" and run.detail is not None
    assert "stored 1, analysed 1" in run.detail
    assert why in run.detail
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Feedback)) == 1


def test_a_run_tick_waits_for_an_operators_run(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    """An operator's `verbatim run` holds <data_dir>/.run.lock, not the scheduler's lock: the
    tick failed at once with AlreadyRunning (`failed` in /health) instead of waiting for it
    as for another scheduler's run (lock_wait_seconds)."""
    import threading

    from jobs.run import run_lock

    settings = _one_row_run_job(tmp_path, settings)
    held, release = threading.Event(), threading.Event()

    def operator() -> None:
        with run_lock(settings):
            held.set()
            release.wait(timeout=30)

    thread = threading.Thread(target=operator)
    thread.start()
    assert held.wait(timeout=10)
    threading.Timer(1.5, release.set).start()
    sessions = session_factory(engine)
    started = time.monotonic()
    assert Scheduler(settings, engine, sessions).run_tick(settings.scheduler.jobs[0]) == "ok"
    assert time.monotonic() - started >= 1.0
    thread.join(timeout=10)
    assert "stored 1" in (_runs(sessions)[-1].detail or "")


def test_a_tick_queued_behind_a_stopped_run_does_not_start(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler has one worker: a tick that fired during a run waits in its queue, and
    `shutdown(wait=True)` still ran it once SIGTERM had stopped that run. A digest was then
    posted (or a whole source pulled) during the stop, and recorded `ok`."""
    calls: list[bool] = []

    def digest(_res: JobResources, stop: typing.Callable[[], bool]) -> str:
        calls.append(stop())
        return "digest sent"

    monkeypatch.setitem(COMMANDS, "digest", digest)
    job = {"name": "weekly", "cron": "* * * * * *", "command": "digest"}
    settings = settings.model_copy(update={"scheduler": SchedulerSettings(jobs=[job])})
    sessions = session_factory(engine)
    scheduler = Scheduler(settings, engine, sessions)
    scheduler.stop_event.set()  # what SIGTERM does (stop_on_signals)
    assert scheduler.run_tick(settings.scheduler.jobs[0]) is None
    assert calls == [] and _runs(sessions) == []
    assert scheduler.lock.try_acquire()  # released: the next scheduler can run
    scheduler.lock.release()


def test_a_tick_missed_while_stopped_runs_at_start_within_the_grace(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APScheduler starts a job at its next fire time: a scheduler restarted (a deploy) two
    minutes after the Monday 08:00 digest waited a week, `misfire_grace_seconds = 600`
    notwithstanding. The tick missed within the grace runs at start, once."""
    import threading

    calls: list[str] = []
    monkeypatch.setitem(COMMANDS, "digest", lambda _res, _stop: calls.append("x") or "sent")
    tick = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    cron = f"{tick.minute} {tick.hour} {tick.day} {tick.month} *"  # next: in a year
    job = {"name": "weekly", "cron": cron, "command": "digest"}
    conf = SchedulerSettings(jobs=[job], misfire_grace_seconds=600)
    settings = settings.model_copy(update={"scheduler": conf})
    sessions = session_factory(engine)

    def serve_a_while() -> None:
        scheduler = Scheduler(settings, engine, sessions)
        thread = threading.Thread(target=scheduler.serve)  # not the main thread: no signals
        thread.start()
        _wait(lambda: bool(_runs(sessions)) and _runs(sessions)[-1].status != "running", 60)
        time.sleep(1.0)
        scheduler.stop_event.set()
        thread.join(timeout=30)

    serve_a_while()
    runs = _runs(sessions)
    assert calls == ["x"] and [r.status for r in runs] == ["ok"]
    assert runs[0].scheduled_for.replace(tzinfo=UTC) == tick
    serve_a_while()  # restarted again: that tick was run, not again
    assert calls == ["x"] and len(_runs(sessions)) == 1
    fresh = settings.model_copy(
        update={
            "scheduler": conf.model_copy(
                update={"jobs": [SchedulerJob(name="other", cron=cron, command="digest")]}
            )
        }
    )
    other = Scheduler(fresh, engine, sessions)
    assert other.missed_tick(fresh.scheduler.jobs[0], tick + timedelta(seconds=600)) == tick
    assert other.missed_tick(fresh.scheduler.jobs[0], tick + timedelta(seconds=601)) is None


def test_a_run_left_running_by_a_killed_scheduler_is_interrupted_at_start(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A scheduler killed during its nightly run (SIGKILL, out of memory) left the row
    `running`; the restarted scheduler marked it only at the job's next tick, so /health and
    /metrics said `running` for a day. It is marked `interrupted` at start, unless another
    scheduler holds the run lock (its run may be that one)."""
    import threading

    with sessions.begin() as s:
        tick = datetime.now(UTC) - timedelta(hours=3)
        claim_job_run(s, job="nightly", command="aggregate", tick=tick, host="dead:1")
    job = {"name": "nightly", "cron": "0 3 1 1 *", "command": "aggregate"}  # next: January
    settings = settings.model_copy(update={"scheduler": SchedulerSettings(jobs=[job])})

    def start_and_stop() -> None:
        scheduler = Scheduler(settings, engine, sessions)
        scheduler.stop_event.set()  # serve() sets up, starts, then stops at once
        thread = threading.Thread(target=scheduler.serve)  # not the main thread: no signals
        thread.start()
        thread.join(timeout=60)

    other = RunLock(engine, settings)
    assert other.try_acquire()  # another scheduler's run is going
    start_and_stop()
    assert [r.status for r in _runs(sessions)] == ["running"]
    other.release()
    start_and_stop()
    assert [r.status for r in _runs(sessions)] == ["interrupted"]


def test_a_missed_tick_run_late_at_start_still_claims_that_tick(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick missed 50 s before the start (grace 60 s) runs at start; queued behind another
    job's run (one worker), it began 50 s later, within APScheduler's grace for that run, but
    the tick was then 100 s old, past the look-back: the run claimed its own start second
    instead of the tick, so a second scheduler's claim no longer deduplicated it."""
    import jobs.scheduler as sched_mod

    monkeypatch.setitem(COMMANDS, "digest", lambda _res, _stop: "sent")
    tick = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    job = SchedulerJob(name="weekly", cron="0 8 2 3 *", command="digest")
    conf = SchedulerSettings(jobs=[job], misfire_grace_seconds=60)
    settings = settings.model_copy(update={"scheduler": conf})
    sessions = session_factory(engine)
    scheduler = Scheduler(settings, engine, sessions)
    assert scheduler.missed_tick(job, tick + timedelta(seconds=50)) == tick
    monkeypatch.setattr(sched_mod, "utcnow", lambda: tick + timedelta(seconds=100))
    assert scheduler.run_tick(job) == "ok"
    assert [r.scheduled_for.replace(tzinfo=UTC) for r in _runs(sessions)] == [tick]


def test_old_runs_are_pruned_once_a_day_keeping_each_jobs_latest(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`job_runs` was never pruned: a job every 5 minutes left 105,000 rows a year, read by
    /health and /metrics at every call. Runs older than `runs_retention_days` are deleted
    once a day, except each configured job's latest run and latest success."""
    import jobs.scheduler as sched_mod

    monkeypatch.setitem(COMMANDS, "aggregate", lambda _res, _stop: "wrote 0 aggregate rows")
    jobs = [
        SchedulerJob(name="p", cron="*/5 * * * *", command="aggregate"),
        SchedulerJob(name="weekly", cron="0 8 * * mon", command="aggregate"),
    ]
    settings = settings.model_copy(
        update={"scheduler": SchedulerSettings(jobs=jobs, runs_retention_days=90)}
    )
    now = datetime(2026, 12, 6, 10, 0, 30, tzinfo=UTC)
    sessions = session_factory(engine)
    old = [("p", 200, "ok"), ("p", 120, "ok"), ("p", 100, "failed"), ("p", 10, "ok")]
    old += [("weekly", 200, "ok"), ("weekly", 150, "failed"), ("removed", 95, "ok")]
    with sessions.begin() as s:
        for name, days, status in old:
            at = now - timedelta(days=days)
            s.add(
                JobRun(job=name, command="aggregate", scheduled_for=at, started_at=at,
                       finished_at=at, status=status, lag_seconds=0.0, host="h:1")
            )  # fmt: skip

    def kept() -> list[tuple[str, int]]:
        # Age in whole days, rounded: this tick's run is stamped by the real clock, minutes
        # either side of `now` (`.days` of a negative minute is -1: red after 10:00 UTC).
        def age(r: JobRun) -> int:
            return round((now - r.started_at.replace(tzinfo=UTC)).total_seconds() / 86400)

        return [(r.job, age(r)) for r in _runs(sessions)]

    scheduler = Scheduler(settings, engine, sessions)
    monkeypatch.setattr(sched_mod, "utcnow", lambda: now)
    assert scheduler.run_tick(jobs[0]) == "ok"
    # p: the recent run and this tick's; weekly: its latest run (failed) and latest success.
    assert sorted(kept()) == [("p", 0), ("p", 10), ("weekly", 150), ("weekly", 200)]
    with sessions.begin() as s:  # a run that passed the retention since
        at = now - timedelta(days=91)
        s.add(JobRun(job="p", command="aggregate", scheduled_for=at, started_at=at,
                     finished_at=at, status="ok", lag_seconds=0.0, host="h:1"))  # fmt: skip
    monkeypatch.setattr(sched_mod, "utcnow", lambda: now + timedelta(hours=1))
    assert scheduler.run_tick(jobs[0]) == "ok"
    assert ("p", 91) in kept()  # once a day, not at every tick
    monkeypatch.setattr(sched_mod, "utcnow", lambda: now + timedelta(days=1, minutes=5))
    assert scheduler.run_tick(jobs[0]) == "ok"
    assert ("p", 91) not in kept() and len(kept()) == 6
    # 0 keeps every run.
    assert Settings(scheduler={"runs_retention_days": 0}).scheduler.runs_retention_days == 0
    # "Keep for ever" written as a huge number: refused at load, not a daily traceback.
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="runs_retention_days"):
        Settings(scheduler={"runs_retention_days": 1_000_000})


def test_verbatims_past_retention_days_are_purged_by_the_daily_housekeeping(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`retention_days` (personal data): the scheduler deletes older verbatims once a day,
    after a tick, as it prunes `job_runs`, and writes the anonymous audit line."""
    import jobs.scheduler as sched_mod
    from core.erasure import AUDIT_FILE

    monkeypatch.setitem(COMMANDS, "aggregate", lambda _res, _stop: "wrote 0 aggregate rows")
    jobs = [SchedulerJob(name="p", cron="*/5 * * * *", command="aggregate")]
    settings = settings.model_copy(
        update={"scheduler": SchedulerSettings(jobs=jobs), "retention_days": 30}
    )
    now = datetime(2026, 12, 6, 10, 0, 30, tzinfo=UTC)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        for n, age in enumerate((40, 31, 29, 1)):
            at = now - timedelta(days=age)
            s.add(Feedback(source="s", channel="review", dedup_key=f"id:{n}", created_at=at,
                           ingested_at=at, text=f"avis {n}", content_hash=str(n)))  # fmt: skip
    scheduler = Scheduler(settings, engine, sessions)
    monkeypatch.setattr(sched_mod, "utcnow", lambda: now)
    assert scheduler.run_tick(jobs[0]) == "ok"
    with sessions() as s:
        assert sorted(s.scalars(select(Feedback.text))) == ["avis 2", "avis 3"]
    line = json.loads((settings.data_dir / AUDIT_FILE).read_text().splitlines()[-1])
    assert line["action"] == "purge" and line["by"] == "scheduler" and line["verbatims"] == 2


def test_no_job_is_a_clear_error(settings: Settings, engine: Engine) -> None:
    with pytest.raises(SchedulerConfigError, match=r"\[scheduler\] jobs"):
        Scheduler(settings, engine, session_factory(engine))


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            {"kind": "htp", "url": "http://127.0.0.1:9/r"},
            "source 'feed': unknown kind 'htp' (known: file, folder, http)",
        ),
        (
            {"kind": "http", "url": "127.0.0.1:9/r"},
            "source 'feed': url '127.0.0.1:9/r': expected an http:// or https:// URL",
        ),
        (
            {"kind": "http", "url": "http://127.0.0.1:9/r", "auth_env": "SCHED25_UNSET_TOKEN"},
            "source 'feed': http://127.0.0.1:9/r: environment variable SCHED25_UNSET_TOKEN "
            "(auth token) is not set",
        ),
        (
            {"kind": "folder", "path": "/tmp", "encoding": "ansi"},
            "source 'feed': unknown encoding 'ansi'",
        ),
        ({"path": "/tmp/feed.csv", "encoding": "ansi"}, "source 'feed': unknown encoding 'ansi'"),
    ],
)
def test_a_misconfigured_source_is_refused_at_start_not_at_each_tick(
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    source: dict[str, str],
    said: str,
) -> None:
    """A source a pull refuses whatever the remote says (a misspelt kind, a URL without its
    scheme, the token's variable not set in the scheduler's environment, an unknown
    encoding): `verbatim scheduler` started, and every `ingest` / `run` tick failed on it,
    a nightly job at 3 a.m. It is now refused at start, one clear message; a scheduler
    without an ingesting job does not read the sources."""
    monkeypatch.delenv("SCHED25_UNSET_TOKEN", raising=False)
    sources = [SourceConfig(source="feed", **source)]
    for command in ("ingest", "run"):
        job = {"name": "p", "cron": "*/5 * * * *", "command": command}
        conf = SchedulerSettings(jobs=[job])
        bad = settings.model_copy(update={"sources": sources, "scheduler": conf})
        with pytest.raises(SchedulerConfigError) as caught:
            Scheduler(bad, engine, session_factory(engine))
        assert str(caught.value).startswith(said), str(caught.value)
    digest = SchedulerSettings(jobs=[{"name": "w", "cron": "0 8 * * mon", "command": "digest"}])
    fine = settings.model_copy(update={"sources": sources, "scheduler": digest})
    Scheduler(fine, engine, session_factory(engine))


def test_an_ingest_job_without_a_source_is_refused_at_start(
    settings: Settings, engine: Engine
) -> None:
    """An `ingest` job and no `[[sources]]` (the configuration mounted without them): every
    tick was `ok` (`no source configured`), /health green, nothing ever pulled."""
    jobs = [
        {"name": "pipeline", "cron": "*/15 * * * *", "command": "run"},
        {"name": "pull", "cron": "*/5 * * * *", "command": "ingest"},
    ]
    bad = settings.model_copy(update={"sources": [], "scheduler": SchedulerSettings(jobs=jobs)})
    with pytest.raises(SchedulerConfigError) as caught:
        Scheduler(bad, engine, session_factory(engine))
    assert (
        str(caught.value) == "scheduler job 'pull' runs `ingest` but no [[sources]] is configured"
    )
    fine = bad.model_copy(update={"scheduler": SchedulerSettings(jobs=jobs[:1])})
    Scheduler(fine, engine, session_factory(engine))  # `run` alone: its demo feed


@pytest.mark.parametrize("grace", [0, -5])
def test_no_misfire_grace_is_a_clear_error(settings: Settings, engine: Engine, grace: int) -> None:
    """`misfire_grace_seconds = 0` ("never run a late tick") passed the settings, then
    APScheduler's TypeError killed `verbatim scheduler` with a traceback once it started."""
    conf = SchedulerSettings(jobs=[{"name": "p", "cron": "0 8 * * *"}], misfire_grace_seconds=grace)
    settings = settings.model_copy(update={"scheduler": conf})
    with pytest.raises(SchedulerConfigError, match="misfire_grace_seconds must be at least 1"):
        Scheduler(settings, engine, session_factory(engine))


def test_health_and_metrics_show_the_last_runs(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    from service.app import create_app

    tick = datetime.now(UTC).replace(microsecond=0)
    with sessions.begin() as s:
        ok = claim_job_run(s, job="pipeline", command="run", tick=tick, host="h:1")
        finish_job_run(s, ok, status="ok", detail="stored 3")
        bad = claim_job_run(s, job="ingest", command="ingest", tick=tick, host="h:1")
        finish_job_run(s, bad, status="failed", detail="HTTP 500")
    client = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    health = client.get("/health").json()
    jobs = {j["job"]: j for j in health["jobs"]}
    assert health["status"] == "ok"
    assert jobs["pipeline"]["status"] == "ok" and jobs["ingest"]["detail"] == "HTTP 500"
    assert jobs["pipeline"]["lag_seconds"] >= 0 and jobs["ingest"]["last_success_at"] is None
    text = client.get("/metrics").text
    assert 'verbatim_job_last_status{job="ingest",status="failed"} 1.0' in text
    assert 'verbatim_job_lag_seconds{job="pipeline"}' in text
    assert 'verbatim_job_last_success_timestamp_seconds{job="pipeline"}' in text


def test_a_job_that_never_succeeded_has_a_last_success_of_zero(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A job failing since its first run (a source misconfigured at deploy) had no
    `verbatim_job_last_success_timestamp_seconds` series: the alert the README gives,
    `time() - last_success > …`, never fired for it. It is 0 ("never") until a success."""
    from service.app import create_app

    tick = datetime.now(UTC).replace(microsecond=0)
    with sessions.begin() as s:
        bad = claim_job_run(s, job="ingest", command="ingest", tick=tick, host="h:1")
        finish_job_run(s, bad, status="failed", detail="HTTP 500")
    client = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    assert client.get("/health").json()["jobs"][0]["last_success_at"] is None
    text = client.get("/metrics").text
    assert 'verbatim_job_last_success_timestamp_seconds{job="ingest"} 0.0' in text
    with sessions.begin() as s:
        ok = claim_job_run(
            s, job="ingest", command="ingest", tick=tick + timedelta(minutes=5), host="h:1"
        )
        finish_job_run(s, ok, status="ok", detail="stored 3")
    text = client.get("/metrics").text
    assert 'verbatim_job_last_success_timestamp_seconds{job="ingest"} 0.0' not in text
    assert 'verbatim_job_last_success_timestamp_seconds{job="ingest"} 1.' in text


def test_a_job_removed_from_the_configuration_drops_out_of_health_and_metrics(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A job removed from [scheduler] stayed in /health and /metrics for ever with its last
    run (`failed`, a success ever older): an alert on it paged for a job that no longer
    exists. Only the configured jobs are reported; and a job that leaves the list (its runs
    pruned) no longer keeps its start, lag and duration gauges until the API restarts."""
    from service.app import create_app

    tick = datetime.now(UTC).replace(microsecond=0)
    with sessions.begin() as s:
        ok = claim_job_run(s, job="pipeline", command="run", tick=tick, host="h:1")
        finish_job_run(s, ok, status="ok", detail="stored 3")
        gone = claim_job_run(s, job="pull", command="ingest", tick=tick, host="h:1")
        finish_job_run(s, gone, status="failed", detail="HTTP 500")
    conf = SchedulerSettings(jobs=[SchedulerJob(name="pipeline", cron="*/15 * * * *")])
    configured = settings.model_copy(update={"scheduler": conf})
    client = TestClient(create_app(configured, engine=engine, build_analyzer_at_startup=False))
    assert [j["job"] for j in client.get("/health").json()["jobs"]] == ["pipeline"]
    metrics = client.get("/metrics").text
    assert 'job="pipeline"' in metrics and 'job="pull"' not in metrics

    # An API without scheduler jobs in its configuration reports every job in job_runs...
    client = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    assert [j["job"] for j in client.get("/health").json()["jobs"]] == ["pipeline", "pull"]
    assert 'verbatim_job_lag_seconds{job="pull"}' in client.get("/metrics").text
    with sessions.begin() as s:  # ...until its runs are gone (pruned)
        s.execute(text("delete from job_runs where job = 'pull'"))
        claim_job_run(s, job="pipeline", command="run", tick=tick + timedelta(minutes=15), host="h")
    metrics = client.get("/metrics").text
    assert 'job="pull"' not in metrics
    # A job still listed keeps the duration of its latest finished run while one is going.
    assert 'verbatim_job_duration_seconds{job="pipeline"}' in metrics


# --- real processes ---------------------------------------------------------------------------


def _start(tmp_path: Path, db_url: str, config: str, name: str) -> subprocess.Popen:
    (tmp_path / "verbatim.toml").write_text(config, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_CONFIG=str(tmp_path / "verbatim.toml"),
        VERBATIM_DATABASE_URL=db_url,
        VERBATIM_DATA_DIR=str(tmp_path / "data"),
        VERBATIM_SENTIMENT_BACKEND="lexicon",
        PYTHONPATH=str(ROOT),
    )
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "verbatim_cli", "scheduler"], stdout=log, stderr=log, env=env
    )


def _runs(sessions: sessionmaker[Session]) -> list[JobRun]:
    with sessions() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def _wait(cond, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_two_schedulers_run_each_tick_once(tmp_path: Path, db_url: str) -> None:
    config = '[scheduler]\njobs = [{name="agg", cron="*/2 * * * * *", command="aggregate"}]\n'
    procs = [_start(tmp_path, db_url, config, n) for n in ("a", "b")]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    try:
        # Both up (each printed its next run time), then at least 4 ticks with both competing.
        assert _wait(lambda: all("next run at" in p.read_text() for p in logs), 120), [
            p.read_text()[-2000:] for p in logs
        ]
        seen = len(_runs(sessions))

        def competed() -> bool:  # a loaded machine can let a loser miss a tick: wait for two
            lost = sum(p.read_text().count("already run by another scheduler") for p in logs)
            return len(_runs(sessions)) >= seen + 4 and lost >= 2

        assert _wait(competed, 90)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=60) for p in procs]
    texts = [p.read_text() for p in logs]
    assert codes == [0, 0], texts
    assert all("scheduler stopped" in t for t in texts)
    runs = _runs(sessions)
    started = sum(t.count(": started (run #") for t in texts)
    # Each tick ran exactly once: as many executions (counted in both logs) as ticks.
    assert started == len(runs) == len({r.scheduled_for for r in runs})
    assert all(r.status == "ok" for r in runs)
    # ...and the two processes did compete for the same ticks (the losers logged it).
    assert sum(t.count("already run by another scheduler") for t in texts) >= 2
    engine.dispose()


@pytest.mark.slow
def test_sigterm_stops_a_run_cleanly(tmp_path: Path) -> None:
    """SIGTERM during a pipeline run: the run ends after its current batch, is recorded as
    aborted (never left 'running'), and the process exits 0."""
    db_url = f"sqlite:///{tmp_path / 'stop.db'}"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = [
        {"id": str(i), "text": f"Colis {i} arrivé abîmé, remboursement refusé"} for i in range(400)
    ]
    (inbox / "feed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    old = time.time() - 3600
    os.utime(inbox / "feed.jsonl", (old, old))
    config = f"""batch_size = 10
[[sources]]
source = "inbox"
kind = "folder"
path = "{inbox}"

[scheduler]
jobs = [{{name="pipeline", cron="* * * * * *", command="run"}}]
"""
    proc = _start(tmp_path, db_url, config, "s")
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    try:
        assert _wait(
            lambda: (
                "analysing" in (tmp_path / "s.log").read_text()
                or any(r.status == "running" for r in _runs(sessions))
            ),
            180,
        ), (tmp_path / "s.log").read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    text = (tmp_path / "s.log").read_text()
    assert code == 0, text[-3000:]
    assert "scheduler stopped" in text
    runs = _runs(sessions)
    assert runs and all(r.status in ("ok", "aborted") for r in runs), [
        (r.status, r.detail) for r in runs
    ]
    engine.dispose()


def test_a_stop_during_a_sources_retry_wait_aborts_the_ingest_tick(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    """SIGTERM while an `http` source waited before a retry (503): the pull ends with an
    error, and the ingest tick went on to pull the next source during the stop (the last
    source: `failed`, a traceback in the log). It is `aborted` there, the next source left
    for the next tick."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked = threading.Event()

    class Down(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            asked.set()
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Down)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "d1", "text": "Colis arrivé abîmé"}\n', "utf-8")
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    sources = [
        SourceConfig(source="api", kind="http", url=url, max_retries=8),
        SourceConfig(source="shop", path=feed),
    ]
    job = {"name": "pull", "cron": "* * * * *", "command": "ingest"}
    settings = settings.model_copy(
        update={"sources": sources, "scheduler": SchedulerSettings(jobs=[job])}
    )
    sessions = session_factory(engine)
    scheduler = Scheduler(settings, engine, sessions)

    def sigterm() -> None:  # what SIGTERM does (stop_on_signals), during the first backoff
        if asked.wait(timeout=60):
            time.sleep(0.3)
        scheduler.stop_event.set()

    threading.Thread(target=sigterm, daemon=True).start()
    try:
        status = scheduler.run_tick(settings.scheduler.jobs[0])
    finally:
        server.shutdown()
        server.server_close()
    assert status == "aborted", _runs(sessions)[-1].detail
    assert "stop requested" in (_runs(sessions)[-1].detail or "")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Feedback)) == 0  # `shop` not pulled


def test_a_ticks_log_line_says_how_long_it_ran(
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`docker compose logs scheduler` said what ran and what it stored, not for how long:
    a run slowing down night after night showed only in /health's last run."""

    def digest(_res: JobResources, _stop: typing.Callable[[], bool]) -> str:
        time.sleep(0.3)
        return "digest sent"

    monkeypatch.setitem(COMMANDS, "digest", digest)
    job = {"name": "weekly", "cron": "0 8 * * 1", "command": "digest"}
    settings = settings.model_copy(update={"scheduler": SchedulerSettings(jobs=[job])})
    scheduler = Scheduler(settings, engine, session_factory(engine))
    with caplog.at_level("INFO", logger="jobs.scheduler"):
        assert scheduler.run_tick(settings.scheduler.jobs[0]) == "ok"
    (line,) = [r.getMessage() for r in caplog.records if ": ok" in r.getMessage()]
    took = re.search(r": ok in (\d+\.\d) s \(digest sent\)$", line)
    assert took and float(took[1]) >= 0.3, line


def test_a_tick_whose_source_fails_is_one_error_line_without_a_traceback(
    tmp_path: Path, settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A source that cannot be read (here its folder is not mounted) logged, at every tick,
    the scheduler's own traceback (`ERROR job pull failed`, then `Traceback … RuntimeError:
    inbox: folder … does not exist`), and the line saying the tick failed at INFO. Now one
    line at ERROR saying why; the other sources are still pulled."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "d1", "text": "Colis arrivé abîmé"}\n', "utf-8")
    sources = [
        SourceConfig(source="inbox", kind="folder", path=tmp_path / "not-mounted"),
        SourceConfig(source="shop", path=feed),
    ]
    job = {"name": "pull", "cron": "* * * * *", "command": "ingest"}
    settings = settings.model_copy(
        update={"sources": sources, "scheduler": SchedulerSettings(jobs=[job])}
    )
    sessions = session_factory(engine)
    scheduler = Scheduler(settings, engine, sessions)
    with caplog.at_level("INFO", logger="jobs.scheduler"):
        assert scheduler.run_tick(settings.scheduler.jobs[0]) == "failed"
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    (line,) = [r for r in caplog.records if ": failed in " in r.getMessage()]
    assert line.levelname == "ERROR"
    why = f"shop stored 1; inbox: folder {tmp_path / 'not-mounted'} does not exist"
    assert line.getMessage().endswith(f"({why})"), line.getMessage()
    assert _runs(sessions)[-1].detail == why

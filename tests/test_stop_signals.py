"""SIGTERM / SIGINT during `verbatim alert` and `verbatim detect` (and the scheduler's ticks
running them): the message being posted (the day being detected) is finished, the rest is
left for the next run, one warning line, exit 143. Real subprocesses, a real SQLite file and
a real HTTP server on 127.0.0.1 standing in for Slack that holds a request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import (
    Analysis,
    DailyAggregate,
    DetectionState,
    Feedback,
    JobRun,
    OutboxMessage,
)
from core.settings import SchedulerSettings, Settings, SourceConfig
from jobs.alerts import DeliveryPolicy, deliver_pending
from jobs.detect import run_detect
from tests.test_alerts import SPIKE, START, seed_aggregates

ROOT = Path(__file__).resolve().parents[1]
FAST = DeliveryPolicy(backoff_base_s=0.01, later_base_s=0.0, attempts_per_run=3)


class SlowSlack:
    """Records every POST. The first one is held (body read, no answer) until `release`;
    `arrived` is set when it came in. `status` answers the others (then the held one)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.status = 200
        self.lock = threading.Lock()


@pytest.fixture
def slow_slack() -> Iterator[tuple[SlowSlack, str]]:
    state = SlowSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            with state.lock:
                state.bodies.append(body)
                first = len(state.bodies) == 1
            if first:
                state.arrived.set()
                state.release.wait(timeout=30)
            payload = b"ok"
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    state.release.set()
    server.shutdown()
    server.server_close()


def three_spikes(sessions: sessionmaker[Session]) -> None:
    """livraison, prix and emballage spike on SPIKE: three incidents, three messages."""
    with sessions() as s:
        seed_aggregates(s)
        rows = s.execute(select(DailyAggregate).where(DailyAggregate.theme == "livraison"))
        for row in rows.scalars().all():
            for theme in ("prix", "emballage"):
                s.add(
                    DailyAggregate(
                        day=row.day,
                        theme=theme,
                        channel=row.channel,
                        source=row.source,
                        volume=row.volume,
                        negatives=row.negatives,
                        positives=row.positives,
                    )
                )
        s.commit()


def statuses(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))


def cli_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_CONFIG=os.devnull,
        VERBATIM_DATA_DIR=str(settings.data_dir),
        VERBATIM_DATABASE_URL=settings.resolved_database_url,
        VERBATIM_SENTIMENT_BACKEND="lexicon",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def test_sigterm_during_alert_delivery_finishes_the_message_and_leaves_the_rest(
    settings: Settings,
    sessions: sessionmaker[Session],
    slow_slack: tuple[SlowSlack, str],
    tmp_path: Path,
) -> None:
    state, url = slow_slack
    three_spikes(sessions)
    settings.slack_webhooks = {"default": url}
    assert run_detect(settings, sessions).queued == 3
    env = cli_env(settings, tmp_path, VERBATIM_SLACK_WEBHOOKS=json.dumps({"default": url}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "verbatim_cli", "alert"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert state.arrived.wait(timeout=90), "the first message never reached Slack"
        proc.send_signal(signal.SIGTERM)  # while Slack holds the first message
        time.sleep(0.5)
        state.release.set()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, (out, err)
    assert err.count("stopped on request") == 1 and "2 left pending" in err, err
    assert "Traceback" not in err
    assert len(state.bodies) == 1  # nothing posted after the stop, nothing twice
    assert statuses(sessions) == ["sent", "pending", "pending"]
    with sessions() as s:
        left = s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all()
        assert all(m.attempts == 0 and m.next_attempt_at is None for m in left)

    # The next run delivers the rest, each once.
    assert deliver_pending(settings, sessions, policy=FAST).sent == 2
    assert statuses(sessions) == ["sent", "sent", "sent"]
    assert len(state.bodies) == len(set(state.bodies)) == 3


DETECT_HELD = """
import pathlib, sys, time
import jobs.detect as detect
real, flag = detect.detect_day, pathlib.Path(sys.argv[1])
def held(*args, **kwargs):  # the first day takes a while: the SIGTERM lands in it
    out = real(*args, **kwargs)
    if not flag.exists():
        flag.write_text("in day 1")
        time.sleep(2)
    return out
detect.detect_day = held
from verbatim_cli import app
sys.argv = ["verbatim", "detect"]
app()
"""


def test_sigterm_during_detect_finishes_the_day_and_the_next_run_continues(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    three_spikes(sessions)
    flag = tmp_path / "held"
    proc = subprocess.Popen(
        [sys.executable, "-c", DETECT_HELD, str(flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(settings, tmp_path),
    )
    try:
        deadline = time.monotonic() + 90
        while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert flag.exists(), proc.communicate(timeout=10)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, (out, err)
    assert err.count("detect stopped on request") == 1, err
    assert f"continues from {START + timedelta(days=1)}" in err
    with sessions() as s:  # the first day is done and committed, nothing after it
        assert s.get(DetectionState, "themes").last_day == START
        assert s.scalars(select(OutboxMessage)).all() == []
    # The next run picks up from the day after and raises the three incidents, once.
    result = run_detect(settings, sessions)
    assert result.days[0] == START + timedelta(days=1) and result.days[-1] == SPIKE
    assert result.new == 3 and result.queued == 3 and not result.stopped
    assert run_detect(settings, sessions).queued == 0


def test_scheduler_alert_tick_stopped_mid_delivery_is_aborted_and_resumed(
    settings: Settings,
    sessions: sessionmaker[Session],
    engine: Engine,
    slow_slack: tuple[SlowSlack, str],
) -> None:
    """The scheduler got SIGTERM (its handler sets `stop_event`) while the alert tick posted
    its first message: that one is finished, the tick is recorded `aborted`, the others wait
    for the next tick, which posts them once."""
    from jobs.scheduler import Scheduler

    state, url = slow_slack
    three_spikes(sessions)
    settings.slack_webhooks = {"default": url}
    run_detect(settings, sessions)
    job = {"name": "alert", "cron": "* * * * * *", "command": "alert"}
    settings = settings.model_copy(update={"scheduler": SchedulerSettings(jobs=[job])})
    scheduler = Scheduler(settings, engine, sessions)

    def sigterm_while_held() -> None:
        state.arrived.wait(timeout=30)
        scheduler.stop_event.set()
        time.sleep(0.3)
        state.release.set()

    threading.Thread(target=sigterm_while_held, daemon=True).start()
    assert scheduler.run_tick(settings.scheduler.jobs[0]) == "aborted"
    assert len(state.bodies) == 1 and statuses(sessions) == ["sent", "pending", "pending"]
    with sessions() as s:
        run = s.execute(select(JobRun)).scalar_one()
        assert run.status == "aborted" and "2 left pending" in (run.detail or "")

    time.sleep(1.1)  # the next tick (every second)
    scheduler.stop_event.clear()
    assert scheduler.run_tick(settings.scheduler.jobs[0]) == "ok"
    assert statuses(sessions) == ["sent", "sent", "sent"]
    assert len(state.bodies) == len(set(state.bodies)) == 3


def test_stop_cuts_a_retry_wait_short_and_keeps_the_message_pending(
    settings: Settings, sessions: sessionmaker[Session], slow_slack: tuple[SlowSlack, str]
) -> None:
    """Slack answers 503 and the backoff before the next try is long: a stop does not wait it
    out (a service manager kills after ~10 s); the message stays pending, posted once."""
    state, url = slow_slack
    state.release.set()  # no held request here
    state.status = 503
    with sessions() as s:
        seed_aggregates(s)
        s.commit()
    settings.slack_webhooks = {"default": url}
    run_detect(settings, sessions)
    policy = DeliveryPolicy(backoff_base_s=60.0, backoff_max_s=60.0, later_base_s=0.0)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    res = deliver_pending(settings, sessions, policy=policy, stop=stop.is_set)
    assert time.monotonic() - started < 10
    assert (res.sent, res.deferred) == (0, 1) and len(state.bodies) == 1
    assert statuses(sessions) == ["pending"]


def test_sigterm_during_verbatim_run_stops_at_the_next_safe_point(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """`verbatim run` had stop points (the scheduler's) but the command caught no signal: a
    SIGTERM killed it wherever it was. Now the page being pulled is stored, the run stops
    before the analysis with one line and exit 143, and the next run goes on."""
    arrived, release = threading.Event(), threading.Event()

    class Held(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            arrived.set()
            release.wait(timeout=30)
            body = json.dumps({"data": [{"id": "r1", "text": "Colis perdu, très déçu"}]})
            self.send_response(200)
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Held)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    source = json.dumps([{"source": "api", "kind": "http", "url": url}])
    env = cli_env(settings, tmp_path, VERBATIM_SOURCES=source)
    proc = subprocess.Popen(
        [sys.executable, "-m", "verbatim_cli", "run", "--no-report", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert arrived.wait(timeout=90), "the pull never reached the API"
        proc.send_signal(signal.SIGTERM)  # while the API holds the page
        time.sleep(0.5)
        release.set()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        release.set()
        server.shutdown()
        server.server_close()
    assert proc.returncode == 143, (out, err)
    assert "stopped on request (SIGTERM)" in " ".join(err.split()), err
    assert "Traceback" not in err
    with sessions() as s:
        assert s.scalars(select(Feedback.external_id)).all() == ["r1"]  # the page is stored
        assert s.scalars(select(Analysis.id)).all() == []  # stopped before the analysis


def test_sigterm_during_a_connector_retry_wait_stops_at_once_and_loses_nothing(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The API's second page answers 429 Retry-After: 60. The connector slept it out with
    `time.sleep` (max_retries times): SIGTERM waited minutes, `docker stop` killed it after
    10 s. Now the wait ends on the stop: exit 143 in seconds, page 1 stored, the cursor
    unmoved, and the next pull stores page 2 with nothing twice."""
    from jobs.connectors import pull_source

    asked, limited = threading.Event(), threading.Event()
    limited.set()
    pages = {
        "/feed": {"data": [{"id": "r1", "text": "Colis perdu, très déçu"}], "next": "/feed2"},
        "/feed2": {"data": [{"id": "r2", "text": "Livraison rapide, merci"}]},
    }

    class Limited(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = self.path.split("?")[0]
            if path == "/feed2" and limited.is_set():
                asked.set()
                self.send_response(429)
                self.send_header("Retry-After", "60")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps(pages[path]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Limited)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    source = json.dumps([{"source": "api", "kind": "http", "url": url}])
    env = cli_env(settings, tmp_path, VERBATIM_SOURCES=source)
    proc = subprocess.Popen(
        [sys.executable, "-m", "verbatim_cli", "run", "--no-report", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert asked.wait(timeout=90), "the pull never reached page 2"
        time.sleep(0.5)  # in the Retry-After wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    try:
        assert proc.returncode == 143, (out, err)
        assert took < 10, f"{took:.1f} s to stop"
        assert "Traceback" not in err
        with sessions() as s:
            assert s.scalars(select(Feedback.external_id)).all() == ["r1"]
        limited.clear()  # the API is back: the next pull reads page 1 again, then page 2
        settings.sources = [SourceConfig(source="api", kind="http", url=url)]
        result = pull_source(sessions, settings, settings.sources[0])
    finally:
        server.shutdown()
        server.server_close()
    assert (result.stored, result.duplicates) == (1, 1)
    with sessions() as s:
        assert sorted(s.scalars(select(Feedback.external_id))) == ["r1", "r2"]

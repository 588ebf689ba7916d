"""`verbatim detect` + `verbatim alert`: alerts persisted in a real SQLite file, messages
delivered to a real HTTP server on 127.0.0.1 that records requests and scripts answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.models import Alert, Analysis, DailyAggregate, Feedback, OutboxMessage, ThemeMention
from core.settings import Settings
from jobs.alerts import DeliveryPolicy, deliver_pending
from jobs.detect import run_detect

START = date(2026, 1, 5)
SPIKE = START + timedelta(days=50)
FAST = DeliveryPolicy(backoff_base_s=0.01, later_base_s=0.0, attempts_per_run=3)


# --- a Slack-like webhook server -------------------------------------------------------------
class Hook:
    """Records every POST; answers from `script` (status, headers) then 200 "ok"."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()

    def next_answer(self) -> tuple[int, dict[str, str]]:
        with self.lock:
            return self.script.pop(0) if self.script else (200, {})


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.requests.append({"path": self.path, "body": json.loads(body)})
            status, headers = state.next_answer()
            payload = b"ok" if status == 200 else b"error"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- data ------------------------------------------------------------------------------------
def seed_aggregates(
    session: Session,
    days: int = 51,
    spike_days: tuple[int, ...] = (50,),
    theme: str = "livraison",
    base: float = 20.0,
    seed: int = 3,
) -> None:
    rng = np.random.default_rng(seed)
    for d in range(days):
        day = START + timedelta(days=d)
        vol = int(rng.poisson(base)) + (60 if d in spike_days else 0)
        neg = int(rng.binomial(vol, 0.3))
        # Split over two sources/channels: detection sums them.
        half = vol // 2
        for channel, source, v, n in (
            ("review", "shop", half, neg // 2),
            ("social", "x", vol - half, neg - neg // 2),
        ):
            session.add(
                DailyAggregate(
                    day=day,
                    theme=theme,
                    channel=channel,
                    source=source,
                    volume=v,
                    negatives=n,
                    positives=v - n,
                )
            )
        session.add(
            DailyAggregate(
                day=day, theme="*", channel="review", source="shop", volume=vol * 2, negatives=neg
            )
        )


def seed_examples(session: Session, day: date, theme: str = "livraison") -> None:
    now = datetime.now(UTC)
    texts = [
        "Colis jamais reçu, écrivez-moi à <EMAIL>",
        "Livraison en retard de 10 jours",
        "Le livreur a laissé le colis dehors",
        "Super rapide, merci",
    ]
    for i, text in enumerate(texts):
        fb = Feedback(
            source="shop",
            channel="review",
            dedup_key=f"id:{i}",
            text=text,
            created_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
            ingested_at=now,
            content_hash=f"h{i}",
            meta={},
        )
        session.add(fb)
        session.flush()
        an = Analysis(
            feedback_id=fb.id,
            model_version="t",
            sentiment="negative",
            sentiment_score=0.9,
            analyzed_at=now,
        )
        session.add(an)
        session.flush()
        session.add(
            ThemeMention(
                analysis_id=an.id,
                feedback_id=fb.id,
                theme=theme,
                polarity="positive" if i == 3 else "negative",
                score=0.9 - i * 0.1,
                day=day,
            )
        )


@pytest.fixture
def wired(settings: Settings, sessions: sessionmaker[Session], hook: tuple[Hook, str]):
    state, url = hook
    settings.slack_webhooks = {"logistics": f"{url}/logistics", "default": f"{url}/default"}
    with sessions() as s:
        seed_aggregates(s)
        seed_examples(s, SPIKE)
        s.commit()
    return settings, sessions, state


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


# --- detect ----------------------------------------------------------------------------------
def test_detect_raises_alert_routes_to_team_and_is_idempotent(wired) -> None:
    settings, sessions, _ = wired
    first = run_detect(settings, sessions)
    assert first.days[-1] == SPIKE and len(first.days) == 7  # the last week is re-checked
    assert first.new == 1 and first.queued == 1
    with sessions() as s:
        alert = s.execute(select(Alert)).scalar_one()
        assert (alert.theme, alert.kind, alert.team, alert.status) == (
            "livraison",
            "volume",
            "logistics",
            "open",
        )
        assert alert.first_day == alert.last_day == SPIKE
        assert alert.observed > 1.5 * alert.expected
        msg = s.execute(select(OutboxMessage)).scalar_one()
        assert (msg.route, msg.revision, msg.status) == ("logistics", 1, "pending")
        text = json.dumps(msg.payload, ensure_ascii=False)
        assert "Livraison" in text and "#theme=livraison" in text
        assert "Colis jamais reçu" in text and "<EMAIL>" in text
    again = run_detect(settings, sessions)
    assert (again.new, again.updated, again.queued) == (0, 0, 0)
    assert count(sessions, Alert) == 1 and count(sessions, OutboxMessage) == 1


def test_persisting_spike_updates_the_same_alert(settings, sessions) -> None:
    with sessions() as s:
        seed_aggregates(s, days=53, spike_days=(50, 51, 52))
        s.commit()
    for d in (50, 51, 52):
        run_detect(settings, sessions, day=START + timedelta(days=d))
        run_detect(settings, sessions, day=START + timedelta(days=d))  # re-run: no change
    with sessions() as s:
        alerts = s.execute(select(Alert)).scalars().all()
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert.first_day == SPIKE and alert.last_day == START + timedelta(days=52)
        outbox = s.execute(select(OutboxMessage)).scalars().all()
        # One message per revision (a revision bumps only when the severity escalates).
        assert sorted(m.revision for m in outbox) == list(range(1, alert.revision + 1))
        assert all(m.route == "default" for m in outbox)  # no webhook for logistics


def test_first_run_over_history_dates_the_episode_from_its_start(settings, sessions) -> None:
    with sessions() as s:
        seed_aggregates(s, days=53, spike_days=(50, 51, 52))
        s.commit()
    res = run_detect(settings, sessions)  # one run, data up to day 52
    assert res.new == 1 and res.queued == 1
    with sessions() as s:
        alert = s.execute(select(Alert)).scalar_one()
        assert alert.first_day == SPIKE and alert.last_day == START + timedelta(days=52)


def test_daily_reruns_never_duplicate_a_resolved_episode(settings, sessions) -> None:
    with sessions() as s:
        seed_aggregates(s, days=64, spike_days=(50, 51))
        s.commit()
    for d in range(48, 64):  # one scheduled run per day, each re-checking its last week
        run_detect(settings, sessions, day=START + timedelta(days=d))
    with sessions() as s:
        alerts = s.execute(select(Alert)).scalars().all()
        assert len(alerts) == 1 and alerts[0].status == "resolved"
        assert (alerts[0].first_day, alerts[0].last_day) == (SPIKE, SPIKE + timedelta(days=1))
        assert count(sessions, OutboxMessage) == alerts[0].revision


def test_theme_without_team_webhook_falls_back_to_default(settings, sessions, hook) -> None:
    _, url = hook
    settings.slack_webhooks = {"default": f"{url}/default"}
    with sessions() as s:
        seed_aggregates(s, theme="prix")
        s.commit()
    run_detect(settings, sessions)
    with sessions() as s:
        assert s.execute(select(Alert.team)).scalar_one() == "marketing"
        assert s.execute(select(OutboxMessage.route)).scalar_one() == "default"


def test_detect_on_empty_database(settings, sessions) -> None:
    assert run_detect(settings, sessions).days == []


# --- delivery --------------------------------------------------------------------------------
def test_delivery_posts_block_kit_once(wired) -> None:
    settings, sessions, server = wired
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.sent == 1
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req["path"] == "/logistics"
    assert req["body"]["text"] and req["body"]["blocks"][0]["type"] == "header"
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        assert msg.status == "sent" and msg.sent_at is not None and msg.attempts == 1
    # Nothing is ever sent twice: a second run and a second detect post nothing.
    run_detect(settings, sessions)
    assert deliver_pending(settings, sessions, policy=FAST).sent == 0
    assert len(server.requests) == 1


def test_429_retry_after_is_honoured(wired) -> None:
    settings, sessions, server = wired
    server.script = [(429, {"Retry-After": "1"})]
    run_detect(settings, sessions)
    waits: list[float] = []
    res = deliver_pending(settings, sessions, policy=FAST, sleep=waits.append)
    assert res.sent == 1 and len(server.requests) == 2
    assert waits == [1.0]


def test_429_with_long_retry_after_defers_to_a_later_run(wired) -> None:
    settings, sessions, server = wired
    server.script = [(429, {"Retry-After": "3600"})]
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST, sleep=lambda s: None)
    assert res.sent == 0 and res.deferred == 1 and len(server.requests) == 1


def test_500_then_200_is_retried_with_backoff(wired) -> None:
    settings, sessions, server = wired
    server.script = [(500, {}), (503, {})]
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST)  # real (short) sleeps
    assert res.sent == 1 and len(server.requests) == 3


def test_repeated_failures_stay_pending_then_deliver_next_run(wired) -> None:
    settings, sessions, server = wired
    server.script = [(500, {})] * 3
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.sent == 0 and res.deferred == 1 and len(server.requests) == 3
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        assert msg.status == "pending" and msg.attempts == 3
        assert msg.next_attempt_at is not None and "HTTP 500" in msg.last_error
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.sent == 1 and len(server.requests) == 4
    with sessions() as s:
        assert s.execute(select(OutboxMessage.status)).scalar_one() == "sent"


def test_not_due_messages_wait_for_next_attempt(wired) -> None:
    settings, sessions, server = wired
    server.script = [(500, {})] * 3
    run_detect(settings, sessions)
    slow = DeliveryPolicy(backoff_base_s=0.01, attempts_per_run=3, later_base_s=600)
    deliver_pending(settings, sessions, policy=slow)
    assert deliver_pending(settings, sessions, policy=slow).sent == 0
    assert len(server.requests) == 3


def test_client_error_is_permanent(wired) -> None:
    settings, sessions, server = wired
    server.script = [(404, {})]
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.dead == 1 and len(server.requests) == 1
    assert deliver_pending(settings, sessions, policy=FAST).sent == 0
    assert len(server.requests) == 1


def test_unreachable_webhook_keeps_message_pending(settings, sessions) -> None:
    settings.slack_webhooks = {"default": "http://127.0.0.1:9/hook"}  # discard port: refused
    with sessions() as s:
        seed_aggregates(s)
        s.commit()
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.deferred == 1
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        assert msg.status == "pending" and "network error" in msg.last_error


def test_dry_run_sends_nothing(wired) -> None:
    settings, sessions, server = wired
    run_detect(settings, sessions)
    printed: list[str] = []
    res = deliver_pending(settings, sessions, dry_run=True, echo=printed.append)
    assert len(res.printed) == 1 and server.requests == []
    assert json.loads(printed[0])["payload"]["blocks"]
    with sessions() as s:
        assert s.execute(select(OutboxMessage.status)).scalar_one() == "pending"


def test_cli_detect_and_alert(wired, monkeypatch: pytest.MonkeyPatch) -> None:
    from verbatim_cli import app

    settings, sessions, server = wired
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_SLACK_WEBHOOKS", json.dumps(settings.slack_webhooks))
    runner = CliRunner()
    out = runner.invoke(app, ["detect"])
    assert out.exit_code == 0, out.output
    assert "1 new alert" in out.output
    dry = runner.invoke(app, ["alert", "--dry-run"])
    assert dry.exit_code == 0 and '"route": "logistics"' in dry.output
    assert server.requests == []
    sent = runner.invoke(app, ["alert"])
    assert sent.exit_code == 0 and "1 sent" in sent.output
    assert len(server.requests) == 1
    bad = runner.invoke(app, ["detect", "--day", "31/01/2026"])
    assert bad.exit_code == 2 and "2026-01-31" in bad.output

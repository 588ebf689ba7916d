"""`verbatim detect` + `verbatim alert`: alerts persisted in a real SQLite file, messages
delivered to a real HTTP server on 127.0.0.1 that records requests and scripts answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.models import (
    Alert,
    Analysis,
    DailyAggregate,
    Feedback,
    Incident,
    OutboxMessage,
    ThemeMention,
)
from core.settings import Settings
from jobs.alerts import DeliveryPolicy, _aware, deliver_pending
from jobs.detect import run_detect
from nlp.taxonomy import load_taxonomy

# Data ends today: detection sends only incidents on days within the freshness window.
SPIKE = datetime.now(UTC).date()
START = SPIKE - timedelta(days=50)
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
    # First run: every day of the history is evaluated (warm-up, then quiet, then the spike).
    assert first.days[-1] == SPIKE and len(first.days) == 51
    assert first.new == 1 and first.queued == 1 and first.historical == 0
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
        assert "Livraison" in text and "#theme=livraison&start=" in text
        # The masked address, escaped for Slack's markup (a bare `<EMAIL>` would vanish).
        assert "Colis jamais reçu" in text and "&lt;EMAIL&gt;" in text
        assert msg.incident_id == alert.incident_id is not None
    again = run_detect(settings, sessions)
    assert len(again.days) == 7  # then only the last week is re-checked (late data)
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
        incident = s.get(Incident, alert.incident_id)
        # One message per incident revision (bumped only on a material escalation).
        assert sorted(m.revision for m in outbox) == list(range(1, incident.revision + 1))
        # The route is the team; its webhook (else "default") is looked up at delivery.
        assert all(m.route == "logistics" for m in outbox)


def test_first_run_over_history_dates_the_episode_from_its_start(settings, sessions) -> None:
    with sessions() as s:
        seed_aggregates(s, days=53, spike_days=(50, 51, 52))
        s.commit()
    res = run_detect(settings, sessions)  # one run, data up to day 52
    assert res.new == 1 and res.queued == 1
    with sessions() as s:
        alert = s.execute(select(Alert)).scalar_one()
        assert alert.first_day == SPIKE and alert.last_day == START + timedelta(days=52)


def seed_two_sources(session: Session, days: int, silent_from: int) -> None:
    """ "livraison" from an app store export (60/day, 10 % negative) that stops on day
    `silent_from`, and a complaints form (20/day, 60 % negative) all along."""
    rng = np.random.default_rng(8)
    for d in range(days):
        day = START + timedelta(days=d)
        for source, mu, share in (("appstore", 60, 0.10), ("plaintes", 20, 0.60)):
            vol = 0 if source == "appstore" and d >= silent_from else int(rng.poisson(mu))
            if vol:
                neg = int(rng.binomial(vol, share))
                session.add(
                    DailyAggregate(
                        day=day,
                        theme="livraison",
                        channel="review",
                        source=source,
                        volume=vol,
                        negatives=neg,
                        positives=vol - neg,
                    )
                )


def test_a_positive_source_going_silent_raises_no_negativity_alert(settings, sessions) -> None:
    # The app store export stops for the last 3 days: "livraison" reads ~60 % negative
    # against ~22 % over both sources, but each source's customers are as negative as ever.
    with sessions() as s:
        seed_two_sources(s, days=45, silent_from=42)
        s.commit()
    res = run_detect(settings, sessions)
    assert res.days[-1] == START + timedelta(days=44)
    assert res.signals == [] and count(sessions, Alert) == 0


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
        incident = s.get(Incident, alerts[0].incident_id)
        assert incident.status == "resolved" and incident.resolved_by == "detector"
        assert count(sessions, OutboxMessage) == incident.revision


@pytest.mark.parametrize("edit", ["rename", "merge"])
def test_taxonomy_edit_mid_episode_continues_the_same_incident(
    settings, sessions, edit: str
) -> None:
    """A rename (or merge) while a spike is live: stored alerts kept the old id, so the
    renamed theme's signals opened a second alert, a second incident and a second Slack
    message for the same episode (audit finding)."""
    with sessions() as s:
        seed_aggregates(s, days=56, spike_days=(50, 51, 52, 53, 54))
        s.commit()
    before = load_taxonomy()
    after = (
        before.rename("livraison", "expedition")
        if edit == "rename"
        else before.merge("livraison", "emballage")
    )
    for d in range(48, 56):  # one scheduled run a day; the edit lands on day 52
        day = START + timedelta(days=d)
        run_detect(settings, sessions, day=day, today=day, taxonomy=before if d < 52 else after)
    current = "expedition" if edit == "rename" else "emballage"
    with sessions() as s:
        alert = s.execute(select(Alert)).scalar_one()
        assert alert.theme == current and alert.status == "open"
        assert alert.last_day == START + timedelta(days=54)
        incident = s.execute(select(Incident)).scalar_one()
        assert incident.theme == current and alert.incident_id == incident.id
    assert count(sessions, OutboxMessage) == 1


def test_theme_without_team_webhook_falls_back_to_default(settings, sessions, hook) -> None:
    _, url = hook
    settings.slack_webhooks = {"default": f"{url}/default"}
    with sessions() as s:
        seed_aggregates(s, theme="prix")
        s.commit()
    run_detect(settings, sessions)
    with sessions() as s:
        assert s.execute(select(Alert.team)).scalar_one() == "marketing"
        assert s.execute(select(OutboxMessage.route)).scalar_one() == "marketing"
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    assert [r["path"] for r in hook[0].requests] == ["/default"]


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


@pytest.mark.parametrize("retry_after", ["3600", "20"])
def test_429_retry_after_holds_for_the_next_runs(wired, retry_after: str) -> None:
    """A Retry-After longer than a run waits (or a 429 on the last attempt) is kept in
    `next_attempt_at`: the next scheduled run (every 5 minutes) used to post again after
    the 5-minute backoff, an hour early, and be refused again."""
    settings, sessions, server = wired
    server.script = [(429, {"Retry-After": retry_after})] * 3
    run_detect(settings, sessions)
    policy = DeliveryPolicy(backoff_base_s=0.01, later_base_s=1.0, attempts_per_run=3)
    before = datetime.now(UTC)
    res = deliver_pending(settings, sessions, policy=policy, sleep=lambda s: None)
    posted = len(server.requests)
    assert res.deferred == 1 and posted == (1 if retry_after == "3600" else 3)
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        wait = (_aware(msg.next_attempt_at) - before).total_seconds()
    assert int(retry_after) <= wait < int(retry_after) + 60
    time.sleep(1.1)  # past the run's own backoff (1 s): only Retry-After holds it now
    assert deliver_pending(settings, sessions, policy=policy, sleep=lambda s: None).sent == 0
    assert len(server.requests) == posted


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
    later = deliver_pending(settings, sessions, policy=slow)
    assert later.sent == 0
    assert len(server.requests) == 3
    # Said, so that "0 sent" does not read as "nothing queued".
    assert later.waiting >= 1 and later.next_due is not None
    assert later.next_due > datetime.now(UTC) + timedelta(seconds=300)


def test_an_escalation_waits_for_its_incidents_opening_message(wired) -> None:
    """Slack down when the incident opened: its message waited for its backoff (5 minutes,
    then 10, 20 … up to 6 hours) while the escalation queued meanwhile went at the next run,
    Slack back: the team read « Incident aggravé (rév. 2) » first, and the opening message,
    with its older figures, after it. An incident's revisions go to its channel in order."""
    settings, sessions, server = wired
    server.script = [(503, {})] * 3
    run_detect(settings, sessions)
    slow = DeliveryPolicy(backoff_base_s=0.01, attempts_per_run=3, later_base_s=600)
    assert deliver_pending(settings, sessions, policy=slow).deferred == 1
    with sessions() as s:
        first = s.execute(select(OutboxMessage)).scalar_one()
        s.add(
            OutboxMessage(
                incident_id=first.incident_id,
                revision=2,
                route=first.route,
                payload={"text": "Incident aggravé (rév. 2)"},
                status="pending",
                attempts=0,
            )
        )
        s.commit()
    held = deliver_pending(settings, sessions, policy=slow)
    assert held.sent == 0 and len(server.requests) == 3  # the escalation waits its turn
    with sessions() as s:
        assert s.execute(select(OutboxMessage.status)).scalars().all() == ["pending"] * 2
        s.execute(update(OutboxMessage).values(next_attempt_at=None))  # the backoff is over
        s.commit()
    assert deliver_pending(settings, sessions, policy=slow).sent == 2
    texts = [r["body"]["text"] for r in server.requests[3:]]
    assert texts[0].startswith("Incident de gravité") and texts[1] == "Incident aggravé (rév. 2)"


def test_client_error_is_permanent(wired) -> None:
    settings, sessions, server = wired
    server.script = [(404, {})]
    run_detect(settings, sessions)
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.dead == 1 and len(server.requests) == 1
    assert deliver_pending(settings, sessions, policy=FAST).sent == 0
    assert len(server.requests) == 1
    # The webhook fixed, `verbatim alert --retry-dead` re-queues it: it had no way back.
    from jobs.alerts import retry_dead

    server.script = []
    assert retry_dead(sessions) == 1
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    assert len(server.requests) == 2 and retry_dead(sessions) == 0


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


@pytest.mark.parametrize(
    "broken",
    [
        lambda url: url + "\n",
        lambda url: url.replace("/logistics", "x/logistics"),
        lambda url: url[7:],
    ],
    ids=["stray-newline", "bad-port", "no-scheme"],
)
def test_malformed_webhook_waits_and_the_other_messages_go(wired, broken) -> None:
    """A webhook with a typo made httpx raise InvalidURL (outside its HTTPError family): the
    run died and the message became `unknown` though nothing was sent; without a scheme it
    was posted and failed every run until `dead`. It now waits, never posted, with why."""
    settings, sessions, server = wired
    with sessions() as s:  # a second theme, routed to "default", spikes on the same day
        rows = s.execute(select(DailyAggregate).where(DailyAggregate.theme == "livraison"))
        for row in rows.scalars().all():
            s.add(
                DailyAggregate(
                    day=row.day,
                    theme="prix",
                    channel=row.channel,
                    source=row.source,
                    volume=row.volume,
                    negatives=row.negatives,
                    positives=row.positives,
                )
            )
        s.commit()
    good = settings.slack_webhooks["logistics"]
    settings.slack_webhooks["logistics"] = broken(good)
    assert run_detect(settings, sessions).queued == 2
    res = deliver_pending(settings, sessions, policy=FAST)
    assert (res.sent, res.deferred, res.unknown, res.dead) == (1, 1, 0, 0)
    assert [r["path"] for r in server.requests] == ["/default"]
    with sessions() as s:
        msg = s.execute(
            select(OutboxMessage).where(OutboxMessage.route == "logistics")
        ).scalar_one()
        assert (msg.status, msg.attempts) == ("pending", 0)
        assert "webhook for route 'logistics': not a valid URL" in msg.last_error
    settings.slack_webhooks["logistics"] = good  # the setting is fixed: it goes
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    assert [r["path"] for r in server.requests] == ["/default", "/logistics"]


def test_scheduled_alert_job_that_loses_a_message_is_not_ok(wired, engine) -> None:
    """Slack refused the message for good (404: a deleted webhook): `verbatim alert` exits 1,
    but the scheduler's `alert` job recorded the tick `ok`, so /health stayed green."""
    from core.models import JobRun
    from core.settings import SchedulerSettings
    from jobs.scheduler import Scheduler

    settings, sessions, server = wired
    server.script = [(404, {})]
    run_detect(settings, sessions)
    job = {"name": "alert", "cron": "* * * * *", "command": "alert"}
    settings = settings.model_copy(update={"scheduler": SchedulerSettings(jobs=[job])})
    scheduler = Scheduler(settings, engine, sessions)
    assert scheduler.run_tick(settings.scheduler.jobs[0]) == "failed"
    with sessions() as s:
        run = s.execute(select(JobRun)).scalar_one()
        assert run.status == "failed" and "failed 1" in (run.detail or "")
    assert len(server.requests) == 1


def test_a_message_slack_refused_for_good_says_which_team_and_why(
    wired, caplog: pytest.LogCaptureFixture
) -> None:
    """A deleted webhook (404 `no_service`): `verbatim alert` said "0 sent, 0 deferred
    (retried later), 1 failed permanently" and nothing else: neither which team's channel
    hears nothing more nor Slack's answer, kept in the outbox row only."""
    settings, sessions, server = wired
    server.script = [(404, {})]
    assert run_detect(settings, sessions).queued == 1
    with caplog.at_level("WARNING", logger="jobs.alerts"):
        res = deliver_pending(settings, sessions, policy=FAST)
    assert res.dead == 1 and len(server.requests) == 1
    assert res.refused == {("logistics", "HTTP 404: error"): 1}
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "1 message(s) for route 'logistics' refused for good" in m
        and "HTTP 404: error" in m
        and "--retry-dead" in m
        for m in said
    ), said


def test_links_to_a_dashboard_on_this_machine_are_said(
    wired, caplog: pytest.LogCaptureFixture
) -> None:
    """`dashboard_url` left at its default: every message's « Ouvrir le tableau de bord »
    opened http://127.0.0.1:8000 on the on-call lead's own laptop, and nothing said so."""
    settings, sessions, server = wired
    settings.dashboard_url = "https://verbatim.example.fr"
    assert run_detect(settings, sessions).queued == 1
    with caplog.at_level("WARNING", logger="jobs.alerts"):
        assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    assert not any("dashboard_url" in r.getMessage() for r in caplog.records)
    with sessions() as s:  # queued again, as by --retry-dead
        s.execute(update(OutboxMessage).values(status="pending", sent_at=None))
        s.commit()
    for url in ("http://127.0.0.1:8000", "http://localhost:8000/"):
        caplog.clear()
        settings.dashboard_url = url
        with caplog.at_level("WARNING", logger="jobs.alerts"):
            assert deliver_pending(settings, sessions, policy=FAST).sent == 1
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any(f"dashboard_url is {url}: " in m for m in said), said
        with sessions() as s:
            s.execute(update(OutboxMessage).values(status="pending", sent_at=None))
            s.commit()


def test_dry_run_sends_nothing(wired) -> None:
    settings, sessions, server = wired
    run_detect(settings, sessions)
    printed: list[str] = []
    res = deliver_pending(settings, sessions, dry_run=True, echo=printed.append)
    assert len(res.printed) == 1 and server.requests == []
    assert json.loads(printed[0])["payload"]["blocks"]
    with sessions() as s:
        assert s.execute(select(OutboxMessage.status)).scalar_one() == "pending"


def test_a_message_without_a_webhook_says_why_it_waits(
    wired, caplog: pytest.LogCaptureFixture
) -> None:
    """No webhook for the team nor "default": `verbatim alert` said "0 sent, 1 deferred
    (retried later)" and nothing else, run after run, though no run could deliver it."""
    settings, sessions, server = wired
    settings.slack_webhooks = {}
    assert run_detect(settings, sessions).queued == 1
    with caplog.at_level("WARNING", logger="jobs.alerts"):
        res = deliver_pending(settings, sessions, policy=FAST)
    assert (res.sent, res.deferred) == (0, 1) and server.requests == []
    problem = "no webhook configured for route 'logistics' nor 'default'"
    assert res.unrouted == {problem: 1}
    assert any(
        problem in r.getMessage() and "1 message(s)" in r.getMessage() for r in caplog.records
    )


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


# --- ambiguous outcomes and crashes -----------------------------------------------------------


@pytest.fixture
def hanging_hook() -> Iterator[tuple[list[bytes], str, threading.Event]]:
    """A webhook that reads the whole request body, then never answers (until released)."""
    received: list[bytes] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            release.wait(timeout=30)  # hangs past the client's timeout

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}", release
    release.set()
    server.shutdown()
    server.server_close()


def test_timeout_after_body_sent_is_unknown_and_never_reposted(
    settings, sessions, hanging_hook
) -> None:
    received, url, _release = hanging_hook
    settings.slack_webhooks = {"default": f"{url}/hook"}
    with sessions() as s:
        seed_aggregates(s)
        s.commit()
    run_detect(settings, sessions)
    policy = DeliveryPolicy(
        backoff_base_s=0.01, later_base_s=0.0, attempts_per_run=3, timeout_s=0.5
    )
    res = deliver_pending(settings, sessions, policy=policy)
    assert (res.sent, res.unknown, res.deferred) == (0, 1, 0)
    assert len(received) == 1  # posted once, not three times
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        assert msg.status == "unknown" and "no answer after sending" in msg.last_error
    # Later runs leave it alone: Slack may already show it.
    again = deliver_pending(settings, sessions, policy=policy)
    assert again.sent == again.unknown == 0 and len(received) == 1
    # A human checked Slack and re-queues it.
    from jobs.alerts import retry_unknown

    assert retry_unknown(sessions) == 1
    with sessions() as s:
        assert s.execute(select(OutboxMessage.status)).scalar_one() == "pending"


def test_crashed_claims_are_reclaimed_after_a_short_lease(wired) -> None:
    settings, sessions, server = wired
    run_detect(settings, sessions)
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        # A run crashed 2 minutes ago right after claiming (nothing posted yet).
        msg.status = "sending"
        msg.next_attempt_at = datetime.now(UTC) - timedelta(seconds=60)
        s.commit()
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.sent == 1 and len(server.requests) == 1
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        assert msg.status == "sent"
        # A run that crashed with the request in flight: unknown, not re-posted.
        msg.status = "posting"
        msg.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        s.commit()
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.sent == 0 and len(server.requests) == 1
    with sessions() as s:
        assert s.execute(select(OutboxMessage.status)).scalar_one() == "unknown"


def test_a_live_claim_is_not_taken_over(wired) -> None:
    settings, sessions, server = wired
    run_detect(settings, sessions)
    with sessions() as s:
        msg = s.execute(select(OutboxMessage)).scalar_one()
        msg.status = "posting"
        msg.next_attempt_at = datetime.now(UTC) + timedelta(seconds=30)  # lease still running
        s.commit()
    res = deliver_pending(settings, sessions, policy=FAST)
    assert res.sent == 0 and not server.requests


def test_team_webhooks_from_the_environment_match_the_team_whatever_its_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """pydantic-settings lowercases the keys of VERBATIM_SLACK_WEBHOOKS__<TEAM> (the README's
    way to set them): team "SAV" found no webhook and its incidents went to `default`."""
    from core.settings import load_settings
    from jobs.alerts import webhook_for

    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VERBATIM_SLACK_WEBHOOKS__SAV", "http://127.0.0.1:9/sav")
    monkeypatch.setenv("VERBATIM_SLACK_WEBHOOKS__DEFAULT", "http://127.0.0.1:9/default")
    settings = load_settings()
    assert webhook_for(settings, "SAV") == "http://127.0.0.1:9/sav"
    assert webhook_for(settings, "sav") == "http://127.0.0.1:9/sav"
    assert webhook_for(settings, "Logistique") == "http://127.0.0.1:9/default"

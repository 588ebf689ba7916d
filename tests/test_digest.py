"""`verbatim digest` against a real HTTP server on 127.0.0.1 standing in for Slack."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from api_seed import LAST_DAY, seed
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.models import OutboxMessage
from core.settings import Settings
from jobs.alerts import DeliveryPolicy, _aware, deliver_pending
from jobs.digest import send_digest
from nlp.taxonomy import load_taxonomy


class Slack:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        # Scripted answers, then 200: a status, or (status, headers) e.g. Retry-After.
        self.answers: list[int | tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()


@pytest.fixture
def slack() -> Iterator[tuple[Slack, str]]:
    state = Slack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.bodies.append(json.loads(body))
                answer = state.answers.pop(0) if state.answers else 200
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_digest_posts_movers_and_incidents_once(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    state, url = slack
    seeded = seed(sessions)
    settings.slack_webhooks = {"digest": url}
    settings.dashboard_url = "https://cx.example.fr"
    tax = load_taxonomy(None)
    state.answers = [503]  # one server error, retried with backoff
    fast = DeliveryPolicy(backoff_base_s=0.0)
    result = send_digest(settings, sessions, tax, policy=fast)
    assert result.outcome == "sent", result.error
    assert len(state.bodies) == 2  # the 503, then the delivery
    text = state.bodies[-1]["text"]
    assert text.startswith("Verbatim — synthèse du 22/03/2026 au 28/03/2026")
    # livraison: 21 mentions the week before, seeded.livraison_current this week.
    assert f"*Livraison* : 21 → {seeded.livraison_current} mentions (+205 %)" in text
    # One line per incident (not per alert), with its main driver and a deep link.
    assert "Incidents en cours (1) :" in text
    incidents = text.split("Incidents en cours")[1]
    assert (
        "haute — *Livraison* (pic de volume) depuis le 26/03/2026, "
        "surtout transporteur = Colissimo (<https://cx.example.fr/#theme=livraison" in incidents
    )
    assert "Prix" not in incidents
    assert "NPS " in text and "CSAT " in text
    assert f"https://cx.example.fr/#view=overview&start=2026-03-22&end={LAST_DAY}" in text
    assert state.bodies[-1]["blocks"][0]["type"] == "header"

    # The scheduler may call it twice: the same period is not posted again.
    again = send_digest(settings, sessions, tax, policy=fast)
    assert again.outcome == "already_sent" and len(state.bodies) == 2
    forced = send_digest(settings, sessions, tax, policy=fast, force=True)
    assert forced.outcome == "sent" and len(state.bodies) == 3


def test_digest_cli(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    from verbatim_cli import app

    state, url = slack
    seed(sessions)
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    runner = CliRunner()
    res = runner.invoke(app, ["digest"], env=env)
    assert res.exit_code == 2 and "slack_webhooks.digest" in res.output
    res = runner.invoke(app, ["digest", "--dry-run"], env=env)
    assert res.exit_code == 0 and json.loads(res.stdout)["text"].startswith("Verbatim")
    assert state.bodies == []
    env["VERBATIM_SLACK_WEBHOOKS__DEFAULT"] = url
    res = runner.invoke(app, ["digest"], env=env)
    assert res.exit_code == 0 and "sent: 1 movers, 1 incidents open" in res.output
    res = runner.invoke(app, ["digest"], env=env)
    assert res.exit_code == 0 and "already sent" in res.output
    assert len(state.bodies) == 1
    res = runner.invoke(app, ["digest", "--end", "hier"], env=env)
    assert res.exit_code == 2
    state.answers = [404]
    res = runner.invoke(app, ["digest", "--force"], env=env)
    assert res.exit_code == 1 and "HTTP 404" in res.output
    # A typo in the webhook: one clear line, not an httpx.InvalidURL traceback.
    env["VERBATIM_SLACK_WEBHOOKS__DEFAULT"] = url.replace("/hook", "x/hook")
    res = runner.invoke(app, ["digest", "--force"], env=env)
    assert res.exit_code == 2 and "webhook for the digest: not a valid URL" in res.output
    assert len(state.bodies) == 2


def test_digest_reads_the_stored_taxonomy_and_skips_closed_incidents(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """The CLI digest labels themes from the database taxonomy (as edited through the API) and
    lists acknowledged incidents, never resolved or historical ones."""
    from core import taxonomy_store
    from core.db import session_scope
    from core.models import Incident
    from verbatim_cli import app

    seed(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        themes = [
            t.model_copy(update={"label": "Transport"}) if t.id == "livraison" else t
            for t in tax.themes
        ]
        taxonomy_store.save(
            session, settings, tax.model_copy(update={"themes": themes}), "test", "rename"
        )
        live = session.query(Incident).one()
        live.status = "acknowledged"
        for status, historical in (("resolved", False), ("open", True)):
            session.add(
                Incident(
                    theme="prix",
                    status=status,
                    first_day=live.first_day,
                    last_day=live.last_day,
                    severity="critical",
                    kinds=["negativity"],
                    historical=historical,
                    created_at=live.created_at,
                    updated_at=live.updated_at,
                )
            )
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    res = CliRunner().invoke(app, ["digest", "--dry-run"], env=env)
    assert res.exit_code == 0, res.output
    text = json.loads(res.stdout)["text"]
    incidents = text.split("Incidents en cours")[1]
    assert incidents.startswith(" (1) :")
    assert "*Transport* (pic de volume) depuis le 26/03/2026 · pris en charge" in incidents
    assert "Prix" not in incidents and "critique" not in incidents


def test_digest_driver_values_cannot_ping_the_channel(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """An incident's driver value is a metadata value from the feed: `<!channel>` in it used
    to reach Slack as a channel-wide ping."""
    from core.db import session_scope
    from core.models import Incident

    seed(sessions)
    with session_scope(sessions) as session:
        live = session.query(Incident).one()
        live.drivers = [{**live.drivers[0], "value": "<!channel> Colis&Co"}]
    tax = load_taxonomy(None)
    payload = send_digest(settings, sessions, tax, dry_run=True).digest.payload
    for text in (payload["text"], payload["blocks"][3]["text"]["text"]):
        assert "surtout transporteur = &lt;!channel&gt; Colis&amp;Co (<" in text
        assert "<!channel>" not in text


def test_scheduler_digest_command_posts_once_per_period(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    from jobs.scheduler import COMMANDS, JobResources

    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"digest": url}
    never = lambda: False  # noqa: E731 - the scheduler's stop flag
    res = JobResources(settings, sessions)
    assert COMMANDS["digest"](res, never).startswith("digest sent: 1 incidents in progress")
    assert COMMANDS["digest"](res, never).startswith("digest already_sent")
    assert len(state.bodies) == 1


def test_a_digest_of_another_length_is_not_the_weekly_one_ending_that_day(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    """A digest was keyed by its last day alone: after the weekly digest, `digest --days 30`
    said "already sent" (false), and `--force` overwrote the weekly digest's outbox row. A
    period is its last day and its length; rows and markers stored before (keyed by the last
    day) still count as the weekly digest of that day."""
    from core.models import DataVersion

    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"digest": url}
    tax = load_taxonomy(None)
    assert send_digest(settings, sessions, tax).outcome == "sent"
    month = send_digest(settings, sessions, tax, days=30)
    assert month.outcome == "sent" and len(state.bodies) == 2
    assert state.bodies[-1]["text"].startswith("Verbatim — synthèse du 27/02/2026 au 28/03/2026")
    assert send_digest(settings, sessions, tax).outcome == "already_sent"
    assert send_digest(settings, sessions, tax, days=30).outcome == "already_sent"
    assert send_digest(settings, sessions, tax, days=30, force=True).outcome == "sent"
    with sessions() as s:
        rows = s.scalars(
            select(OutboxMessage).where(OutboxMessage.route == "digest").order_by(OutboxMessage.id)
        ).all()
        titles = [r.payload["text"].split("\n")[0] for r in rows]
        # The weekly row kept its key (the last day's ordinal, as earlier versions stored it).
        assert rows[0].revision == LAST_DAY.toordinal()
        # A marker written by a version without the outbox: the weekly digest of that day.
        s.add(DataVersion(name=f"digest:{LAST_DAY - timedelta(days=7)}", version=1))
        s.commit()
    assert titles == [
        "Verbatim — synthèse du 22/03/2026 au 28/03/2026",
        "Verbatim — synthèse du 27/02/2026 au 28/03/2026",
    ]
    before = LAST_DAY - timedelta(days=7)
    assert send_digest(settings, sessions, tax, end=before).outcome == "already_sent"
    assert send_digest(settings, sessions, tax, end=before, days=14).outcome == "sent"
    assert len(state.bodies) == 4


# --- a digest Slack did not take: kept, retried, never posted twice ---------------------------
def _digest_row(sessions: sessionmaker[Session]) -> OutboxMessage:
    with sessions() as s:
        return s.execute(select(OutboxMessage).where(OutboxMessage.route == "digest")).scalar_one()


def test_digest_refused_for_a_while_is_kept_and_posted_by_the_next_alert_run(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    """Slack answered 5xx for the whole run: the digest used to be lost until the next weekly
    tick (a new week). It stays pending; the next `verbatim alert` posts it, once."""
    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"digest": url}
    tax = load_taxonomy(None)
    policy = DeliveryPolicy(backoff_base_s=0.0, later_base_s=0.0, attempts_per_run=2)
    state.answers = [503, 502]
    result = send_digest(settings, sessions, tax, policy=policy)
    assert result.outcome == "retry" and "HTTP 502" in (result.error or "")
    assert len(state.bodies) == 2
    row = _digest_row(sessions)
    assert (row.status, row.attempts) == ("pending", 2) and "HTTP 502" in (row.last_error or "")

    # `verbatim alert --dry-run` names the digest's period, not its encoded revision.
    dry = deliver_pending(settings, sessions, policy=policy, dry_run=True)
    assert [m.get("period") for m in dry.printed] == ["2026-03-22..2026-03-28"]
    delivered = deliver_pending(settings, sessions, policy=policy)  # the next alert tick
    assert delivered.sent == 1 and len(state.bodies) == 3
    assert state.bodies[-1] == state.bodies[0]  # the digest built for that week
    assert state.bodies[-1]["text"].startswith("Verbatim — synthèse du 22/03/2026 au 28/03/2026")
    assert _digest_row(sessions).status == "sent"
    # Sent: neither a digest run nor an alert run posts it again.
    assert send_digest(settings, sessions, tax, policy=policy).outcome == "already_sent"
    assert deliver_pending(settings, sessions, policy=policy).sent == 0
    assert len(state.bodies) == 3


def test_digest_retry_after_holds_it_and_the_next_digest_run_posts_it(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    """A 429 with a long Retry-After: no run posts before that time (alert nor digest run);
    once it passed, the next `verbatim digest` posts the pending one, once."""
    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"default": url}
    tax = load_taxonomy(None)
    policy = DeliveryPolicy(backoff_base_s=0.0, later_base_s=0.0, attempts_per_run=3)
    state.answers = [(429, {"Retry-After": "3600"})]
    before = datetime.now(UTC)
    result = send_digest(settings, sessions, tax, policy=policy)
    assert result.outcome == "retry" and len(state.bodies) == 1
    row = _digest_row(sessions)
    assert row.status == "pending" and row.next_attempt_at is not None
    assert (_aware(row.next_attempt_at) - before).total_seconds() >= 3600
    again = send_digest(settings, sessions, tax, policy=policy)
    assert again.outcome == "retry" and "next attempt after" in (again.error or "")
    assert deliver_pending(settings, sessions, policy=policy).sent == 0
    assert len(state.bodies) == 1
    with sessions() as s:  # an hour later
        s.execute(update(OutboxMessage).values(next_attempt_at=before - timedelta(seconds=1)))
        s.commit()
    assert send_digest(settings, sessions, tax, policy=policy).outcome == "sent"
    assert deliver_pending(settings, sessions, policy=policy).sent == 0
    assert len(state.bodies) == 2 and _digest_row(sessions).attempts == 2


def test_digest_refused_for_good_is_recorded_failed_with_the_reason(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"digest": url}
    tax = load_taxonomy(None)
    policy = DeliveryPolicy(backoff_base_s=0.0, later_base_s=0.0)
    state.answers = [404]
    result = send_digest(settings, sessions, tax, policy=policy)
    assert result.outcome == "dead" and "HTTP 404" in (result.error or "")
    row = _digest_row(sessions)
    assert row.status == "dead" and "HTTP 404" in (row.last_error or "")
    # Not retried by later runs (a human fixes the webhook, then --force)...
    assert deliver_pending(settings, sessions, policy=policy).sent == 0
    later = send_digest(settings, sessions, tax, policy=policy)
    assert later.outcome == "dead" and "HTTP 404" in (later.error or "")
    assert len(state.bodies) == 1
    # ...and the scheduler's digest tick says why it failed (its own period: the seeded
    # feed stalled long ago, see test_scheduled_digest_of_a_stalled_feed_says_the_week_was_empty).
    from jobs.scheduler import COMMANDS, JobResources

    state.answers = [404]
    with pytest.raises(RuntimeError, match="HTTP 404"):
        COMMANDS["digest"](JobResources(settings, sessions), lambda: False)
    forced = send_digest(settings, sessions, tax, policy=policy, force=True)
    assert forced.outcome == "sent" and len(state.bodies) == 3


def test_digest_cli_keeps_it_pending_while_slack_is_unreachable(
    tmp_path: Path,
    settings: Settings,
    sessions: sessionmaker[Session],
    slack: tuple[Slack, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connection refused (nothing was sent: safe to retry): exit 1, kept pending; the next
    `verbatim digest` posts it. Then a scheduler alert tick has nothing left to post."""
    from verbatim_cli import app

    state, url = slack
    seed(sessions)
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_SLACK_WEBHOOKS__DEFAULT": "http://127.0.0.1:9/hook",  # discard port: refused
    }
    runner = CliRunner()
    fast = DeliveryPolicy(backoff_base_s=0.0, later_base_s=0.0)
    monkeypatch.setattr("jobs.alerts.DeliveryPolicy", lambda: fast)  # no 1+2+4 s of backoff
    res = runner.invoke(app, ["digest"], env=env)
    assert res.exit_code == 1 and "kept pending" in res.output, res.output
    assert _digest_row(sessions).status == "pending"
    env["VERBATIM_SLACK_WEBHOOKS__DEFAULT"] = url
    res = runner.invoke(app, ["digest"], env=env)
    assert res.exit_code == 0 and "sent: 1 movers" in res.output, res.output
    res = runner.invoke(app, ["alert"], env=env)
    assert res.exit_code == 0 and "0 sent" in res.output
    assert len(state.bodies) == 1 and _digest_row(sessions).status == "sent"


def test_last_weeks_pending_digest_goes_out_before_this_weeks(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    """Only the weekly digest job is scheduled (no alert job): last week's digest, kept pending
    by an outage, is posted by this week's run, before this week's."""
    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"digest": url}
    tax = load_taxonomy(None)
    policy = DeliveryPolicy(backoff_base_s=0.0, later_base_s=0.0, attempts_per_run=1)
    state.answers = [500]
    week_before = LAST_DAY - timedelta(days=7)
    assert send_digest(settings, sessions, tax, end=week_before, policy=policy).outcome == "retry"
    result = send_digest(settings, sessions, tax, policy=policy)
    assert result.outcome == "sent" and result.earlier == [(week_before, "sent")]
    titles = [b["text"].split("\n")[0] for b in state.bodies]
    assert titles == [
        "Verbatim — synthèse du 15/03/2026 au 21/03/2026",
        "Verbatim — synthèse du 15/03/2026 au 21/03/2026",
        "Verbatim — synthèse du 22/03/2026 au 28/03/2026",
    ]


def test_scheduler_alert_tick_posts_a_pending_digest(
    settings: Settings,
    sessions: sessionmaker[Session],
    engine: Engine,
    slack: tuple[Slack, str],
) -> None:
    from core.settings import SchedulerSettings
    from jobs.scheduler import Scheduler

    state, url = slack
    seed(sessions)
    settings.slack_webhooks = {"digest": url}
    policy = DeliveryPolicy(backoff_base_s=0.0, later_base_s=0.0, attempts_per_run=1)
    state.answers = [503]
    send_digest(settings, sessions, load_taxonomy(None), policy=policy)
    job = {"name": "alert", "cron": "* * * * *", "command": "alert"}
    settings = settings.model_copy(update={"scheduler": SchedulerSettings(jobs=[job])})
    assert Scheduler(settings, engine, sessions).run_tick(settings.scheduler.jobs[0]) == "ok"
    assert len(state.bodies) == 2 and _digest_row(sessions).status == "sent"


# --- what a CX team reads: renamed themes, topics, empty weeks, long digests ------------------
def test_digest_names_a_renamed_theme_and_a_topic_incident_by_their_labels(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A theme renamed (new id) after its incident opened showed the raw former id
    (`*livraison*`, linking to `#theme=livraison`) next to the mover `*Transport*`; an
    emerging topic's incident showed `*topic:7*`."""
    from core import taxonomy_store
    from core.db import session_scope
    from core.models import Incident, Topic

    seed(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(
            session, settings, tax.rename("livraison", "transport", "Transport"), "t", "rename"
        )
        live = session.query(Incident).one()
        session.add(
            Topic(
                id=7,
                label="remboursement bloqué",
                size=12,
                first_seen=live.created_at,
                last_seen=live.created_at,
            )
        )
        session.add(
            Incident(
                theme="topic:7",
                status="open",
                first_day=live.first_day,
                last_day=live.last_day,
                severity="medium",
                kinds=["emerging"],
                created_at=live.created_at,
                updated_at=live.updated_at,
            )
        )
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
    settings.dashboard_url = "https://cx.example.fr"
    text = send_digest(settings, sessions, tax, dry_run=True).digest.payload["text"]
    incidents = text.split("Incidents en cours")[1]
    assert "haute — *Transport* (pic de volume)" in incidents
    assert "#theme=transport&" in incidents and "livraison" not in incidents
    assert "moyenne — *sujet émergent « remboursement bloqué »* (émergent)" in incidents
    assert "#view=topics&" in incidents and "topic:7" not in incidents


def test_digest_movers_leave_out_a_retired_theme_as_the_overview_does(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A theme retired during the week kept its stored mentions: the digest named it among
    the themes on the rise while `/overview`'s movers (and `/themes`) left it out."""
    seed(sessions)
    tax = load_taxonomy(None)
    before = send_digest(settings, sessions, tax, dry_run=True).digest
    assert before.movers == 1 and "*Livraison* : 21 →" in before.payload["text"]
    after = send_digest(settings, sessions, tax.retire("livraison"), dry_run=True).digest
    assert after.movers == 0 and "Aucun thème en hausse." in after.payload["text"]
    assert "*Livraison* : 21 →" not in after.payload["text"]


def test_digest_of_an_empty_week_says_so(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A week without data read "0 verbatims, 0 % négatifs (-62 pts)": a drop in negativity
    that is only the missing data."""
    seed(sessions)
    digest = send_digest(
        settings, sessions, load_taxonomy(None), dry_run=True, end=LAST_DAY + timedelta(days=7)
    ).digest
    headline = digest.payload["blocks"][1]["text"]["text"]
    assert headline == (
        "Aucun verbatim sur la période (92 la semaine précédente) : "
        "vérifier l'ingestion des sources"
    )
    assert "pts" not in digest.payload["text"]
    # Another length is not "la semaine précédente" (`verbatim digest --days 30`).
    month = send_digest(
        settings,
        sessions,
        load_taxonomy(None),
        dry_run=True,
        days=14,
        end=LAST_DAY + timedelta(days=14),
    ).digest
    headline = month.payload["blocks"][1]["text"]["text"]
    assert re.match(r"Aucun verbatim sur la période \(\d+ les 14 jours précédents\) : ", headline)


def test_digest_of_a_past_first_week_compares_nothing_and_lists_its_own_incidents(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """The first week of data read "+42 pts" against an empty week, and a digest of a past
    week listed today's incidents as in progress, begun after that week ended."""
    seed(sessions)
    first_week_end = LAST_DAY - timedelta(days=21)
    digest = send_digest(
        settings, sessions, load_taxonomy(None), dry_run=True, end=first_week_end
    ).digest
    headline = digest.payload["blocks"][1]["text"]["text"]
    assert headline.startswith("49 verbatims, 57 % négatifs") and "pts" not in headline, headline
    assert digest.incidents == 0 and "Aucun incident en cours." in digest.payload["text"]
    latest = send_digest(settings, sessions, load_taxonomy(None), dry_run=True).digest
    assert latest.incidents == 1 and "pts)" in latest.payload["blocks"][1]["text"]["text"]


def test_long_digest_stays_within_slack_block_limits(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Long theme labels and driver values (feed metadata) on ten incidents made the incidents
    section longer than Slack's 3000 characters: Slack answers 400 invalid_blocks and the
    digest is lost. Lines are clipped and cut, with the count of the ones left out."""
    from core import taxonomy_store
    from core.db import session_scope
    from core.models import Incident

    seed(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        themes = [t.model_copy(update={"label": t.label + " — " + "x" * 300}) for t in tax.themes]
        live = session.query(Incident).one()
        for i in range(14):
            session.add(
                Incident(
                    theme=themes[i % len(themes)].id,
                    status="open",
                    first_day=live.first_day,
                    last_day=live.last_day,
                    severity="high",
                    kinds=["volume", "negativity"],
                    drivers=[{"field": "commentaire_" + "y" * 200, "value": "z" * 500}],
                    created_at=live.created_at,
                    updated_at=live.updated_at,
                )
            )
    tax = tax.model_copy(update={"themes": themes})
    payload = send_digest(settings, sessions, tax, dry_run=True).digest.payload
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections), [len(t) for t in sections]
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    incidents = sections[2]
    assert incidents.startswith("*Incidents en cours (15)*\n")
    shown = incidents.count("\n• ")
    assert shown >= 5 and f"… et {15 - shown} autres" in incidents
    assert "…" in incidents.split("\n")[1]  # the long label and value are clipped


def test_digest_counts_in_french_singulars(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Eleven incidents in progress listed ten and « … et 1 autres »; an empty day compared
    with « les 1 jours précédents »."""
    from core.db import session_scope
    from core.models import Incident

    seed(sessions)
    with session_scope(sessions) as session:
        live = session.query(Incident).one()
        for _ in range(10):
            session.add(
                Incident(
                    theme=live.theme,
                    status="open",
                    first_day=live.first_day,
                    last_day=live.last_day,
                    severity="medium",
                    kinds=["volume"],
                    created_at=live.created_at,
                    updated_at=live.updated_at,
                )
            )
    tax = load_taxonomy(None)
    text = send_digest(settings, sessions, tax, dry_run=True).digest.payload["text"]
    assert "Incidents en cours (11)" in text and text.count("\n• ") >= 10
    assert "… et 1 autre\n" in text and "1 autres" not in text
    day = send_digest(
        settings, sessions, tax, dry_run=True, days=1, end=LAST_DAY + timedelta(days=1)
    ).digest.payload["blocks"][1]["text"]["text"]
    assert re.match(r"Aucun verbatim sur la période \(\d+ la veille\) : ", day), day


def test_scheduled_digest_of_a_stalled_feed_says_the_week_was_empty(
    settings: Settings, sessions: sessionmaker[Session], slack: tuple[Slack, str]
) -> None:
    """The scheduled digest ended on the last day with data: once a feed stalled, every
    weekly tick found that period's digest already sent and posted nothing, so nobody heard
    that ingestion had stopped. A feed silent for more than a period now gets the digest of
    the week just ended, which says it was empty."""
    from datetime import date

    from jobs.scheduler import COMMANDS, JobResources, scheduled_digest_end

    today = date(2026, 12, 7)
    assert scheduled_digest_end(today - timedelta(days=1), today) is None  # fresh data
    assert scheduled_digest_end(today - timedelta(days=7), today) is None
    assert scheduled_digest_end(today - timedelta(days=8), today) == date(2026, 12, 6)
    assert scheduled_digest_end(None, today) == date(2026, 12, 6)  # nothing ingested yet

    state, url = slack
    seed(sessions)  # data up to LAST_DAY, long before today
    settings.slack_webhooks = {"digest": url}
    line = COMMANDS["digest"](JobResources(settings, sessions), lambda: False)
    assert line.startswith("digest sent") and f"no data since {LAST_DAY}" in line
    text = state.bodies[-1]["text"]
    assert "Aucun verbatim sur la période" in text and "vérifier l'ingestion" in text


def test_scheduled_digest_leaves_out_the_day_in_progress(
    settings: Settings,
    sessions: sessionmaker[Session],
    slack: tuple[Slack, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Monday 8:00 tick on a live feed ended the digest on that Monday (the last day with
    data): Tuesday to Monday morning, compared with seven whole days, and the rest of that
    Monday was in no digest (the next one began on Tuesday). It ends the day before."""
    import jobs.scheduler
    from core.db import session_scope
    from core.models import Incident
    from jobs.scheduler import COMMANDS, JobResources, scheduled_digest_end

    today = date(2026, 12, 7)
    assert scheduled_digest_end(today, today) == date(2026, 12, 6)
    assert scheduled_digest_end(today + timedelta(days=1), today) == date(2026, 12, 6)

    class Clock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=UTC).replace(hour=8)

    state, url = slack
    seed(sessions)  # data up to LAST_DAY: the tick runs on LAST_DAY at 8:00 UTC
    with session_scope(sessions) as session:  # opened this morning: in progress all the same
        live = session.query(Incident).one()
        session.add(
            Incident(
                theme="prix",
                status="open",
                first_day=LAST_DAY,
                last_day=LAST_DAY,
                severity="medium",
                kinds=["negativity"],
                created_at=live.created_at,
                updated_at=live.updated_at,
            )
        )
    settings.slack_webhooks = {"digest": url}
    monkeypatch.setattr(jobs.scheduler, "datetime", Clock)
    line = COMMANDS["digest"](JobResources(settings, sessions), lambda: False)
    assert line.startswith("digest sent: 2 incidents") and "no data since" not in line, line
    text = state.bodies[-1]["text"]
    assert text.startswith("Verbatim — synthèse du 21/03/2026 au 27/03/2026")
    assert "moyenne — *Prix* (hausse de négativité) depuis le 28/03/2026" in text


def test_digest_points_are_the_difference_of_the_weeks_percentages(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """« 57 % négatifs (+5 pts) » after a week shown « 53 % »: the points came from the
    unrounded shares and could disagree with the percentages the two digests show."""
    seed(sessions)

    def headline(end: date) -> str:
        digest = send_digest(settings, sessions, load_taxonomy(None), dry_run=True, end=end)
        return digest.digest.payload["blocks"][1]["text"]["text"]

    for weeks in range(3):
        end = LAST_DAY - timedelta(days=7 * weeks)
        now, before = headline(end), headline(end - timedelta(days=7))
        share = int(re.search(r"(\d+) % négatifs \(([+-]\d+) pts\)", now).group(1))
        points = int(re.search(r"\(([+-]\d+) pts\)", now).group(1))
        previous = int(re.search(r"(\d+) % négatifs", before).group(1))
        assert points == share - previous, (now, before)


@pytest.mark.parametrize("days", [1, 6, 7, 8, 30, 366])
def test_a_digest_revision_reads_back_as_its_period(days: int) -> None:
    from jobs.digest import period_of, period_revision

    end = date(2026, 3, 28)
    start = end - timedelta(days=days - 1)
    assert period_of(period_revision(start, end)) == (start, end)


def test_dry_run_reads_a_period_from_digest_rows_only(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # An incident of a team named "digest" has the digest's route and no alert: its revision
    # (1) was read as a period, and `verbatim alert --dry-run` died on an OverflowError.
    from core.db import session_scope
    from core.models import Incident

    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        incident = Incident(
            theme="livraison",
            team="digest",
            status="open",
            first_day=LAST_DAY,
            last_day=LAST_DAY,
            severity="medium",
            kinds=["volume"],
            signals={},
            created_at=now,
            updated_at=now,
        )
        session.add(incident)
        session.flush()
        session.add(OutboxMessage(incident_id=incident.id, revision=1, route="digest", payload={}))
    dry = deliver_pending(settings, sessions, dry_run=True)
    assert [(m["revision"], m.get("period")) for m in dry.printed] == [(1, None)]

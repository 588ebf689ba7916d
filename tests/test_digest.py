"""`verbatim digest` against a real HTTP server on 127.0.0.1 standing in for Slack."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from api_seed import LAST_DAY, seed
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.settings import Settings
from jobs.alerts import DeliveryPolicy
from jobs.digest import send_digest
from nlp.taxonomy import load_taxonomy


class Slack:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()


@pytest.fixture
def slack() -> Iterator[tuple[Slack, str]]:
    state = Slack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.bodies.append(json.loads(body))
                status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
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
        "VERBATIM_CONFIG": str(tmp_path / "none.toml"),
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
        "VERBATIM_CONFIG": str(tmp_path / "none.toml"),
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
    assert COMMANDS["digest"](res, never) == "digest sent: 1 incidents in progress"
    assert COMMANDS["digest"](res, never).startswith("digest already_sent")
    assert len(state.bodies) == 1

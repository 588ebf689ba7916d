"""Incidents end to end on a real database (SQLite, and PostgreSQL when configured), Slack
stood in for by a real HTTP server on 127.0.0.1 (the `hook` fixture of test_alerts).

Done-when of issue 10 (items 2-3): six months of history, then three live days with one
injected packaging spike, sends exactly one Slack message, to the logistics webhook that was
configured after the history was loaded, with its drivers; the history sends nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import Alert, Analysis, DetectionState, Feedback, Incident, ThemeMention
from core.settings import Settings
from jobs.aggregate import aggregate
from jobs.alerts import DeliveryPolicy, deliver_pending
from jobs.detect import run_detect
from jobs.incidents import diverse
from tests.test_alerts import hook  # noqa: F401 - the 127.0.0.1 Slack stand-in fixture

FAST = DeliveryPolicy(backoff_base_s=0.01, later_base_s=0.0, attempts_per_run=2)
TODAY = datetime.now(UTC).date()
HISTORY_DAYS = 183
CARRIERS = ("Colissimo", "Chronopost", "Relais")
BASE = {"livraison": 14, "emballage": 6, "prix": 8, "sav": 5, "qualite_produit": 9}
TEXTS = {  # project-written French templates (no research data)
    "livraison": [
        "Livraison en retard de {n} jours",
        "Colis livré rapidement, merci",
        "Le livreur n'est jamais passé, {n}e relance",
    ],
    "emballage": [
        "Carton écrasé à l'arrivée, commande n°{n}",
        "Colis arrivé éventré, {n} articles abîmés",
        "Emballage très soigné, rien à redire ({n})",
        "Boîte déchirée et produit rayé, {n}e fois que ça arrive",
    ],
    "prix": ["Trop cher pour la qualité ({n} €)", "Bon rapport qualité prix, {n} étoiles"],
    "sav": ["Le service client ne répond pas depuis {n} jours", "SAV efficace et poli"],
    "qualite_produit": ["Produit cassé au bout de {n} jours", "Très bonne qualité"],
}


class Feed:
    """Writes verbatims + analyses + theme mentions for one day, as `enrich` stores them."""

    def __init__(self, sessions: sessionmaker[Session], seed: int = 7) -> None:
        self.sessions = sessions
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def day(self, day: date, extra_packaging: int = 0, spike_carrier: str = "Relais") -> None:
        now = datetime.now(UTC)
        rows: list[tuple[Feedback, str, bool]] = []
        for theme, base in BASE.items():
            count = int(self.rng.poisson(base))
            for k in range(count + (extra_packaging if theme == "emballage" else 0)):
                spike = theme == "emballage" and k >= count
                carrier = (
                    spike_carrier
                    if spike and self.rng.random() < 0.85
                    else str(self.rng.choice(CARRIERS))
                )
                negative = self.rng.random() < (0.9 if spike else 0.3)
                rows.append((self._feedback(day, theme, carrier, now), theme, negative))
        with session_scope(self.sessions) as session:
            # One flush for the day's verbatims (a batched INSERT), not two per row: six
            # months fed row by row took most of a minute on PostgreSQL.
            session.add_all([fb for fb, _, _ in rows])
            session.flush()
            for fb, theme, negative in rows:
                label = "negative" if negative else "positive"
                an = Analysis(
                    feedback_id=fb.id,
                    model_version="t",
                    sentiment=label,
                    sentiment_score=0.9,
                    analyzed_at=now,
                )
                an.mentions.append(
                    ThemeMention(
                        feedback_id=fb.id,
                        theme=theme,
                        polarity=label,
                        score=0.8,
                        day=day,
                    )
                )
                session.add(an)
            session.flush()
            aggregate(session, days={day})

    def _feedback(self, day: date, theme: str, carrier: str, now: datetime) -> Feedback:
        self.n += 1
        templates = TEXTS[theme]
        text = templates[int(self.rng.integers(len(templates)))].format(n=self.n % 97)
        channel = "social" if self.n % 3 == 0 else "review"
        return Feedback(
            source="boutique",
            channel=channel,
            dedup_key=f"id:{self.n}",
            text=text,
            created_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
            ingested_at=now,
            content_hash=f"h{self.n}",
            meta={"transporteur": carrier, "commande": f"C{self.n}"},
            analyzed=True,
        )


def _replay(settings: Settings, sessions: sessionmaker[Session], server) -> None:
    feed = Feed(sessions)
    start = TODAY - timedelta(days=HISTORY_DAYS + 2)
    for i in range(HISTORY_DAYS):  # six months of history, loaded in one go
        feed.day(start + timedelta(days=i))
    history = run_detect(settings, sessions, per_channel=False)
    run_detect(settings, sessions, per_channel=True)
    assert len(history.days) == HISTORY_DAYS  # every day evaluated once, not only the last
    with sessions() as s:
        assert s.get(DetectionState, "themes").last_day == start + timedelta(HISTORY_DAYS - 1)
        incidents = s.execute(select(Incident)).scalars().all()
        # Whatever the history raised is historical: recorded, never queued.
        assert all(i.historical for i in incidents)
        assert history.queued == 0
    assert deliver_pending(settings, sessions, policy=FAST).sent == 0

    # Three live days, one scheduled run each; the spike starts on the second.
    live = [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]
    extra = {live[0]: 0, live[1]: 22, live[2]: 24}
    for n, day in enumerate(live):
        feed.day(day, extra_packaging=extra[day], spike_carrier="Chronopost")
        run_detect(settings, sessions)
        run_detect(settings, sessions, per_channel=True)  # feeds the same incident
        if n == 1:
            # The message was queued before the logistics team had a webhook: nothing is
            # sent (no default either) ... until the webhook is configured.
            assert deliver_pending(settings, sessions, policy=FAST).sent == 0
            settings.slack_webhooks = {"logistics": f"{server[1]}/logistics"}
        deliver_pending(settings, sessions, policy=FAST)


def _check(sessions: sessionmaker[Session], server) -> None:
    state = server[0]
    assert len(state.requests) == 1, [r["body"]["text"] for r in state.requests]
    req = state.requests[0]
    assert req["path"] == "/logistics"
    body = json.dumps(req["body"], ensure_ascii=False)
    assert "Emballage" in body
    assert "des mentions supplémentaires : transporteur « Chronopost »" in body  # a driver
    assert f"#theme=emballage&start={(TODAY - timedelta(days=8)).isoformat()}" in body
    with sessions() as s:
        live = s.execute(select(Incident).where(Incident.historical.is_(False))).scalars().all()
        assert [i.theme for i in live] == ["emballage"]
        inc = live[0]
        assert inc.first_day == TODAY - timedelta(days=1) and inc.last_day == TODAY
        # Volume and negativity (and per-channel signals) are one incident, one message.
        assert {"volume", "negativity"} <= set(inc.kinds)
        assert "channels" in inc.signals
        n_alerts = s.scalar(
            select(func.count()).select_from(Alert).where(Alert.incident_id == inc.id)
        )
        assert n_alerts >= 3
        assert inc.drivers[0]["field"] == "transporteur" and inc.drivers[0]["value"] == "Chronopost"
        assert inc.drivers[0]["share_of_extra"] >= 0.6
        assert 2 <= len(inc.examples) <= 3


@pytest.mark.slow
def test_history_then_live_spike_sends_exactly_one_message_sqlite(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    _replay(settings, sessions, hook)
    _check(sessions, hook)


@pytest.mark.slow
@pytest.mark.postgres
def test_history_then_live_spike_sends_exactly_one_message_postgres(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    _replay(settings, pg_sessions, hook)
    _check(pg_sessions, hook)


def test_detect_refuses_days_after_the_data_and_keeps_the_live_incident(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """`detect --day` after the last aggregated day read zero volume there: it resolved the
    live incident and moved the watermark past the days to come (audit finding)."""
    from jobs.detect import DetectDaysError

    feed = Feed(sessions)
    start = TODAY - timedelta(days=40)
    for i in range(40):
        feed.day(start + timedelta(days=i), extra_packaging=30 if i >= 38 else 0)
    run_detect(settings, sessions)
    with sessions() as s:
        open_before = s.execute(select(Incident.id, Incident.status)).all()
        mark = s.get(DetectionState, "themes").last_day
    assert any(status != "resolved" for _, status in open_before)
    last = start + timedelta(days=39)
    with pytest.raises(DetectDaysError, match="after the last aggregated day"):
        run_detect(settings, sessions, day=last + timedelta(days=10))
    with pytest.raises(DetectDaysError, match="is after --day"):
        run_detect(settings, sessions, day=last - timedelta(days=5), since=last)
    with sessions() as s:
        assert s.execute(select(Incident.id, Incident.status)).all() == open_before
        assert s.get(DetectionState, "themes").last_day == mark
    # A --since long before the data starts at the first day (not ~80,000 empty days).
    far = run_detect(settings, sessions, day=last, since=date(1800, 1, 1))
    assert far.days[0] == start and len(far.days) == 40


def test_examples_skip_near_duplicates() -> None:
    texts = [
        "Carton écrasé à l'arrivée, commande n°12",
        "Carton écrasé à l'arrivée, commande n°13",
        "Colis arrivé éventré, deux articles abîmés",
        "carton écrasé à l'arrivée , commande n°14",
        "Boîte déchirée et produit rayé",
    ]
    assert diverse(texts) == [texts[0], texts[2], texts[4]]


# --- a taxonomy edit through the API changes the next run ------------------------------------
FIDELITE = [
    "Mes points de fidélité ont disparu de mon compte ({n})",
    "Impossible d'utiliser ma carte de fidélité, {n} points perdus",
    "Le programme de fidélité ne crédite plus mes achats depuis {n} jours",
]
OTHER = [
    "Livraison en retard de {n} jours, colis introuvable",
    "Produit conforme, livraison rapide ({n})",
    "Service client injoignable depuis {n} jours",
    "Prix trop élevé pour ce que c'est ({n} euros)",
]


def _write_feed(path, days: int, spike: int) -> None:
    rows, n = [], 0
    for i in range(days):
        day = TODAY - timedelta(days=days - 1 - i)
        fid = 2 + (i % 2) + (spike if i == days - 1 else 0)
        for k in range(8 + fid):
            n += 1
            template = FIDELITE[k % 3] if k < fid else OTHER[k % 4]
            rows.append(
                {
                    "id": f"r{n}",
                    "text": template.format(n=n),
                    "created_at": f"{day.isoformat()}T09:00:00+00:00",
                }
            )
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )


def _taxonomy_edit_changes_next_run(
    settings: Settings, sessions: sessionmaker[Session], engine
) -> None:

    from core import taxonomy_store
    from core.settings import SourceConfig
    from jobs.report import build_report
    from jobs.run import run_pipeline
    from service.app import create_app
    from service.auth import create_key

    feed = settings.data_dir / "feed.jsonl"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _write_feed(feed, days=40, spike=18)
    settings.sources = [SourceConfig(path=feed, source="boutique", channel="review")]

    first = run_pipeline(settings, sessions)
    assert first.rethemed is None and first.detected is not None
    with sessions() as s:
        tax = taxonomy_store.current(s, settings).taxonomy
        assert tax.version == 1 and tax.resolve("fidelite") is None
        assert "fidelite" not in {r.theme for r in build_report(s, tax, days=7).rows}
        assert (
            s.scalar(select(func.count()).select_from(Alert).where(Alert.theme == "fidelite")) == 0
        )

    with session_scope(sessions) as s:
        _, token = create_key(s, "crm-lead", "write")
    client = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    theme = {
        "id": "fidelite",
        "label": "Fidélité",
        "team": "crm",
        "stage": "after-sales",
        "seeds": ["fidélité", "points de fidélité", "carte de fidélité"],
    }
    res = client.put(
        "/taxonomy",
        json={"operations": [{"op": "add", "theme": theme}]},
        headers={"X-API-Key": token},
    )
    assert res.status_code == 200, res.text
    assert res.json()["version"] == 2

    second = run_pipeline(settings, sessions)  # no new data: only the taxonomy changed
    assert second.rethemed is not None and second.rethemed.version == 2
    assert second.detected is not None and second.detected.taxonomy_version == 2
    with sessions() as s:
        cur = taxonomy_store.current(s, settings)
        history = taxonomy_store.history(s)
        assert (history[0].author, history[0].summary) == ("api:crm-lead", "added fidelite")
        assert history[0].rethemed_at is not None
        rows = {r.theme: r for r in build_report(s, cur.taxonomy, days=7).rows}
        assert rows["fidelite"].volume >= 18  # the report now has the new theme
        alerts = s.execute(select(Alert).where(Alert.theme == "fidelite")).scalars().all()
        # ... and detection raised its spike on the last day, routed to the new team; the
        # days before the edit are its warm-up, not an "emerging" artefact.
        assert [(a.kind, a.last_day, a.team) for a in alerts] == [("volume", TODAY, "crm")]
        inc = s.get(Incident, alerts[0].incident_id)
        assert inc.taxonomy_version == 2 and not inc.historical


@pytest.mark.slow
def test_taxonomy_edit_through_api_changes_next_run_sqlite(
    settings: Settings, engine, sessions: sessionmaker[Session]
) -> None:
    _taxonomy_edit_changes_next_run(settings, sessions, engine)


@pytest.mark.slow
@pytest.mark.postgres
def test_taxonomy_edit_through_api_changes_next_run_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    _taxonomy_edit_changes_next_run(settings, pg_sessions, pg_sessions.kw["bind"])


def test_taxonomy_diff_summary() -> None:
    from core.taxonomy_store import diff_summary
    from nlp.taxonomy import Theme, load_taxonomy

    old = load_taxonomy()
    new = (
        old.add(Theme(id="fidelite", label="Fidélité"))
        .rename("site_appli", "site_web")
        .merge("prix", "commande_paiement")
    )
    assert diff_summary(old, new) == (
        "renamed site_appli -> site_web; added fidelite; merged prix into commande_paiement;"
        " edited commande_paiement (seeds, patterns, examples, positive_cues, negative_cues)"
    )
    assert diff_summary(old, old) == "no change"


def test_cli_taxonomy_show_export_import_history(
    settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    shown = runner.invoke(app, ["taxonomy", "show"])
    assert shown.exit_code == 0 and "version 1" in shown.output, shown.output
    exported = tmp_path / "tax.yaml"
    assert runner.invoke(app, ["taxonomy", "export", "-o", str(exported)]).exit_code == 0
    exported.write_text(
        exported.read_text(encoding="utf-8").replace("label: Emballage", "label: Colis abîmés"),
        encoding="utf-8",
    )
    imported = runner.invoke(app, ["taxonomy", "import", str(exported), "--author", "ana"])
    assert imported.exit_code == 0, imported.output
    assert "version 2 stored (edited emballage (label))" in imported.output
    history = runner.invoke(app, ["taxonomy", "history"])
    assert "v2" in history.output and "ana" in history.output and "seed" in history.output
    old = runner.invoke(app, ["taxonomy", "export", "--version", "1"])
    assert "label: Emballage\n" in old.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nthemes: []\n", encoding="utf-8")
    res = runner.invoke(app, ["taxonomy", "import", str(bad)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "error:" in res.output
    assert "v3" not in runner.invoke(app, ["taxonomy", "history"]).output  # nothing stored


def test_cli_lists_acknowledges_and_resolves_incidents_as_the_api_does(
    settings: Settings,
    sessions: sessionmaker[Session],
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An on-call operator on the server (no browser) could only curl the API: `verbatim
    incidents` lists them, `ack`/`resolve` record the OS user (`cli:<user>`, as `verbatim
    forget`) through the API's own update, with its checks and its PII-masked note."""
    import getpass

    from typer.testing import CliRunner

    from service.app import create_app
    from verbatim_cli import app

    _packaging_spike(settings, sessions)
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr(getpass, "getuser", lambda: "astreinte")
    runner = CliRunner()
    with sessions() as s:
        inc_id = s.execute(select(Incident.id).where(Incident.theme == "emballage")).scalar_one()

    def cli(*args: str) -> Any:
        return runner.invoke(app, ["incidents", *args])

    listed = cli()
    assert listed.exit_code == 0, listed.output
    assert f"#{inc_id} " in listed.output and "emballage « Emballage »" in listed.output
    assert "logistics" in listed.output and "open" in listed.output
    with TestClient(create_app(settings)) as client:
        read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
        api_items = client.get("/incidents", headers=read).json()["items"]  # a kept view
        as_json = json.loads(cli("list", "--json").output)["items"]
        assert [i["id"] for i in as_json] == [i["id"] for i in api_items]
        assert set(as_json[0]) == set(api_items[0])
        for field in ("theme", "team", "status", "severity", "kinds", "link", "examples"):
            assert as_json[0][field] == api_items[0][field], field
        assert (
            cli("list", "--team", "support").output
            == "no open or acknowledged incident of team support\n"
        )
        bad_team = cli("list", "--team", "logisitcs")
        assert bad_team.exit_code == 2 and "unknown team 'logisitcs'" in bad_team.output
        assert "logistics" in bad_team.output
        acked = cli("ack", str(inc_id), "--note", "rappeler jean.dupont@example.fr")
        assert acked.exit_code == 0, acked.output
        assert f"incident {inc_id} acknowledged by cli:astreinte at " in acked.output
        got = client.get("/incidents", headers=read).json()["items"][0]
        assert got["status"] == "acknowledged" and got["acknowledged_by"] == "cli:astreinte"
        assert got["ack_note"] == "rappeler <EMAIL>"  # masked as the API masks it
        again = cli("ack", str(inc_id))
        assert again.exit_code == 2 and again.output.count("\n") == 1
        assert f"incident {inc_id} was acknowledged by cli:astreinte at " in again.output
        res = client.post(f"/incidents/{inc_id}/resolve", json={"note": "ok"}, headers=write)
        assert res.status_code == 200
        late = cli("resolve", str(inc_id), "-n", "moi aussi")
        assert late.exit_code == 2 and "was resolved by ecriture at" in late.output
        assert "nothing left to resolve" in late.output
        assert cli("list").output == "no open or acknowledged incident\n"
        resolved = cli("--status", "resolved").output  # `list` may be left out
        assert resolved == cli("list", "--status", "resolved").output
        assert f"#{inc_id} " in resolved and "resolved by ecriture: ok" in resolved
    missing = cli("resolve", "9999")
    assert missing.exit_code == 2 and "no incident 9999" in missing.output
    assert cli("ack", "0").exit_code == 2
    mixed = cli("--team", "logistics", "ack", str(inc_id))  # the filter is not ignored
    assert mixed.exit_code == 2 and "takes none of them" in mixed.output
    assert cli("list", "--status", "ouvert").exit_code == 2
    with sessions() as s:
        row = s.get(Incident, inc_id)
        assert row is not None and row.resolve_note == "ok" and row.resolved_by == "ecriture"


def _packaging_spike(settings: Settings, sessions: sessionmaker[Session]) -> Feed:
    """60 quiet days, then a moderate packaging rise three and two days ago, detected: one
    open incident, told at "medium" (its escalation to "critical" is worth a message)."""
    settings.retheme_days = 0  # the feed's mentions are the test's, not re-detected
    feed = Feed(sessions)
    start = TODAY - timedelta(days=63)
    for i in range(60):
        feed.day(start + timedelta(days=i))
    feed.day(TODAY - timedelta(days=3), extra_packaging=10)
    feed.day(TODAY - timedelta(days=2), extra_packaging=10)
    run_detect(settings, sessions)
    with session_scope(sessions) as session:
        inc = session.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        assert inc.notified_severity == "medium"
    return feed


def test_a_theme_moved_to_another_team_takes_its_open_incident_along(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """`emballage` moved from logistics to packaging while its incident was open: /alerts and
    /incidents kept "logistics" and the escalation was queued for the logistics channel."""
    from core import taxonomy_store
    from core.models import OutboxMessage

    feed = _packaging_spike(settings, sessions)
    with session_scope(sessions) as session:
        inc = session.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        assert inc.team == "logistics"
        cur = taxonomy_store.current(session, settings).taxonomy
        themes = [
            t.model_copy(update={"team": "packaging"}) if t.id == "emballage" else t
            for t in cur.themes
        ]
        taxonomy_store.save(
            session, settings, cur.replaced_by(cur.model_copy(update={"themes": themes})), "t"
        )
    feed.day(TODAY - timedelta(days=1), extra_packaging=60)  # the spike goes on, worse
    run_detect(settings, sessions)
    with session_scope(sessions) as session:
        alerts = session.execute(select(Alert).where(Alert.theme == "emballage")).scalars().all()
        assert alerts and {a.team for a in alerts} == {"packaging"}
        inc = session.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        assert inc.team == "packaging"
        routes = session.execute(
            select(OutboxMessage.route, OutboxMessage.revision).where(
                OutboxMessage.incident_id == inc.id
            )
        ).all()
        assert routes and max(routes, key=lambda r: r[1])[0] == "packaging"


def test_open_alerts_and_incidents_follow_their_theme_to_its_new_team_at_once(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A team change showed on /alerts and /incidents only once detection updated each row:
    until the spike's next day the incident said logistics, and an alert with no new signal
    (the quiet volume alert beside an escalating negativity one) kept logistics for good."""
    from core import taxonomy_store

    _packaging_spike(settings, sessions)
    with session_scope(sessions) as session:
        session.execute(  # an earlier incident, closed: it keeps the team that handled it
            Incident.__table__.insert().values(
                theme="emballage",
                team="logistics",
                status="resolved",
                first_day=TODAY - timedelta(days=40),
                last_day=TODAY - timedelta(days=39),
                severity="low",
                kinds=["volume"],
                signals={},
                drivers=[],
                examples=[],
                historical=True,
                revision=1,
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
        cur = taxonomy_store.current(session, settings).taxonomy
        themes = [
            t.model_copy(update={"team": "packaging"}) if t.id == "emballage" else t
            for t in cur.themes
        ]
        taxonomy_store.save(
            session, settings, cur.replaced_by(cur.model_copy(update={"themes": themes})), "t"
        )
    with session_scope(sessions) as session:
        alerts = session.execute(select(Alert.status, Alert.team)).all()
        assert alerts and set(alerts) == {("open", "packaging")}
        teams = session.execute(select(Incident.status, Incident.team)).all()
        assert sorted(teams) == [("open", "packaging"), ("resolved", "logistics")]


def test_a_severity_weight_edit_grades_the_live_alerts_and_incident_again(
    settings: Settings, sessions: sessionmaker[Session], keys: dict[str, str]
) -> None:
    """`severity_weight` of `emballage` raised to 3, then lowered to 0.3: the open alerts, the
    incident and the /themes badge kept the grade of the old weight (« moyenne ») until a later
    signal, and only ever up: a lowered weight never calmed them."""
    from core import taxonomy_store
    from nlp.spikes import severity_of
    from service.app import create_app

    _packaging_spike(settings, sessions)

    def weigh(weight: float) -> None:
        with session_scope(sessions) as session:
            cur = taxonomy_store.current(session, settings).taxonomy
            themes = [
                t.model_copy(update={"severity_weight": weight}) if t.id == "emballage" else t
                for t in cur.themes
            ]
            new = cur.replaced_by(cur.model_copy(update={"themes": themes}))
            taxonomy_store.save(session, settings, new, "t")

    def grades() -> tuple[set[str], str]:
        with session_scope(sessions) as session:
            alerts = session.execute(select(Alert).where(Alert.status == "open")).scalars().all()
            for a in alerts:  # each graded from its stored figures with the current weight
                assert a.severity == severity_of(a.details["peak_ratio"], a.p_value, weight)
            inc = session.execute(select(Incident)).scalar_one()
            return {a.severity for a in alerts}, inc.severity

    with session_scope(sessions) as session:
        assert session.execute(select(Incident.severity)).scalar_one() == "medium"
    weight = 3.0
    weigh(weight)
    assert grades() == ({"critical"}, "critical")
    with TestClient(create_app(settings)) as client:
        themes = client.get("/themes", headers={"X-API-Key": keys["read"]}).json()["themes"]
        spike = next(t["spike"] for t in themes if t["id"] == "emballage")
        assert spike["severity"] == "critical"
    weight = 0.3
    weigh(weight)
    assert grades() == ({"low"}, "low")


def test_a_weight_edit_keeps_the_evidence_of_a_p_value_of_zero(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    _weight_edit_keeps_zero_p_value(settings, sessions)


@pytest.mark.postgres
def test_a_weight_edit_regrades_and_moves_teams_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    """The regrade and the team move (`follow_teams`) on PostgreSQL, as on SQLite."""
    _weight_edit_keeps_zero_p_value(settings, pg_sessions, team="packaging")


def _weight_edit_keeps_zero_p_value(
    settings: Settings, sessions: sessionmaker[Session], team: str | None = None
) -> None:
    """A spike far beyond its baseline has p = 0.0 (the NB tail underflows), which the detector
    grades as the strongest evidence: the regrade read it as 1.0 (no evidence), so raising
    `severity_weight` turned a « critique » incident « moyenne »."""
    from core import taxonomy_store
    from nlp.spikes import SEVERITIES, severity_of

    _packaging_spike(settings, sessions)
    with session_scope(sessions) as session:
        for alert in session.execute(select(Alert)).scalars():
            alert.p_value = 0.0
            alert.severity = severity_of(alert.details["peak_ratio"], 0.0)
        cur = taxonomy_store.current(session, settings).taxonomy
        themes = [
            t.model_copy(update={"severity_weight": 1.2, "team": team or t.team})
            if t.id == "emballage"
            else t
            for t in cur.themes
        ]
        taxonomy_store.save(
            session, settings, cur.replaced_by(cur.model_copy(update={"themes": themes})), "t"
        )
    with session_scope(sessions) as session:
        alerts = session.execute(select(Alert).where(Alert.status == "open")).scalars().all()
        assert alerts
        for a in alerts:
            assert a.severity == severity_of(a.details["peak_ratio"], 0.0, 1.2), a.kind
            assert team is None or a.team == team
        inc = session.execute(select(Incident)).scalar_one()
        assert inc.severity == max((a.severity for a in alerts), key=SEVERITIES.index)
        assert team is None or inc.team == team


def test_an_escalation_after_a_team_change_goes_to_the_new_team_and_says_so(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    """`emballage` moved from logistics to packaging while its incident was open: the
    escalation reached the packaging channel as « Incident aggravé (rév. 2) » of an incident
    that channel had never heard of, nothing saying it came from logistics."""
    from core import taxonomy_store

    state, url = hook
    settings.slack_webhooks = {"logistics": f"{url}/logistics", "packaging": f"{url}/packaging"}
    feed = _packaging_spike(settings, sessions)
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        themes = [
            t.model_copy(update={"team": "packaging"}) if t.id == "emballage" else t
            for t in cur.themes
        ]
        taxonomy_store.save(
            session, settings, cur.replaced_by(cur.model_copy(update={"themes": themes})), "t"
        )
    feed.day(TODAY - timedelta(days=1), extra_packaging=60)  # the spike goes on, worse
    run_detect(settings, sessions)
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    assert [r["path"] for r in state.requests] == ["/logistics", "/packaging"]
    first, second = (json.dumps(r["body"], ensure_ascii=False) for r in state.requests)
    assert "auparavant" not in first
    assert "Équipe : packaging (auparavant logistics" in second
    assert "logistics" in state.requests[1]["body"]["text"]


def test_an_undelivered_message_follows_its_theme_to_the_new_team(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    """The incident's opening was queued for logistics, which had no webhook (nor a
    `default`): it waited. The CX lead moved `emballage` to packaging, which has one: the
    incident said packaging, but its message kept its logistics route and stayed queued for
    good (or, had logistics been set, reached the team that no longer owns the theme)."""
    _undelivered_follows_its_theme(settings, sessions, hook)


@pytest.mark.postgres
def test_an_undelivered_message_follows_its_theme_to_the_new_team_postgres(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    """The move of the queued message (route and « Équipe : » line) on PostgreSQL's JSON."""
    _undelivered_follows_its_theme(settings, pg_sessions, hook)


def _undelivered_follows_its_theme(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook: Any,  # noqa: F811
) -> None:
    from core import taxonomy_store
    from core.models import OutboxMessage

    state, url = hook
    settings.slack_webhooks = {"packaging": f"{url}/packaging"}
    _packaging_spike(settings, sessions)
    held = deliver_pending(settings, sessions, policy=FAST)
    assert held.sent == 0
    assert held.unrouted == {"no webhook configured for route 'logistics' nor 'default'": 1}
    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        themes = [
            t.model_copy(update={"team": "packaging"}) if t.id == "emballage" else t
            for t in cur.themes
        ]
        taxonomy_store.save(
            session, settings, cur.replaced_by(cur.model_copy(update={"themes": themes})), "t"
        )
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    assert [r["path"] for r in state.requests] == ["/packaging"]
    with session_scope(sessions) as session:
        assert session.execute(select(OutboxMessage.route)).scalars().all() == ["packaging"]
    # ... and says so: it read « Équipe : logistics » in the packaging channel.
    body = json.dumps(state.requests[0]["body"], ensure_ascii=False)
    assert "Équipe : packaging" in body and "logistics" not in body, body


@pytest.mark.parametrize("edit", ["removed", "retired", "relabelled"])
def test_a_theme_removed_from_the_taxonomy_closes_its_incident_at_once_and_says_so(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook,  # noqa: F811
    keys: dict[str, str],
    edit: str,
) -> None:
    """A new taxonomy version without `emballage` (or with it retired): its open alert and
    incident stayed open on /alerts and /incidents until their cooldown ran out, and the
    logistics channel told of the incident never heard it ended. A theme only relabelled (same
    id) keeps its incident."""
    from core import taxonomy_store
    from core.models import OutboxMessage
    from service.app import create_app

    state, url = hook
    settings.slack_webhooks = {"logistics": f"{url}/logistics"}
    feed = _packaging_spike(settings, sessions)
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        if edit == "retired":
            new = cur.retire("emballage")
        else:
            themes = [
                t.model_copy(update={"label": "Emballage et colis"}) if t.id == "emballage" else t
                for t in cur.themes
                if edit == "relabelled" or t.id != "emballage"
            ]
            new = cur.replaced_by(cur.model_copy(update={"themes": themes}))
        version = taxonomy_store.save(session, settings, new, "api:cx").version
    with TestClient(create_app(settings)) as client:
        read = {"X-API-Key": keys["read"]}
        alerts = client.get("/alerts", params={"status": "open"}, headers=read).json()
        incident = client.get("/incidents", headers=read).json()["items"][0]
    if edit == "relabelled":
        assert alerts["items"] and incident["status"] == "open"
    else:
        assert alerts["items"] == [] and incident["status"] == "resolved"
        assert incident["resolved_by"] == "api:cx"
        assert incident["resolve_note"] == f"thème retiré de la taxonomie (version {version})"
    feed.day(TODAY - timedelta(days=1))
    run_detect(settings, sessions)
    deliver_pending(settings, sessions, policy=FAST)
    texts = [r["body"]["text"] for r in state.requests]
    if edit == "relabelled":
        assert len(texts) == 1
        return
    assert len(texts) == 2 and [r["path"] for r in state.requests] == ["/logistics"] * 2
    assert texts[1] == (
        "Incident n° 1 clos : le thème « Emballage » a été retiré de la taxonomie "
        f"(version {version}), il n'est plus suivi."
    )
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_a_removed_themes_unsent_message_is_dropped(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Its opening message still queued (no webhook yet), the theme is removed: the incident
    closes and the channel is told nothing, rather than of an incident already closed."""
    from core import taxonomy_store
    from core.models import OutboxMessage

    _packaging_spike(settings, sessions)
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
        cur = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, cur.retire("emballage"), "t")
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert session.execute(select(Incident.status)).scalar_one() == "resolved"


def test_an_incident_resolved_by_an_analyst_opens_again_when_it_escalates(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Resolved by an analyst, the spike grew: Slack was told of the escalation, but the
    incident stayed "resolved" and its alerts left the dashboard's open count and badge."""
    from core.queries import open_alerts_by_theme, open_alerts_count, set_incident_status

    feed = _packaging_spike(settings, sessions)
    with session_scope(sessions) as s:
        inc = s.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        set_incident_status(s, inc.id, "acknowledge", "analyste", None)
        set_incident_status(s, inc.id, "resolve", "analyste", "vu")
        inc_id = inc.id
    with session_scope(sessions) as s:
        assert open_alerts_count(s) == 0 and "emballage" not in open_alerts_by_theme(s)
    feed.day(TODAY - timedelta(days=1), extra_packaging=80)  # much worse
    run_detect(settings, sessions)
    with session_scope(sessions) as s:
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.status == "open" and inc.resolve_note == "vu"
        assert open_alerts_count(s) >= 1 and "emballage" in open_alerts_by_theme(s)
        # To be taken in charge again (the former acknowledgement made that a 409).
        assert set_incident_status(s, inc_id, "acknowledge", "analyste2", None) is not None


def test_the_opening_message_tells_every_signal_of_its_first_day(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Volume and negativity rose on the same day: the message was built as the first alert
    of the day (negativity, in alphabetical order) joined the incident, before the volume
    one did. Slack read "gravité élevée" and the negative share alone; the critical rise of
    the mentions (46 against 6) was in no message."""
    from core.models import OutboxMessage
    from jobs.slack_message import TEXTS

    settings.retheme_days = 0
    feed = Feed(sessions)
    start = TODAY - timedelta(days=62)
    for i in range(60):
        feed.day(start + timedelta(days=i))
    feed.day(TODAY - timedelta(days=2), extra_packaging=40)
    run_detect(settings, sessions)
    with session_scope(sessions) as s:
        inc = s.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        assert {"volume", "negativity"} <= set(inc.kinds)
        (msg,) = s.execute(select(OutboxMessage)).scalars().all()
        text = msg.payload["text"]
        assert "Hausse des mentions « Emballage »" in text
        assert "Hausse des avis négatifs sur « Emballage »" in text
        assert f"gravité {TEXTS['fr'][f'sev_{inc.severity}']} :" in text
        assert inc.notified_severity == inc.severity


def test_an_unsent_opening_message_tells_the_incident_as_the_run_left_it(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    """A first run (or a catch-up) over three days of a spike queued the opening message on
    its first day and sent it at the end of the run: « Période : <first day> » with that day's
    figures and a dashboard link ending there, while the same run saw the spike go on to
    today. A message no post of which reached Slack is rebuilt as its incident grows."""
    from core.models import OutboxMessage

    state, url = hook
    settings.retheme_days = 0
    settings.slack_webhooks = {"logistics": f"{url}/logistics"}
    feed = Feed(sessions)
    start = TODAY - timedelta(days=63)
    for i in range(60):
        feed.day(start + timedelta(days=i))
    for day in (TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY):
        feed.day(day, extra_packaging=25)
    run_detect(settings, sessions)
    assert deliver_pending(settings, sessions, policy=FAST).sent == 1
    with session_scope(sessions) as s:
        inc = s.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        assert inc.first_day == TODAY - timedelta(days=2) and inc.last_day == TODAY
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    (text,) = [r["body"]["text"] for r in state.requests]
    first, last = inc.first_day.strftime("%d/%m/%Y"), TODAY.strftime("%d/%m/%Y")
    assert f"Période : du {first} au {last}." in text
    assert f"&end={TODAY.isoformat()}" in text


def test_a_message_the_sender_has_read_is_posted_as_stored(
    settings: Settings,
    sessions: sessionmaker[Session],
    hook,  # noqa: F811
) -> None:
    """`verbatim detect` rebuilt a pending message (the incident grew) after `verbatim
    alert` had read it and before it claimed it: Slack got the payload as read, the outbox
    kept the rebuilt one, so the stored message said a period Slack never saw. The sender
    posts the payload as it claims it."""
    from core.models import OutboxMessage

    state, url = hook
    settings.retheme_days = 0
    settings.slack_webhooks = {"logistics": f"{url}/logistics"}
    feed = Feed(sessions)
    start = TODAY - timedelta(days=62)
    for i in range(60):
        feed.day(start + timedelta(days=i))
    feed.day(TODAY - timedelta(days=1), extra_packaging=25)
    run_detect(settings, sessions)
    feed.day(TODAY, extra_packaging=25)
    ran: list[bool] = []

    def detect_meanwhile() -> bool:  # checked after the read, before the claim
        if not ran:
            ran.append(True)
            run_detect(settings, sessions)
        return False

    assert deliver_pending(settings, sessions, policy=FAST, stop=detect_meanwhile).sent == 1
    with session_scope(sessions) as s:
        (msg,) = s.execute(select(OutboxMessage)).scalars().all()
        assert msg.status == "sent"
        stored = msg.payload
    (posted,) = [r["body"] for r in state.requests]
    assert posted == stored
    assert f"au {TODAY.strftime('%d/%m/%Y')}." in posted["text"]


@pytest.mark.postgres
def test_a_rebuild_never_rewrites_a_message_claimed_meanwhile_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: detect read the pending message, the sender claimed it (and posted it)
    while detect rebuilt it, then detect wrote the rebuilt payload over the one Slack got.
    The rebuild writes a row still pending only."""
    from core.models import OutboxMessage
    from jobs import incidents
    from jobs.alerts import _claim
    from nlp.taxonomy import load_taxonomy

    now = datetime.now(UTC)
    with session_scope(pg_sessions) as s:
        inc = Incident(
            theme="emballage",
            team="logistics",
            first_day=TODAY,
            last_day=TODAY,
            severity="high",
            notified_severity="high",
            created_at=now,
            updated_at=now,
        )
        s.add(inc)
        s.flush()
        s.add(
            OutboxMessage(
                incident_id=inc.id,
                revision=1,
                route="logistics",
                payload={"text": "as queued"},
                status="pending",
                attempts=0,
            )
        )
        inc_id = inc.id
    build = incidents._payload
    claimed: list[Any] = []

    def claim_then_build(*args: Any) -> dict[str, Any]:
        # The sender claims it after detect read it pending, before detect writes.
        with session_scope(pg_sessions) as s:
            row_id = s.execute(select(OutboxMessage.id)).scalar_one()
        claimed.append(_claim(pg_sessions, row_id, "pending", now))
        return build(*args)

    monkeypatch.setattr(incidents, "_payload", claim_then_build)
    detect = pg_sessions()
    try:
        inc = detect.get(Incident, inc_id)
        assert inc is not None
        inc.last_day = TODAY + timedelta(days=1)  # the incident grew
        taxonomy = load_taxonomy(settings.taxonomy_path)
        assert incidents.refresh_unsent(detect, settings, taxonomy, inc) is False
        detect.commit()
    finally:
        detect.close()
    with session_scope(pg_sessions) as s:
        row = s.execute(select(OutboxMessage)).scalar_one()
        assert (row.status, row.payload) == ("sending", {"text": "as queued"})
    assert claimed == [{"text": "as queued"}]


@pytest.mark.postgres
def test_closing_an_incident_never_drops_a_message_claimed_meanwhile_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    """PostgreSQL: a theme removed from the taxonomy read its incident's opening message as
    pending, the sender claimed it (and posted it) meanwhile, and the closing deleted the
    claimed row: the channel got the opening and never heard the incident ended. A message
    is dropped only while still pending; one claimed meanwhile gets the closing follow-up."""
    from core import taxonomy_store
    from core.models import OutboxMessage
    from jobs.alerts import _claim

    now = datetime.now(UTC)
    with session_scope(pg_sessions) as s:
        inc = Incident(theme="emballage", team="logistics", first_day=TODAY, last_day=TODAY,
                       severity="high", notified_severity="high", revision=1, created_at=now,
                       updated_at=now)  # fmt: skip
        s.add(inc)
        s.flush()
        s.add(OutboxMessage(incident_id=inc.id, revision=1, route="logistics", attempts=0,
                            payload={"text": "ouverture"}, status="pending"))  # fmt: skip
        s.flush()
        inc_id, row_id = inc.id, s.execute(select(OutboxMessage.id)).scalar_one()
        cur = taxonomy_store.current(s, settings).taxonomy
    claimed: list[Any] = []
    closing = pg_sessions()

    engine = pg_sessions.kw["bind"]

    def sender_claims(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The sender claims the message after the closing read it pending, as the closing
        # is about to drop it.
        if statement.lstrip().upper().startswith("DELETE FROM OUTBOX") and not claimed:
            claimed.append(_claim(pg_sessions, row_id, "pending", now))

    event.listen(engine, "before_cursor_execute", sender_claims)
    try:
        taxonomy_store.save(closing, settings, cur.retire("emballage"), "api:cx")
        closing.commit()
    finally:
        event.remove(engine, "before_cursor_execute", sender_claims)
        closing.close()
    assert claimed == [{"text": "ouverture"}]
    with session_scope(pg_sessions) as s:
        assert s.get(Incident, inc_id).status == "resolved"
        rows = s.execute(
            select(OutboxMessage.revision, OutboxMessage.status).order_by(OutboxMessage.revision)
        ).all()
        assert [tuple(r) for r in rows] == [(1, "sending"), (2, "pending")]


def test_a_same_day_rise_of_one_level_is_told_once(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """The scheduler's first tick of the day opened the incident at its partial "medium"; the
    day's later verbatims made it "high", one level: the rule wanted two, and the day that
    ended "high" was never told (nor a "high" incident that became "critical"). Each rise to
    high or critical is one more message of the same incident, a tick that changes nothing
    none."""
    from core.models import OutboxMessage

    def told() -> list[tuple[int, str]]:
        with session_scope(sessions) as s:
            inc = s.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
            assert inc.notified_severity == inc.severity
            rows = s.execute(
                select(OutboxMessage)
                .where(OutboxMessage.incident_id == inc.id)
                .order_by(OutboxMessage.revision)
            ).scalars()
            return [m.payload["text"].split(" : ")[0] for m in rows]

    feed = _packaging_spike(settings, sessions)  # told at "medium"
    feed.day(TODAY - timedelta(days=2), extra_packaging=3)  # later the same day: "high"
    run_detect(settings, sessions)
    first = told()  # one incident (its other themes doubled too: the feed's day is re-fed)
    assert first == ["Incident de gravité moyenne", "Incident aggravé (rév. 2) — gravité élevée"]
    run_detect(settings, sessions)  # the next tick, nothing new: no message
    assert told() == first
    feed.day(TODAY - timedelta(days=2), extra_packaging=10)  # the day goes on: "critical"
    run_detect(settings, sessions)
    run_detect(settings, sessions)
    assert told()[2:] == ["Incident aggravé (rév. 3) — gravité critique"]


def test_a_spike_back_on_the_day_its_incident_resolved_continues_that_incident(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """The scheduler's first tick of a day found the theme quiet for the whole cooldown and
    the detector resolved the incident; later ticks of the same day saw the spike again. Its
    alert reopened in the incident that stayed "résolu" for good (never closed nor reopened,
    out of the digest), and the day's other signal opened a second incident and messages."""
    from core.models import OutboxMessage

    settings.retheme_days = 0
    feed = Feed(sessions)
    start = TODAY - timedelta(days=66)
    for i in range(60):
        feed.day(start + timedelta(days=i))
    run_detect(settings, sessions, today=TODAY - timedelta(days=7))
    spike = TODAY - timedelta(days=6)
    for i in range(5):  # the spike, then quiet days; the first tick of the fifth: quiet
        day = spike + timedelta(days=i)
        feed.day(day, extra_packaging=30 if i == 0 else 0)
        run_detect(settings, sessions, today=day)
    with session_scope(sessions) as s:
        inc = s.execute(select(Incident).where(Incident.theme == "emballage")).scalar_one()
        assert (inc.status, inc.resolved_by) == ("resolved", "detector")
        inc_id = inc.id
    feed.day(spike + timedelta(days=4), extra_packaging=30)  # the day's later verbatims
    run_detect(settings, sessions, today=spike + timedelta(days=4))
    with session_scope(sessions) as s:
        (inc,) = s.execute(select(Incident).where(Incident.theme == "emballage")).scalars()
        assert inc.id == inc_id and inc.status == "open" and inc.resolved_by is None
        assert inc.last_day == spike + timedelta(days=4)
        statuses = s.execute(select(Alert.status).where(Alert.incident_id == inc_id)).scalars()
        assert "open" in set(statuses)
        messages = s.execute(select(OutboxMessage).where(OutboxMessage.incident_id == inc_id))
        assert [m.revision for m in messages.scalars()] == list(range(1, inc.revision + 1))


def _two_detections_at_once(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's `detect` tick and an analyst's `verbatim detect` (or `verbatim run`) on
    the same days: both raised the day's new alerts, the second failed on alerts.alert_key (an
    IntegrityError traceback). Each waits for the other's day: one incident, one message."""
    import contextlib
    import threading

    import jobs.detect as detect_mod
    from core.models import OutboxMessage

    settings.retheme_days = 0
    feed = Feed(sessions)
    start = TODAY - timedelta(days=63)
    for i in range(60):
        feed.day(start + timedelta(days=i))
    run_detect(settings, sessions)  # the history: watermark set, nothing open
    feed.day(TODAY - timedelta(days=3), extra_packaging=10)
    feed.day(TODAY - timedelta(days=2), extra_packaging=10)
    barrier = threading.Barrier(2)
    inner = detect_mod.update_episodes

    def in_lockstep(*args: object, **kwargs: object) -> object:
        events = inner(*args, **kwargs)  # type: ignore[arg-type]
        # Both have read the day before either writes it (BrokenBarrierError: the other
        # waits for this one's day, as it should).
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=3)
        return events

    monkeypatch.setattr(detect_mod, "update_episodes", in_lockstep)
    errors: list[BaseException] = []

    def detect() -> None:
        try:
            run_detect(settings, sessions)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=detect) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with session_scope(sessions) as session:
        incidents = session.execute(select(Incident.id).where(Incident.theme == "emballage")).all()
        assert len(incidents) == 1
        keys = session.execute(select(Alert.alert_key)).scalars().all()
        assert keys and len(keys) == len(set(keys))
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_two_detections_at_once_sqlite(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_detections_at_once(settings, sessions, monkeypatch)


@pytest.mark.postgres
def test_two_detections_at_once_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_detections_at_once(settings, pg_sessions, monkeypatch)


@pytest.mark.postgres
def test_detection_never_overwrites_an_analysts_resolution_postgres(
    pg_sessions: sessionmaker[Session],
) -> None:
    """Detection lists the unresolved incidents, then closes those whose alerts all ended. An
    analyst who resolved one in between (the API, committed) saw « résolu par detector »
    replace their name and time: the close now applies only while it is still unresolved."""
    from jobs.incidents import close_quiet

    now = datetime(2026, 12, 6, 9, tzinfo=UTC)
    day = date(2026, 12, 5)
    with session_scope(pg_sessions) as s:
        inc = Incident(
            theme="livraison", first_day=day, last_day=day, severity="high",
            created_at=now, updated_at=now,
        )  # fmt: skip
        s.add(inc)
        s.flush()
        s.add(
            Alert(
                alert_key="k1", theme="livraison", kind="volume", status="resolved",
                first_day=day, last_day=day, severity="high", observed=9.0, expected=3.0,
                created_at=now, updated_at=now, incident_id=inc.id,
            )
        )  # fmt: skip
        inc_id = inc.id

    def analyst_resolves() -> None:
        with session_scope(pg_sessions) as analyst:
            row = analyst.get(Incident, inc_id)
            assert row is not None
            row.status, row.resolved_by, row.resolved_at = "resolved", "marie", now

    detection = pg_sessions()
    calls: list[object] = []

    @event.listens_for(detection, "do_orm_execute")
    def _between(state: Any) -> None:
        # The analyst commits right after detection listed the unresolved incidents.
        calls.append(state.statement)
        if len(calls) == 2:
            analyst_resolves()

    try:
        close_quiet(detection, now + timedelta(hours=1))
        detection.commit()
    finally:
        detection.close()
    assert len(calls) >= 2  # the window was reached
    with pg_sessions() as s:
        row = s.get(Incident, inc_id)
        assert row is not None and (row.status, row.resolved_by) == ("resolved", "marie")

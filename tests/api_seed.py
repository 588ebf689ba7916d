"""Deterministic seed for the API/dashboard tests: feedback, analyses and theme mentions are
inserted with the ORM, then `daily_aggregates` is built by the real aggregate job.

Texts are written for these tests (no dataset rows). The seeded "current week" is
LAST_DAY-6 .. LAST_DAY; `livraison` spikes in it and has an open alert.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import Engine, literal, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, migrate, session_factory, session_scope
from core.models import Alert, Analysis, Base, Feedback, Incident, ThemeMention, Topic
from jobs.aggregate import aggregate_all

LAST_DAY = date(2026, 3, 28)
FIRST_DAY = LAST_DAY - timedelta(days=27)
KNOWN_TEXT = "Colis arrivé avec dix jours de retard, et le livreur reste injoignable."
KNOWN_EVIDENCE = "dix jours de retard"

TEMPLATES = {
    "livraison": [
        ("negative", "Livraison en retard de trois jours, colis abîmé.", "Livraison en retard"),
        ("negative", "Le colis n'est jamais arrivé, livraison ratée.", "jamais arrivé"),
        ("positive", "Livraison rapide, reçu le lendemain, merci !", "Livraison rapide"),
    ],
    "emballage": [
        ("negative", "Emballage déchiré, produit mal protégé.", "Emballage déchiré"),
        ("neutral", "Carton un peu grand pour le produit.", "Carton un peu grand"),
    ],
    "prix": [
        ("negative", "Trop cher pour ce que c'est, prix abusif.", "prix abusif"),
        ("positive", "Bon rapport qualité prix, je recommande.", "Bon rapport qualité prix"),
    ],
}


@dataclass(frozen=True)
class Seeded:
    feedback: int
    livraison_current: int  # livraison mentions in the current week
    livraison_current_negative: int
    alert_id: int


def _add(
    session: Session,
    n: int,
    day: date,
    theme: str,
    polarity: str,
    text: str,
    evidence: str,
    channel: str,
) -> None:
    created = datetime.combine(day, time(10, 0), tzinfo=UTC) + timedelta(minutes=n)
    fb = Feedback(
        source="tests",
        channel=channel,
        external_id=f"t{n}",
        dedup_key=f"id:t{n}",
        created_at=created,
        ingested_at=created,
        rating=1.0 if polarity == "negative" else 5.0,
        # Survey scores: detractor / promoter, unsatisfied / satisfied (the overview shows them).
        nps={"negative": 2.0, "neutral": 8.0, "positive": 10.0}[polarity],
        csat={"negative": 2.0, "neutral": 4.0, "positive": 5.0}[polarity],
        text=text,
        language="fr",
        is_french=True,
        content_hash=f"{n:064d}",
        meta={},
        analyzed=True,
    )
    session.add(fb)
    session.flush()
    analysis = Analysis(
        feedback_id=fb.id,
        model_version="seed",
        sentiment=polarity,
        sentiment_score=0.9,
        severity=0.8 if polarity == "negative" else 0.1,
        analyzed_at=created,
    )
    start = text.find(evidence)
    analysis.mentions.append(
        ThemeMention(
            feedback_id=fb.id,
            theme=theme,
            polarity=polarity,
            score=0.9,
            day=day,
            evidence_start=start,
            evidence_end=start + len(evidence),
            evidence_text=evidence,
        )
    )
    session.add(analysis)


def seed(sessions: sessionmaker[Session]) -> Seeded:
    """Seed `sessions`' database. A new SQLite one gets a copy of the rows seeded once per
    process (0.6 s a test otherwise, for some 300 tests); others are seeded row by row."""
    engine = sessions.kw.get("bind")
    if isinstance(engine, Engine) and engine.dialect.name == "sqlite":
        copied = _copy_of_the_template(engine)
        if copied is not None:
            return copied
    return _seed_rows(sessions)


_TEMPLATE: list[tuple[Path, Seeded, list[str]]] = []  # built at the first seed of a process


def _template() -> tuple[Path, Seeded, list[str]]:
    if not _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="verbatim-seed-")) / "seeded.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        seeded = _seed_rows(session_factory(engine))
        with engine.connect() as conn:
            filled = [
                t.name
                for t in Base.metadata.sorted_tables  # parents before children
                if conn.execute(select(literal(1)).select_from(t).limit(1)).first()
            ]
        engine.dispose()
        atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
        _TEMPLATE.append((path, seeded, filled))
    return _TEMPLATE[0]


def _copy_of_the_template(engine: Engine) -> Seeded | None:
    """The template's rows inserted into `engine`'s database, as `_seed_rows` writes them;
    None when a table they go to already has rows (the test wrote before seeding)."""
    path, seeded, filled = _template()
    with engine.connect() as conn:
        if any(conn.exec_driver_sql(f"SELECT 1 FROM main.{t} LIMIT 1").first() for t in filled):
            return None
        conn.rollback()  # ATTACH cannot run inside a transaction
        conn.exec_driver_sql("ATTACH DATABASE ? AS seed_template", (str(path),))
        try:
            for table in filled:
                conn.exec_driver_sql(
                    f"INSERT INTO main.{table} SELECT * FROM seed_template.{table}"
                )
            conn.commit()
        finally:
            conn.rollback()
            conn.exec_driver_sql("DETACH DATABASE seed_template")
    return seeded


def _seed_rows(sessions: sessionmaker[Session]) -> Seeded:
    n = 0
    live_cur = live_neg = 0
    current_start = LAST_DAY - timedelta(days=6)
    with session_scope(sessions) as session:
        for offset in range(28):
            day = FIRST_DAY + timedelta(days=offset)
            spike = day >= current_start
            for theme, rows in TEMPLATES.items():
                repeat = 3 if (theme == "livraison" and spike) else 1
                for _ in range(repeat):
                    for polarity, text, evidence in rows:
                        n += 1
                        channel = "social" if n % 4 == 0 else "review"
                        _add(session, n, day, theme, polarity, text, evidence, channel)
                        if theme == "livraison" and spike:
                            live_cur += 1
                            live_neg += polarity == "negative"
        n += 1
        _add(session, n, LAST_DAY, "livraison", "negative", KNOWN_TEXT, KNOWN_EVIDENCE, "review")
        live_cur += 1
        live_neg += 1
        now = datetime.combine(LAST_DAY, time(12), tzinfo=UTC)
        alert = Alert(
            alert_key="livraison:volume:1",
            theme="livraison",
            kind="volume",
            team="logistique",
            status="open",
            first_day=LAST_DAY - timedelta(days=2),
            last_day=LAST_DAY,
            severity="high",
            observed=30.0,
            expected=10.0,
            p_value=0.001,
            details={},
            created_at=now,
            updated_at=now,
        )
        old = Alert(
            alert_key="prix:negativity:1",
            theme="prix",
            kind="negativity",
            team="default",
            status="resolved",
            first_day=FIRST_DAY,
            last_day=FIRST_DAY + timedelta(days=2),
            severity="low",
            observed=0.6,
            expected=0.4,
            p_value=0.04,
            details={},
            created_at=now,
            updated_at=now,
        )
        session.add_all([old, alert])
        session.add_all(
            [
                Topic(
                    label="retard colis transporteur",
                    keywords=["retard", "colis"],
                    representatives=[{"feedback_id": 1, "text": TEMPLATES["livraison"][0][1]}],
                    theme="livraison",
                    is_emerging=True,
                    size=40,
                    centroid=[],
                    first_seen=now,
                    last_seen=now,
                ),
                Topic(
                    label="carton trop grand",
                    keywords=["carton"],
                    representatives=[{"feedback_id": 4, "text": TEMPLATES["emballage"][1][1]}],
                    theme="emballage",
                    is_emerging=False,
                    size=12,
                    centroid=[],
                    first_seen=now,
                    last_seen=now,
                ),
            ]
        )
        session.flush()
        alert_id = alert.id
        incident = Incident(
            theme="livraison",
            team="logistique",
            status="open",
            first_day=alert.first_day,
            last_day=LAST_DAY,
            severity="high",
            kinds=["volume"],
            signals={"volume": {"observed": 30.0, "expected": 10.0}},
            drivers=[
                {
                    "field": "transporteur",
                    "value": "Colissimo",
                    "share_of_extra": 0.78,
                    "count": 20,
                    "incident_share": 0.6,
                    "baseline_share": 0.3,
                    "p_value": 1e-4,
                }
            ],
            examples=[KNOWN_TEXT],
            historical=False,
            revision=1,
            notified_severity="high",
            created_at=now,
            updated_at=now,
        )
        session.add(incident)
        session.flush()
        alert.incident_id = incident.id
        aggregate_all(session)
    return Seeded(n, live_cur, live_neg, alert_id)

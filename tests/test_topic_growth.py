"""Growth alerts of emerging topics: nlp.spikes.detect_growth + jobs.detect on real SQLite."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import (
    Alert,
    Analysis,
    Feedback,
    Incident,
    OutboxMessage,
    Topic,
    TopicAssignment,
)
from core.settings import Settings
from jobs.aggregate import aggregate_all
from jobs.detect import run_detect
from jobs.run import post_aggregate_steps
from nlp.spikes import (
    DetectorConfig,
    Series,
    SpikeDetector,
    detect_growth,
    topic_id_of,
    topic_theme,
)

START = date(2026, 2, 2)  # a Monday
DAYS = 45


def test_topic_theme_names() -> None:
    assert topic_theme(12) == "topic:12" and topic_id_of("topic:12") == 12
    assert topic_id_of("livraison") is None and topic_id_of("topic:x") is None


def _poisson(base: float, days: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).poisson(base, days).tolist()


def test_a_topic_incident_links_to_the_topics_view() -> None:
    from core.queries import dashboard_link

    day = date(2026, 3, 10)
    assert dashboard_link("http://x/", topic_theme(12), day, day) == (
        "http://x/#view=topics&start=2026-03-03&end=2026-03-10"
    )
    assert dashboard_link("http://x", "livraison", day, day).startswith(
        "http://x/#theme=livraison&"
    )


def test_detect_growth_volume_and_emergence() -> None:
    det = SpikeDetector(DetectorConfig())
    steady = _poisson(12, 40, 1)
    grown = [*steady[:38], 30, 34]
    new = [0] * 35 + [0, 1, 0, 9, 12]  # near-absent, then a clear emergence
    series = [
        Series(topic_theme(1), START, grown, [0] * 40),
        Series(topic_theme(2), START, steady, [0] * 40),
        Series(topic_theme(3), START, new, [0] * 40),
    ]
    # 12 -> 30 -> 34: a rise of 2.5x is confirmed on its second day (the 2-day test).
    day = START + timedelta(days=39)
    found = {s.theme: s for s in detect_growth(det, series, day)}
    assert set(found) == {"topic:1", "topic:3"}
    assert all(s.kind == "emerging" for s in found.values())
    assert found["topic:1"].observed == 34 and found["topic:1"].expected == pytest.approx(12, 0.3)
    # Floors: a tripling from 2/day to 6/day stays under min_volume (10).
    small = Series(topic_theme(4), START, [*_poisson(2, 38, 3), 6, 7], [0] * 40)
    assert detect_growth(det, [small], day) == []


def test_quiet_topics_raise_nothing() -> None:
    det = SpikeDetector(DetectorConfig())
    series = [Series(topic_theme(i), START, _poisson(15, 90, 100 + i), [0] * 90) for i in range(25)]
    raised = [
        s for d in range(30, 90) for s in detect_growth(det, series, START + timedelta(days=d))
    ]
    assert raised == []


# --- the job on a real database ---------------------------------------------------------------


def _seed(
    sessions: sessionmaker[Session], counts: dict[str, list[int]], emerging: dict[str, bool]
) -> dict[str, int]:
    """Verbatims per day per topic (+ 5 unassigned a day), analysed and aggregated."""
    n = 0
    ids: dict[str, int] = {}
    with session_scope(sessions) as s:
        now = datetime.combine(START, time(0), tzinfo=UTC)
        for name in counts:
            topic = Topic(
                label=f"sujet {name}",
                keywords=[name],
                representatives=[],
                theme=None,
                is_emerging=emerging[name],
                size=0,
                centroid=[],
                first_seen=now,
                last_seen=now,
            )
            s.add(topic)
            s.flush()
            ids[name] = topic.id
        for d in range(DAYS):
            day = START + timedelta(days=d)
            members = [(name, c[d]) for name, c in counts.items()] + [(None, 5)]
            for name, k in members:
                for _ in range(k):
                    n += 1
                    at = datetime.combine(day, time(9), tzinfo=UTC) + timedelta(seconds=n)
                    fb = Feedback(
                        source="tests",
                        channel="review",
                        dedup_key=f"id:g{n}",
                        created_at=at,
                        ingested_at=at,
                        rating=2.0,
                        text=f"Le {name} pose souci {n}",
                        content_hash=f"{n:064d}",
                        meta={},
                        analyzed=True,
                    )
                    s.add(fb)
                    s.flush()
                    s.add(
                        Analysis(
                            feedback_id=fb.id,
                            model_version="t",
                            sentiment="negative",
                            sentiment_score=0.9,
                            severity=0.5,
                            analyzed_at=at,
                        )
                    )
                    if name is not None:
                        s.add(
                            TopicAssignment(
                                feedback_id=fb.id, topic_id=ids[name], day=day, probability=0.9
                            )
                        )
        aggregate_all(s)
    return ids


def _alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as s:
        rows = list(s.execute(select(Alert).order_by(Alert.id)).scalars())
        s.expunge_all()
    return rows


def _outbox(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with sessions() as s:
        rows = list(s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())
        s.expunge_all()
    return rows


def test_job_raises_updates_and_resolves_topic_growth(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    base = _poisson(10, DAYS, 7)
    growing = [*base[:35], 32, 35, 38, *base[38:]]
    steady = _poisson(10, DAYS, 8)
    not_emerging = list(growing)  # same growth, but a plain (non-emerging) topic
    ids = _seed(
        sessions, {"a": growing, "b": steady, "c": not_emerging}, {"a": True, "b": True, "c": False}
    )

    first = START + timedelta(days=35)
    # `today`: the data's last day, so these incidents are fresh (sent), not historical.
    run_detect(settings, sessions, since=START + timedelta(days=30), day=first, today=first)
    alerts = [a for a in _alerts(sessions) if a.theme.startswith("topic:")]
    assert [a.theme for a in alerts] == [f"topic:{ids['a']}"]
    alert = alerts[0]
    assert alert.kind == "emerging" and alert.team == "default" and alert.status == "open"
    assert alert.first_day == first and alert.observed == 32
    assert alert.details["topic_id"] == ids["a"] and alert.details["topic_label"] == "sujet a"
    assert alert.alert_key.startswith(f"topic:{ids['a']}|emerging|")
    queued = [m for m in _outbox(sessions) if m.incident_id == alert.incident_id]
    assert len(queued) == 1 and queued[0].route == "default"
    body = json.dumps(queued[0].payload, ensure_ascii=False)
    assert "sujet a" in body and "Le a pose souci" in body  # label and a member verbatim

    # The growth persists two more days: the same alert is updated, not repeated; re-running
    # the same days changes nothing.
    for _ in range(2):
        run_detect(settings, sessions, since=first, day=first + timedelta(days=2), today=first)
    alerts = [a for a in _alerts(sessions) if a.theme.startswith("topic:")]
    assert len(alerts) == 1 and alerts[0].last_day == first + timedelta(days=2)
    assert alerts[0].observed == 38
    with sessions() as s:
        revision = s.get(Incident, alert.incident_id).revision
    assert len([m for m in _outbox(sessions) if m.incident_id == alert.incident_id]) == revision

    # Back to normal: after the cooldown (3 quiet days) the episode is resolved.
    run_detect(settings, sessions, since=first + timedelta(days=3), day=START + timedelta(DAYS - 1))
    alerts = [a for a in _alerts(sessions) if a.theme.startswith("topic:")]
    assert len(alerts) == 1 and alerts[0].status == "resolved"

    # Themes only: the topic family can be switched off.
    with session_scope(sessions) as s:
        s.query(OutboxMessage).delete()
        s.query(Alert).delete()
        s.query(Incident).delete()
    run_detect(settings, sessions, since=first, day=first, topics=False)
    assert not [a for a in _alerts(sessions) if a.theme.startswith("topic:")]


def test_run_detect_step_includes_topic_growth(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    base = _poisson(12, DAYS, 11)
    ids = _seed(sessions, {"a": [*base[:-1], 40]}, {"a": True})
    detected, delivered = post_aggregate_steps(settings, sessions)  # what `verbatim run` calls
    assert detected is not None and delivered is None  # no webhooks: messages stay queued
    assert any(s.theme == f"topic:{ids['a']}" and s.kind == "emerging" for s in detected.signals)
    with sessions() as s:
        n = s.scalar(
            select(func.count())
            .select_from(Alert)
            .where(
                Alert.theme == f"topic:{ids['a']}", Alert.last_day == START + timedelta(DAYS - 1)
            )
        )
    assert n == 1

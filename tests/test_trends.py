"""Trends by day/hour and rating impact (core/queries.py + GET /themes/{id}/trend), real SQLite."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from api_seed import LAST_DAY, Seeded, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import Analysis, Feedback, ThemeMention
from core.queries import rating_impacts, theme_trend
from core.settings import Settings
from jobs.aggregate import aggregate_all
from service.app import create_app
from service.auth import create_key

DAY = date(2026, 5, 4)


def _verbatim(
    session: Session,
    n: int,
    at: datetime,
    rating: float | None,
    mentions: list[tuple[str, str]],
    *,
    channel: str = "review",
    source: str = "shop",
    model: str = "v1",
) -> Feedback:
    fb = Feedback(
        source=source,
        channel=channel,
        external_id=f"x{n}",
        dedup_key=f"id:x{n}",
        created_at=at,
        ingested_at=at,
        rating=rating,
        text=f"texte {n}",
        language="fr",
        is_french=True,
        content_hash=f"{n:064d}",
        meta={},
        analyzed=True,
    )
    session.add(fb)
    session.flush()
    _analysis(session, fb, model, mentions)
    return fb


def _analysis(session: Session, fb: Feedback, model: str, mentions: list[tuple[str, str]]) -> None:
    sentiment = mentions[0][1] if mentions else "neutral"
    analysis = Analysis(
        feedback_id=fb.id,
        model_version=model,
        sentiment=sentiment,
        sentiment_score=0.9,
        severity=0.5,
        analyzed_at=fb.created_at,
    )
    for theme, polarity in mentions:
        analysis.mentions.append(
            ThemeMention(
                feedback_id=fb.id,
                theme=theme,
                polarity=polarity,
                score=0.9,
                day=fb.created_at.date(),
            )
        )
    session.add(analysis)
    session.flush()


def _fill(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    def at(h: int, m: int, day: date = DAY) -> datetime:
        return datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)

    with session_scope(sessions) as s:
        _verbatim(s, 1, at(8, 15), 1.0, [("livraison", "negative")])
        _verbatim(
            s,
            2,
            at(8, 45),
            2.0,
            [("livraison", "negative"), ("prix", "negative")],
            channel="social",
        )
        # Two mentions of the same theme in one verbatim: counted twice in the trend (as the
        # aggregates do), but the verbatim's rating counts once in the impact.
        _verbatim(s, 3, at(17, 5), 5.0, [("livraison", "positive"), ("livraison", "neutral")])
        _verbatim(s, 4, at(9, 0), 4.0, [("prix", "positive")], source="store")
        _verbatim(s, 5, at(11, 30), 5.0, [])
        _verbatim(s, 6, at(12, 0), None, [("livraison", "negative")])  # unrated
        # Re-analysed: the old analysis mentioned livraison, the latest does not.
        old = _verbatim(s, 7, at(8, 50), 3.0, [("livraison", "negative")])
        _analysis(s, old, "v2", [("prix", "neutral")])
        _verbatim(s, 8, at(10, 0, DAY + timedelta(days=1)), 1.0, [("livraison", "negative")])
        aggregate_all(s)
    return sessions


@pytest.fixture
def small(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return _fill(sessions)


def test_hourly_trend_dense_with_figures(small: sessionmaker[Session]) -> None:
    _check_hourly(small)


@pytest.mark.postgres
def test_trend_and_impact_on_postgres(pg_sessions: sessionmaker[Session]) -> None:
    """Same SQL on PostgreSQL: the UTC hour bucket, the latest-analysis filter, the impact."""
    _fill(pg_sessions)
    _check_hourly(pg_sessions)
    test_rating_impact(pg_sessions)


def _check_hourly(small: sessionmaker[Session]) -> None:
    with small() as s:
        points = theme_trend(s, ["livraison"], start=DAY, end=DAY, granularity="hour")
    assert len(points) == 24
    assert [p.bucket.hour for p in points] == list(range(24))
    assert all(p.bucket.tzinfo is not None and p.bucket.date() == DAY for p in points)
    by_hour = {p.bucket.hour: p for p in points if p.volume}
    assert set(by_hour) == {8, 12, 17}  # verbatim 7's latest analysis has no livraison
    eight = by_hour[8]
    assert (eight.volume, eight.negatives, eight.positives) == (2, 2, 0)
    assert eight.negative_share == 1.0 and eight.net_sentiment == -1.0
    assert eight.mean_rating == pytest.approx(1.5)
    five = by_hour[17]
    assert (five.volume, five.neutrals, five.positives) == (2, 1, 1)
    assert five.net_sentiment == pytest.approx(0.5)
    assert by_hour[12].mean_rating is None


def test_daily_trend_matches_aggregates_and_splits(small: sessionmaker[Session]) -> None:
    with small() as s:
        daily = theme_trend(s, ["livraison"], start=DAY, end=DAY + timedelta(days=2))
        split = theme_trend(s, ["livraison"], start=DAY, end=DAY, by_channel=True, by_source=True)
        only_social = theme_trend(s, ["livraison"], start=DAY, end=DAY, channel="social")
        from core.queries import daily_series

        agg = daily_series(s, start=DAY, end=DAY + timedelta(days=2), themes=["livraison"])
    assert [p.volume for p in daily] == [p.volume for p in agg["livraison"]] == [5, 1, 0]
    assert [p.negatives for p in daily] == [p.negatives for p in agg["livraison"]]
    assert {(p.channel, p.source): p.volume for p in split} == {
        ("review", "shop"): 4,
        ("social", "shop"): 1,
    }
    assert [p.volume for p in only_social] == [1]
    with pytest.raises(ValueError):
        theme_trend(s, ["livraison"], start=DAY, end=DAY, granularity="week")


def test_rating_impact(small: sessionmaker[Session]) -> None:
    with small() as s:
        impacts = rating_impacts(
            s,
            {"livraison": ["livraison"], "prix": ["prix"], "absent": ["absent"]},
            start=DAY,
            end=DAY,
        )
    # Rated verbatims of the day: 1 (1*), 2 (2*), 3 (5*), 4 (4*), 5 (5*), 7 (3*): mean 20/6.
    liv = impacts["livraison"]  # 1, 2, 3 (once although two mentions)
    assert (liv.rated_with, liv.rated_without) == (3, 3)
    assert liv.mean_with == pytest.approx(8 / 3)
    assert liv.mean_without == pytest.approx(12 / 3)
    assert liv.difference == pytest.approx(8 / 3 - 4)
    assert liv.effect_on_mean == pytest.approx(20 / 6 - 4)
    prix = impacts["prix"]  # 2, 4 and 7 (its latest analysis)
    assert (prix.rated_with, prix.mean_with) == (3, pytest.approx(3.0))
    none = impacts["absent"]
    assert none.rated_with == 0 and none.mean_with is None and none.difference is None
    assert none.effect_on_mean == pytest.approx(0.0)


def test_rating_impact_counts_french_verbatims_only(small: sessionmaker[Session]) -> None:
    """ "Without" is the French total less "with": an English 5* verbatim naming livraison was
    counted in "with" (4 rated with, 2 without, mean with 13/4) though not in the total."""
    with session_scope(small) as s:
        english = _verbatim(
            s, 9, datetime(2026, 5, 4, 15, tzinfo=UTC), 5.0, [("livraison", "negative")]
        )
        english.language, english.is_french = "en", False
        aggregate_all(s)
    with small() as s:
        liv = rating_impacts(s, {"livraison": ["livraison"]}, start=DAY, end=DAY)["livraison"]
    assert (liv.rated_with, liv.rated_without) == (3, 3)  # as in test_rating_impact
    assert liv.mean_with == pytest.approx(8 / 3)
    assert liv.mean_without == pytest.approx(12 / 3)


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def api(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> Iterator[tuple[TestClient, dict[str, str], Seeded]]:
    seeded = seed(sessions)
    with session_scope(sessions) as s:
        _, key = create_key(s, "lecture", "read")
    yield TestClient(create_app(settings, engine=engine)), {"X-API-Key": key}, seeded


def test_api_trend_day_and_hour(
    api: tuple[TestClient, dict[str, str], Seeded], sessions: sessionmaker[Session]
) -> None:
    client, headers, seeded = api
    day = client.get("/themes/livraison/trend", headers=headers).json()
    assert day["granularity"] == "day" and day["period"]["end"] == LAST_DAY.isoformat()
    assert len(day["points"]) == 7
    assert sum(p["volume"] for p in day["points"]) == seeded.livraison_current
    assert sum(p["negatives"] for p in day["points"]) == seeded.livraison_current_negative
    assert day["rating_impact"]["mean_with"] < day["rating_impact"]["mean_without"]

    hour = client.get(
        "/themes/livraison/trend", headers=headers, params={"granularity": "hour", "days": 1}
    ).json()
    assert len(hour["points"]) == 24
    # Independent count of the last day's livraison mentions per UTC hour.
    with sessions() as s:
        rows = (
            s.query(Feedback.created_at)
            .join(ThemeMention, ThemeMention.feedback_id == Feedback.id)
            .filter(ThemeMention.theme == "livraison", ThemeMention.day == LAST_DAY)
            .all()
        )
    expected = Counter(r[0].hour for r in rows)
    got = {datetime.fromisoformat(p["start"]).hour: p["volume"] for p in hour["points"]}
    assert {h: v for h, v in got.items() if v} == dict(expected)
    assert all(p["start"].endswith(("+00:00", "Z")) for p in hour["points"])

    split = client.get(
        "/themes/livraison/trend", headers=headers, params={"split": "channel"}
    ).json()
    assert {p["channel"] for p in split["points"]} == {"review", "social"}
    assert all(p["source"] is None for p in split["points"])
    assert sum(p["volume"] for p in split["points"]) == seeded.livraison_current


def test_api_trend_errors(api: tuple[TestClient, dict[str, str], Seeded]) -> None:
    client, headers, _ = api
    r = client.get("/themes/nope/trend", headers=headers)
    assert r.status_code == 404
    r = client.get(
        "/themes/livraison/trend", headers=headers, params={"granularity": "hour", "days": 40}
    )
    assert r.status_code == 422 and r.json()["field"] == "start"
    r = client.get("/themes/livraison/trend", headers=headers, params={"granularity": "week"})
    assert r.status_code == 422


def test_api_rating_impact_on_theme_rows(api: tuple[TestClient, dict[str, str], Seeded]) -> None:
    client, headers, seeded = api
    themes = {t["id"]: t for t in client.get("/themes", headers=headers).json()["themes"]}
    liv = themes["livraison"]["rating_impact"]
    # Seed ratings: negative mentions 1*, others 5*; one theme per verbatim.
    assert liv["rated_with"] == seeded.livraison_current
    assert liv["mean_with"] == pytest.approx(
        (
            seeded.livraison_current_negative * 1
            + (seeded.livraison_current - seeded.livraison_current_negative) * 5
        )
        / seeded.livraison_current,
        abs=1e-3,
    )
    assert liv["difference"] == pytest.approx(liv["mean_with"] - liv["mean_without"], abs=2e-3)
    empty = themes["site_appli"]["rating_impact"]
    assert empty["rated_with"] == 0 and empty["mean_with"] is None
    detail = client.get("/themes/livraison", headers=headers).json()
    assert detail["summary"]["rating_impact"]["rated_with"] > 0

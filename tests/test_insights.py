"""GET /overview and GET /themes/{id}/breakdown on the seeded database (tests/api_seed.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_seed import LAST_DAY, Seeded, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.aggregate import aggregate_all
from core.db import session_scope
from core.models import Analysis, Feedback, ThemeMention
from core.settings import Settings
from service.app import create_app
from service.auth import create_key

START = LAST_DAY - timedelta(days=6)


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions)


@pytest.fixture
def client(settings: Settings, engine: Engine, seeded: Seeded) -> TestClient:
    settings.dashboard_read_without_key = True
    return TestClient(
        create_app(settings, engine=engine, build_analyzer_at_startup=False),
        base_url="http://127.0.0.1",  # reads open: answered by an IP address or localhost
    )


def _week(sessions: sessionmaker[Session]) -> list[Feedback]:
    lo = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    with session_scope(sessions) as session:
        return list(session.scalars(select(Feedback).where(Feedback.created_at >= lo)))


def test_overview(client: TestClient, sessions: sessionmaker[Session], seeded: Seeded) -> None:
    body = client.get("/overview", params={"end": str(LAST_DAY)}).json()
    week = _week(sessions)
    assert body["verbatims"] == len(week)
    assert body["period"] == {
        "start": str(START),
        "end": str(LAST_DAY),
        "previous_start": str(START - timedelta(days=7)),
        "previous_end": str(START - timedelta(days=1)),
    }
    nps = next(s for s in body["scores"] if s["score"] == "nps")
    coded = [100 if f.nps >= 9 else 0 if f.nps >= 7 else -100 for f in week]
    assert nps["answers"] == len(week)
    assert nps["value"] == pytest.approx(sum(coded) / len(coded), abs=0.01)
    csat = next(s for s in body["scores"] if s["score"] == "csat")
    assert csat["value"] == pytest.approx(100 * sum(f.csat >= 4 for f in week) / len(week), 0.01)
    assert [m["id"] for m in body["top_movers"]] == ["livraison"]
    assert body["top_movers"][0]["volume"] == seeded.livraison_current
    assert body["open_alerts"] == 1 and body["sources"] == ["tests"]
    assert not any(s["score"] == "ces" for s in body["scores"])  # the feed has no CES


def test_breakdown_and_gravity(
    client: TestClient, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    with session_scope(sessions) as session:  # two repeat complainers on the last day
        ids = session.scalars(
            select(ThemeMention.analysis_id)
            .where(ThemeMention.theme == "livraison", ThemeMention.day == LAST_DAY)
            .limit(2)
        ).all()
        session.execute(update(Analysis).where(Analysis.id.in_(ids)).values(is_recurrent=True))
        aggregate_all(session)
    body = client.get(
        "/themes/livraison/breakdown", params={"start": str(START), "end": str(LAST_DAY)}
    ).json()
    assert sum(r["mentions"] for r in body["by_channel"]) == seeded.livraison_current
    assert {r["key"] for r in body["by_channel"]} == {"review", "social"}
    bands = {r["key"]: r["mentions"] for r in body["by_severity"]}
    # Seeded severities: 0.8 for negatives (critique), 0.1 otherwise (faible).
    assert bands == {
        "faible": seeded.livraison_current - seeded.livraison_current_negative,
        "critique": seeded.livraison_current_negative,
    }
    assert body["severe"] == seeded.livraison_current_negative
    assert body["recurrent"] == 2
    assert len(body["by_day"]) == 7 and body["by_day"][-1]["recurrent"] == 2
    assert body["by_language"] == [
        {
            "key": "fr",
            "mentions": seeded.livraison_current,
            "negatives": seeded.livraison_current_negative,
            "negative_share": round(
                seeded.livraison_current_negative / seeded.livraison_current, 4
            ),
        }
    ]
    assert client.get("/themes/meteo/breakdown").status_code == 404


@pytest.mark.parametrize("cell", [{"channel": "social"}, {"source": "tests", "channel": "review"}])
def test_breakdown_follows_the_theme_pages_channel_and_source(
    client: TestClient, cell: dict[str, str]
) -> None:
    """The theme page sends its filters to /breakdown as to /themes/{id}: the split tables
    and gravity counts covered every channel beside a one-channel summary."""
    period = {"start": str(START), "end": str(LAST_DAY), **cell}
    summary = client.get("/themes/livraison", params=period).json()["summary"]
    body = client.get("/themes/livraison/breakdown", params=period).json()
    assert {r["key"] for r in body["by_channel"]} == {cell["channel"]}
    for split in ("by_channel", "by_source", "by_severity"):
        assert sum(r["mentions"] for r in body[split]) == summary["volume"] > 0
    assert sum(r["negatives"] for r in body["by_channel"]) == summary["negatives"]
    assert sum(d["mentions"] for d in body["by_day"]) == summary["volume"]
    assert body["severe"] == summary["negatives"]  # seeded: negatives are the severe ones
    assert client.get("/themes/livraison/breakdown", params={"channel": "fax"}).status_code == 422


def test_retired_theme_is_not_a_top_mover(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    """/themes hides a retired theme; the overview's movers listed it (livraison, the seed's
    only riser) beside a theme list without it."""
    with session_scope(sessions) as session:
        _, write = create_key(session, "ecriture", "write")
    retire = {"operations": [{"op": "retire", "id": "livraison"}]}
    assert client.put("/taxonomy", json=retire, headers={"X-API-Key": write}).status_code == 200
    period = {"start": str(START), "end": str(LAST_DAY)}
    listed = {t["id"] for t in client.get("/themes", params=period).json()["themes"]}
    movers = client.get("/overview", params=period).json()["top_movers"]
    assert "livraison" not in listed
    assert [m["id"] for m in movers] == []


def test_verbatims_language_filter(client: TestClient, sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        fid = session.scalars(select(Feedback.id).order_by(Feedback.id.desc()).limit(1)).one()
        session.execute(update(Feedback).where(Feedback.id == fid).values(language="en"))
    en = client.get("/themes/livraison/verbatims", params={"language": "en"}).json()["items"]
    assert [v["feedback_id"] for v in en] == [fid] and en[0]["language"] == "en"
    fr = client.get("/themes/livraison/verbatims", params={"language": "fr"}).json()["items"]
    assert fid not in {v["feedback_id"] for v in fr}


def test_breakdown_splits_count_french_like_the_summary(
    client: TestClient, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """Another language's mention is listed under `by_language` only: the channel, source and
    gravity splits added it to the French-only summary (323 by channel under 322 mentions)."""
    with session_scope(sessions) as session:
        fid = session.scalars(
            select(ThemeMention.feedback_id)
            .where(ThemeMention.theme == "livraison", ThemeMention.day == LAST_DAY)
            .limit(1)
        ).one()
        session.execute(update(Feedback).where(Feedback.id == fid).values(language="en"))
        aggregate_all(session)
    period = {"start": str(START), "end": str(LAST_DAY)}
    summary = client.get("/themes/livraison", params=period).json()["summary"]
    body = client.get("/themes/livraison/breakdown", params=period).json()
    assert summary["volume"] == seeded.livraison_current - 1
    for split in ("by_channel", "by_source", "by_severity"):
        assert sum(r["mentions"] for r in body[split]) == summary["volume"]
    assert sum(d["mentions"] for d in body["by_day"]) == summary["volume"]
    assert {r["key"]: r["mentions"] for r in body["by_language"]} == {
        "fr": summary["volume"],
        "en": 1,
    }


def test_trend_scores_and_drivers_count_french_like_the_summary(
    client: TestClient, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """Half of the last day's Livraison verbatims in English: the chart under a spike alert
    (/themes/{id}/trend, daily and hourly) showed every language beside the French-only
    summary and alert, /drivers regressed the English answers too, and /overview's NPS counted
    more answers than verbatims. All of them now count the French verbatims only."""
    with session_scope(sessions) as session:
        ids = session.scalars(
            select(ThemeMention.feedback_id)
            .where(ThemeMention.theme == "livraison", ThemeMention.day == LAST_DAY)
            .distinct()
        ).all()
        english = ids[: len(ids) // 2]
        assert english
        session.execute(update(Feedback).where(Feedback.id.in_(english)).values(language="en"))
        aggregate_all(session)
    period = {"start": str(START), "end": str(LAST_DAY)}
    detail = client.get("/themes/livraison", params=period).json()
    daily = client.get("/themes/livraison/trend", params=period).json()["points"]
    assert [p["volume"] for p in daily] == [p["volume"] for p in detail["series"]]
    assert [p["negatives"] for p in daily] == [p["negatives"] for p in detail["series"]]
    hourly = client.get("/themes/livraison/trend", params={**period, "granularity": "hour"})
    by_day: dict[str, int] = {}
    for p in hourly.json()["points"]:
        by_day[p["start"][:10]] = by_day.get(p["start"][:10], 0) + p["volume"]
    assert list(by_day.values()) == [p["volume"] for p in detail["series"]]
    assert sum(by_day.values()) == detail["summary"]["volume"]
    over = client.get("/overview", params=period).json()
    nps = next(s for s in over["scores"] if s["score"] == "nps")
    # Every seeded verbatim carries an NPS: as many French answers as French verbatims.
    assert nps["answers"] == over["verbatims"] == len(_week(sessions)) - len(english)
    assert over["other_languages"] == {"en": len(english)}  # said apart, not in the NPS
    drivers = client.get("/drivers", params={**period, "score": "nps"}).json()
    assert drivers["answers"] == nps["answers"]
    assert drivers["coded_mean"] == pytest.approx(nps["value"], abs=0.01)

"""Score fields (NPS 0-10, CSAT 1-5, CES 1-7) through the real path: CSV file -> ingest with a
--map -> enrich (lexicon backend) -> aggregate -> GET /drivers, on a synthetic feed whose true
theme effects are known. Texts are written for this test (no dataset rows)."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.analysis import build_analyzer
from core.db import session_scope
from core.models import Feedback, Quarantine
from core.settings import Settings
from jobs.aggregate import aggregate_all
from jobs.enrich import enrich
from jobs.ingest import ingest_file
from service.app import create_app

SENTENCES = {
    "prix": "Le prix est correct.",
    "livraison": "Colis livré avec une semaine de retard.",
    "emballage": "L'emballage était déchiré.",
}
FILLER = "J'ai reçu mon article."
# True effects on the coded scores (points): NPS (+100 / 0 / -100) and CSAT (% of 4-5).
NPS_PROMOTER = {"base": 0.60, "livraison": -0.30, "emballage": -0.10, "prix": 0.0}
NPS_DETRACTOR = {"base": 0.10, "livraison": 0.30, "emballage": 0.10, "prix": 0.0}
TRUE_NPS = {"livraison": -60.0, "emballage": -20.0, "prix": 0.0}
CSAT_SATISFIED = {"base": 0.80, "livraison": -0.40, "emballage": -0.20, "prix": 0.0}
TRUE_CSAT = {"livraison": -40.0, "emballage": -20.0, "prix": 0.0}
PRESENCE = {"livraison": 0.30, "emballage": 0.25, "prix": 0.30}
ROWS = 900


def _write_feed(path: Path, rng: random.Random) -> dict[str, int]:
    counts = dict.fromkeys(SENTENCES, 0)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["ref", "jour", "commentaire", "reco", "satisfaction", "effort"])
        for i in range(ROWS):
            present = [t for t in SENTENCES if rng.random() < PRESENCE[t]]
            for t in present:
                counts[t] += 1
            text = " ".join(SENTENCES[t] for t in present) or FILLER
            pro = NPS_PROMOTER["base"] + sum(NPS_PROMOTER[t] for t in present)
            det = NPS_DETRACTOR["base"] + sum(NPS_DETRACTOR[t] for t in present)
            u = rng.random()
            nps = rng.choice([9, 10]) if u < pro else rng.randint(0, 6) if u > 1 - det else 8
            sat = CSAT_SATISFIED["base"] + sum(CSAT_SATISFIED[t] for t in present)
            csat = rng.choice([4, 5]) if rng.random() < sat else rng.randint(1, 3)
            day = today - timedelta(days=1 + i % 60)
            writer.writerow([f"r{i}", day.strftime("%d/%m/%Y %H:%M"), text, nps, csat, 3])
        # One bad NPS answer: quarantined, the rest of the file lands.
        writer.writerow(["bad", today.strftime("%d/%m/%Y"), FILLER, "11", "4", "3"])
    return counts


@pytest.fixture
def scored(settings: Settings, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path):
    counts = _write_feed(tmp_path / "enquete.csv", random.Random(20261202))
    result = ingest_file(
        sessions,
        settings,
        tmp_path / "enquete.csv",
        source="enquete",
        channel="survey",
        mapping={
            "id": "ref",
            "created_at": "jour",
            "text": "commentaire",
            "nps": "reco",
            "csat": "satisfaction",
            "ces": "effort",
        },
    )
    assert result.stored == ROWS and result.rejected == 1
    enrich(sessions, settings, analyzer=build_analyzer(settings))
    with session_scope(sessions) as session:
        aggregate_all(session)
    return counts


@pytest.mark.slow
def test_key_drivers_recover_known_effects(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], scored: dict[str, int]
) -> None:
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).where(Feedback.nps.is_not(None))) == ROWS
        assert session.scalar(select(func.count()).where(Feedback.ces == 3)) == ROWS
        bad = session.scalars(select(Quarantine)).one()
        assert bad.reason.startswith("bad_nps") and bad.field == "nps"

    client = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    settings.dashboard_read_without_key = True
    for score, truth in (("nps", TRUE_NPS), ("csat", TRUE_CSAT)):
        res = client.get("/drivers", params={"score": score})
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["answers"] == ROWS
        effects = {d["theme"]: d for d in body["drivers"]}
        for theme, true_effect in truth.items():
            d = effects[theme]
            # The detector finds every written theme sentence (presence is what is regressed).
            assert d["mentions"] == scored[theme]
            assert d["ci_low"] <= true_effect <= d["ci_high"], (score, theme, d)
            # Narrow enough to act on (the feed's filler sentences also name other themes,
            # which enter the regression as covariates and widen the intervals a little).
            assert d["ci_high"] - d["ci_low"] < 45, [
                (x["theme"], x["mentions"]) for x in body["drivers"]
            ]
            assert d["significant"] == (true_effect != 0.0), (score, theme, d)
        # Largest negative impact first: late deliveries cost the most.
        assert body["drivers"][0]["theme"] == "livraison"
        assert body["drivers"][0]["label"] == "Livraison"

    rating = client.get("/drivers", params={"score": "rating"}).json()
    assert rating["answers"] == 0 and rating["drivers"] == []
    assert client.get("/drivers", params={"score": "stars"}).status_code == 422

    # The report carries the same figures (json / xlsx sheet per score).
    from openpyxl import load_workbook

    from jobs.report import build_report, report_json, write_report
    from nlp.taxonomy import load_taxonomy

    with session_scope(sessions) as session:
        rep = build_report(session, load_taxonomy(None))
    js = report_json(rep)
    api = {d["theme"]: d for d in client.get("/drivers", params={"score": "nps"}).json()["drivers"]}
    assert {d["theme"]: d["effect"] for d in js["drivers"]["nps"]} == {
        t: d["effect"] for t, d in api.items()
    }
    write_report(rep, "xlsx", settings.data_dir / "r.xlsx")
    book = load_workbook(settings.data_dir / "r.xlsx")
    assert {"Facteurs NPS", "Facteurs CSAT"} <= set(book.sheetnames)
    sheet = book["Facteurs NPS"]
    assert sheet.cell(2, 1).value == "livraison" and sheet.cell(2, 10).value == "oui"
    # The table names themes by label and scores in French (it showed ids and "RATING").
    from rich.console import Console

    from jobs.report import render_drivers

    console = Console(record=True, width=160)
    for table in render_drivers(rep):
        console.print(table)
    shown = console.export_text()
    assert "Facteurs clés du NPS du " in shown and "Livraison" in shown
    assert "livraison" not in shown

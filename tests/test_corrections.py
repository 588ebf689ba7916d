"""Corrections: an analyst fixes a verbatim's themes/sentiment through the API (write key);
stored with who/when, they override the model in the aggregates (even after a later model
re-analysis) and feed `verbatim train ... --corrections`."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_seed import KNOWN_TEXT, LAST_DAY, Seeded, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core import taxonomy_store
from core.aggregate import aggregate_all
from core.corrections import training_rows
from core.db import session_scope
from core.models import Analysis, Correction, Feedback, ThemeMention
from core.settings import Settings
from nlp.taxonomy import Theme
from service.app import create_app
from service.auth import create_key


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions)


@pytest.fixture
def keys(sessions: sessionmaker[Session]) -> dict[str, str]:
    with session_scope(sessions) as session:
        _, read = create_key(session, "lecture", "read")
        _, write = create_key(session, "analyste.marie", "write")
    return {"read": read, "write": write}


@pytest.fixture
def client(settings: Settings, engine: Engine, seeded: Seeded) -> TestClient:
    return TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))


def _known_id(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as session:
        return session.scalars(select(Feedback.id).where(Feedback.text == KNOWN_TEXT)).one()


def _week(client: TestClient, keys: dict[str, str]) -> dict[str, dict]:
    res = client.get("/themes", params={"end": str(LAST_DAY)}, headers={"X-API-Key": keys["read"]})
    return {t["id"]: t for t in res.json()["themes"]}


def test_correction_overrides_the_model_everywhere(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    fid = _known_id(sessions)
    before = _week(client, keys)
    url = f"/feedback/{fid}/corrections"
    body = {"sentiment": "neutral", "themes": [{"theme": "emballage", "polarity": "negative"}]}

    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers={"X-API-Key": keys["read"]}).status_code == 403
    wh = {"X-API-Key": keys["write"]}
    note = "c'est le carton, client rappelé au 06 12 34 56 78 (jean.dupont@exemple.fr)"
    res = client.post(url, json={**body, "note": note}, headers=wh)
    assert res.status_code == 201, res.text
    out = res.json()
    assert out["correction"]["author"] == "analyste.marie"
    # Notes are stored and served PII-masked, like the verbatims.
    assert out["correction"]["note"].startswith("c'est le carton, client rappelé au <PHONE>")
    with session_scope(sessions) as session:
        stored = session.scalars(select(Correction.note)).one()
    assert "06 12" not in stored and "dupont" not in stored and "<EMAIL>" in stored
    assert out["reaggregated_days"] == [str(LAST_DAY)]
    assert [m["theme"] for m in out["feedback"]["model"]["themes"]] == ["livraison"]
    assert out["feedback"]["current"]["themes"] == [
        {"theme": "emballage", "polarity": "negative", "evidence": None}
    ]
    assert out["feedback"]["current"]["sentiment"] == "neutral"

    # The figures count the correction (re-aggregated at once; caches keyed on the data).
    after = _week(client, keys)
    assert after["livraison"]["volume"] == before["livraison"]["volume"] - 1
    assert after["livraison"]["negatives"] == before["livraison"]["negatives"] - 1
    assert after["emballage"]["volume"] == before["emballage"]["volume"] + 1
    rh = {"X-API-Key": keys["read"]}
    live = client.get("/themes/livraison/verbatims", headers=rh).json()["items"]
    assert all(v["feedback_id"] != fid for v in live)
    pack = client.get("/themes/emballage/verbatims", headers=rh).json()["items"]
    assert pack[0]["feedback_id"] == fid and pack[0]["sentiment"] == "neutral"

    # A second fix (sentiment only) keeps the corrected themes; history newest first.
    res = client.post(url, json={"sentiment": "negative"}, headers=wh)
    assert res.status_code == 201
    detail = client.get(f"/feedback/{fid}", headers=rh).json()
    assert [c["sentiment"] for c in detail["corrections"]] == ["negative", "neutral"]
    assert [m["theme"] for m in detail["current"]["themes"]] == ["emballage"]
    assert detail["current"]["sentiment"] == "negative"

    # A later model re-analysis does not undo the analyst's fix.
    with session_scope(sessions) as session:
        fb = session.get(Feedback, fid)
        again = Analysis(
            feedback_id=fid,
            model_version="model-v2",
            sentiment="negative",
            sentiment_score=0.9,
            severity=0.5,
            analyzed_at=datetime.now(UTC),
        )
        again.mentions.append(
            ThemeMention(
                feedback_id=fid,
                theme="livraison",
                polarity="negative",
                score=1.0,
                day=fb.created_at.date(),
            )
        )
        session.add(again)
        session.flush()
        aggregate_all(session)
    assert _week(client, keys)["livraison"]["volume"] == before["livraison"]["volume"] - 1

    with session_scope(sessions) as session:
        rows = training_rows(session, need="themes")
        assert rows == [
            {
                "id": f"correction:{fid}",
                "text": KNOWN_TEXT,
                "source": "corrections",
                "content_hash": session.get(Feedback, fid).content_hash,
                "themes": {"emballage": "negative"},
            }
        ]
        assert training_rows(session, need="sentiment")[0]["sentiment"] == "negative"


def test_bad_corrections_are_clear_errors(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    wh = {"X-API-Key": keys["write"]}
    fid = _known_id(sessions)
    res = client.post(
        f"/feedback/{fid}/corrections",
        json={"themes": [{"theme": "meteo", "polarity": "negative"}]},
        headers=wh,
    )
    assert res.status_code == 422 and res.json()["field"] == "themes[0].theme"
    res = client.post(f"/feedback/{fid}/corrections", json={}, headers=wh)
    assert res.status_code == 422 and "nothing to correct" in res.json()["detail"]
    res = client.post(f"/feedback/{fid}/corrections", json={"sentiment": "furieux"}, headers=wh)
    assert res.status_code == 422
    res = client.post("/feedback/999999/corrections", json={"sentiment": "neutral"}, headers=wh)
    assert res.status_code == 404
    assert client.get(f"/feedback/{fid}", headers=wh).json()["corrections"] == []


def test_train_themes_uses_corrections(
    tmp_path: Path,
    settings: Settings,
    client: TestClient,
    keys: dict[str, str],
    sessions: sessionmaker[Session],
) -> None:
    from verbatim_cli import app

    fid = _known_id(sessions)
    with session_scope(sessions) as session:  # a theme added through the API's taxonomy
        tax = taxonomy_store.current(session, settings).taxonomy
        fidelite = Theme(id="fidelite", label="Fidélité", seeds=["carte fidélité"])
        taxonomy_store.save(
            session, settings, tax.model_copy(update={"themes": [*tax.themes, fidelite]}), "t"
        )
    res = client.post(
        f"/feedback/{fid}/corrections",
        headers={"X-API-Key": keys["write"]},
        json={
            "themes": [
                {"theme": "emballage", "polarity": "negative"},
                {"theme": "fidelite", "polarity": "negative"},
            ]
        },
    )
    assert res.status_code == 201, res.text
    examples = tmp_path / "ex.jsonl"
    lines = (
        [
            {"text": f"Colis arrivé en retard de {i} jours.", "themes": {"livraison": "negative"}}
            for i in range(2, 12)
        ]
        + [
            {"text": f"Carton écrasé numéro {i}.", "themes": {"emballage": "negative"}}
            for i in range(2, 12)
        ]
        + [{"text": KNOWN_TEXT, "themes": {"livraison": "negative"}}]
    )
    examples.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    runner = CliRunner()
    out = tmp_path / "heads"
    res = runner.invoke(
        app,
        [
            "train",
            "themes",
            "--examples",
            str(examples),
            "--corrections",
            "--no-encoder",
            "--out",
            str(out),
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    # The correction replaced the example with the same text (21 examples, not 22).
    assert "1 corrected verbatims merged" in res.output
    assert "trained on 21 examples" in res.output
    assert (out / "meta.json").is_file()
    # Trained for the database's taxonomy (the corrections' themes), not the packaged file.
    assert "fidelite" in res.output.split("rules: ")[-1]

    res = runner.invoke(app, ["train", "sentiment", "--out", str(tmp_path / "s")], env=env)
    assert res.exit_code == 2 and "--corrections" in res.output
    # One corrected verbatim is far from enough: a clear error that counts it.
    res = runner.invoke(
        app, ["train", "sentiment", "--corrections", "--out", str(tmp_path / "s")], env=env
    )
    assert res.exit_code == 2 and "got 0" in res.output


def test_a_correction_replaces_its_row_in_a_file_of_raw_or_exported_texts(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Ingest stores a text normalised (’ -> ', … -> ...) and masked (order numbers): the
    training file's copy, as the customer wrote it, never matched the corrected verbatim, so
    `train --examples F --corrections` trained on both, the stale label included (300 rows of
    which 150 corrected: "trained on 383 examples")."""
    from core.corrections import apply_correction
    from core.store import insert_feedback, prepare_feedback
    from jobs.train_sentiment import LabelledFile, add_rows
    from jobs.train_themes import merge_corrections

    raw = "Commande 123456789 jamais reçue… l’emballage était déchiré"
    with session_scope(sessions) as session:
        row = prepare_feedback(
            {"text": raw, "created_at": "2026-11-02T10:00:00Z"},
            source="tp",
            channel="review",
            max_text_chars=5000,
        )
        assert isinstance(row, dict)
        insert_feedback(session, [row])
        fid = session.scalars(select(Feedback.id)).one()
        stored = session.get(Feedback, fid).text
        assert stored != raw and "<ORDER>" in stored  # what the analysts saw and corrected
        tax = taxonomy_store.current(session, settings).taxonomy
        apply_correction(
            session,
            fid,
            author="analyste",
            taxonomy=tax,
            sentiment="negative",
            themes=[("emballage", "negative")],
        )
    with session_scope(sessions) as session:
        themes_rows = training_rows(session, need="themes")
        sentiment_rows = training_rows(session, need="sentiment")
    other = "Livraison rapide, merci"
    for copy in (raw, stored):  # the raw source file, or an export of the stored verbatims
        texts, labels = merge_corrections(
            [copy, other], [{"livraison": "negative"}, {"livraison": "positive"}], themes_rows, tax
        )
        assert labels == [{"emballage": "negative"}, {"livraison": "positive"}], copy
        assert len(texts) == 2
        labelled = LabelledFile()
        labelled.rows.texts += [copy, other]
        labelled.rows.labels += [2, 2]
        labelled.rows.stars += [-100, -100]
        labelled.rows.groups += ["f", "f"]
        labelled.keys += ["a", "b"]
        add_rows(labelled, sentiment_rows)
        assert labelled.rows.labels == [0, 2], copy  # replaced, not a third row
    # Both copies in one file: the correction is one row, not two.
    texts, labels = merge_corrections(
        [raw, stored], [{"livraison": "negative"}] * 2, themes_rows, tax
    )
    assert labels == [{"emballage": "negative"}]


def test_train_themes_says_which_corrected_themes_another_taxonomy_lacks(
    tmp_path: Path,
    settings: Settings,
    client: TestClient,
    keys: dict[str, str],
    sessions: sessionmaker[Session],
) -> None:
    """With --taxonomy naming a file without a theme the analysts corrected against (added
    through the API), the correction's theme was dropped without a word: the text then
    trained as "none of these themes" and the output only said "1 corrected verbatims
    merged"."""
    from verbatim_cli import app

    fid = _known_id(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        fidelite = Theme(id="fidelite", label="Fidélité", seeds=["carte fidélité"])
        taxonomy_store.save(
            session, settings, tax.model_copy(update={"themes": [*tax.themes, fidelite]}), "t"
        )
    res = client.post(
        f"/feedback/{fid}/corrections",
        headers={"X-API-Key": keys["write"]},
        json={
            "themes": [
                {"theme": "emballage", "polarity": "negative"},
                {"theme": "fidelite", "polarity": "negative"},
            ]
        },
    )
    assert res.status_code == 201, res.text
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    args = ["train", "themes", "--corrections", "--no-encoder", "--out", str(tmp_path / "h")]
    res = CliRunner().invoke(app, [*args, "--taxonomy", "ecommerce"], env=env)
    assert res.exit_code == 0, res.output
    assert "1 corrected verbatims merged" in res.output
    assert "left out: fidelite (1)" in res.output, res.output
    # One example teaches no head: the model is saved, and said to be keyword rules alone.
    assert "has no learned head" in res.output, res.output
    # Trained for the database's own taxonomy, nothing is left out and nothing is said.
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0 and "left out" not in res.output, res.output


def test_notes_are_masked_like_texts_names_included(
    settings: Settings,
    engine: Engine,
    keys: dict[str, str],
    sessions: sessionmaker[Session],
    seeded: Seeded,
) -> None:
    """Notes were masked by the rules alone: a customer's name with no cue ("Sophie Lambert")
    was stored as written. They now go through the API's masker, NER included when on."""
    from nlp.text.pii import load_ner

    if load_ner() is None:
        pytest.skip("fr_core_news_sm not installed")
    with_ner = settings.model_copy(update={"pii_ner": True})
    client = TestClient(create_app(with_ner, engine=engine, build_analyzer_at_startup=False))
    fid = _known_id(sessions)
    note = "Rappel fait, merci beaucoup à Sophie Lambert pour son aide"
    res = client.post(
        f"/feedback/{fid}/corrections",
        json={"sentiment": "neutral", "note": note},
        headers={"X-API-Key": keys["write"]},
    )
    assert res.status_code == 201, res.text
    with session_scope(sessions) as session:
        stored = session.scalars(select(Correction.note)).one()
    assert "Lambert" not in stored and "<PERSON>" in stored, stored


def _one_sentiment_fix_one_themes_fix(
    settings: Settings, sessions: sessionmaker[Session]
) -> tuple[int, int]:
    """The known verbatim gets its themes corrected; another its sentiment only."""
    from core.corrections import apply_correction

    fid = _known_id(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        other = session.scalars(
            select(Feedback.id).where(Feedback.id != fid).order_by(Feedback.id.desc()).limit(1)
        ).one()
        apply_correction(
            session, fid, author="marie", taxonomy=tax, themes=[("emballage", "negative")]
        )
        apply_correction(session, other, author="marie", taxonomy=tax, sentiment="positive")
    return fid, other


def test_retheme_after_a_taxonomy_edit_keeps_the_analysts_themes(
    settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """Re-detection replaced the mentions of each verbatim's latest analysis, a correction's
    included: importing a taxonomy silently undid every theme correction (aggregates and
    `train --corrections` then read the model's themes again)."""
    from jobs.retheme import retheme

    fid, other = _one_sentiment_fix_one_themes_fix(settings, sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        fidelite = Theme(id="fidelite", label="Fidélité", seeds=["carte fidélité"])
        taxonomy_store.save(session, settings, tax.add(fidelite), "t")
        # The sentiment-only correction's themes are the model's: re-detection may change them.
        stale = session.scalars(select(ThemeMention).where(ThemeMention.feedback_id == other)).all()
        for mention in stale:
            mention.theme = "emballage"
    result = retheme(settings, sessions)
    assert result is not None and result.verbatims > 0
    with session_scope(sessions) as session:
        by_model = {
            a.model_version: {m.theme: m.polarity for m in a.mentions}
            for a in session.scalars(select(Analysis).where(Analysis.feedback_id == fid))
        }
        assert by_model["correction"] == {"emballage": "negative"}
        assert by_model["seed"] == {"livraison": "negative"}  # the model's, re-detected
        rows = {r["id"]: r["themes"] for r in training_rows(session, need="themes")}
        assert rows[f"correction:{fid}"] == {"emballage": "negative"}
        redetected = {
            m.theme
            for m in session.scalars(select(ThemeMention).where(ThemeMention.feedback_id == other))
        }
        assert "emballage" not in redetected


def test_a_sentiment_fix_is_no_theme_label_for_training(
    settings: Settings,
    sessions: sessionmaker[Session],
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sentiment-only correction stores its themes as JSON null, which SQL counted as a
    theme correction: the model's own themes came back as an analyst's labels (and replaced
    a same-text example of the team's file)."""
    from jobs.corrections import corrected_rows

    fid, _ = _one_sentiment_fix_one_themes_fix(settings, sessions)
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    rows, _ = corrected_rows("themes")
    assert [(r["id"], r["themes"]) for r in rows] == [
        (f"correction:{fid}", {"emballage": "negative"})
    ]
    rows, _ = corrected_rows("sentiment")
    assert [r["sentiment"] for r in rows] == ["positive"]


def test_a_correction_is_fresh_in_every_api_process_at_once(
    settings: Settings,
    engine: Engine,
    keys: dict[str, str],
    sessions: sessionmaker[Session],
    seeded: Seeded,
) -> None:
    """Two API processes on one database: a correction through one was answered from the
    other's kept view, marked stale, for up to `api_stale_while_revalidate_s` (10 s): the
    analyst's fix looked lost on a reload served by the other worker. A correction is in the
    part of every view's token that is never served stale."""
    fid = _known_id(sessions)
    first = TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False))
    with TestClient(create_app(settings, engine=engine, build_analyzer_at_startup=False)) as other:
        before = _week(other, keys)  # `other` keeps this view
        assert _week(other, keys) == before
        body = {"sentiment": "neutral", "themes": [{"theme": "emballage", "polarity": "negative"}]}
        res = first.post(
            f"/feedback/{fid}/corrections", json=body, headers={"X-API-Key": keys["write"]}
        )
        assert res.status_code == 201, res.text
        view = other.get(
            "/themes", params={"end": str(LAST_DAY)}, headers={"X-API-Key": keys["read"]}
        )
        assert "stale" not in view.headers.get("cache-status", "")
        after = {t["id"]: t for t in view.json()["themes"]}
    assert after != before
    assert after["emballage"]["negatives"] >= before["emballage"]["negatives"]


def test_the_correction_form_sees_renamed_themes_by_their_current_id(
    settings: Settings,
    client: TestClient,
    keys: dict[str, str],
    sessions: sessionmaker[Session],
) -> None:
    """`/feedback/{id}` said a theme's former id after a rename, which the dashboard's
    correction form (it lists current ids) showed as not cited and dropped: a sentiment-only
    fix through the form erased the verbatim's theme."""
    fid = _known_id(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, tax.rename("livraison", "expedition"), "t")
    rh, wh = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    detail = client.get(f"/feedback/{fid}", headers=rh).json()
    assert [m["theme"] for m in detail["model"]["themes"]] == ["expedition"]
    assert [m["theme"] for m in detail["current"]["themes"]] == ["expedition"]
    # What the form sends back: the sentiment changed, the themes as it read them.
    themes = [{"theme": m["theme"], "polarity": m["polarity"]} for m in detail["current"]["themes"]]
    res = client.post(
        f"/feedback/{fid}/corrections", json={"sentiment": "neutral", "themes": themes}, headers=wh
    )
    assert res.status_code == 201, res.text
    current = res.json()["feedback"]["current"]
    assert [(m["theme"], m["evidence"]["text"]) for m in current["themes"]] == [
        ("expedition", "dix jours de retard")
    ]


def test_contradictory_theme_polarities_are_refused(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    fid = _known_id(sessions)
    twice = [
        {"theme": "emballage", "polarity": "negative"},
        {"theme": "emballage", "polarity": "positive"},
    ]
    res = client.post(
        f"/feedback/{fid}/corrections", json={"themes": twice}, headers={"X-API-Key": keys["write"]}
    )
    assert res.status_code == 422 and res.json()["field"] == "themes[1].polarity"
    assert "twice" in res.json()["detail"]
    same = [twice[0], dict(twice[0])]  # the same mention twice is harmless
    res = client.post(
        f"/feedback/{fid}/corrections", json={"themes": same}, headers={"X-API-Key": keys["write"]}
    )
    assert res.status_code == 201
    assert res.json()["feedback"]["current"]["themes"][0]["polarity"] == "negative"


def test_a_verbatim_corrected_before_its_analysis_is_still_analysed(
    settings: Settings, client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """A correction marked the verbatim analysed, so `enrich` skipped it for good: no model
    themes, no severity, missing from every figure the analyst did not fix. The model's part
    now arrives with the analysis, and a later re-analysis refreshes it the same way."""
    from core.analysis import build_analyzer
    from jobs.enrich import enrich

    posted = client.post(
        "/feedback",
        json={
            "source": "tests-late",
            "items": [{"id": "late-1", "text": "Carton éventré, produit cassé, très déçu."}],
        },
        headers={"X-API-Key": keys["write"]},
    )
    assert posted.status_code in (200, 201), posted.text
    with session_scope(sessions) as session:
        fid = session.scalars(select(Feedback.id).where(Feedback.external_id == "late-1")).one()
    wh = {"X-API-Key": keys["write"]}
    res = client.post(f"/feedback/{fid}/corrections", json={"sentiment": "negative"}, headers=wh)
    assert res.status_code == 201
    assert res.json()["feedback"]["model"] is None
    with session_scope(sessions) as session:
        assert session.get(Feedback, fid).analyzed is False

    result = enrich(sessions, settings, analyzer=build_analyzer(settings))
    assert result.analyzed >= 1
    detail = client.get(f"/feedback/{fid}", headers={"X-API-Key": keys["read"]}).json()
    model, current = detail["model"], detail["current"]
    assert model is not None and "emballage" in {m["theme"] for m in model["themes"]}
    assert current["sentiment"] == "negative" and current["model_version"] == "correction"
    assert current["themes"] == model["themes"] and current["severity"] == model["severity"] > 0
    # A verbatim waiting for re-analysis (`enrich --reanalyze` marks it) stays in it when an
    # analyst corrects it meanwhile (the correction marked it analysed again).
    with session_scope(sessions) as session:
        session.get(Feedback, fid).analyzed = False
    res = client.post(f"/feedback/{fid}/corrections", json={"sentiment": "neutral"}, headers=wh)
    assert res.status_code == 201
    with session_scope(sessions) as session:
        assert session.get(Feedback, fid).analyzed is False
    # The themes count in the figures (re-aggregated by the job).
    week = client.get(
        "/themes/emballage/verbatims", headers={"X-API-Key": keys["read"]}, params={"limit": 200}
    ).json()["items"]
    assert fid in {v["feedback_id"] for v in week}


def test_a_correction_error_is_a_verbatim_error(
    settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """CorrectionError derived from ValueError alone: a script or job calling apply_correction
    through the CLI's `user_errors` got a traceback instead of one line, and `except
    VerbatimError` (the project's one user-error base) missed it. It stays a ValueError."""
    import typer

    from core.cli import user_errors
    from core.corrections import CorrectionError, apply_correction
    from nlp.errors import VerbatimError

    assert issubclass(CorrectionError, VerbatimError) and issubclass(CorrectionError, ValueError)
    fid = _known_id(sessions)

    @user_errors
    def correct() -> None:
        with session_scope(sessions) as session:
            tax = taxonomy_store.current(session, settings).taxonomy
            apply_correction(session, fid, author="marie", taxonomy=tax, sentiment="furieux")

    with pytest.raises(typer.Exit) as exited:
        correct()
    assert exited.value.exit_code == 2
    with session_scope(sessions) as session, pytest.raises(VerbatimError, match="sentiment"):
        tax = taxonomy_store.current(session, settings).taxonomy
        apply_correction(session, fid, author="marie", taxonomy=tax, sentiment="furieux")


def test_corrections_export_round_trips_to_evaluate_and_another_install(
    tmp_path: Path,
    settings: Settings,
    client: TestClient,
    keys: dict[str, str],
    sessions: sessionmaker[Session],
) -> None:
    """Corrections could not be taken out: a team that corrected verbatims in the dashboard
    had no file to keep, review, score a model on (`evaluate --data`) or move elsewhere.
    `verbatim corrections export` / `GET /corrections?format=jsonl|csv` write them in the
    labelled-file shape (masked text only); `verbatim corrections import` applies the file on
    another install."""
    import sqlite3

    from core.store import insert_feedback, prepare_feedback
    from verbatim_cli import app

    other_db = tmp_path / "other.db"  # another install with the same verbatims, no fix yet
    with (
        sqlite3.connect(settings.resolved_database_url.removeprefix("sqlite:///")) as src,
        sqlite3.connect(other_db) as dst,
    ):
        src.backup(dst)  # WAL: the file alone may not hold the seeded rows yet
    with session_scope(sessions) as session:  # a verbatim with personal data in it
        row = prepare_feedback(
            {"text": "Carton déchiré, écrivez-moi à jean.dupont@exemple.fr", "id": "pii-1"},
            source="tests",
            channel="review",
            max_text_chars=5000,
        )
        assert isinstance(row, dict)
        insert_feedback(session, [row])
        pii = session.scalars(select(Feedback.id).where(Feedback.external_id == "pii-1")).one()
    fid = _known_id(sessions)
    wh = {"X-API-Key": keys["write"]}
    for target, body in (
        (fid, {"themes": [{"theme": "emballage", "polarity": "negative"}]}),
        (pii, {"sentiment": "negative", "note": "rappeler le 06 12 34 56 78"}),
    ):
        res = client.post(f"/feedback/{target}/corrections", json=body, headers=wh)
        assert res.status_code == 201, res.text
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    runner = CliRunner()
    out = tmp_path / "corrections.jsonl"
    res = runner.invoke(app, ["corrections", "export", "-o", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert "2 corrected verbatim(s) (1 sentiment, 1 themes)" in res.output
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    by_id = {r["feedback_id"]: r for r in rows}
    assert by_id[fid]["id"] == f"correction:{fid}" and by_id[fid]["text"] == KNOWN_TEXT
    assert by_id[fid]["themes"] == {"emballage": "negative"} and "sentiment" not in by_id[fid]
    assert by_id[pii]["sentiment"] == "negative" and "themes" not in by_id[pii]
    body = out.read_text("utf-8")
    assert "dupont" not in body and "06 12" not in body and "<EMAIL>" in body  # never raw PII
    # The API gives the same file, and a CSV to review.
    rh = {"X-API-Key": keys["read"]}
    res = client.get("/corrections", params={"format": "jsonl"}, headers=rh)
    assert res.status_code == 200 and res.text == body
    res = client.get("/corrections", params={"format": "csv", "label": "themes"}, headers=rh)
    assert res.status_code == 200 and res.text.count("\r\n") == 2, res.text
    assert "emballage:negative" in res.text
    page = client.get("/corrections", params={"limit": 1}, headers=rh).json()
    assert len(page["items"]) == 1 and page["next_cursor"] == str(page["items"][0]["feedback_id"])
    res = client.get("/corrections", params={"theme": "meteo"}, headers=rh)
    assert res.status_code == 422 and res.json()["field"] == "theme"
    # `verbatim evaluate --data` reads the file as it is.
    res = runner.invoke(
        app, ["evaluate", "--data", str(out), "--backend", "lexicon", "--json"], env=env
    )
    assert res.exit_code == 0, res.output
    assert '"n": 1' in res.output  # one sentiment row, one themes row scored
    # --label themes: only theme rows, for `train themes --examples`.
    themes_only = tmp_path / "themes.jsonl"
    res = runner.invoke(
        app, ["corrections", "export", "--label", "themes", "-o", str(themes_only)], env=env
    )
    assert res.exit_code == 0 and len(themes_only.read_text().splitlines()) == 1, res.output

    # Another install: matched by source and key, applied once, re-aggregated.
    env_other = {**env, "VERBATIM_DATABASE_URL": f"sqlite:///{other_db}"}
    res = runner.invoke(app, ["corrections", "import", str(out)], env=env_other)
    assert res.exit_code == 0, res.output
    assert "1 correction(s) applied" in res.output and "1 verbatim(s) not found" in res.output
    res = runner.invoke(app, ["corrections", "import", str(out)], env=env_other)
    assert "0 correction(s) applied, 1 already there" in res.output, res.output
    res = runner.invoke(app, ["corrections", "export"], env=env_other)
    assert json.loads(res.stdout.splitlines()[0])["themes"] == {"emballage": "negative"}


def test_import_by_text_finds_a_verbatim_stored_before_the_text_repair(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """A labelled file of texts as the source wrote them (« tr&egrave;s ») matched a verbatim
    stored before the text repair on the hash of its text unrepaired: after the upgrade the
    import hashed the repaired text only and said « 1 verbatim(s) not found »."""
    from verbatim_cli import app

    raw = "Colis livr&eacute; en retard, tr&egrave;s d&eacute;&ccedil;u"
    fid = _known_id(sessions)
    with session_scope(sessions) as session:  # the content_hash the code before it stored
        session.get_one(
            Feedback, fid
        ).content_hash = "c63863eadac9f5ce954512b87babeef74d97721885e120aa0aefef816450535c"
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"text": raw, "sentiment": "negative"}) + "\n", "utf-8")
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    res = CliRunner().invoke(app, ["corrections", "import", str(path)], env=env)
    assert res.exit_code == 0, res.output
    assert "1 correction(s) applied" in res.output and "0 verbatim(s) not found" in res.output
    with session_scope(sessions) as session:
        fixed = session.scalars(select(Correction).where(Correction.feedback_id == fid)).one()
        assert fixed.sentiment == "negative"


def test_an_export_leaves_out_a_theme_retired_since_and_says_so(
    settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """A correction naming a theme the taxonomy retired later: a row with it was refused by
    `evaluate --data` as a whole file (unknown theme id); it is left out, and said."""
    from verbatim_cli import app

    fid = _known_id(sessions)
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        from core.corrections import apply_correction

        apply_correction(
            session,
            fid,
            author="marie",
            taxonomy=tax,
            themes=[("emballage", "negative"), ("livraison", "negative")],
        )
        taxonomy_store.save(session, settings, tax.retire("emballage"), "t")
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
    }
    res = CliRunner().invoke(app, ["corrections", "export"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["themes"] == {"livraison": "negative"}
    assert "left out: emballage (1)" in res.stderr

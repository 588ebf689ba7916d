"""`verbatim evaluate` metrics on a small labelled file written here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jobs import cli_models
from jobs.evaluate import gold_sentiment, sentiment_metrics, stars_to_label, theme_metrics

ROWS = [
    {
        "id": 1,
        "text": "Livraison rapide, produit parfait",
        "sentiment": "positive",
        "themes": {"livraison": "positive", "qualite_produit": "positive"},
    },
    {
        "id": 2,
        "text": "Colis jamais reçu, remboursement refusé",
        "stars": 1,
        "themes": {"livraison": "negative", "retours_remboursements": "negative"},
    },
    {
        "id": 3,
        "text": "Prix trop élevé pour ce que c'est",
        "stars": 2,
        "themes": {"prix": "negative"},
    },
    {"id": 4, "text": "Bof, moyen", "stars": 3, "themes": {}},
]


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer config leaks in: default lexicon backend, packaged taxonomy."""
    for key in list(os.environ):
        if key.startswith("VERBATIM_") and not key.startswith("VERBATIM_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VERBATIM_CONFIG", str(tmp_path / "absent.toml"))


def test_label_mapping() -> None:
    assert [stars_to_label(s) for s in (1, 2, 3, 4, 5)] == [
        "negative",
        "negative",
        "neutral",
        "positive",
        "positive",
    ]
    assert gold_sentiment({"sentiment": "neutral", "stars": 5}) == "neutral"
    assert gold_sentiment({"text": "x"}) is None


def test_metric_functions() -> None:
    m = sentiment_metrics(
        ["negative", "neutral", "positive", "positive"],
        ["negative", "positive", "positive", "positive"],
    )
    assert m["accuracy"] == 0.75
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    assert m["per_class"]["positive"]["precision"] == pytest.approx(2 / 3, abs=1e-3)
    t = theme_metrics(
        [{"a": "positive", "b": "negative"}, {}], [{"a": "negative"}, {"b": "neutral"}], ["a", "b"]
    )
    # TP=1 (a), FP=1 (b in doc 2), FN=1 (b in doc 1): micro-F1 = 0.5
    assert t["micro_f1"] == 0.5
    assert t["polarity_accuracy"] == 0.0 and t["polarity_n"] == 1
    # Polarity confusion (rows = gold) and per-theme polarity accuracy on the found themes.
    assert t["polarity_labels"] == ["negative", "neutral", "positive"]
    assert t["polarity_confusion"] == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
    assert t["per_theme"]["a"]["polarity_accuracy"] == 0.0
    assert t["per_theme"]["a"]["polarity_n"] == 1 and t["per_theme"]["b"]["polarity_n"] == 0
    # A theme missed where another was predicted, twice: the pair a team should read first.
    t = theme_metrics(
        [
            {"emballage": "negative"},
            {"emballage": "negative", "prix": "positive"},
            {"a": "neutral"},
        ],
        [{"qualite": "negative"}, {"qualite": "negative", "prix": "positive"}, {"b": "neutral"}],
        ["emballage", "qualite", "prix"],
    )
    assert t["confusions"] == [{"gold": "emballage", "predicted": "qualite", "count": 2}]
    assert t["per_theme"]["prix"]["polarity_accuracy"] == 1.0


def test_cli_evaluate_json_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "dev.jsonl"
    data.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n", encoding="utf-8"
    )
    app = typer.Typer()
    cli_models.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["rows"] == 4
    assert result["sentiment"]["n"] == 4 and 0.0 <= result["sentiment"]["macro_f1"] <= 1.0
    assert result["themes"]["per_theme"]["livraison"]["support"] == 2
    assert result["themes"]["micro_f1"] > 0.5
    res = runner.invoke(app, ["evaluate", "--data", str(data)])
    assert res.exit_code == 0 and "macro-F1" in res.output and "micro-F1" in res.output
    assert "polarity on found themes" in res.output and "pol-acc" in res.output
    res = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "not found" in res.output


def test_cli_evaluate_aspects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "resto.jsonl"
    rows = [
        {
            "text": "Serveur adorable, plats délicieux",
            "stars": 5,
            "aspects": {"service": "positive", "cuisine": "positive"},
        },
        {
            "text": "Addition salée et cadre bruyant",
            "stars": 2,
            "aspects": {"prix": "negative", "ambiance": "negative"},
        },
    ]
    data.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    app = typer.Typer()
    cli_models.register(app)
    res = CliRunner().invoke(
        app, ["evaluate", "--data", str(data), "--taxonomy", "restaurant", "--json"]
    )
    assert res.exit_code == 0, res.output
    themes = json.loads(res.output)["themes"]
    assert set(themes["per_theme"]) == {"cuisine", "service", "ambiance", "prix"}
    assert themes["micro_f1"] >= 0.75

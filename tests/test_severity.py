"""Severity from sentiment, theme weights and alarm terms."""

from __future__ import annotations

from nlp.severity import SeverityScorer
from nlp.taxonomy import load_taxonomy
from nlp.types import SentimentResult, ThemeMention


def _neg(p: float) -> SentimentResult:
    return SentimentResult("negative", p, 1.5, {"negative": p, "neutral": 1 - p, "positive": 0.0})


def test_severity_orders_cases() -> None:
    scorer = SeverityScorer(load_taxonomy("ecommerce"))
    pos = SentimentResult(
        "positive", 0.9, 4.6, {"negative": 0.02, "neutral": 0.08, "positive": 0.9}
    )
    happy = scorer.score("Super livraison", pos, [ThemeMention("livraison", "positive", 0.9)])
    price = scorer.score("Un peu cher", _neg(0.7), [ThemeMention("prix", "negative", 0.9)])
    late = scorer.score("Colis en retard", _neg(0.7), [ThemeMention("livraison", "negative", 0.9)])
    scam = scorer.score(
        "Colis jamais reçu, c'est une arnaque",
        _neg(0.7),
        [ThemeMention("livraison", "negative", 0.9)],
    )
    assert 0.0 <= happy < price < late < scam <= 1.0
    assert scorer.alarms("C'est une ARNAQUE, jamais reçu") == ["arnaque", "jamais recu"]


def test_severity_without_probs() -> None:
    scorer = SeverityScorer(load_taxonomy("restaurant"))
    res = SentimentResult("negative", 0.8)
    assert 0.0 < scorer.score("intoxication alimentaire", res, []) <= 1.0

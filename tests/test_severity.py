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


def test_alarm_terms_typed_with_an_elided_article_or_a_curly_apostrophe() -> None:
    """A CX lead's alarm terms « l’arnaque » (curly apostrophe, as word processors type it)
    and « l'escroquerie » matched nothing, or only the exact words with their article: « Une
    arnaque totale » raised no alarm. The article is not part of the term."""
    from nlp.taxonomy import Taxonomy, Theme

    tax = Taxonomy(
        name="t",
        alarm_terms=["l\u2019arnaque", "l'escroquerie"],
        themes=[Theme(id="prix", label="Prix", alarm_terms=["l'intoxication"])],
    )
    scorer = SeverityScorer(tax)
    assert scorer.alarms("Une arnaque totale.") == ["arnaque"]
    assert scorer.alarms("C\u2019est de l\u2019arnaque !") == ["arnaque"]
    assert scorer.alarms("Des escroqueries en série") == ["escroquerie"]
    prix = [ThemeMention("prix", "negative", 0.9)]
    assert scorer.alarms("Intoxication après le repas", prix) == ["intoxication"]
    assert scorer.alarms("Livraison rapide, merci") == []


def test_alarm_terms_with_the_other_apostrophes_the_patterns_read() -> None:
    """A pattern « l‘emballage » (U+2018) or « lʼemballage » (U+02BC, a keyboard layout's
    apostrophe) matches like « l'emballage » (nlp.taxonomy folds them), and so does a seed;
    the alarm terms « lʼarnaque » and « l‘escroquerie » matched nothing, no alarm raised."""
    from nlp.taxonomy import Taxonomy, Theme

    tax = Taxonomy(
        name="t",
        alarm_terms=["l\u02bcarnaque", "l\u2018escroquerie"],
        themes=[Theme(id="prix", label="Prix")],
    )
    scorer = SeverityScorer(tax)
    assert scorer.alarms("Une arnaque totale.") == ["arnaque"]
    assert scorer.alarms("C'est de l'escroquerie !") == ["escroquerie"]

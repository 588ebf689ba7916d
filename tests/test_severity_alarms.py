"""Severity: inflected and negated alarm terms, theme weights, repeat complaints."""

from __future__ import annotations

from nlp.severity import SeverityScorer, alarm_pattern, escalate
from nlp.taxonomy import load_taxonomy, parse_taxonomy
from nlp.types import SentimentResult, ThemeMention


def neg(p: float) -> SentimentResult:
    return SentimentResult("negative", p, 1.5, {"negative": p, "neutral": 1 - p, "positive": 0.0})


def test_alarm_terms_inflected_and_negated() -> None:
    scorer = SeverityScorer(load_taxonomy("ecommerce"))
    assert scorer.alarms("Des ARNAQUES en série, des voleurs !") == ["arnaque", "voleur"]
    assert scorer.alarms("Produit dangereuse pour les enfants") == ["danger"]
    # Negated: the customer says there is no scam / no danger.
    assert scorer.alarms("Ce n'est pas une arnaque, tout est arrivé") == []
    assert scorer.alarms("Sans danger pour les enfants, aucun danger") == []
    assert scorer.alarms("Pas d'arnaque ici") == []
    # A negation elsewhere in the sentence does not cancel the alarm.
    assert scorer.alarms("Je n'ai pas été livré, c'est une arnaque") == ["arnaque"]
    assert alarm_pattern([]) is None and alarm_pattern(["  "]) is None


def test_negated_alarm_does_not_raise_severity() -> None:
    scorer = SeverityScorer(load_taxonomy("ecommerce"))
    themes = [ThemeMention("livraison", "negative", 0.9)]
    scam = scorer.score("Colis en retard, une arnaque", neg(0.6), themes)
    no_scam = scorer.score("Colis en retard, pas une arnaque", neg(0.6), themes)
    assert scam > no_scam + 0.2


def test_theme_weight_and_breadth() -> None:
    tax = parse_taxonomy(
        "name: t\nthemes:\n  - {id: a, label: A, severity_weight: 2.0}\n"
        "  - {id: b, label: B, severity_weight: 0.5}\n"
        "  - {id: c, label: C, severity_weight: 0.5}\n"
    )
    scorer = SeverityScorer(tax)
    heavy = scorer.score("x", neg(0.7), [ThemeMention("a", "negative", 0.9)])
    light = scorer.score("x", neg(0.7), [ThemeMention("b", "negative", 0.9)])
    both = scorer.score(
        "x", neg(0.7), [ThemeMention("b", "negative", 0.9), ThemeMention("c", "negative", 0.9)]
    )
    assert heavy > both > light
    # A positive mention of a heavy theme does not make a complaint heavy.
    assert scorer.score("x", neg(0.7), [ThemeMention("a", "positive", 0.9)]) < heavy


def test_theme_alarm_terms_only_with_their_theme() -> None:
    tax = parse_taxonomy(
        "name: t\nthemes:\n  - {id: a, label: A, alarm_terms: [brûlé]}\n  - {id: b, label: B}\n"
    )
    scorer = SeverityScorer(tax)
    assert scorer.alarms("plat brûlé", [ThemeMention("a", "negative", 0.9)]) == ["brule"]
    assert scorer.alarms("plat brûlé", [ThemeMention("b", "negative", 0.9)]) == []


def test_escalate_repeat_complaints() -> None:
    assert escalate(0.5, 0) == 0.5
    once, twice, many = escalate(0.5, 1), escalate(0.5, 2), escalate(0.5, 10)
    assert 0.5 < once < twice < many <= 1.0
    assert many == escalate(0.5, 3)  # capped
    assert escalate(0.05, 3) < 0.1  # a happy returning customer is no escalation
    assert escalate(0.95, 3) == 1.0

"""LexiconSentiment on French sentences written for these tests."""

from __future__ import annotations

import pytest

from nlp.sentiment import build_sentiment
from nlp.sentiment.irony import stated_irony
from nlp.sentiment.lexicon import LexiconSentiment
from nlp.sentiment.lexicon_fr import build_lexicon
from nlp.types import SentimentModel


@pytest.fixture(scope="module")
def model() -> LexiconSentiment:
    return LexiconSentiment()


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Livraison pas rapide du tout.", "negative"),
        ("Colis jamais reçu, aucune nouvelle.", "negative"),
        ("L'appareil ne fonctionne plus après deux jours.", "negative"),
        ("livraison tjrs pas arrivée", "negative"),
        ("😡😡😡", "negative"),
        ("delivery was late, colis abîmé", "negative"),
        ("Produit de très bonne qualité, je recommande vivement !", "positive"),
        ("Pas mal du tout, aucun souci avec la commande", "positive"),
        ("Super service, merci 😍", "positive"),
        ("Ce n'est pas cher et ça marche très bien", "positive"),
        ("C'est vraiment nul, à éviter", "negative"),
        ("Pas terrible, l'emballage était déchiré", "negative"),
        # Stated irony (nlp/sentiment/irony.py): praise around a mishap that happened again.
        ("Super, encore un colis perdu, bravo la Poste", "negative"),
        ("Génial, encore une commande annulée sans prévenir", "negative"),
        ("Super produit, encore une fois satisfait, bravo", "positive"),
    ],
)
def test_labels(model: LexiconSentiment, text: str, label: str) -> None:
    result = model.predict([text])[0]
    assert result.label == label, (text, result)


def test_result_fields_are_calibrated(model: LexiconSentiment) -> None:
    res = model.predict(["Très déçu, produit cassé", "Parfait, rien à redire"])
    for r in res:
        assert 0.0 < r.score <= 1.0
        assert abs(sum(r.probs.values()) - 1.0) < 1e-3
        assert r.score == pytest.approx(max(r.probs.values()), abs=1e-4)
        assert 1.0 <= r.stars <= 5.0
    assert res[0].stars < 2.5 < res[1].stars


def test_negation_flips_and_contrast_weighs_last_clause(model: LexiconSentiment) -> None:
    good = model.predict(["le produit est bon"])[0]
    not_good = model.predict(["le produit n'est pas bon"])[0]
    assert good.label == "positive" and not_good.label == "negative"
    # Mixed reviews: never called positive when the negative part is strong; each clause keeps
    # its own sign (what the theme detector uses).
    for text in (
        "Joli emballage mais le produit est vraiment mauvais",
        "Le produit est vraiment mauvais mais joli emballage",
    ):
        assert model.predict([text])[0].label != "positive"
    clauses = model.clause_scores("Joli emballage mais le produit est vraiment mauvais")
    assert clauses[0].score > 0 > clauses[1].score


def test_intensifiers_raise_confidence(model: LexiconSentiment) -> None:
    plain = model.predict(["livraison lente"])[0]
    strong = model.predict(["livraison vraiment très lente !!!"])[0]
    assert strong.probs["negative"] > plain.probs["negative"]


def test_clause_scores_polarity(model: LexiconSentiment) -> None:
    scores = model.clause_scores("livraison rapide mais produit cassé")
    assert len(scores) == 2
    assert scores[0].score > 0 > scores[1].score


def test_registry() -> None:
    m = build_sentiment("lexicon")
    assert isinstance(m, SentimentModel)
    assert m.predict([""])[0].label in ("negative", "neutral", "positive")
    with pytest.raises(ValueError, match="unknown sentiment backend"):
        build_sentiment("nope")


def test_works_without_calibration_file(tmp_path) -> None:  # noqa: ANN001
    m = LexiconSentiment(calibration=tmp_path / "missing.json")
    assert m.weights is None
    assert m.predict(["horrible, arnaque"])[0].label == "negative"
    assert m.predict(["excellent, parfait"])[0].label == "positive"


def test_stated_irony_reads_its_praise_clauses_as_complaints(model: LexiconSentiment) -> None:
    # The theme polarities read these clauses: "bravo la Poste" must not make livraison positive.
    ironic = model.clause_scores("Super, encore un colis perdu, bravo la Poste")
    assert ironic and all(c.score <= 0 for c in ironic) and any(c.score < 0 for c in ironic)
    literal = model.clause_scores("Super, colis reçu en avance, bravo la Poste")
    assert any(c.score > 0 for c in literal)


@pytest.mark.parametrize(
    "text",
    [
        "Bravo pour le retard",
        "Merci pour les 3 semaines d'attente",
        "Merci La Poste pour le colis écrasé",
        "Encore bravo pour la livraison en retard",
    ],
)
def test_thanks_for_a_mishap_is_stated_irony(model: LexiconSentiment, text: str) -> None:
    # Thanked for the delay itself: livraison read positive from "bravo" / "merci".
    assert stated_irony(text)
    clauses = model.clause_scores(text)
    assert clauses and all(c.score < 0 for c in clauses)


@pytest.mark.parametrize(
    "text",
    [
        "Merci pour la livraison rapide malgré le retard",  # the delay is beside the thanks
        "Merci pour votre attente et votre compréhension",  # a reply's thanks
        "merci pour le colis pas abîmé",
        "Bravo pour la rapidité",
    ],
)
def test_thanks_beside_a_mishap_is_no_irony(text: str) -> None:
    assert not stated_irony(text)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("C'était mieux avant.", "negative"),
        ("Moins bien qu'avant.", "negative"),
        ("Qualité pas ouf", "negative"),
        ("Colis arrivé ouvert.", "negative"),
        ("Colis reçu ouvert", "negative"),
        ("Produit inefficace.", "negative"),
        ("Travail bâclé.", "negative"),
        ("Le livre est passionnant.", "positive"),
    ],
)
def test_common_verdicts_the_lexicon_lacked(model: LexiconSentiment, text: str, label: str) -> None:
    """Read as no opinion (« c'était mieux avant » even positive, « colis arrivé ouvert »
    too): "mieux", "ouvert", "pas ouf", "inefficace", "bâclé", "passionnant" had no valence."""
    result = model.predict([text])[0]
    assert result.label == label, (text, result)


def test_every_prefix_entry_can_match() -> None:
    # Prefixes are looked up from 4 characters on: "bug*" (3) never matched, so "ça bug",
    # "appli buguée" had no valence.
    _, prefixes, _ = build_lexicon()
    assert [p for p in prefixes if len(p) < 4] == []


@pytest.mark.parametrize(
    "text", ["L'appli bug tout le temps", "Application buguée", "Site buggé", "ça beugue"]
)
def test_bug_reads_as_a_complaint(model: LexiconSentiment, text: str) -> None:
    assert model.clause_scores(text)[0].score <= -1.5

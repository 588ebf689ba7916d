"""RuleThemeDetector: seeds on lemmas/stems, elisions, weak seeds, clause polarity, evidence."""

from __future__ import annotations

import pytest

from nlp.taxonomy import load_taxonomy, parse_taxonomy
from nlp.themes import RuleThemeDetector
from nlp.themes.stem import light_stem
from nlp.types import ThemeModel


@pytest.fixture(scope="module")
def detector() -> RuleThemeDetector:
    return RuleThemeDetector(load_taxonomy("ecommerce"))  # no spaCy: stemmer fallback


@pytest.fixture(scope="module")
def spacy_detector() -> RuleThemeDetector:
    from core.analysis import load_spacy

    nlp = load_spacy()
    if nlp is None:
        pytest.skip("fr_core_news_sm not installed")
    return RuleThemeDetector(load_taxonomy("ecommerce"), nlp=nlp)


def themes(det: RuleThemeDetector, text: str) -> dict[str, str]:
    return {m.theme: m.polarity for m in det.predict([text])[0]}


def test_protocol(detector: RuleThemeDetector) -> None:
    assert isinstance(detector, ThemeModel)
    assert detector.predict(["", "   "]) == [[], []]


def test_clause_polarity(detector: RuleThemeDetector) -> None:
    got = themes(detector, "livraison rapide mais produit cassé")
    assert got == {"livraison": "positive", "qualite_produit": "negative"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Colis jamais reçu, le transporteur ne répond pas", {"livraison": "negative"}),
        ("L'emballage était écrasé", {"emballage": "negative"}),
        ("Le service client est injoignable depuis 2 semaines", {"service_client": "negative"}),
        ("Remboursement reçu en 3 jours, parfait", {"retours_remboursements": "positive"}),
        ("Frais de port beaucoup trop chers", {"prix": "negative"}),
        ("Paiement refusé deux fois et double prélèvement", {"commande_paiement": "negative"}),
        ("Impossible de me connecter à mon compte sur l'appli", {"site_appli": "negative"}),
        ("livraison tjrs pas arrivée", {"livraison": "negative"}),
    ],
)
def test_single_themes(detector: RuleThemeDetector, text: str, expected: dict[str, str]) -> None:
    got = themes(detector, text)
    for theme, polarity in expected.items():
        assert got.get(theme) == polarity, (text, got)


def test_generic_praise_has_no_theme(detector: RuleThemeDetector) -> None:
    assert themes(detector, "Super, je recommande !") == {}
    assert themes(detector, "Nul.") == {}


def test_weak_seed_needs_opinion(detector: RuleThemeDetector) -> None:
    # "site" in a factual clause is no site_appli mention; with an opinion it is.
    assert "site_appli" not in themes(detector, "J'ai commandé sur le site mardi.")
    assert (
        themes(detector, "Le site est vraiment très lent et compliqué").get("site_appli")
        == "negative"
    )


def test_evidence_offsets_index_input(detector: RuleThemeDetector) -> None:
    text = "Bonjour. L’emballage était déchiré, mais la livraison était rapide 👍"
    mentions = detector.predict([text])[0]
    assert {m.theme for m in mentions} >= {"emballage", "livraison"}
    for m in mentions:
        assert m.evidence is not None
        assert text[m.evidence.start : m.evidence.end] == m.evidence.text
        assert 0.0 < m.score <= 1.0
    by_theme = {m.theme: m for m in mentions}
    assert "emballage" in by_theme["emballage"].evidence.text.lower()
    assert by_theme["emballage"].polarity == "negative"
    assert by_theme["livraison"].polarity == "positive"


def test_patterns_and_custom_taxonomy() -> None:
    tax = parse_taxonomy(
        "name: t\nthemes:\n  - id: fidelite\n    label: Fidélité\n"
        '    seeds: ["carte de fidélité"]\n    patterns: ["\\\\bpoints? cadeaux?\\\\b"]\n'
    )
    det = RuleThemeDetector(tax)
    assert themes(det, "Mes points cadeaux ont disparu, scandaleux") == {"fidelite": "negative"}
    assert themes(det, "Les cartes de fidélité sont top") == {"fidelite": "positive"}


def test_bad_pattern_is_a_clear_error() -> None:
    tax = parse_taxonomy('name: t\nthemes:\n  - id: x\n    label: X\n    patterns: ["("]\n')
    with pytest.raises(ValueError, match="bad pattern"):
        RuleThemeDetector(tax)


def test_light_stem() -> None:
    assert light_stem("livrée") == light_stem("livré") == light_stem("livrer")
    assert light_stem("remboursement") == light_stem("remboursé")
    assert light_stem("colis") == light_stem("Colis")


@pytest.mark.slow
def test_spacy_lemmas(spacy_detector: RuleThemeDetector) -> None:
    got = themes(spacy_detector, "Ils ont livré en retard et les colis étaient abîmés")
    assert got.get("livraison") == "negative"
    got = themes(spacy_detector, "Je n'ai jamais été remboursée malgré mes relances")
    assert got.get("retours_remboursements") == "negative"


def test_contrast_continuation_and_scope(detector: RuleThemeDetector) -> None:
    # The contrast clause names no theme: it continues about the product.
    assert themes(detector, "Tapis très joli mais il a déteint au premier lavage") == {
        "qualite_produit": "negative"
    }
    got = themes(detector, "Livraison rapide mais le produit n'est pas de très bonne qualité")
    assert got == {"livraison": "positive", "qualite_produit": "negative"}


def test_mixed_language(detector: RuleThemeDetector) -> None:
    got = themes(detector, "delivery was late, colis abîmé")
    assert got.get("livraison") == "negative" and got.get("emballage") == "negative"


def test_polarity_cues_theme_and_negation() -> None:
    tax = parse_taxonomy(
        "name: t\npositive_cues: ['\\bau rendez-vous\\b']\nthemes:\n"
        "  - id: livraison\n    label: Livraison\n    seeds: [livraison, délai]\n"
        "    positive_cues: ['\\bd[ée]lais? respect[ée]s?\\b', '\\bdans les temps\\b']\n"
        "    negative_cues: ['\\benfin re[çc]ue?\\b']\n"
        "  - id: qualite\n    label: Qualité\n    seeds: [qualité, article]\n"
    )
    det = RuleThemeDetector(tax)
    assert themes(det, "Délai respecté pour la livraison") == {"livraison": "positive"}
    assert themes(det, "Livraison pas dans les temps") == {"livraison": "negative"}
    assert themes(det, "Livraison : enfin reçue") == {"livraison": "negative"}
    # A taxonomy-wide cue, negated: "pas au rendez-vous" is a complaint.
    assert themes(det, "La qualité n'est pas au rendez-vous") == {"qualite": "negative"}
    assert themes(det, "La qualité est au rendez-vous") == {"qualite": "positive"}
    # Theme cues only speak for their theme.
    assert themes(det, "Article enfin reçu") == {"qualite": "neutral"}


def test_bad_cue_is_a_clear_error() -> None:
    tax = parse_taxonomy('name: t\nthemes:\n  - id: x\n    label: X\n    negative_cues: ["("]\n')
    with pytest.raises(ValueError, match="bad cue"):
        RuleThemeDetector(tax)


def test_builtin_cues_read_french_idioms(detector: RuleThemeDetector) -> None:
    assert themes(detector, "Délai de livraison non respecté").get("livraison") == "negative"
    assert themes(detector, "L'appli bug tout le temps").get("site_appli") == "negative"
    assert themes(detector, "Frais de port offerts").get("prix") == "positive"


def test_shared_clause_split_between_themes() -> None:
    det = RuleThemeDetector(load_taxonomy("restaurant"))
    assert themes(det, "Service rapide et plats froids") == {
        "service": "positive",
        "cuisine": "negative",
    }
    assert themes(det, "Cuisine excellente et service déplorable") == {
        "cuisine": "positive",
        "service": "negative",
    }
    # No opinion in one part: both themes keep the clause's opinion.
    eco = RuleThemeDetector(load_taxonomy("ecommerce"))
    assert themes(eco, "livraison et emballage au top") == {
        "livraison": "positive",
        "emballage": "positive",
    }

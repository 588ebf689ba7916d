"""French phrasing the lexicon and the theme rules must read (sentences written for these tests)."""

from __future__ import annotations

import pytest

from nlp.sentiment.lexicon import LexiconSentiment
from nlp.taxonomy import load_taxonomy
from nlp.text.french import split_clauses, tokenize
from nlp.text.informal import spell_out
from nlp.themes import RuleThemeDetector


@pytest.fixture(scope="module")
def model() -> LexiconSentiment:
    return LexiconSentiment()


def clause_values(model: LexiconSentiment, text: str) -> list[float]:
    return [round(cs.score, 2) for cs in model.clause_scores(text)]


@pytest.mark.parametrize(
    ("text", "norms"),
    [
        ("livraison tro lente", ["livraison", "trop", "lente"]),
        ("jamé reçu", ["jamais", "recu"]),
        ("jamè reçu", ["jamais", "recu"]),
        ("bug tt le tps", ["bug", "tout", "le", "temps"]),
    ],
)
def test_sms_spellings_read_as_words(text: str, norms: list[str]) -> None:
    assert [t.norm for t in tokenize(text)] == norms


def test_sms_spellings_written_out_for_the_encoder() -> None:
    assert spell_out("jamé reçu, livraison tro lente") == "jamais reçu, livraison trop lente"
    assert spell_out("ça bug tt le tps") == "ça bug tout le temps"


def test_sms_negation_and_intensifier(model: LexiconSentiment) -> None:
    assert clause_values(model, "jamé reçu mon colis")[0] < -1.5  # a negated event
    # "tro" intensifies like "trop"
    assert clause_values(model, "livraison tro lente") == clause_values(
        model, "livraison trop lente"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Quand vais-je être remboursé ?",
        "C'est quand la livraison ?",
        "Où est mon colis ???",
        "Quand est-ce que je vais recevoir ma commande ? 😡",
    ],
)
def test_when_where_questions_read_as_not_happened_yet(model: LexiconSentiment, text: str) -> None:
    assert clause_values(model, text)[0] <= -1.4


@pytest.mark.parametrize(
    "text",
    [
        "Quand je l'ai reçu, il était parfait.",  # not a question
        "Reçu ou pas ?",  # "ou" = or
        "Remboursé rapidement ?",  # no when / where
        "Quand est-ce que la nouvelle collection arrive ?",  # nothing owed
    ],
)
def test_other_clauses_keep_their_events_neutral(model: LexiconSentiment, text: str) -> None:
    assert clause_values(model, text)[0] >= 0


@pytest.mark.parametrize(
    "text",
    [
        "Le produit aurait pu être de meilleure qualité.",  # counterfactual: it was not
        "Le colis aurait dû être livré hier.",
        "Ce serait bien que le service client réponde aux mails.",  # a wish: it does not
        "J'aurais préféré un remboursement plutôt qu'un avoir.",
    ],
)
def test_counterfactuals_and_wishes_are_complaints(model: LexiconSentiment, text: str) -> None:
    assert sum(clause_values(model, text)) <= -0.8


def test_bien_que_after_a_verb_is_no_concession() -> None:
    clauses = split_clauses("Ce serait bien que le SAV réponde.")
    assert [c.after_contrast for c in clauses] == [False]
    clauses = split_clauses("Produit reçu bien que la commande soit annulée.")
    assert [c.after_contrast for c in clauses] == [False, True]


def test_concessive_bien_que_carries_no_praise(model: LexiconSentiment) -> None:
    assert clause_values(model, "Bien que le colis soit arrivé.") == [0.0]


def test_aurait_du_article_is_no_counterfactual(model: LexiconSentiment) -> None:
    assert clause_values(model, "Il y aurait du retard.") == clause_values(
        model, "Il y a du retard."
    )


@pytest.fixture(scope="module")
def rules() -> RuleThemeDetector:
    return RuleThemeDetector(load_taxonomy("ecommerce"))


@pytest.mark.parametrize(
    "text",
    [
        "Très bon produit, seul bémol le prix un peu élevé.",
        "Même si le prix est élevé, la qualité suit.",
        "Les tarifs sont vraiment exagérés.",
    ],
)
def test_high_price_is_a_price_complaint(rules: RuleThemeDetector, text: str) -> None:
    clauses = rules.clause_scores(text, "prix")
    price = next(cs for cs in clauses if "prix" in cs.clause.text or "tarif" in cs.clause.text)
    assert price.score <= -1.5


def test_a_price_not_high_is_no_complaint(rules: RuleThemeDetector) -> None:
    assert rules.clause_scores("Le prix n'est pas élevé.", "prix")[0].score > 0

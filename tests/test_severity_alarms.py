"""Severity: inflected and negated alarm terms, theme weights, repeat complaints."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- statistical-correctness audit: regressions --------------------------------------------

ECOMMERCE = SeverityScorer(load_taxonomy("ecommerce"))
POSITIVE = SentimentResult(
    "positive", 0.9, 4.6, {"negative": 0.02, "neutral": 0.08, "positive": 0.9}
)
# Alarm terms of one word (a negator before "60 millions" or "jamais reçu" reads oddly).
SINGLE_WORD_ALARMS = sorted(
    t for t in ECOMMERCE.taxonomy.alarm_terms if t.isalpha() and t not in ("vol", "police")
)
NEGATIONS = [
    "pas une",
    "pas du tout une",
    "absolument pas une",
    "pas vraiment une",
    "pas une seule",
    "en aucun cas une",
    "aucunement",
    "rien de",
    "non",
    "loin d'être une",
    "aucun",
    "sans",
]


@pytest.mark.parametrize(
    "text",
    [
        "Pas du tout une arnaque, super produit",
        "Rien de dangereux, je recommande",
        "Produit non dangereux, parfait",
        "En aucun cas une arnaque, top",
        "Loin d'être une arnaque, livré en 2 jours",
        "Pas vraiment une arnaque, bon vendeur",
        "Aucunement dangereux pour les enfants",
        "Pas une seule arnaque en dix commandes",
    ],
)
def test_more_negation_forms_cancel_the_alarm(text: str) -> None:
    # Each of these used to add the alarm bump (+0.25) to a five-star review.
    assert ECOMMERCE.alarms(text) == []
    assert ECOMMERCE.score(text, POSITIVE, []) < 0.05


@pytest.mark.parametrize(
    "text, found",
    [
        ("Je ne l'ai pas c'est une arnaque", ["arnaque"]),  # no comma: still an accusation
        ("Ce n'est rien d'autre qu'une arnaque", ["arnaque"]),
        ("Non seulement une arnaque mais du vol", ["arnaque", "vol"]),
        ("Pas une arnaque mais une ARNAQUE", ["arnaque"]),
        ("Pas livré. Arnaque !", ["arnaque"]),
    ],
)
def test_negators_elsewhere_do_not_cancel_the_alarm(text: str, found: list[str]) -> None:
    assert ECOMMERCE.alarms(text) == found


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    term=st.sampled_from(SINGLE_WORD_ALARMS),
    negation=st.sampled_from(NEGATIONS),
    before=st.sampled_from(["", "Commande reçue, ", "Franchement, ", "Vendeur sérieux : "]),
    after=st.sampled_from(["", ", je recommande", " !", " 😀👍"]),
)
def test_negated_alarm_in_a_positive_review_is_not_severe(
    term: str, negation: str, before: str, after: str
) -> None:
    plain = ECOMMERCE.score(before + after, POSITIVE, [])
    negated = ECOMMERCE.score(f"{before}{negation} {term}{after}", POSITIVE, [])
    assert negated == plain < 0.25


@settings(max_examples=60, deadline=None, derandomize=True)
@given(terms=st.lists(st.sampled_from(SINGLE_WORD_ALARMS), min_size=1, unique=True))
def test_alarm_words_alone_do_not_make_a_positive_review_severe(terms: list[str]) -> None:
    # Each alarm term added 0.05 without bound: fourteen of them made a 5-star review "critique".
    text = "Super vendeur, livré vite. " + " ".join(terms)
    severity = ECOMMERCE.score(text, POSITIVE, [])
    assert 0.25 <= severity < 0.5


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.sampled_from(["", "😡😡😡", "🙂", "This is a scam, dangerous, call my lawyer", "詐欺"]),
        st.builds(lambda n: "arnaque dangereux avocat " * n, st.integers(1, 20_000)),
    ),
    p_low=st.floats(allow_nan=True, allow_infinity=True, width=32),
    p_high=st.floats(0.0, 1.0),
    themes=st.lists(
        st.builds(
            ThemeMention,
            st.sampled_from(["livraison", "prix", "service_client", "inconnu"]),
            st.sampled_from(["negative", "neutral", "positive"]),
            st.just(0.9),
        ),
        max_size=4,
    ),
)
def test_bounded_and_monotone_in_negativity(
    text: str, p_low: float, p_high: float, themes: list[ThemeMention]
) -> None:
    lo = ECOMMERCE.score(text, neg(p_low), themes)
    hi = ECOMMERCE.score(text, neg(p_high), themes)
    assert 0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0
    if 0.0 <= p_low <= p_high:
        assert lo <= hi  # more negative: never less severe
    # One more un-negated alarm term never lowers the severity.
    assert ECOMMERCE.score(text + ". Une escroquerie.", neg(p_high), themes) >= hi


def test_unusable_probabilities_are_not_read_as_critical() -> None:
    nan = float("nan")
    # NaN (a degenerate model output) went through min(1, nan) -> 1.0: "critique".
    for result in (
        SentimentResult("negative", 0.5, None, {"negative": nan}),
        SentimentResult("negative", nan),
        SentimentResult("positive", 0.9, None, {"negative": nan}),
    ):
        assert ECOMMERCE.score("Colis en retard", result, []) < 0.75
    assert (
        ECOMMERCE.score("ok", SentimentResult("positive", 0.9, None, {"negative": nan}), []) < 0.1
    )


def test_a_theme_listed_twice_is_one_irritant() -> None:
    once = [ThemeMention("prix", "negative", 0.9)]
    assert ECOMMERCE.score("x", neg(0.6), once * 3) == ECOMMERCE.score("x", neg(0.6), once)


def test_escalate_stays_within_bounds() -> None:
    assert escalate(1.5, 0) == 1.0 and escalate(-0.2, 2) == 0.0
    with pytest.raises(ValueError):
        escalate(float("nan"), 2)  # was 1.0: a NaN escalated to the maximum


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Le câble a fait une étincelle et a failli électrocuter mon enfant", ["electrocuter"]),
        ("Risque d'électrocution, prise mal isolée", ["electrocution"]),
        ("Le chargeur a pris feu, un début d'incendie", ["incendie", "pris feu"]),
        ("Mon fils s'est brûlé la main, une brûlure au 2e degré", ["brule", "brulure"]),
        ("Ma fille est blessée, plusieurs blessures", ["blessee", "blessure"]),
        ("Je vous ai envoyé une mise en demeure", ["mise en demeure"]),
        ("Colis perdu, 3e relance sans réponse", ["relance"]),
        ("J'ai relancé 4 fois, personne ne répond", ["relance"]),
    ],
)
def test_harm_legal_and_repeated_contact_are_alarms(text: str, found: list[str]) -> None:
    """« étincelle… failli électrocuter mon enfant » scored 0.24 ("faible"): no term of the
    taxonomy named electrocution, fire, injury, a burn as a verb (« brûlé » is not
    « brûlure »), a formal notice or a reminder."""
    assert ECOMMERCE.alarms(text) == found


def test_tone_alone_is_never_critical() -> None:
    """« Très déçu du SAV, délai trop long » (P(negative) 0.80, delivery weight 1.2) scored
    0.78, "critique", above « saisir la DGCCRF… escroquerie » (0.776): the model's certainty
    that a text is negative read as how bad it is."""
    livraison = [ThemeMention("livraison", "negative", 0.9)]
    mild = ECOMMERCE.score("Très déçu du SAV, délai trop long.", neg(0.8), livraison)
    legal = ECOMMERCE.score(
        "Je vais saisir la DGCCRF et la justice, c'est de l'escroquerie.",
        neg(0.53),
        [ThemeMention("qualite_produit", "negative", 0.9)],
    )
    assert 0.5 <= mild < 0.75 <= legal and mild < legal
    three = [ThemeMention(t, "negative", 0.9) for t in ("livraison", "sav", "prix")]
    assert ECOMMERCE.score("Nul, nul, nul.", neg(1.0), three) < 0.75  # still "haute"
    # "haute" is where it was: the compression starts at 0.5.
    assert ECOMMERCE.score("x", neg(0.5), livraison) == pytest.approx(0.485, abs=1e-4)
    # An alarm or a repeat complaint is what makes a certain negative "critique".
    assert ECOMMERCE.score("Délai trop long, j'ai relancé 3 fois.", neg(0.8), livraison) >= 0.75
    assert escalate(ECOMMERCE.score("Délai trop long.", neg(0.8), livraison), 2) >= 0.75


def test_new_alarm_terms_negated_as_customers_write_them() -> None:
    """The harm and repeat-contact terms are mostly written negated through « risque »,
    « besoin », « été » or a reflexive pronoun: « aucun risque d'incendie » on a 5-star review,
    « pas besoin de relancer » took the alarm bump (« critique » for a mild complaint)."""
    scorer = SeverityScorer(load_taxonomy("ecommerce"))
    for text in (
        "Aucun risque d'incendie avec ce chargeur, parfait",
        "Aucun risque de prendre feu",
        "Je n'ai pas été blessé heureusement",
        "Pas besoin de relancer, tout est arrivé vite",
        "Sans se brûler les doigts",
        "Aucune brûlure, aucun risque de se brûler",
    ):
        assert scorer.alarms(text) == [], text
    # Not negated: still alarms.
    assert scorer.alarms("Le chargeur a pris feu, il y a un risque d'incendie") == [
        "incendie",
        "pris feu",
    ]
    assert scorer.alarms("J'ai dû relancer 4 fois, mon fils a été blessé") == [
        "blesse",
        "relancer",
    ]
    assert scorer.alarms("Je n'ai pas été livré, c'est une arnaque") == ["arnaque"]


@pytest.mark.parametrize(
    "text",
    [
        "J'ai reçu un mail de relance pour mon panier, bien pratique",
        "Encore un e-mail de relance panier",
        "Bonne nouvelle, la relance de la production est annoncée",
        "Détecteur incendie reçu, facile à installer",
        "Détecteur de fumée et incendie conforme",
        "Porte anti-incendie bien emballée",
        "Le pain brûlé et la crème brûlée, goût de brûlé sur les toasts",
        "Montre parfaite pour brûler des calories",
        "Une bougie qui brûle 40 heures, la mèche brûle proprement",
        "Franchement blessé par votre réponse au téléphone",
        "Le colis est tombé mais personne n'a été blessé",
        "Personne ne s'est blessé",
    ],
)
def test_harmless_senses_of_alarm_terms_are_no_alarm(text: str) -> None:
    """A cart reminder, a production restart, a fire detector, burnt bread, calories, a
    candle, hurt feelings, nobody hurt: each added the alarm bump (+0.25) as if it were a
    repeated complaint, a fire, a burn or an injury."""
    assert ECOMMERCE.alarms(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Le chargeur a pris feu", ["pris feu"]),
        ("Risque d'incendie, la batterie chauffe", ["incendie"]),
        ("Colis perdu, 3e relance sans réponse", ["relance"]),
        ("J'ai dû relancer 4 fois", ["relancer"]),
        ("Mon fils a été blessé par le couvercle", ["blesse"]),
        ("Une brûlure au doigt", ["brulure"]),
        ("Le grille-pain sent le brûlé, odeur de brûlé", ["brule"]),
        ("Mail de relance envoyé au SAV, 2e relance sans réponse", ["relance"]),
        ("Le détecteur a pris feu, un incendie dans la cuisine", ["incendie", "pris feu"]),
        ("Personne n'a répondu à ma relance", ["relance"]),
        ("Je me suis brûlé avec la bougie", ["brule"]),
    ],
)
def test_alarm_terms_beside_their_harmless_senses_still_count(text: str, found: list[str]) -> None:
    assert ECOMMERCE.alarms(text) == found

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


@pytest.mark.parametrize(
    ("text", "positive"),
    [
        ("Livré en point relais rapidement", True),  # "point" is the noun, not "ne ... point"
        ("Un point relais bien situé", True),
        ("Livraison en point relais impossible", False),
        ("Je ne suis point satisfait", False),  # after "ne" it still negates
    ],
)
def test_point_alone_is_no_negation(model: LexiconSentiment, text: str, positive: bool) -> None:
    value = clause_values(model, text)[0]
    assert value >= 1.0 if positive else value <= -1.0


def test_point_relais_keeps_the_delivery_praise(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("Livré en point relais rapidement, parfait")
    assert [(m.theme, m.polarity) for m in mentions] == [("livraison", "positive")]


@pytest.mark.parametrize(
    "text",
    [
        "pas à la hauteur",
        "Le service n'est pas à la hauteur",
        "Ce n'est pas au top",
        "La qualité n'est pas au rendez-vous",
        "Pas dans les délais",
        "Pas de qualité",
        "Pas un bon rapport qualité prix",
    ],
)
def test_negated_expressions_are_no_praise(model: LexiconSentiment, text: str) -> None:
    assert clause_values(model, text)[0] <= -0.5


@pytest.mark.parametrize(
    "text",
    [
        "Je n'ai toujours pas reçu mon colis",  # expressions that hold their own negation
        "Il n'y a rien à redire",
        "Ce n'est pas mal",
    ],
)
def test_self_negated_expressions_are_not_flipped_again(model: LexiconSentiment, text: str) -> None:
    expected = -1.0 if "reçu" in text else 1.0
    value = clause_values(model, text)[0]
    assert value <= expected if expected < 0 else value >= expected


def test_negated_expression_gives_the_theme_its_complaint(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("Pas un bon rapport qualité prix.")
    assert {m.theme: m.polarity for m in mentions}["prix"] == "negative"


def test_pas_du_tout_is_no_softer_than_pas(model: LexiconSentiment) -> None:
    assert (
        clause_values(model, "pas du tout satisfait")[0] <= clause_values(model, "pas satisfait")[0]
    )
    # "pas très" still softens
    assert clause_values(model, "pas très satisfait")[0] > clause_values(model, "pas satisfait")[0]


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("pas trop cher", 1),  # "not too expensive": praise of the price
        ("prix pas trop cher", 1),
        ("pas trop bien", -1),
        ("j'aime pas trop", -1),
    ],
)
def test_pas_trop_negates_softly(model: LexiconSentiment, text: str, sign: int) -> None:
    assert sign * clause_values(model, text)[0] >= 0.5


def test_pas_trop_cher_is_price_praise(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("Prix pas trop cher.")
    assert [(m.theme, m.polarity) for m in mentions] == [("prix", "positive")]


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("je recommande pas", -1),  # "ne" dropped, as people speak
        ("j'aime pas", -1),
        ("j'adore pas", -1),
        ("ça marche pas", -1),
        ("ça fonctionne pas du tout", -1),
        ("ça fonctionne plus", -1),
        ("ça marche plus depuis hier", -1),
        ("je regrette pas mon achat", 1),
    ],
)
def test_verb_before_a_bare_pas_is_negated(model: LexiconSentiment, text: str, sign: int) -> None:
    assert sign * clause_values(model, text)[0] >= 0.5


@pytest.mark.parametrize(
    "text",
    [
        "je recommande pas mal ce site",  # "pas mal": quite a lot
        "ça tient plus longtemps",  # a comparison
        "ça marche plus vite",
    ],
)
def test_verb_before_pas_mal_or_a_comparison_is_not_negated(
    model: LexiconSentiment, text: str
) -> None:
    assert clause_values(model, text)[0] >= 0


def test_bare_pas_after_a_verb_names_the_product_complaint(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("Le produit marche pas.")
    assert [(m.theme, m.polarity) for m in mentions] == [("qualite_produit", "negative")]


@pytest.mark.parametrize(
    "text",
    [
        "Jusqu'à présent aucun problème",
        "À présent tout fonctionne très bien",
        "Le vendeur était présent et très aimable",
        "Chaussures bien présentes dans le colis",
    ],
)
def test_present_the_adjective_is_no_packaging(rules: RuleThemeDetector, text: str) -> None:
    assert "emballage" not in {m.theme for m in rules.predict_one(text)}


@pytest.mark.parametrize(
    "text", ["Produit bien présenté", "Colis très bien présenté, merci", "Joliment présentée"]
)
def test_well_presented_is_still_packaging(rules: RuleThemeDetector, text: str) -> None:
    assert ("emballage", "positive") in {(m.theme, m.polarity) for m in rules.predict_one(text)}


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        ("La commande est incomplète.", "commande_paiement"),
        ("On m'a raccroché au nez.", "service_client"),
    ],
)
def test_common_complaints_name_their_theme(
    rules: RuleThemeDetector, text: str, theme: str
) -> None:
    assert (theme, "negative") in {(m.theme, m.polarity) for m in rules.predict_one(text)}


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Ne changez rien", 1),  # read as a complaint (0.69) by the default backend
        ("Je n'ai pas à me plaindre", 1),
        ("On ne peut pas faire mieux", 1),
        ("Prix pas donné", -1),  # "pas" before no opinion word: no valence at all
        ("C'est pas donné", -1),
    ],
)
def test_set_phrases_with_a_negation_read_as_meant(
    model: LexiconSentiment, text: str, sign: int
) -> None:
    assert clause_values(model, text)[0] * sign >= 1.0
    assert model.predict([text])[0].label == ("positive" if sign > 0 else "negative")


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("La livraison n'a jamais été aussi rapide", 1),  # livraison was read negative
        ("Jamais vu un SAV aussi réactif", 1),
        ("Je n'ai jamais été aussi déçue", -1),  # read as praise: "déçue" negated
        ("Jamais mangé un couscous aussi mauvais", -1),
    ],
)
def test_jamais_aussi_says_the_adjective_more(
    model: LexiconSentiment, text: str, sign: int
) -> None:
    assert clause_values(model, text)[0] * sign >= 1.0


@pytest.mark.parametrize(
    "text",
    ["Le SAV n'a jamais répondu et aussi", "Livraison jamais rapide", "Pas aussi rapide que prévu"],
)
def test_jamais_without_aussi_still_negates(model: LexiconSentiment, text: str) -> None:
    assert clause_values(model, text)[0] < 0


def test_jamais_aussi_gives_the_theme_its_praise(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("La livraison n'a jamais été aussi rapide.")
    assert {m.theme: m.polarity for m in mentions}["livraison"] == "positive"


@pytest.mark.parametrize(
    "text",
    [
        "Moins bien que la version précédente.",  # cut at "bien que": two clauses of 0.0
        "Le service est beaucoup moins bien que l'an dernier.",
    ],
)
def test_moins_bien_que_is_a_comparison_not_a_concession(
    model: LexiconSentiment, text: str
) -> None:
    clauses = split_clauses(text)
    assert [c.after_contrast for c in clauses] == [False]
    assert clause_values(model, text)[0] <= -1.0
    assert model.predict([text])[0].label == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "Aussi bien qu'en magasin.",
        "Il a plu, si bien que le colis était trempé.",
        "Monté tant bien que mal.",
    ],
)
def test_bien_que_after_a_comparative_opens_no_clause(text: str) -> None:
    assert not any(c.after_contrast for c in split_clauses(text))


def test_moins_bien_que_gives_the_theme_its_complaint(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("Le service client est moins bien que l'an dernier.")
    assert {m.theme: m.polarity for m in mentions}["service_client"] == "negative"


@pytest.mark.parametrize(
    ("text", "norms"),
    [
        ("Bellllle robe", ["belle", "robe"]),  # was "bele"
        ("trooo cher", ["trop", "cher"]),  # was "tro": the SMS spelling was looked up first
        ("jador ce produit", ["adore", "ce", "produit"]),
        ("jadoooore", ["adore"]),
        ("coooool", ["cool"]),
        ("taille XXXL", ["taille", "xxxl"]),  # was "xl"
    ],
)
def test_stretched_and_chat_words_read_as_words(text: str, norms: list[str]) -> None:
    assert [t.norm for t in tokenize(text)] == norms


def test_jador_is_praise(model: LexiconSentiment) -> None:
    assert clause_values(model, "jador ce produit")[0] >= 2.0  # was 0.0


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Ça vaut pas le coup.", -1),  # was 0.0: no opinion word
        ("Ça ne vaut vraiment pas le prix.", -1),
        ("Ça ne vaut rien.", -1),
        ("Ça vaut la peine !", 1),
        ("Franchement, c'est du grand n'importe quoi.", -1),
        ("Je ne suis guère convaincu par la qualité.", -1),
        ("Pas convaincue.", -1),
        ("Le paiement a été refusé deux fois.", -1),
        ("Le retour est gratuit, c'est appréciable.", 1),
        ("Les frais de port sont abusés.", -1),
        ("Le jeu n'en vaut pas la chandelle.", -1),
        ("Ni fait ni à faire.", -1),
        ("Ça fait le taf.", 1),
        ("Je n'ai que des éloges pour ce site.", 1),
        ("Il faudrait améliorer le suivi de colis.", -1),  # read as praise by the theme heads
        ("Aucun intérêt.", -1),
        ("Aucun professionnalisme", -1),  # read as praise
        ("Aucune excuse", -1),
        ("Sans aucune explication", -1),
        ("Pas pro du tout", -1),
        ("Pas si bien que ça", -1),
        ("Pas aussi bien que prévu", -1),
    ],
)
def test_common_verdicts_have_their_valence(model: LexiconSentiment, text: str, sign: int) -> None:
    assert sum(clause_values(model, text)) * sign >= 0.9
    assert model.predict([text])[0].label == ("positive" if sign > 0 else "negative")


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Je ne suis nullement déçu", 1),  # "nullement" took the -2.6 of "nulle*": negative
        ("Ce n'est nullement un problème", 1),
        ("Je ne suis nullement satisfait", -1),  # -4.0, more than "pas satisfait"
    ],
)
def test_nullement_is_a_negator_not_nul(model: LexiconSentiment, text: str, sign: int) -> None:
    assert sum(clause_values(model, text)) * sign > 0
    assert sum(clause_values(model, text)) == pytest.approx(
        sum(clause_values(model, text.replace("nullement", "pas")))
    )


def test_ni_bon_ni_mauvais_is_no_opinion(model: LexiconSentiment) -> None:
    assert clause_values(model, "Ni bon ni mauvais.") == [0.0]  # read as praise (+0.6)


def test_worthless_purchase_gives_the_theme_its_complaint(rules: RuleThemeDetector) -> None:
    mentions = rules.predict_one("Le prix ne vaut vraiment pas le coup.")
    assert {m.theme: m.polarity for m in mentions}["prix"] == "negative"

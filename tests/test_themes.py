"""RuleThemeDetector: seeds on lemmas/stems, elisions, weak seeds, clause polarity, evidence."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from nlp.taxonomy import (
    Taxonomy,
    TaxonomyError,
    Theme,
    compile_pattern,
    load_taxonomy,
    parse_taxonomy,
)
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
        ("Ma commande a été perdue par la Poste", {"livraison": "negative"}),
        ("Perte de mon paquet, aucune nouvelle", {"livraison": "negative"}),
        # "aucun retour" is no reply ("aucune" only matched "réponse", "nouvelle").
        ("J'ai envoyé 3 mails, aucun retour", {"service_client": "negative"}),
        ("Carton ouvert à l'arrivée", {"emballage": "negative"}),
        ("La boîte ouverte, rien de protégé", {"emballage": "negative"}),
    ],
)
def test_single_themes(detector: RuleThemeDetector, text: str, expected: dict[str, str]) -> None:
    got = themes(detector, text)
    for theme, polarity in expected.items():
        assert got.get(theme) == polarity, (text, got)


def test_sms_negated_reception_is_a_delivery(detector: RuleThemeDetector) -> None:
    """ "tjrs pa recu" met only the weak "~reçu" seed (0.6; the heads then found no theme):
    the "pas reçu" / "jamais reçu" pattern now reads its SMS spellings too."""
    for sms, plain in (("tjrs pa recu", "pas reçu"), ("jms recu", "jamais reçu")):
        got = {m.theme: m for m in detector.predict([sms])[0]}
        want = {m.theme: m for m in detector.predict([plain])[0]}
        assert got["livraison"].polarity == "negative"
        assert got["livraison"].score == want["livraison"].score, sms


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


@pytest.mark.parametrize("lemmas", [False, True])
def test_a_seed_written_with_its_elided_article_matches_the_word(lemmas: bool) -> None:
    """A keyword typed as French is written, « l'emballage », « ~l’attente », met only « l' »
    / « le » / « les » before the word: « emballage abîmé », « un emballage », « trop
    d'emballage » were no mention. The leading « l' » carries no theme; « d' » stays (« produit
    d'occasion » is not « à l'occasion »)."""
    from nlp.text.lemmas import LookupLemmatizer

    table = {"l'": "le", "l\u2019": "le", "les": "le", "d'": "de", "emballages": "emballage"}
    tax = parse_taxonomy(
        "name: t\nthemes:\n  - id: emballage\n    label: Emballage\n"
        '    seeds: ["l\'emballage", "~l\u2019attente"]\n'
        '  - id: poste\n    label: La Poste\n    seeds: ["la poste"]\n'
        '  - id: occasion\n    label: Occasion\n    seeds: ["d\'occasion"]\n'
    )
    det = RuleThemeDetector(tax, nlp=LookupLemmatizer(table) if lemmas else None)
    for text in (
        "Emballage abîmé.",
        "Un emballage soigné, merci.",
        "Trop d'emballage pour un si petit objet.",
        "J'ai aimé l'emballage.",
        "L\u2019emballage était déchiré.",
    ):
        assert "emballage" in themes(det, text), text
    assert "emballage" in themes(det, "Une attente interminable, nul.")  # weak: with an opinion
    assert "emballage" not in themes(det, "Le colis est arrivé.")
    # Only an elision: an article written out stays part of the seed (« la poste »).
    assert "poste" not in themes(det, "Mon poste de travail est top.")
    assert "poste" in themes(det, "La Poste a perdu mon colis, nul.")
    assert "occasion" in themes(det, "Acheté d'occasion, parfait.")
    assert "occasion" not in themes(det, "Offert à l'occasion de Noël, parfait.")


def test_a_user_pattern_typed_with_a_curly_apostrophe_matches() -> None:
    """A pattern or cue pasted from a document, « \\bl’emballage\\b », matched no text at
    all: texts are matched with "'" for "’", the pattern kept its "’". Either apostrophe, in
    the pattern or the text, now matches the other."""
    tax = Taxonomy(
        name="t",
        themes=[
            Theme(
                id="emballage",
                label="Emballage",
                patterns=["\\bl\u2019emballage\\b", "\\bd'emballage\\b"],
                negative_cues=["\\bs\u2019est (?:ouvert|d[ée]chir[ée])"],
            )
        ],
    )
    det = RuleThemeDetector(tax)
    for text in ("L\u2019emballage est top.", "L'emballage est top.", "Trop d\u2019emballage."):
        assert "emballage" in themes(det, text), text
    assert themes(det, "L'emballage s\u2019est ouvert.") == {"emballage": "negative"}
    assert themes(det, "L\u2019emballage s'est déchiré.") == {"emballage": "negative"}
    spans = [(m.start(), m.end()) for m in compile_pattern("l\u2019a").finditer("x l'a")]
    assert spans == [(2, 5)]  # offsets index the text as it is


def test_decomposed_accents_in_a_taxonomy_still_match() -> None:
    """Seeds and patterns pasted decomposed ("e" + U+0301, macOS) look the same but matched
    nothing: the analyzer reads texts in NFC, and so is the taxonomy now."""
    import unicodedata

    nfd = unicodedata.normalize(
        "NFD",
        "name: t\nthemes:\n  - id: emballage\n    label: Emballage abîmé\n"
        '    seeds: ["carton écrasé", "abîmé"]\n'
        '    patterns: ["\\\\bbo[iî]te d[ée]chir[ée]e\\\\b"]\n',
    )
    tax = parse_taxonomy(nfd)
    assert tax.themes[0].label == "Emballage abîmé"  # NFC
    det = RuleThemeDetector(tax)
    assert "emballage" in themes(det, "Colis abîmé, carton écrasé.")
    assert "emballage" in themes(det, "Boîte déchirée à l'arrivée")


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (  # a key written twice: YAML keeps the last one silently
            "name: t\nthemes:\n  - id: x\n    label: X\n    seeds: [colis]\n    seeds: [retard]\n",
            "'seeds' given twice",
        ),
        (  # an impossible date: a ValueError traceback from YAML's timestamp reader
            "name: t\nthemes:\n  - id: x\n    label: X\n    seeds: [2024-02-30]\n"
            "history:\n  - {action: retire, theme: y, at: 2024-13-45}\n",
            r"history\[0\]\.at: .*month value is outside",
        ),
    ],
)
def test_yaml_slips_are_clear_errors(doc: str, match: str) -> None:
    with pytest.raises(TaxonomyError, match=match):
        parse_taxonomy(doc)


def test_a_validation_error_names_the_line_of_the_file() -> None:
    """An export is hundreds of lines: « themes[5].seeds[12] (theme 'emballage'): Input should
    be a valid string » made the user count list items; the error names the line too."""
    doc = (
        "name: t\n"  # 1
        "themes:\n"  # 2
        "  - id: livraison\n"  # 3
        "    label: Livraison\n"  # 4
        "    seeds: [colis]\n"  # 5
        "  - id: emballage\n"  # 6
        "    label: Emballage\n"  # 7
        "    seeds:\n"  # 8
        "      - carton\n"  # 9
        "      -\n"  # 10: an empty item (a stray dash)
        "    severity_weight: haut\n"  # 11
        "    alerts: {min_volume: 10, alpha: 2}\n"  # 12
    )
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(doc, origin="tax.yaml")
    message = str(err.value)
    assert "line 10: themes[1].seeds[1] (theme 'emballage'): Input should be a valid string" in (
        message
    )
    assert "line 11: themes[1].severity_weight (theme 'emballage')" in message
    assert "line 12: themes[1].alerts.alpha (theme 'emballage')" in message
    # An unknown key is named at its theme's line; the API's JSON errors name no line.
    with pytest.raises(TaxonomyError, match=r"line 6: themes\[1\]: theme 'emballage': unknown"):
        parse_taxonomy(doc.replace("    seeds:\n", "    keywords:\n"), origin="tax.yaml")
    with pytest.raises(ValueError) as api:
        Taxonomy.model_validate(yaml.safe_load(doc))
    assert "line " not in str(api.value)
    # An id given to two themes: the `themes:` line (its first item is another theme's), and
    # which two.
    twice = doc.split("      -\n")[0].replace("id: emballage", "id: livraison")
    with pytest.raises(TaxonomyError) as err:
        parse_taxonomy(twice, origin="tax.yaml")
    assert str(err.value) == (
        "tax.yaml: line 2: themes: theme id or alias 'livraison' is used twice "
        "(themes[0] and themes[1])"
    )


def test_a_date_like_seed_is_text() -> None:
    tax = parse_taxonomy("name: t\nthemes:\n  - id: x\n    label: X\n    seeds: [2024-02-03]\n")
    assert tax.themes[0].seeds == ["2024-02-03"]


def test_bad_pattern_is_a_clear_error() -> None:
    # Refused when the taxonomy is read, wherever it comes from (file, API, database).
    with pytest.raises(TaxonomyError, match="bad pattern"):
        parse_taxonomy('name: t\nthemes:\n  - id: x\n    label: X\n    patterns: ["("]\n')


@pytest.mark.parametrize("pattern", [r"colis(?! perdu)", r"(\w+) \1", r"(?<=très )lent"])
def test_user_patterns_needing_backtracking_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="linear-time"):
        Theme(id="x", label="X", patterns=[pattern])


def test_user_patterns_run_on_re2_in_linear_time() -> None:
    # (a+)+$ is exponential for a backtracking engine on "aaa…a!"; RE2 refuses to backtrack.
    tax = Taxonomy(name="t", themes=[Theme(id="x", label="X", patterns=["(a+)+$"])])
    detector = RuleThemeDetector(tax)
    assert {type(p).engine for _, p in detector._patterns} == {"re2"}
    start = time.perf_counter()
    assert detector.detect(["a" * 40 + "!"]) == [[]]
    assert time.perf_counter() - start < 5  # generous: backtracking would need hours
    # Packaged patterns keep Python re (lookarounds), user ones are matched accent-folded.
    assert isinstance(compile_pattern(r"\bR\.?A\.?S\b(?! le bol)"), re.Pattern)
    spans = [
        (m.start(), m.end())
        for m in compile_pattern(r"\bab[îi]m[ée]e?\b").finditer("Colis ABÎMÉ, boîte abîmée, abîmés")
    ]
    assert spans == [(6, 11), (19, 25)]


def test_matches_per_theme_are_bounded() -> None:
    """The audit's slow request: patterns that match everywhere ("." x 1,000) made one long
    /analyze build millions of hits. Matches are taken up to MAX_HITS per theme and text,
    which changes nothing for a review (confidence saturates after a few hits)."""
    from nlp.themes.rules import MAX_HITS

    tax = Taxonomy(
        name="t",
        themes=[
            Theme(id="partout", label="Partout", patterns=["."] * 50),
            Theme(id="colis", label="Colis", seeds=["colis"], positive_cues=["."] * 5),
        ],
    )
    detector = RuleThemeDetector(tax)
    long_text = "Colis arrivé, super. " * 400  # 8,400 characters
    hits = detector._hits(long_text, detector.scorer.tokens(long_text), {})
    per_theme = {t: sum(h.theme == t for h in hits) for t in ("partout", "colis")}
    # Without the bound: 50 x 8,400 pattern hits, 400 seed hits.
    assert per_theme == {"partout": MAX_HITS, "colis": MAX_HITS}
    found = {m.theme: m.polarity for m in detector.predict([long_text])[0]}
    assert found == {"partout": "positive", "colis": "positive"}


def test_taxonomy_bounds_what_one_request_can_cost() -> None:
    from nlp.taxonomy import MAX_THEMES, MAX_USER_PATTERNS

    many = [Theme(id=f"t{k}", label=f"T{k}", patterns=[f"motif{k}"]) for k in range(2)]
    per_theme = MAX_USER_PATTERNS // 2 + 1
    with pytest.raises(ValueError, match=f"at most {MAX_USER_PATTERNS}"):
        Taxonomy(
            name="t", themes=[t.model_copy(update={"patterns": ["x"] * per_theme}) for t in many]
        )
    with pytest.raises(ValueError, match=f"at most {MAX_THEMES}"):
        Taxonomy(name="t", themes=[Theme(id=f"t{k}", label="T") for k in range(MAX_THEMES + 1)])
    # The packaged patterns are Verbatim's own: they do not count against the user's share.
    shipped = load_taxonomy("ecommerce")
    assert Taxonomy.model_validate(shipped.model_dump()) == shipped


@pytest.mark.parametrize(
    ("field", "value"),
    [("label", "Livraison \ud800"), ("seeds", ["colis\x00"]), ("description", "\udfff")],
)
def test_taxonomy_strings_must_be_text(field: str, value: object) -> None:
    """A lone surrogate cannot be stored as UTF-8 nor served as JSON: saved once, it broke
    every later read of the taxonomy (the audit's 500s). Refused where the taxonomy is read."""
    data = {"name": "t", "themes": [{"id": "x", "label": "X", field: value}]}
    with pytest.raises(ValueError, match=r"themes\[0\]\." + field + r".*U\+(D[89A-F]|0000)"):
        Taxonomy.model_validate(data)


def test_light_stem() -> None:
    assert light_stem("livrée") == light_stem("livré") == light_stem("livrer")
    assert light_stem("remboursement") == light_stem("remboursé")
    assert light_stem("colis") == light_stem("Colis")


def test_book_is_not_a_delivery(detector: RuleThemeDetector) -> None:
    """ "livre" without its accent stems as "livré": the book after a determiner was read as
    a delivery ("le livre est passionnant" -> livraison). The participle and the verb stay."""
    for text in ("Le livre est passionnant.", "Des livres d'occasion en très bon état"):
        assert "livraison" not in themes(detector, text), text
    for text in (
        "Colis livré en retard",
        "Commande livrée hier",
        "Livraison rapide",
        "colis livre rapidement",
        "On vous le livre en retard",
        # An object pronoun before "le" / "les": the verb (the book rule took these).
        "il me les livre jamais à l'heure",
        "on me le livre demain",
    ):
        assert "livraison" in themes(detector, text), text
    # A taxonomy's own "livre" seed (a bookshop's theme) still meets the book.
    shop = parse_taxonomy(
        "name: t\nthemes:\n  - id: livres\n    label: Livres\n    seeds: [livre]\n"
    )
    assert themes(RuleThemeDetector(shop), "Le livre est arrivé abîmé") == {"livres": "negative"}


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
    with pytest.raises(TaxonomyError, match=r"(?s)negative_cues.*bad pattern '\('"):
        parse_taxonomy('name: t\nthemes:\n  - id: x\n    label: X\n    negative_cues: ["("]\n')


def _one_theme(**extra: object) -> dict:
    return {"name": "t", "themes": [{"id": "x", "label": "X", "seeds": ["colis"], **extra}]}


@pytest.mark.parametrize(
    ("alerts", "match"),
    [
        # The audit's document: detection then crashed on timedelta(days=10**12) every run.
        (
            {"cooldown_days": 1000000000000, "alpha": 7, "min_volume": -5},
            r"cooldown_days.*1000000000000 is out of range.*0 to 365",
        ),
        ({"cooldown_days": -1}, r"-1 is out of range for cooldown_days"),
        ({"cooldown_days": 366}, r"out of range for cooldown_days.*0 to 365"),
        ({"alpha": 5}, r"alerts\.alpha.*strictly between 0 and 1"),
        ({"alpha": 1}, r"alerts\.alpha.*strictly between 0 and 1"),
        ({"alpha": 0}, r"alerts\.alpha.*strictly between 0 and 1"),
        ({"alpha": float("nan")}, r"alerts\.alpha.*strictly between 0 and 1"),
        ({"min_volume": -5}, r"alerts\.min_volume.*-5 is out of range"),
        ({"min_negatives": 10**7}, r"alerts\.min_negatives.*0 to 1000000"),
        ({"enable": False}, r"unknown key 'enable' \(did you mean 'enabled'\?\)"),
    ],
)
def test_alert_thresholds_are_bounded(alerts: dict, match: str) -> None:
    """Refused wherever the taxonomy is read (file, API, database), naming the bound."""
    with pytest.raises(TaxonomyError, match=match):
        parse_taxonomy(yaml.safe_dump(_one_theme(alerts=alerts)), origin="t.yaml")
    with pytest.raises(ValueError, match=match.split(".*")[-1]):
        Taxonomy.model_validate(_one_theme(alerts=alerts))


def test_alert_thresholds_at_their_bounds_are_usable() -> None:
    from datetime import timedelta

    from nlp.spikes import DetectorConfig, rules_from_taxonomy

    edge = {"cooldown_days": 365, "alpha": 0.5, "min_volume": 0, "min_negatives": 1_000_000}
    tax = Taxonomy.model_validate(_one_theme(alerts={**edge, "enabled": False}))
    rules = rules_from_taxonomy(tax, DetectorConfig())["x"]
    assert (rules.cooldown_days, rules.alpha, rules.enabled) == (365, 0.5, False)
    assert timedelta(days=rules.cooldown_days + 2)  # jobs/detect.py's reach: no overflow


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        # The audit's theme: it was stored and never matched anything.
        (
            _one_theme(seed=["colis"], patern=["x"]),
            r"themes\[0\]: theme 'x': unknown key (?=.*'seed' \(did you mean 'seeds'\?\))"
            r"(?=.*'patern' \(did you mean 'patterns'\?\))",
        ),
        (_one_theme(keywords=["colis"]), r"unknown key 'keywords' \(did you mean 'seeds'\?\)"),
        ({**_one_theme(), "themse": []}, r"taxonomy: unknown key 'themse'"),
        ({**_one_theme(), "colour": "red"}, r"taxonomy: unknown key 'colour'; the keys are"),
        (
            {**_one_theme(), "history": [{"action": "add", "theme": "x", "when": "2024"}]},
            r"history\[0\]: unknown key 'when'",
        ),
    ],
)
def test_unknown_keys_are_errors_at_every_level(doc: dict, match: str) -> None:
    with pytest.raises(TaxonomyError, match=match):
        parse_taxonomy(yaml.safe_dump(doc), origin="t.yaml")


def test_ids_and_teams_fit_their_database_columns() -> None:
    """theme_mentions.theme, alerts.theme and alerts.team are VARCHAR(64): a longer id was
    accepted, then every re-detection failed on PostgreSQL (StringDataRightTruncation)."""
    ok = Taxonomy.model_validate(_one_theme(id="a" * 64, team="b" * 64))
    assert ok.themes[0].id == "a" * 64
    with pytest.raises(TaxonomyError, match=r"themes\[0\]\.id: theme id of 65 .*at most 64"):
        parse_taxonomy(yaml.safe_dump(_one_theme(id="a" * 65)))
    with pytest.raises(TaxonomyError, match=r"themes\[0\]\.team.*65 characters: at most 64"):
        parse_taxonomy(yaml.safe_dump(_one_theme(team="b" * 65)))
    with pytest.raises(TaxonomyError, match=r"themes\[0\]\.team.*team is empty"):
        parse_taxonomy(yaml.safe_dump(_one_theme(team=" ")))
    with pytest.raises(TaxonomyError, match=r"themes\[0\]\.label.*label is empty"):
        parse_taxonomy(yaml.safe_dump(_one_theme(label="")))
    with pytest.raises(TaxonomyError, match=r"name: String should have at most 100"):
        parse_taxonomy(yaml.safe_dump({**_one_theme(), "name": "n" * 101}))
    # Edits validate the new id the same way (the API's rename op checks it with Theme).
    with pytest.raises(ValueError, match="at most 64"):
        Theme(id="c" * 65, label="C")


@pytest.mark.parametrize(
    "source", ["ecommerce", "restaurant", "benchmarks/taxonomies/semeval_restaurant.yaml"]
)
def test_shipped_taxonomies_still_validate_and_round_trip(source: str) -> None:
    tax = load_taxonomy(source)
    assert parse_taxonomy(tax.to_yaml()) == tax
    edited = tax.rename(tax.ids[0], "renomme").retire(tax.ids[1]).add(Theme(id="n", label="N"))
    assert parse_taxonomy(edited.to_yaml()) == edited


def test_cli_import_refuses_an_invalid_taxonomy_with_one_clear_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    assert runner.invoke(app, ["taxonomy", "show"]).exit_code == 0  # seeds version 1
    cases = {
        "seed": (_one_theme(seed=["colis"]), "did you mean 'seeds'?"),
        "top": ({**_one_theme(), "themse": []}, "unknown key 'themse'"),
        "alerts": (
            _one_theme(alerts={"cooldown_days": 10**12, "alpha": 7, "min_volume": -5}),
            "0 to 365",
        ),
        "long": (_one_theme(id="a" * 65), "at most 64"),
    }
    for name, (doc, expected) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        res = runner.invoke(app, ["taxonomy", "import", str(path), "--no-retheme"])
        assert res.exit_code == 2, (name, res.output)
        assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
        assert expected in res.output and "https://" not in res.output, res.output
    assert "v2" not in runner.invoke(app, ["taxonomy", "history"]).output  # nothing stored


def test_a_stored_version_that_no_longer_validates_can_be_replaced(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A release that checked less stored alert thresholds out of range: reading it now
    fails with a clear error, and importing a corrected taxonomy replaces it."""
    from core import taxonomy_store
    from core.db import session_scope
    from core.models import TaxonomyVersion

    bad = yaml.safe_dump(_one_theme(alerts={"alpha": 7}))
    with session_scope(sessions) as session:
        taxonomy_store.current(session, settings)  # seeds version 1
        row = session.get(TaxonomyVersion, 1)
        assert row is not None
        row.body = bad
    with session_scope(sessions) as session, pytest.raises(TaxonomyError, match="alpha"):
        taxonomy_store.current(session, settings)
    with session_scope(sessions) as session:
        stored = taxonomy_store.import_yaml(
            session, settings, yaml.safe_dump(_one_theme()), author="fix"
        )
    assert stored.version == 2
    with session_scope(sessions) as session:
        assert taxonomy_store.current(session, settings).taxonomy.ids == stored.taxonomy.ids


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

"""Topic discovery: French keywords with accents, emerging flags, stable ids, storage.

Fixtures are French sentences composed here. The encoder is a tiny random-weights BERT over a
word-level vocabulary of those sentences: distilled static embeddings of it behave like a
random projection of bags of words, enough to separate topics that use different words.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Topic, TopicAssignment
from core.queries import list_topics, topic_trends
from core.settings import Settings
from core.store import insert_feedback, prepare_feedback
from jobs.topics import TopicJobConfig, run_topics
from nlp.encoder import EncoderConfig, TextEncoder
from nlp.taxonomy import load_taxonomy
from nlp.topics import (
    FRENCH_STOP_WORDS,
    DiscoveredTopic,
    FastTopicConfig,
    FastTopicModel,
    FrenchAnalyzer,
    StaticEmbedder,
    ThemeMatcher,
    TopicRef,
    lexicon_valence,
    make_label,
    match_topics,
    member_jaccard,
    sizes_per_day,
)
from nlp.topics.describe import merge_variants, variant_key

# --- fixtures: composed French verbatims --------------------------------------------------
LIVRAISON = [
    f"{who} {what}."
    for who, what in itertools.product(
        ["Colis", "Ma commande", "Le paquet", "La livraison"],
        [
            "arrivé avec deux semaines de retard",
            "toujours pas livré, le transporteur ne répond pas",
            "livré en retard par le livreur",
            "perdu par le transporteur, retard énorme",
        ],
    )
]
EMBALLAGE = [
    f"{what}, {how}."
    for what, how in itertools.product(
        [
            "Carton écrasé à la réception",
            "Emballage déchiré et carton éventré",
            "Boîte cabossée, emballage abîmé",
            "L'emballage était abîmé, carton écrasé",
        ],
        [
            "emballage bâclé",
            "aucune protection dans le carton",
            "papier bulle absent",
            "emballage déchiré",
        ],
    )
]
ECOLOGIE = [  # no taxonomy theme speaks of this: the emerging topic
    f"{what}, {how}."
    for what, how in itertools.product(
        [
            "Démarche écologique appréciée",
            "Bilan carbone affiché, démarche écologique",
            "Entreprise éco-responsable et engagée",
            "Empreinte carbone compensée, bravo",
        ],
        [
            "zéro déchet, éco-responsable",
            "arbres plantés pour la planète",
            "énergie verte et écologique",
            "engagement écologique sincère",
        ],
    )
]
GUICHET = [  # a fourth topic for the second run only (a genuinely new one)
    f"{what} {how}."
    for what, how in itertools.product(
        ["Horaires d'ouverture", "Accueil au guichet", "Guichet fermé", "Accueil du guichet"],
        [
            "du guichet trop courts",
            "au guichet vraiment désagréable",
            "samedi matin",
            "guichet ouvert tard",
        ],
    )
]
ALL_SENTENCES = LIVRAISON + EMBALLAGE + ECOLOGIE + GUICHET


def tiny_encoder(sentences: list[str], hidden: int = 256, seed: int = 0) -> TextEncoder:
    """A 1-layer random-weights BERT with a word-level tokenizer over `sentences`."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    pre = pre_tokenizers.Whitespace()
    words = sorted({w for s in sentences for w, _ in pre.pre_tokenize_str(s.lower())})
    vocab = {w: i for i, w in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=hidden,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    model = BertModel(config, add_pooling_layer=False)
    with torch.no_grad():  # words, not positions, should dominate what a piece's vector says
        model.embeddings.word_embeddings.weight.mul_(10.0)
    return TextEncoder(model, fast, name=f"tiny-{seed}", config=EncoderConfig(prefix="", threads=1))


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return tiny_encoder(ALL_SENTENCES)


def _ascii_mangled(word: str) -> str:
    """What BERTopic's English preprocessing makes of a word."""
    import re

    return re.sub(r"[^A-Za-z0-9 ]+", "", word)


# --- analyzer and stop words --------------------------------------------------------------
def test_analyzer_keeps_accents_and_drops_elisions_and_stop_words() -> None:
    terms = FrenchAnalyzer()(
        "L’emballage était abîmé, qu’il soit livré aujourd'hui ! jai pas reçu le colis <EMAIL>"
    )
    assert "emballage abîmé" in terms and "abîmé" in terms and "pas reçu" in terms
    # elided forms, auxiliaries, SMS spellings and PII placeholders are no keywords
    for word in ("l", "qu", "était", "il", "jai", "pas", "aujourd", "hui", "email"):
        assert word not in terms
    # a bigram never spans a clause break
    assert "abîmé livré" not in terms


def test_analyzer_keeps_rendez_vous_whole_and_drops_c_est_a_dire() -> None:
    terms = FrenchAnalyzer()("Rendez-vous annulé, c'est-à-dire aucun créneau. Pouvez-vous ?")
    assert "rendez-vous" in terms and "rendez-vous annulé" in terms
    assert not {"rendez", "est-à-dire", "pouvez"} & set(terms)


def test_stop_words_cover_elisions_sms_and_unaccented_forms() -> None:
    for word in ("qu", "jusqu", "d", "l", "bcp", "jsp", "pcq", "tjrs", "etait", "deja", "très"):
        assert word in FRENCH_STOP_WORDS
    for topical in ("retour", "personne", "délai", "prix", "livraison", "remboursement"):
        assert topical not in FRENCH_STOP_WORDS


def test_stop_words_cover_common_misaccented_spellings() -> None:
    # « trés » (for « très ») named a topic of 10,000 reviews: « attentes, délai, trés ».
    terms = FrenchAnalyzer()("Délai trés long, aprés la commande, déja vu, complétement raté")
    assert not {"trés", "aprés", "déja", "complétement"} & set(terms)
    assert "délai" in terms and "raté" in terms and "commande" in terms


def test_negated_words_keep_their_negation_in_keywords() -> None:
    """« pas conforme » gave « conforme », « ne fonctionne plus » « fonctionne »: a complaint
    topic was labelled by the opposite of what its customers said."""
    analyzer = FrenchAnalyzer()
    cases = {
        "Produit pas conforme": {"pas conforme", "produit pas conforme"},
        "Produit non conforme": {"non conforme"},
        "L'appli ne fonctionne plus": {"appli", "ne fonctionne plus"},
        "La lampe ne s’allume plus": {"ne s'allume plus"},
        "C'est n'importe quoi": {"n'importe quoi"},
        "Je n'ai pas reçu mon colis": {"pas reçu", "colis"},
        "jamais reçu": {"jamais reçu"},
        "Toujours pas de réponse": {"pas de réponse"},
        "Je n'ai reçu aucune réponse": {"aucune réponse"},
        "ça marche pas": {"marche pas"},
        "Retour sans problème": {"retour", "sans problème"},
    }
    for text, expected in cases.items():
        terms = set(analyzer(text))
        assert expected <= terms, (text, terms)
        negated = {"conforme", "fonctionne", "allume", "importe", "reçu", "réponse", "marche"}
        assert not negated & terms, (text, terms)
    # No negation, or none of the word's own: the word as written.
    assert "rapide" in analyzer("La livraison n'a jamais été aussi rapide")
    assert "reçu" in analyzer("Reçu plus rapide que prévu")
    assert not analyzer("Pas mal du tout")
    # The theme keywords (one word per term) say the negation too.
    assert ["pas conforme"] in FrenchAnalyzer(ngram_max=1, min_length=3).words("Pas conforme")


def test_negators_typed_as_in_sms_keep_their_word_and_are_no_keyword() -> None:
    """« jai pa recu » gave the keywords « pa » and « pa recu » (the SMS negator kept as a word,
    « pas » is a stop word), « jai jms recu » « jms », and « j'ai jamé reçu » « jamé » and
    « reçu » (the folded SMS key « jame » was never looked for)."""
    analyzer = FrenchAnalyzer()
    cases = {
        "jai pa recu ma commande": {"pa recu", "commande"},
        "ça marche pa": {"marche pa"},
        "jai jms recu": {"jms recu"},
        "j'ai jamé reçu": {"jamé reçu"},
    }
    for text, expected in cases.items():
        terms = set(analyzer(text))
        assert expected <= terms, (text, terms)
        assert not {"pa", "jms", "jamé", "reçu", "recu"} & terms, (text, terms)
        assert not any(t.startswith(("pa pa", "jms jms")) for t in terms), (text, terms)
    words = FrenchAnalyzer(ngram_max=1, min_length=3).words
    assert words("jai jms recu le colis") == [["jms recu", "colis"]]


def test_opinion_words_that_name_a_complaint_are_no_stop_words() -> None:
    # « nul » was listed as a pronoun: « Service client vraiment nul » gave no « nul ».
    assert "nul" in FrenchAnalyzer()("Vraiment nul")
    terms = FrenchAnalyzer()("Service client nul, appli nulle, livraison lente, bof, trop cher")
    assert {"client nul", "appli nulle", "livraison lente", "bof", "cher"} <= set(terms)
    for opinion in ("nul", "nulle", "bof", "cher", "chère", "lent", "lente"):
        assert opinion not in FRENCH_STOP_WORDS


def test_label_skips_words_said_by_a_phrase() -> None:
    assert (
        make_label(["emballage", "emballage abîmé", "carton", "abîmé", "bulle"])
        == "emballage abîmé, carton, bulle"
    )
    assert make_label(["colis abîmé", "colis", "abîmé", "livreur"]) == "colis abîmé, livreur"


def test_label_says_each_word_once() -> None:
    """On 5,000 Trustpilot reviews 14 of 23 labels said a word twice or three times:
    « excellent, excellent produit, excellent service », « parfait, parfait livraison,
    parfait rapide », « reçue, reçue rapidement, attentes »."""
    assert (
        make_label(["excellent", "excellent produit", "excellent service", "service", "prix"])
        == "excellent produit, service, prix"
    )
    assert (
        make_label(["parfait", "parfait livraison", "parfait rapide", "bouteille", "tarifs"])
        == "parfait livraison, bouteille, tarifs"
    )
    assert make_label(["reçu", "reçue rapidement", "attentes", "délai"]) == (
        "reçue rapidement, attentes, délai"
    )
    assert make_label(["livraison", "colis", "livraison colis", "retard"]) == (
        "livraison, colis, retard"
    )


# --- fast path ----------------------------------------------------------------------------
def _fit_fast(encoder: TextEncoder, docs: list[str], seed: int = 0) -> FastTopicModel:
    embedder = StaticEmbedder(encoder)
    x = embedder.fit_transform(docs)
    model = FastTopicModel(
        FastTopicConfig(n_topics=3, min_topic_size=5, n_init=10, random_state=seed)
    )
    return model.fit(docs, x)


def _purity(model: FastTopicModel, groups: list[list[str]], docs: list[str]) -> float:
    truth = np.concatenate([[g] * len(grp) for g, grp in enumerate(groups)])
    assert len(truth) == len(docs)
    labels = model.labels_
    assert labels is not None
    agree = sum(np.bincount(truth[labels == k]).max() for k in set(labels.tolist()) if k >= 0)
    return agree / len(docs)


def test_fast_path_finds_the_topics_with_accented_keywords(encoder: TextEncoder) -> None:
    groups = [LIVRAISON, EMBALLAGE, ECOLOGIE]
    docs = [d for g in groups for d in g]
    model = _fit_fast(encoder, docs)
    assert _purity(model, groups, docs) >= 0.9
    words = {w for t in model.topics_ for kw in t.keywords for w in kw.split()}
    assert {"écologique", "écrasé", "éco-responsable"} <= words
    # BERTopic's English mode would have produced these; they must not appear.
    assert not words & {_ascii_mangled(w) for w in ("écologique", "écrasé", "déchiré")}
    for topic in model.topics_:
        assert len(topic.representatives) == 3
        assert len({docs[i] for i in topic.representatives}) == 3
        assert all(model.labels_[i] == topic.index for i in topic.representatives)


def test_fast_path_names_a_topic_that_holds_most_of_the_corpus(encoder: TextEncoder) -> None:
    """The complaint most customers write about is in over half the documents: its words
    must still be its keywords (a document-frequency cap left it none, labelled "topic 0",
    now "Sujet n°1")."""
    late = [d for d in LIVRAISON if "retard" in d]
    for dominant in (late * 4, [LIVRAISON[0]] * 40):  # near-identical, then identical texts
        docs = dominant + ECOLOGIE
        model = FastTopicModel(FastTopicConfig(n_topics=2, min_topic_size=5)).fit(
            docs, StaticEmbedder(encoder).fit_transform(docs)
        )
        biggest = model.topics_[0]
        assert biggest.size > len(ECOLOGIE)
        assert "retard" in {w for kw in biggest.keywords for w in kw.split()}, biggest.label
        assert not biggest.label.startswith("Sujet n°")


def test_plural_and_singular_are_one_keyword_in_the_most_frequent_spelling() -> None:
    """Labels read « vins, bouteilles, vin » and « thés, thé, café »: a simple plural (-s, -x)
    folds into one keyword as accents do, shown as most of the topic's verbatims write it."""
    wine = [f"Le vin {w} est bon" for w in ("rouge", "blanc", "rosé", "bio")] * 3 + [
        f"Des vins {w} et des bouteilles" for w in ("rouges", "blancs", "rosés")
    ] * 2
    tea = [f"Le thé {w} et le café" for w in ("vert", "noir", "blanc", "fumé")] * 3 + [
        f"Des thés {w} en vrac" for w in ("verts", "noirs", "fumés")
    ] * 2
    docs = wine + tea
    x = np.zeros((len(docs), 8), dtype=np.float32)
    x[: len(wine), 0] = 1.0
    x[len(wine) :, 1] = 1.0
    x += np.random.default_rng(0).normal(0, 0.01, x.shape).astype(np.float32)
    model = FastTopicModel(FastTopicConfig(n_topics=2, min_topic_size=5)).fit(docs, x)
    keywords = {t.label: t.keywords for t in model.topics_}
    folded = [(variant_key(k), k) for kws in keywords.values() for k in kws]
    assert len({key for key, _ in folded}) == len(folded), keywords
    words = {k for _, k in folded}
    assert {"vin", "thé"} <= words and not {"vins", "thés"} & words, keywords
    # without counts the best-weighted spelling is kept, at its weight
    assert merge_variants([("thés", 0.9), ("café", 0.5), ("thé", 0.4), ("thes", 0.1)]) == [
        ("thés", 0.9),
        ("café", 0.5),
    ]
    assert merge_variants([("bijoux", 0.9), ("bijou", 0.4)], {"bijoux": 3, "bijou": 7}) == [
        ("bijou", 0.9)
    ]


def test_masculine_and_feminine_are_one_keyword() -> None:
    """On 5,000 Trustpilot reviews labels read « emballé, emballée, produits emballés »,
    « contente, content, vivement », « satisfait, satisfaite, parfaitement »: a feminine
    (-e, -ée, -ue, -te) is the same word to a CX analyst, one keyword as a plural is."""
    packed = [
        f"{a} {b}"
        for a, b in itertools.product(
            ["Colis bien emballé", "Commande bien emballée", "Produits emballés avec soin"],
            ["je suis satisfait", "je suis satisfaite", "très contente", "très content"],
        )
    ]
    late = [
        f"{a} {b}"
        for a, b in itertools.product(
            ["Livraison en retard", "Retard de livraison", "Toujours en attente"],
            ["colis reçu", "commande reçue", "rien reçu", "pas reçue"],
        )
    ]
    docs = packed + late
    x = np.zeros((len(docs), 8), dtype=np.float32)
    x[: len(packed), 0] = 1.0
    x[len(packed) :, 1] = 1.0
    x += np.random.default_rng(0).normal(0, 0.01, x.shape).astype(np.float32)
    model = FastTopicModel(FastTopicConfig(n_topics=2, min_topic_size=5)).fit(docs, x)
    pairs = [("emballé", "emballée"), ("satisfait", "satisfaite"), ("content", "contente")]
    pairs += [("reçu", "reçue")]
    for topic in model.topics_:
        words = set(topic.keywords)
        assert words, topic
        for pair in pairs:
            assert not set(pair) <= words, (pair, topic.keywords)
    assert merge_variants([("emballées", 0.9), ("colis", 0.5), ("emballé", 0.4)]) == [
        ("emballées", 0.9),
        ("colis", 0.5),
    ]
    assert merge_variants([("parfaite", 0.9), ("parfaits", 0.4)], {"parfaits": 9}) == [
        ("parfaits", 0.9)
    ]
    assert variant_key("grande") == variant_key("grand") != variant_key("grain")


def test_topic_without_keywords_is_generic_not_emerging(encoder: TextEncoder) -> None:
    """Verbatims made only of stop words ("Très bien, merci !") cluster together; with no
    keyword nothing new is named, so the topic is no emerging one topping the dashboard."""
    fillers = [
        f"{a} {b}"
        for a, b in itertools.product(
            ["Très bien", "Toujours au top", "Rien à dire", "Super, merci"], ["!", ".", "!!", "…"]
        )
    ]
    docs = LIVRAISON + ECOLOGIE + fillers
    model = _fit_fast(encoder, docs)
    empty = [t for t in model.topics_ if not t.keywords]
    assert empty, [t.label for t in model.topics_]
    # No keyword to name it: a French fallback label, numbered from 1.
    assert all(t.label == f"Sujet n°{t.index + 1}" for t in empty), [t.label for t in empty]
    matches = ThemeMatcher(load_taxonomy("ecommerce"), valence=lexicon_valence()).match(
        model.topics_
    )
    by_index = {t.index: m for t, m in zip(model.topics_, matches, strict=True)}
    assert all(not by_index[t.index].is_emerging for t in empty)
    assert all(by_index[t.index].evidence == "generic" for t in empty)
    # the ecology topic, which names something, still is emerging
    assert any(m.is_emerging for m in matches)


def test_fast_path_on_a_window_of_stop_words_warns_nothing(encoder: TextEncoder) -> None:
    """Stop words and emoji only (« Très bien 👍 ») embed every verbatim alike: `verbatim
    topics --method fast` printed scikit-learn's « ConvergenceWarning: Number of distinct
    clusters (1) found smaller than n_clusters (2) » on stderr."""
    import warnings

    docs = [
        f"{a} {b}"
        for a, b in itertools.product(["Très bien", "Super", "Merci", "Bien"], ["👍", "!", "😀"])
    ] * 3
    x = StaticEmbedder(encoder).fit_transform(docs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = FastTopicModel(FastTopicConfig(min_topic_size=5)).fit(docs, x)
    assert [str(w.message) for w in caught] == []
    assert [(t.label, t.size) for t in model.topics_] == [("Sujet n°1", len(docs))]


def test_online_fast_path_in_chunks(encoder: TextEncoder) -> None:
    groups = [LIVRAISON, EMBALLAGE, ECOLOGIE]
    docs = [d for g in groups for d in g]
    order = np.random.default_rng(0).permutation(len(docs))
    x = StaticEmbedder(encoder).fit_transform(docs)
    model = FastTopicModel(FastTopicConfig(n_topics=3, min_topic_size=5, batch_size=16))
    for chunk in np.array_split(order, 3):  # a stream: one chunk of embeddings at a time
        model.partial_fit(x[chunk], expected_docs=len(docs))
    model.describe_docs(docs, x)
    assert _purity(model, groups, docs) >= 0.9
    labels, sims = model.transform(x)  # nearest topic centroid: the fit's labels, mostly
    assert (labels == model.labels_).mean() >= 0.9 and (sims > 0).all()


def test_static_embedder_distils_each_piece_once_and_caches(
    encoder: TextEncoder, tmp_path: Path
) -> None:
    cache = tmp_path / "static.npz"
    first = StaticEmbedder(encoder, cache_path=cache)
    x1 = first.fit_transform(LIVRAISON + EMBALLAGE)
    assert first.distilled_ > 0 and cache.is_file()
    np.testing.assert_allclose(np.linalg.norm(x1, axis=1), 1.0, atol=1e-5)
    second = StaticEmbedder(encoder, cache_path=cache)
    x2 = second.fit_transform(LIVRAISON + EMBALLAGE)
    assert second.distilled_ == 0  # every piece came from the cache
    np.testing.assert_allclose(x1, x2, atol=2e-3)  # float16 cache
    # Another encoder's cache is not reused.
    other = StaticEmbedder(tiny_encoder(ALL_SENTENCES, seed=1), cache_path=cache)
    assert other.known_pieces == 0


def test_a_static_cache_that_cannot_be_written_is_a_warning(
    encoder: TextEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The Docker image's model dir is built by root at `verbatim setup` and read-only to the
    user that runs Verbatim: `verbatim topics --method fast` failed there (`error: [Errno 13]
    Permission denied: '/opt/verbatim/models/static-….npz.tmp.npz'`). The cache is a speed-up:
    not written, the topics are the same."""
    blocked = tmp_path / "file"
    blocked.write_text("not a directory", "utf-8")
    cache = blocked / "static.npz"  # its parent cannot be made: an OSError, as EACCES / EROFS
    embedder = StaticEmbedder(encoder, cache_path=cache)
    with caplog.at_level(logging.WARNING, logger="nlp.topics.static"):
        x = embedder.fit_transform(LIVRAISON + EMBALLAGE)
    reference = StaticEmbedder(encoder).fit_transform(LIVRAISON + EMBALLAGE)
    np.testing.assert_allclose(x, reference, atol=1e-6)
    assert "static cache" in caplog.text and "not written" in caplog.text
    assert not cache.exists()


def test_static_embedder_reads_long_verbatims_without_a_model_length_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The fast path tokenises whole texts but never feeds them to the model: a verbatim over
    the model's length printed « Token indices sequence length is longer than the specified
    maximum … will result in indexing errors » on every `verbatim topics --method fast`."""
    own = tiny_encoder(ALL_SENTENCES, seed=2)  # its own tokenizer: the warning is once each
    own.tokenizer.model_max_length = 16
    long_text = " ".join(LIVRAISON)  # far over 16 pieces
    x = StaticEmbedder(own).fit_transform([long_text, *EMBALLAGE])
    assert x.shape[0] == 1 + len(EMBALLAGE)
    assert "indexing errors" not in capfd.readouterr().err


# --- stable ids -----------------------------------------------------------------------------
def _topic(index: int, keywords: tuple[str, ...], centroid: list[float]) -> DiscoveredTopic:
    c = np.asarray(centroid, dtype=np.float32)
    return DiscoveredTopic(
        index, ", ".join(keywords), keywords, (1.0,) * len(keywords), 10, c / np.linalg.norm(c), ()
    )


def test_match_keeps_ids_of_reordered_topics_and_leaves_new_ones_unmatched() -> None:
    old = [
        TopicRef(7, ("retard", "colis", "transporteur"), np.array([1.0, 0, 0], np.float32)),
        TopicRef(9, ("carton", "écrasé", "emballage"), np.array([0, 1.0, 0], np.float32)),
    ]
    new = [
        _topic(0, ("carton", "emballage", "déchiré"), [0.1, 1, 0]),
        _topic(1, ("guichet", "horaires", "accueil"), [0, 0, 1]),
        _topic(2, ("colis", "retard", "livreur"), [1, 0.1, 0]),
    ]
    assert match_topics(old, new) == {0: 9, 2: 7}


def test_member_overlap_decides_when_keywords_drift() -> None:
    old = [TopicRef(1, ("alpha",)), TopicRef(2, ("beta",))]
    new = [_topic(0, ("gamma",), [1, 0]), _topic(1, ("delta",), [0, 1])]
    # The documents of old topic 2 are now topic 0, those of old 1 are topic 1.
    pairs = [(2, 0)] * 10 + [(1, 1)] * 8 + [(None, 0)] * 3
    overlap = member_jaccard(old, new, pairs)
    assert match_topics(old, new, members=overlap) == {0: 2, 1: 1}
    assert match_topics(old, new) == {}  # without that evidence nothing matches


def test_a_topic_without_keywords_keeps_its_id_on_a_re_run() -> None:
    """A window of stop words and emoji only makes one topic without keywords, its centroid
    the zero vector: every re-run of `verbatim topics --method fast` stored it under a new
    id (« #1 Sujet n°1 », then « #2 Sujet n°2 »…), though it held the same verbatims. Missing
    keywords and a zero centroid are no evidence against the match."""
    old = [TopicRef(1, (), np.zeros(3, np.float32)), TopicRef(2, ("colis",), None)]
    new = [dataclasses.replace(_topic(0, (), [1, 0, 0]), centroid=np.zeros(3, np.float32))]
    overlap = member_jaccard(old, new, [(1, 0)] * 30)
    assert match_topics(old, new, members=overlap) == {0: 1}
    # a topic that has keywords still differs from one that has none
    assert match_topics(old[1:], [_topic(0, (), [1, 0, 0])]) == {}


# --- emerging -------------------------------------------------------------------------------
def test_emerging_flag_from_detector_hits_and_seed_keywords() -> None:
    tax = load_taxonomy("ecommerce")
    topics = [
        _topic(0, ("colis", "retard", "transporteur"), [1, 0]),
        _topic(1, ("écologique", "carbone", "planète"), [0, 1]),
    ]
    labels = np.array([0, 0, 1, 1])
    matches = ThemeMatcher(tax).match(topics, labels, [{"livraison"}, set(), set(), set()])
    assert matches[0].theme == "livraison" and not matches[0].is_emerging
    assert matches[1].theme is None and matches[1].is_emerging
    # keyword evidence alone also matches a theme (no detector output given)
    alone = ThemeMatcher(tax).match(topics)
    assert alone[0].theme == "livraison" and alone[0].evidence == "keywords"
    assert alone[1].is_emerging
    # praise about nothing in particular is generic, not emerging (opinion-word keywords)
    praise = _topic(2, ("parfait", "nickel", "impeccable", "rien redire", "habitude"), [1, 1])
    generic, eco = ThemeMatcher(tax, valence=lexicon_valence()).match([praise, topics[1]])
    assert generic.evidence == "generic" and not generic.is_emerging and generic.theme is None
    assert eco.is_emerging and eco.opinion_share < 0.5
    assert ThemeMatcher(tax).match([praise])[0].is_emerging  # no lexicon: cannot tell


def test_sizes_per_day() -> None:
    d1, d2 = date(2026, 3, 1), date(2026, 3, 2)
    assert sizes_per_day([4, 4, -1, 5, 4], [d1, d2, d2, d2, d2]) == {4: {d1: 1, d2: 2}, 5: {d2: 1}}


# --- the job and storage --------------------------------------------------------------------
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _ingest(session: Session, texts: list[str], start: datetime, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for n, text in enumerate(texts):
        at = start + timedelta(days=rng.randrange(5), hours=n % 7)
        row = prepare_feedback(
            {"text": text, "created_at": at.isoformat(), "id": f"{seed}-{n}"},
            source="shop",
            channel="review",
            max_text_chars=1000,
            now=START + timedelta(days=30),
        )
        assert isinstance(row, dict) and row["is_french"], text
        rows.append(row)
    insert_feedback(session, rows)
    session.commit()


def _job(seed: int) -> TopicJobConfig:
    return TopicJobConfig(
        method="fast",
        fast=FastTopicConfig(n_topics=None, min_topic_size=5, random_state=seed),
        min_docs=10,
    )


def _by_theme(session: Session) -> dict[str | None, list[Topic]]:
    out: dict[str | None, list[Topic]] = {}
    for t in session.execute(select(Topic)).scalars():
        out.setdefault(t.theme, []).append(t)
    return out


def test_job_stores_stable_topics_with_emerging_flag_and_trends(
    sessions: sessionmaker[Session], encoder: TextEncoder, tmp_path: Path
) -> None:
    tax = load_taxonomy("ecommerce")
    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=1)
    cfg = _job(seed=1)
    cfg = TopicJobConfig(
        method="fast",
        fast=FastTopicConfig(n_topics=3, min_topic_size=5, random_state=1),
        min_docs=10,
    )
    first = run_topics(
        sessions,
        encoder=encoder,
        taxonomy=tax,
        config=cfg,
        static_cache=tmp_path / "static.npz",
        now=START + timedelta(days=6),
    )
    assert first.skipped is None and len(first.topics) == 3
    assert all(t.status == "new" for t in first.topics)
    with sessions() as s:
        themes = _by_theme(s)
        assert set(themes) == {"livraison", "emballage", None}
        emerging = themes[None][0]
        assert emerging.is_emerging and not themes["livraison"][0].is_emerging
        assert any("écologique" in kw for kw in emerging.keywords)
        # What the API lists is what was stored: keywords, 3 examples, size.
        page, total = list_topics(s)
        assert total == 3 and page[0].id == emerging.id  # emerging first
        examples = emerging.representatives
        assert len(examples) == 3 and all(e["text"] in ECOLOGIE for e in examples)
        from service.schemas import TopicOut

        shown = TopicOut.model_validate(page[0]).model_dump()
        assert shown["is_emerging"] and shown["keywords"] == emerging.keywords
        assert [e["feedback_id"] for e in shown["representatives"]] == [
            e["feedback_id"] for e in examples
        ]
        counted = s.execute(
            select(func.count())
            .select_from(TopicAssignment)
            .where(TopicAssignment.topic_id == emerging.id)
        ).scalar_one()
        assert emerging.size == counted == len(ECOLOGIE)
        trend = topic_trends(s, [emerging.id])[emerging.id]
        assert sum(n for _, n in trend) == emerging.size
        assert [d for d, _ in trend] == sorted(d for d, _ in trend)
        ids_before = {theme: ts[0].id for theme, ts in themes.items()}

    # Second run: more verbatims, a new topic, another k-means seed (local indices move).
    with sessions() as s:
        _ingest(s, GUICHET, START + timedelta(days=5), seed=2)
    cfg2 = TopicJobConfig(
        method="fast",
        fast=FastTopicConfig(n_topics=4, min_topic_size=5, random_state=7),
        min_docs=10,
    )
    second = run_topics(
        sessions,
        encoder=encoder,
        taxonomy=tax,
        config=cfg2,
        static_cache=tmp_path / "static.npz",
        now=START + timedelta(days=12),
    )
    assert sorted(t.status for t in second.topics) == ["kept", "kept", "kept", "new"]
    with sessions() as s:
        themes = _by_theme(s)
        for theme, old_id in ids_before.items():
            assert any(t.id == old_id for t in themes[theme]), theme
        new = [t for t in s.execute(select(Topic)).scalars() if t.id not in ids_before.values()]
        assert len(new) == 1 and new[0].is_emerging
        assert any("guichet" in kw for kw in new[0].keywords)
        total = s.execute(select(func.count()).select_from(TopicAssignment)).scalar_one()
        assert (
            total == sum(t.size for t in s.execute(select(Topic)).scalars()) == len(ALL_SENTENCES)
        )


def test_api_lists_only_topics_that_still_hold_verbatims(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    """A re-run with fewer topics leaves the others without verbatims (size 0): their rows
    stay so a later run can revive their ids, but /topics must not show them (an emerging
    topic of 0 verbatims topped the list)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    tax = load_taxonomy("ecommerce")
    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=8)

    def run(n_topics: int) -> None:
        cfg = TopicJobConfig(
            method="fast",
            fast=FastTopicConfig(n_topics=n_topics, min_topic_size=5, random_state=1),
            min_docs=10,
        )
        assert not run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg).skipped

    run(3)
    run(1)
    with sessions() as s:
        sizes = {t.id: t.size for t in s.execute(select(Topic)).scalars()}
    live = {tid for tid, n in sizes.items() if n > 0}
    assert len(live) == 1 and len(sizes) >= 3  # the retired rows are kept
    client = TestClient(
        create_app(
            settings.model_copy(update={"dashboard_read_without_key": True, "api_warm_up": False}),
            engine=engine,
        ),
        base_url="http://127.0.0.1",
    )
    for query in ("", "?emerging=true", "?emerging=false"):
        page = client.get(f"/topics{query}")
        assert page.status_code == 200
        items = page.json()["items"]
        assert {t["id"] for t in items} <= live and all(t["size"] > 0 for t in items)
        assert page.json()["total"] == len(items)
    assert client.get("/topics").json()["total"] == 1


def test_rerun_drops_verbatims_no_longer_french(
    sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    """A verbatim that `enrich --reanalyze` found foreign after a topics run is in no later
    run's window: its assignment stayed, counted in its topic's size (/topics) for ever."""
    from sqlalchemy import update

    from core.models import Feedback

    tax = load_taxonomy("ecommerce")
    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=9)
    cfg = TopicJobConfig(
        method="fast", fast=FastTopicConfig(n_topics=3, min_topic_size=5), min_docs=10
    )
    assert not run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg).skipped
    with sessions() as s:
        foreign = s.execute(select(TopicAssignment.feedback_id).limit(1)).scalar_one()
        # What enrich's language re-detection writes for a review now read as English.
        s.execute(
            update(Feedback).where(Feedback.id == foreign).values(language="en", is_french=False)
        )
        s.commit()
    again = run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg)
    assert again.documents == 47
    with sessions() as s:
        assert s.get(TopicAssignment, foreign) is None
        total = s.execute(select(func.count()).select_from(TopicAssignment)).scalar_one()
        assert total == sum(t.size for t in s.execute(select(Topic)).scalars()) == 47


def test_api_shows_a_renamed_theme_under_its_current_id(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    """A taxonomy rename after a topics run: /topics said `livraison`, an id the taxonomy no
    longer has, so the « Sujets » view offered to promote the topic instead of linking it to
    its theme (/alerts shows a former id as the current one)."""
    from fastapi.testclient import TestClient

    from core import taxonomy_store
    from service.app import create_app

    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=10)
        tax = taxonomy_store.current(s, settings).taxonomy
        s.commit()
    cfg = TopicJobConfig(
        method="fast", fast=FastTopicConfig(n_topics=3, min_topic_size=5), min_docs=10
    )
    assert not run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg).skipped
    client = TestClient(
        create_app(
            settings.model_copy(update={"dashboard_read_without_key": True, "api_warm_up": False}),
            engine=engine,
        ),
        base_url="http://127.0.0.1",
    )
    assert "livraison" in {t["theme"] for t in client.get("/topics").json()["items"]}
    with sessions() as s:
        taxonomy_store.save(s, settings, tax.rename("livraison", "expedition"), "analyst")
        s.commit()
    themes = {t["theme"] for t in client.get("/topics").json()["items"]}
    assert "expedition" in themes and "livraison" not in themes


def test_a_topic_left_without_verbatims_closes_its_incident_and_says_so(
    sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    """A topic a later run leaves without a verbatim (size 0, retired) kept its open alert
    and incident on /alerts, /incidents and the digest until the cooldown ran out, and the
    channel told of it never heard it ended (as a removed theme before close_removed)."""
    from core.models import Alert, Incident, OutboxMessage
    from nlp.spikes import topic_theme

    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=10)
    tax = load_taxonomy("ecommerce")
    fast = FastTopicConfig(n_topics=3, min_topic_size=5)
    first = run_topics(
        sessions, encoder=encoder, taxonomy=tax, config=TopicJobConfig(method="fast", fast=fast)
    )
    assert len(first.topics) == 3
    day, now = START.date(), START + timedelta(days=30)
    with sessions() as s:
        for t in first.topics:
            s.get(Topic, t.id).label = f"Sujet {t.id} & <promo>"  # as a label may read
            inc = Incident(theme=topic_theme(t.id), team="default", status="acknowledged",
                           first_day=day, last_day=day, severity="high", kinds=["emerging"],
                           signals={}, drivers=[], examples=[], historical=False, revision=1,
                           notified_severity="high", acknowledged_by="cx",
                           created_at=now, updated_at=now)  # fmt: skip
            s.add(inc)
            s.flush()
            s.add(Alert(alert_key=f"k{t.id}", theme=inc.theme, kind="emerging", status="open",
                        first_day=day, last_day=day, severity="high", observed=9.0,
                        expected=1.0, p_value=1e-6, details={}, created_at=now,
                        updated_at=now, incident_id=inc.id))  # fmt: skip
            s.add(OutboxMessage(incident_id=inc.id, revision=1, route="default",
                                payload={"text": "ouverture"}, status="sent"))  # fmt: skip
        s.commit()
    again = TopicJobConfig(method="fast", fast=replace(fast, n_topics=2), min_docs=10)
    second = run_topics(sessions, encoder=encoder, taxonomy=tax, config=again)
    with sessions() as s:
        empty = {t.id for t in s.execute(select(Topic).where(Topic.size == 0)).scalars()}
        assert empty
        for inc in s.execute(select(Incident)).scalars():
            alert = s.execute(select(Alert).where(Alert.incident_id == inc.id)).scalar_one()
            tid = int(inc.theme.removeprefix("topic:"))
            if tid not in empty:
                assert inc.status == "acknowledged" and alert.status == "open"
                continue
            assert inc.status == "resolved" and alert.status == "resolved"
            assert inc.resolved_by == "topics" and inc.resolve_note and "sujet" in inc.resolve_note
            last = s.execute(
                select(OutboxMessage).where(
                    OutboxMessage.incident_id == inc.id, OutboxMessage.status == "pending"
                )
            ).scalar_one()
            assert last.revision == 2 and last.payload["text"].startswith(
                f"Incident n° {inc.id} clos : le sujet émergent « Sujet {tid} &amp; &lt;promo&gt; »"
            )
    assert second.closed == len(empty)


def test_topic_without_keywords_is_named_after_its_stable_id(
    sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    """A topic with no keyword was stored as « Sujet n°N », N its size rank in the run: the
    same topic (same id) was « Sujet n°2 », then « Sujet n°1 » once it grew, the number of
    another topic's id."""
    fillers = [
        f"{a} {b}"
        for a, b in itertools.product(
            ["Très bien", "Toujours au top", "Rien à dire", "Super, merci"], ["!", ".", "!!", "…"]
        )
    ]
    tax = load_taxonomy("ecommerce")
    cfg = TopicJobConfig(
        method="fast", fast=FastTopicConfig(n_topics=2, min_topic_size=5), min_docs=10
    )

    def generic() -> list[Topic]:
        with sessions() as s:
            return [t for t in s.execute(select(Topic)).scalars() if not t.keywords]

    with sessions() as s:
        _ingest(s, LIVRAISON + fillers[:8], START, seed=11)
    first = run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg)
    [before] = generic()
    assert before.label == f"Sujet n°{before.id}"
    assert before.label in {t.label for t in first.topics}
    with sessions() as s:  # the generic topic grows past the other one
        _ingest(s, fillers[8:] + fillers, START, seed=12)
    second = run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg)
    [after] = generic()
    assert after.id == before.id and after.size > len(LIVRAISON)
    assert after.label == before.label
    assert after.label in {t.label for t in second.topics}


def test_job_skips_small_windows(sessions: sessionmaker[Session], encoder: TextEncoder) -> None:
    with sessions() as s:
        _ingest(s, LIVRAISON[:5], START, seed=3)
    result = run_topics(
        sessions, encoder=encoder, taxonomy=load_taxonomy("ecommerce"), config=_job(seed=0)
    )
    assert result.skipped and result.topics == []
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Topic)).scalar_one() == 0


def test_bertopic_job_skips_a_window_without_a_topic_word(
    sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    # « Très bien », « Bien » and emoji only: BERTopic's keyword vectorizer found no word
    # and `verbatim topics` ended on « ValueError: empty vocabulary » after its clustering.
    with sessions() as s:
        _ingest(s, ["Très bien", "Très bien !", "Bien 👍", "Très bien, merci."] * 6, START, seed=7)
    result = run_topics(
        sessions,
        encoder=encoder,
        taxonomy=load_taxonomy("ecommerce"),
        config=TopicJobConfig(method="bertopic", min_docs=10),
    )
    assert result.documents == 24 and result.topics == []
    assert result.skipped and "no word" in result.skipped
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Topic)).scalar_one() == 0


# --- BERTopic path (imports BERTopic/UMAP: ~10-30 s, hence `slow`) -------------------------
@pytest.mark.slow
def test_bertopic_path_keeps_accents_in_topic_words(encoder: TextEncoder) -> None:
    from nlp.topics import BertopicConfig, BertopicTopicModel

    groups = [LIVRAISON, EMBALLAGE, ECOLOGIE]
    docs = [d for g in groups for d in g]
    x = StaticEmbedder(encoder).fit_transform(docs)
    model = BertopicTopicModel(BertopicConfig(min_topic_size=5, n_neighbors=8)).fit(docs, x)
    assert model.model_.language == "french"
    assert len(model.topics_) >= 2
    words = {w for t in model.topics_ for kw in t.keywords for w in kw.split()}
    accented = {w for w in words if not w.isascii()}
    assert accented & {"écologique", "écrasé", "éco-responsable", "déchiré", "abîmé", "livré"}
    assert not words & {_ascii_mangled(w) for w in accented}
    assert all(len(t.representatives) == 3 for t in model.topics_)
    labels, sims = model.transform(x[:4])
    np.testing.assert_array_equal(labels, model.labels_[:4])


# A week of one source: ten complaints, five of them about orders and five about products.
SMALL_WINDOW_SUBJECTS = [
    ("colis", "en retard"),
    ("remboursement", "toujours attendu"),
    ("emballage", "abîmé"),
    ("taille", "trop grande"),
    ("couleur", "différente de la photo"),
    ("batterie", "vite déchargée"),
    ("écran", "rayé"),
    ("livreur", "désagréable"),
    ("facture", "erronée"),
    ("notice", "illisible"),
]
SMALL_WINDOW_TAILS = [
    "hélas",
    "encore une fois",
    "cette semaine",
    "depuis lundi",
    "pour ma fille",
    "sans explication",
    "au bout de trois jours",
    "après deux essais",
    "chez moi",
    "comme d'habitude",
]


def small_window(per: int = 30, dim: int = 64) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(docs, embeddings, subject of each): subjects that overlap inside two broad groups,
    as real reviews do (the praise / complaint or product / order split dominates)."""
    rng = np.random.default_rng(0)
    broad = rng.normal(size=(2, dim))
    docs, x, truth = [], [], []
    for g, (noun, adj) in enumerate(SMALL_WINDOW_SUBJECTS):
        centre = broad[g % 2] + 0.15 * rng.normal(size=dim)
        for i in range(per):
            tail = SMALL_WINDOW_TAILS[i % len(SMALL_WINDOW_TAILS)]
            docs.append(f"{noun.capitalize()} {adj} {tail} ({i}).")
            x.append(centre + 0.3 * rng.normal(size=dim))
            truth.append(g)
    return docs, np.asarray(x, dtype=np.float32), np.asarray(truth)


@pytest.mark.slow
def test_bertopic_small_window_finds_readable_topics_not_two_lumps() -> None:
    # 300 verbatims: HDBSCAN kept the two broad groups (150 + 150), useless to an analyst.
    from sklearn.metrics import adjusted_rand_score

    from nlp.topics import BertopicTopicModel

    docs, x, truth = small_window()
    model = BertopicTopicModel().fit(docs, x)
    sizes = [t.size for t in model.topics_]
    assert 8 <= len(model.topics_) <= 20, sizes
    assert max(sizes) <= 0.25 * len(docs) and (model.labels_ >= 0).all()
    assert adjusted_rand_score(truth, model.labels_) > 0.6
    nouns = {noun for noun, _ in SMALL_WINDOW_SUBJECTS}
    assert sum(any(n in t.label for n in nouns) for t in model.topics_) >= 8


@pytest.mark.slow
def test_bertopic_keywords_are_shared_by_several_verbatims() -> None:
    # Each verbatim also names its own shop: on idf alone, such words of one verbatim
    # outranked those its topic shares, and labels read « bakorix, colis retard, … ».
    from nlp.topics import BertopicTopicModel
    from nlp.topics.vectorize import FrenchAnalyzer

    syllables = ["ba", "ko", "ri", "tu", "mé", "lo", "za", "pi", "nu", "vo"]
    _, x, truth = small_window()
    docs = [
        f"{noun.capitalize()} {adj}, vu chez {syllables[i // 100]}{syllables[i // 10 % 10]}"
        f"{syllables[i % 10]}x."
        for i, (noun, adj) in enumerate(SMALL_WINDOW_SUBJECTS[g] for g in truth)
    ]
    model = BertopicTopicModel().fit(docs, x)
    analyzer = FrenchAnalyzer()
    for topic in model.topics_:
        members = [set(analyzer(docs[i])) for i in np.flatnonzero(model.labels_ == topic.index)]
        assert len(topic.keywords) >= 3
        for keyword in topic.keywords:
            assert sum(keyword in terms for terms in members) >= 2, (keyword, topic.label)


@pytest.mark.slow
def test_bertopic_keeps_identical_verbatims_in_one_topic() -> None:
    # 200 × « Très bien » among 60 verbatims on 6 subjects: UMAP spreads the copies apart
    # and the small-window k-means (k=8) cut them into two topics of the same verbatim; kept
    # whole, k=8 cut a subject in two topics of one name (« couleur » twice).
    from nlp.topics import BertopicTopicModel

    rng = np.random.default_rng(0)
    dim = 64
    others = [noun for noun, _ in SMALL_WINDOW_SUBJECTS[:6]]
    docs = ["Très bien"] * 200 + [f"{others[i % 6].capitalize()} ({i})." for i in range(60)]
    x = np.concatenate(
        [
            np.repeat(rng.normal(size=(1, dim)), 200, axis=0),
            3 * np.eye(dim)[np.arange(60) % 6] + 0.1 * rng.normal(size=(60, dim)),
        ]
    ).astype(np.float32)
    model = BertopicTopicModel().fit(docs, x)
    assert len(set(model.labels_[:200].tolist())) == 1, np.bincount(model.labels_[:200] + 1)
    assert model.topics_[0].size == 200
    # The others form their own topics, one subject each, one name each.
    assert len({t.label for t in model.topics_}) == len(model.topics_) == 7
    for noun in others:
        assert sum(noun in t.keywords for t in model.topics_) == 1, noun


@pytest.mark.postgres
def test_job_on_postgres(pg_sessions: sessionmaker[Session], encoder: TextEncoder) -> None:
    with pg_sessions() as s:
        _ingest(s, LIVRAISON + ECOLOGIE, START, seed=4)
    cfg = TopicJobConfig(
        method="fast", fast=FastTopicConfig(n_topics=2, min_topic_size=5), min_docs=10
    )
    tax = load_taxonomy("ecommerce")
    first = run_topics(pg_sessions, encoder=encoder, taxonomy=tax, config=cfg)
    again = run_topics(pg_sessions, encoder=encoder, taxonomy=tax, config=cfg)
    assert {t.id for t in first.topics} == {t.id for t in again.topics}
    assert all(t.status == "kept" for t in again.topics)
    with pg_sessions() as s:
        page, total = list_topics(s, emerging=True)
        assert total == 1 and any("écologique" in kw for kw in page[0].keywords)
        assert sum(n for _, n in topic_trends(s)[page[0].id]) == len(ECOLOGIE)


def test_cli_topics(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: TextEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from typer.testing import CliRunner

    from verbatim_cli import app

    model_dir = tmp_path / "tiny-encoder"
    encoder.model.save_pretrained(model_dir)
    encoder.tokenizer.save_pretrained(model_dir)
    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=5)
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_MODEL_DIR", str(tmp_path / "models"))
    runner = CliRunner()
    args = [
        "topics",
        "--method",
        "fast",
        "--encoder",
        str(model_dir),
        "--n-topics",
        "3",
        "--min-topic-size",
        "5",
    ]
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)  # stderr carries the taxonomy version line
    assert result["documents"] == 48 and len(result["topics"]) == 3
    assert sum(t["is_emerging"] for t in result["topics"]) == 1
    assert list((tmp_path / "models").glob("static-*.npz"))  # piece cache kept
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "EMERGING" in text.output and "kept" in text.output
    bad = runner.invoke(app, ["topics", "--method", "umap"])
    assert bad.exit_code == 2 and "bertopic or fast" in bad.output


def test_cli_topics_refuses_a_window_that_ends_before_it_starts(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Swapped dates read « nothing written (0 verbatims in the window, at least 20 needed) »,
    # as if the feed were empty, after loading the encoder.
    from typer.testing import CliRunner

    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    out = CliRunner().invoke(app, ["topics", "--since", "2026-12-01", "--until", "2026-11-01"])
    assert out.exit_code == 2, out.output
    assert "--since 2026-12-01 is after --until 2026-11-01" in out.output


def test_ids_survive_a_change_of_embedding_space(
    sessions: sessionmaker[Session], encoder: TextEncoder
) -> None:
    """Stored centroids are in the space of the run that made them; another encoder (as
    after switching between the BERTopic and fast paths) must still find its topics."""
    tax = load_taxonomy("ecommerce")
    with sessions() as s:
        _ingest(s, LIVRAISON + EMBALLAGE + ECOLOGIE, START, seed=6)
    cfg = TopicJobConfig(
        method="fast", fast=FastTopicConfig(n_topics=3, min_topic_size=5), min_docs=10
    )
    first = run_topics(sessions, encoder=encoder, taxonomy=tax, config=cfg)
    other = tiny_encoder(ALL_SENTENCES, seed=3)
    second = run_topics(sessions, encoder=other, taxonomy=tax, config=cfg)
    assert all(t.status == "kept" for t in second.topics)
    assert {(t.id, t.theme) for t in first.topics} == {(t.id, t.theme) for t in second.topics}

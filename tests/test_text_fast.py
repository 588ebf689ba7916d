"""The lexicon tier's fast paths give exactly what the plain functions give.

Per-text work is memoised (tokens, clause scores, cued clauses), per-word work too (token
pieces, word valences), and some Python loops became C-level calls: each is checked here against
the reference computation on sentences written for these tests.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nlp.sentiment.lexicon import LexiconSentiment, score_tokens
from nlp.taxonomy import load_taxonomy
from nlp.text.french import CONTRAST_MARKERS, Tokenizer, _contrast_starts, tokenize
from nlp.text.memo import TextMemo
from nlp.text.normalize import _DROPPED, _keep
from nlp.themes.rules import RuleThemeDetector

SENTENCES = [
    "L'emballage était abîmé mais le produit fonctionne, par contre la livraison... bof !!",
    "Jamais reçu ma cmd, pb avec le SAV, tjrs pas de rmb 😡😡",
    "C’est nuuuuul, je n’ai rien reçu. Dommage que le site soit si lent",
    "Produit conforme à la description ; prix 12,50 € — seul bémol : le délai",
    "jusqu'à présent aucun souci, peut-être un peu cher\n\nMerci à <NAME> du service client",
    "Pas mal du tout !!! Loin d'être parfait mais bien emballé, alors que c'était pas gagné",
    "qu'il soit livré en 48h ou pas, ça m'est égal... sauf que là c'est trop long",
    "TRÈS BON PRODUIT ; je recommande 👍 even though the box was damaged",
    "",
    "   ",
    "😍",
]


def test_dropped_characters_are_exactly_the_ones_keep_refuses() -> None:
    every = "".join(chr(cp) for cp in range(0x110000))
    assert _DROPPED.sub("", every) == "".join(ch for ch in every if _keep(ch))


def test_tokenizer_memo_gives_tokenize_results() -> None:
    tokenizer = Tokenizer()
    for text in SENTENCES * 2:  # the second pass reads the memo
        assert tokenizer(text) == tokenize(text)
    small = Tokenizer(max_words=3)  # a full memo starts over: still the same tokens
    for text in SENTENCES:
        assert small(text) == tokenize(text)
        assert len(small._memo) <= 3


def _contrast_reference(words: list[str]) -> dict[int, int]:
    out = {}
    for i in range(len(words)):
        for marker in CONTRAST_MARKERS:
            parts = marker.split()
            if words[i : i + len(parts)] == parts:
                out[i] = len(parts)
                break
    return out


@pytest.mark.parametrize("text", SENTENCES + ["dommage que ce soit cher, dommage", "mais"])
def test_contrast_markers_found_as_by_scanning_every_marker(text: str) -> None:
    tokens = tokenize(text)
    assert _contrast_starts(tokens) == _contrast_reference([t.norm for t in tokens])


def test_phrase_index_lists_every_multiword_expression() -> None:
    lex = LexiconSentiment().lex
    for key in lex.phrases:
        if len(key) > 1:
            assert len(key) in lex.phrase_sizes[key[0]]
    for sizes in lex.phrase_sizes.values():
        assert list(sizes) == sorted(sizes, reverse=True) and min(sizes) > 1
    # A multi-word expression still wins over its words ("pas terrible" is negative).
    pos, neg, _ = score_tokens(tokenize("pas terrible"), lex)
    assert neg > 0 and pos == 0


def test_lexicon_memo_matches_the_uncached_scores() -> None:
    model = LexiconSentiment()
    for text in SENTENCES * 2:
        cached = model.clause_scores(text)
        assert cached == model.clause_scores(text, tokenize(text))
        assert model.tokens(text) == tokenize(text)
        cached.clear()  # callers get their own list: the memo is untouched
        assert model.clause_scores(text) == model.clause_scores(text, tokenize(text))


def test_rule_clauses_memo_matches_the_uncached_path() -> None:
    taxonomy = load_taxonomy(None)
    rules = RuleThemeDetector(taxonomy)
    for text in SENTENCES:
        for theme in ["", *taxonomy.ids]:
            assert rules.clause_scores(text, theme) == rules.clause_scores(
                text, theme, tokens=tokenize(text)
            )


def test_text_memo_computes_once_and_stays_within_its_budget() -> None:
    calls: list[str] = []

    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    memo: TextMemo[str, str] = TextMemo(upper, max_chars=10)
    assert memo("abcd") == "ABCD" and memo("abcd") == "ABCD"
    assert calls == ["abcd"]
    memo("efgh")
    memo("ijkl")  # 12 characters: the oldest ("abcd") goes
    assert len(memo) == 2
    memo("abcd")
    assert calls == ["abcd", "efgh", "ijkl", "abcd"]
    assert memo("x" * 11) == "X" * 11  # larger than the budget: computed, never kept
    assert len(memo) <= 2 and "x" * 11 not in memo


def test_text_memo_under_threads() -> None:
    memo: TextMemo[str, int] = TextMemo(len, max_chars=50)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(2000):
                text = "a" * ((i * k) % 13 + 1)
                assert memo(text) == len(text)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_fast_tfidf_ids_give_the_analyzers_matrix() -> None:
    """The packaged head's vectoriser through the memoised id extractors (what inference uses)
    equals the same vectoriser through its analyzers, bit for bit."""
    import json

    import numpy as np

    from nlp.text.normalize import normalize_text
    from nlp.themes.learned import default_model_dir, fitted_vectorizer

    path = default_model_dir("ecommerce")
    vocab = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
    with np.load(path / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    texts = [normalize_text(t) for t in SENTENCES * 2] + ["pas reçu pas reçu pas reçu", "a"]
    plain = fitted_vectorizer(vocab, arrays).transform(texts)
    fast = fitted_vectorizer(vocab, arrays, Tokenizer()).transform(texts)
    assert plain.shape == fast.shape and plain.nnz > 0
    for attr in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(plain, attr), getattr(fast, attr))
    for name, part in fitted_vectorizer(vocab, arrays, Tokenizer()).transformer_list:
        for text in texts:
            assert sorted(part.ids(text)) == sorted(
                j for f in part.analyzer(text) if (j := part.vocabulary_.get(f)) is not None
            ), name


def test_clause_at_matches_the_scan_it_replaced() -> None:
    from nlp.themes.rules import _clause_at

    def scan(spans: list[tuple[int, int]], offset: int) -> int:
        for idx, (start, end) in enumerate(spans):
            if start <= offset < end:
                return idx
        best = 0
        for idx, (start, _) in enumerate(spans):
            if start <= offset:
                best = idx
        return best

    for text in SENTENCES:
        clauses = LexiconSentiment().clause_scores(text)
        spans = [(c.clause.start, c.clause.end) for c in clauses]
        for offset in range(-1, len(text) + 2):
            assert _clause_at([s for s, _ in spans], offset) == scan(spans, offset)


_TRICKY = (
    "aé e\u0301’'\"«»…\r\n\t\u00a0\u202f\u2009\u3000\u200b\u00ad\x07\x85\u2028\ufeff😡\ue000-—"
)


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="ab \n", max_size=8)
    | st.text(alphabet="aé’ \n\t\u00a0\u2028", max_size=8)
    | st.text(alphabet=_TRICKY, max_size=12)
    | st.text(max_size=12)
)
@example("a \nb")
@example("a\n b")
@example("a  b")
@example(" a")
@example("a\u2028")
def test_normalize_shortcut_returns_what_the_full_normalisation_gives(text: str) -> None:
    from nlp.text.normalize import _normalize, normalize_text

    assert normalize_text(text) == (_normalize(text) if text else "")


def test_language_index_lists_each_stopword_languages_in_order() -> None:
    from nlp.text.language import _LANGUAGES_OF, _PROFILES

    words = set().union(*_PROFILES.values())
    assert set(_LANGUAGES_OF) == words
    for word in words:
        assert _LANGUAGES_OF[word] == tuple(k for k, s in _PROFILES.items() if word in s)


def test_rule_seed_keys_memo_matches_the_per_token_keys() -> None:
    from nlp.text.lemmas import LookupLemmatizer
    from nlp.themes.rules import _token_keys

    lookup = LookupLemmatizer({"livrés": "livrer", "colis": "colis", "abîmés": "abîmer"})
    for nlp in (None, lookup):
        rules = RuleThemeDetector(load_taxonomy(None), nlp=nlp)
        for text in [*SENTENCES, "Colis livrés abîmés", "colis livrés"] * 2:
            words = [t for t in tokenize(text) if t.kind in ("word", "num", "emoji")]
            assert rules._keys_of(words, {}) == [_token_keys(t, rules._lemma(t, {})) for t in words]

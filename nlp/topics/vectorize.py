"""French tokenisation for topic keywords: accents kept, elisions split, stop words dropped.

scikit-learn's default token pattern keeps "qu" from "qu'il" and BERTopic's English mode
strips every non-ASCII letter ("problème" -> "problme"); this analyzer is passed to a
`CountVectorizer` so keywords come out as customers write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from nlp.text.french import (
    NE_FORMS,
    NE_ONLY_NEGATORS,
    NEGATION_WORDS,
    SMS_MAP,
    Token,
    negation_flags,
)
from nlp.text.normalize import fold_accents
from nlp.topics.stopwords import ELIDED, FRENCH_STOP_WORDS

_PLACEHOLDER = re.compile(r"<[A-Z_]+>")  # PII masks (<EMAIL>, <PHONE>) are no topic words
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "´": "'"})
# Stop words with an apostrophe inside: "c'est-à-dire" would otherwise leave "est-à-dire".
_FIXED = re.compile(r"\b(?:aujourd'hui|c'est-à-dire)\b")
# Letters only (accented included); hyphens glue compounds ("sèche-cheveux", "après-vente").
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# Clause breaks: no bigram spans them ("rapide. Emballage" is not a phrase).
_BREAK = re.compile(r"[.!?;:,()\[\]\"\n]+")
# Hyphenated clitics: "pouvez-vous", "a-t-il", "est-ce" split into (stop) words.
_CLITIC_WORDS = "je tu il elle on nous vous ils elles ce le la les lui leur moi toi t y en là ci"
_CLITICS = frozenset(_CLITIC_WORDS.split())
# Nouns shaped like a verb and its clitic: kept whole ("rendez" alone reads as the verb).
_CLITIC_NOUNS = frozenset({"rendez-vous"})
# Words as typed that may open a negation (norms, accented and SMS spellings): a clause with
# none of them (most clauses) skips the negation pass.
_NEGATION_SURFACE = frozenset(
    NEGATION_WORDS | {"guère"} | {k for k, v in SMS_MAP.items() if v in NEGATION_WORDS}
)
# SMS keys are looked up accents folded ("jame" for "jamé", "jamè"): their accented spellings
# too, listed (folding every word of every clause cost a tenth of the keywords' time).
_ACCENTED = {"a": "aàâä", "e": "eéèêë", "i": "iîï", "o": "oôö", "u": "uùûü"}
_NEGATION_SURFACE |= {
    "".join(letters)
    for key in _NEGATION_SURFACE
    if key.isascii() and len(key) <= 5
    for letters in product(*(_ACCENTED.get(c, c) for c in key))
}
_SCOPE_BREAKS = frozenset({"mais", "et", "car", "donc", "ou"})
# Partners of "ne" that negate its verb ("ne fonctionne plus", "ne reçois rien"); "aucun",
# "personne", "ni" negate what follows them instead.
_VERB_NEGATORS = frozenset({"pas", "plus", "jamais", "rien", "point", "guere", "nullement"})
_NE_PARTNER_SPAN = 7  # words after "ne" where its "pas"/"plus"/"jamais" may stand
_NEGATED_GAP = 3  # words kept between a negator and its word ("pas de réponse")
_N_IMPORTE = frozenset({"quoi", "comment", "où", "ou", "qui", "quand", "quel", "quelle"})


def _phrase(found: list[str], p: int, k: int, word: str) -> str:
    """The words from the negator at p to `word` at k as written ("pas d'emballage"), those
    between left out when there are more than _NEGATED_GAP."""
    between = found[p + 1 : k] if k - p - 1 <= _NEGATED_GAP else []
    return "".join(w + ("'" if w in ELIDED else " ") for w in (found[p], *between)) + word


def _norm(word: str) -> str:
    folded = fold_accents(word)
    return SMS_MAP.get(folded, folded)


@dataclass(frozen=True)
class FrenchAnalyzer:
    """Callable text -> terms (unigrams, and bigrams of adjacent content words in a clause).

    A frozen dataclass so vectorizers that hold it can be pickled and compared.
    """

    ngram_max: int = 2
    min_length: int = 2
    extra_stop_words: frozenset[str] = field(default_factory=frozenset)

    def words(self, text: str) -> list[list[str]]:
        """Content words per clause, lower-cased, accents kept."""
        text = _URL.sub(" ", _PLACEHOLDER.sub(" ", text or ""))
        text = _FIXED.sub(" ", text.lower().translate(_APOSTROPHES))
        clauses = []
        for clause in _BREAK.split(text):
            found = _WORD.findall(clause)
            if not _NEGATION_SURFACE.isdisjoint(found):
                kept = self._negated_clause(found)
            else:
                kept = []
                for word in found:
                    if "-" in word:
                        kept.extend(self._compound(word))
                    elif self._keep(word):
                        kept.append(word)
            if kept:
                clauses.append(kept)
        return clauses

    def _negated_clause(self, found: list[str]) -> list[str]:
        """Content words of a clause that holds a negation, a negated word with its negator
        ("pas conforme", "ne fonctionne plus", "n'importe quoi"): alone, "conforme" and
        "fonctionne" would name a complaint topic by its opposite. The scope is the one
        the sentiment reads (`negation_flags`); only the first content word in it takes the
        negator ("jamais reçu" and "colis" for "jamais reçu mon colis")."""
        norms = [_norm(w) for w in found]
        flags = negation_flags(
            [Token(w, i, i, n, "word") for i, (w, n) in enumerate(zip(found, norms, strict=True))]
        )
        used: set[int] = set()
        kept: list[str] = []
        for i, word in enumerate(found):
            if norms[i] in NEGATION_WORDS and norms[i] in FRENCH_STOP_WORDS:
                # A negator spelt as in SMS (« pa », « jms ») is a stop word as « pas » is:
                # kept, it made keywords « pa » and « pa recu » of « jai pa recu ».
                continue
            parts = self._compound(word) if "-" in word else ([word] if self._keep(word) else [])
            for part in parts:
                phrase = self._with_negator(found, norms, i, part, used) if flags[i] else None
                if phrase != "":
                    kept.append(phrase or part)
        return kept

    @staticmethod
    def _with_negator(
        found: list[str], norms: list[str], k: int, word: str, used: set[int]
    ) -> str | None:
        """`word` (at k, in a negation scope) with its negator; None if it has none of its own
        (the negator already went to an earlier word, or the scope opener is no negator:
        "loin d'être", "aurait pu"), "" if it is no keyword."""
        p = None
        for j in range(k - 1, -1, -1):
            if norms[j] in _SCOPE_BREAKS:
                break
            if norms[j] in NEGATION_WORDS and (
                norms[j] not in NE_ONLY_NEGATORS or any(n in NE_FORMS for n in norms[:j])
            ):  # a bare "plus" or "rien" negates nothing
                p = j
                break
        if p is None or p in used:
            # "je recommande pas", "ça marche plus": the verb before its negator, "ne" dropped.
            after = k + 1
            if p is None and after < len(norms) and norms[after] in ("pas", "plus"):
                used.add(after)
                return f"{word} {found[after]}"
            return None
        used.add(p)
        if norms[p] in NE_FORMS:  # the word stands between "ne" and its partner
            for q in range(k + 1, min(len(norms), p + _NE_PARTNER_SPAN + 1)):
                if norms[q] in NEGATION_WORDS and norms[q] not in NE_FORMS:
                    if norms[q] not in _VERB_NEGATORS:
                        # "n'ai reçu aucune réponse", "ne répond ni aux mails": the negation
                        # is said by what follows; the verb alone would read as its opposite.
                        return ""
                    used.add(q)
                    return f"{_phrase(found, p, k, word)} {found[q]}"  # "ne s'allume plus"
            if norms[k] == "importe" and k + 1 < len(found) and found[k + 1] in _N_IMPORTE:
                return f"n'importe {found[k + 1]}"  # "n'importe quoi" is no "importe"
        # "pas conforme", "pas de réponse", "pas encore livré", "personne ne répond"
        return _phrase(found, p, k, word)

    def _compound(self, word: str) -> list[str]:
        parts = word.split("-")
        if word in _CLITIC_NOUNS and word not in self.extra_stop_words:
            return [word]
        if word not in FRENCH_STOP_WORDS and not any(p in _CLITICS for p in parts):
            return [word] if len(word) >= self.min_length else []
        return [p for p in parts if self._keep(p)]

    def _keep(self, word: str) -> bool:
        """A content word: long enough, no stop word, no keyboard noise ("aaa", "zz")."""
        return (
            len(word) >= self.min_length
            and word not in FRENCH_STOP_WORDS
            and word not in self.extra_stop_words
            and word != word[0] * len(word)
        )

    def __call__(self, text: str) -> list[str]:
        terms: list[str] = []
        for clause in self.words(text):
            terms.extend(clause)
            for n in range(2, self.ngram_max + 1):
                terms.extend(" ".join(clause[i : i + n]) for i in range(len(clause) - n + 1))
        return terms


@dataclass(frozen=True)
class VectorizerConfig:
    ngram_max: int = 2
    min_df: int | float = 2  # a term must occur in this many documents (or share)
    max_df: float = 0.5  # terms in over half the documents name no topic
    max_features: int | None = 50_000
    extra_stop_words: tuple[str, ...] = ()


def make_vectorizer(config: VectorizerConfig | None = None, n_docs: int | None = None) -> Any:
    """A scikit-learn CountVectorizer over `FrenchAnalyzer`.

    `n_docs` lets small corpora (tests, first days of data) keep a min_df that can be met.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    cfg = config or VectorizerConfig()
    min_df = cfg.min_df
    if n_docs is not None and isinstance(min_df, int):
        min_df = max(1, min(min_df, n_docs // 20))
    analyzer = FrenchAnalyzer(
        ngram_max=cfg.ngram_max, extra_stop_words=frozenset(cfg.extra_stop_words)
    )
    return CountVectorizer(
        analyzer=analyzer, min_df=min_df, max_df=cfg.max_df, max_features=cfg.max_features
    )

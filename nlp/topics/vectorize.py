"""French tokenisation for topic keywords: accents kept, elisions split, stop words dropped.

scikit-learn's default token pattern keeps "qu" from "qu'il" and BERTopic's English mode
strips every non-ASCII letter ("problème" -> "problme"); this analyzer is passed to a
`CountVectorizer` so keywords come out as customers write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nlp.topics.stopwords import FRENCH_STOP_WORDS

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
        stops, extra, size = FRENCH_STOP_WORDS, self.extra_stop_words, self.min_length
        clauses = []
        for clause in _BREAK.split(text):
            kept: list[str] = []
            for word in _WORD.findall(clause):
                if "-" in word:
                    kept.extend(self._compound(word))
                elif (
                    len(word) >= size
                    and word not in stops
                    and word not in extra
                    and word != word[0] * len(word)
                ):  # "aaa", "zz": keyboard noise
                    kept.append(word)
            if kept:
                clauses.append(kept)
        return clauses

    def _compound(self, word: str) -> list[str]:
        parts = word.split("-")
        if word in _CLITIC_NOUNS and word not in self.extra_stop_words:
            return [word]
        if word not in FRENCH_STOP_WORDS and not any(p in _CLITICS for p in parts):
            return [word] if len(word) >= self.min_length else []
        return [p for p in parts if self._keep(p)]

    def _keep(self, word: str) -> bool:
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

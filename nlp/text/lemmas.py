"""French lemmas from a surface-form lookup table, without running a tagger.

spaCy's French pipeline lemmatises with rules over the part of speech its tagger predicts;
on the analysis hot path that tagger dominates the rules' cost (≈5 ms a review on 2 cores).
The rule detector only needs lemmas to meet taxonomy seeds ("livrés" -> "livrer",
"remboursements" -> "remboursement"), which the pipeline's own `lemma_lookup` table answers
in one hash lookup per word. The table is the one shipped inside the installed spaCy model
(no download); lookups are memoised per word.
"""

from __future__ import annotations

from typing import Any


class LookupLemmatizer:
    """`lemma(word) -> str | None` from a spaCy lookups Table (or any mapping word -> lemma
    or [lemma, ...])."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._memo: dict[str, str | None] = {}

    @classmethod
    def from_spacy(cls, nlp: Any) -> LookupLemmatizer | None:
        """The lookup table of a loaded spaCy pipeline's lemmatizer (None if it has none)."""
        try:
            lookups = nlp.get_pipe("lemmatizer").lookups
            if "lemma_lookup" not in lookups.tables:
                return None
            return cls(lookups.get_table("lemma_lookup"))
        except (AttributeError, KeyError):
            return None

    def lemma(self, word: str) -> str | None:
        try:
            return self._memo[word]
        except KeyError:
            pass
        value = self._table.get(word)
        if value is None and word != word.lower():
            value = self._table.get(word.lower())
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        self._memo[word] = value
        return value

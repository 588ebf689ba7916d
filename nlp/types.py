"""Result types and the contracts every backend implements (scikit-learn-like `predict`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Polarity = Literal["negative", "neutral", "positive"]
POLARITIES: tuple[Polarity, ...] = ("negative", "neutral", "positive")
# Polarity names as people write them, lower-cased: English or French, and the short forms
# of DEFT and many exports (labelled files, models). Read through `polarity_name`.
POLARITY_NAMES: dict[str, Polarity] = {
    **{p: p for p in POLARITIES},
    "négatif": "negative",
    "negatif": "negative",
    "négative": "negative",
    "neutre": "neutral",
    "positif": "positive",
    "neg": "negative",
    "nég": "negative",
    "neu": "neutral",
    "pos": "positive",
}
# How an error names what is accepted.
POLARITY_FORMS = "negative/neutral/positive, neg/neu/pos or négatif/neutre/positif (any case)"


def polarity_name(value: object) -> Polarity | None:
    """negative / neutral / positive from a label as written (any case, surrounding spaces,
    English, French or short form); None for anything else."""
    if not isinstance(value, str):
        return None
    return POLARITY_NAMES.get(value.strip().lower())


@dataclass(frozen=True, slots=True)
class SentimentResult:
    label: Polarity
    score: float  # calibrated probability of `label`
    stars: float | None = None  # expected star rating (1-5) when the backend can estimate it
    probs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class ThemeMention:
    theme: str  # taxonomy theme id
    polarity: Polarity
    score: float  # confidence that the theme is present, 0-1
    evidence: Span | None = None


@runtime_checkable
class SentimentModel(Protocol):
    """Any sentiment backend: lexicon, embedded encoder, transformers checkpoint."""

    name: str

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]: ...


@runtime_checkable
class ThemeModel(Protocol):
    """Multi-label theme detector; polarity is per mention (clause-level), not per document."""

    name: str

    def predict(self, texts: Sequence[str]) -> list[list[ThemeMention]]: ...

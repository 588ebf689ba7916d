"""Labelled sentiment rows as the trainers take them: plain data, no model imports.

Kept apart from `nlp.sentiment.training` so that reading a labelled file (and every CLI start,
which registers the training commands) does not import the encoder's modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE = -100  # a star label that is unknown: the star head's loss skips it
STARS = (1, 2, 3, 4, 5)


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int]  # index into POLARITIES
    stars: list[int]  # 0..4, or IGNORE when unknown
    # Where each row comes from (a source or file): calibration weighs each group equally.
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        if not (len(self.texts) == len(self.labels) == len(self.stars)):
            raise ValueError("texts, labels and stars must have the same length")
        if self.groups is not None and len(self.groups) != len(self.texts):
            raise ValueError("groups must have one entry per text")


def star_index(stars: Any) -> int:
    """1..5 stars -> 0..4 (IGNORE when missing or out of range)."""
    try:
        value = round(float(stars))
    except (TypeError, ValueError):
        return IGNORE
    return value - 1 if value in STARS else IGNORE


@dataclass
class LabelConflicts:
    """Rows whose `sentiment` and `stars` disagree: how many, and where the first one is."""

    count: int = 0
    first: str | None = None  # "file:line"

    def add(self, where: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = where

    def warning(self) -> str | None:
        if not self.count:
            return None
        return (
            f"warning: {self.count} row(s) have a 'sentiment' that disagrees with their 'stars' "
            f"(first: {self.first}); 'sentiment' was used"
        )

"""Severity 0-1 of one piece of feedback: how negative, on which themes, with alarm words.

severity = P(negative)-driven base (scaled by the heaviest negative theme's severity_weight)
plus a bump when alarm terms of the taxonomy appear ("arnaque", "jamais reçu", "intoxication").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nlp.taxonomy import Taxonomy
from nlp.text.normalize import fold_accents
from nlp.types import SentimentResult, ThemeMention


def alarm_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for a list of alarm terms, accent-insensitive, on word boundaries."""
    parts = sorted({re.escape(fold_accents(t)) for t in terms if t.strip()}, key=len, reverse=True)
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")


class SeverityScorer:
    """Built once per taxonomy (compiles the alarm-term regexes)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self.global_alarm = alarm_pattern(taxonomy.alarm_terms)
        self.theme_alarm = {t.id: alarm_pattern(t.alarm_terms) for t in taxonomy.active}
        self.weights = {t.id: t.severity_weight for t in taxonomy.active}

    def alarms(self, text: str, themes: Iterable[ThemeMention] = ()) -> list[str]:
        folded = fold_accents(text)
        found: list[str] = []
        patterns = [self.global_alarm] + [self.theme_alarm.get(m.theme) for m in themes]
        for pattern in patterns:
            if pattern is not None:
                found.extend(m.group(0) for m in pattern.finditer(folded))
        return sorted(set(found))

    def score(self, text: str, sentiment: SentimentResult,
              themes: list[ThemeMention]) -> float:
        p_neg = sentiment.probs.get("negative")
        if p_neg is None:
            p_neg = sentiment.score if sentiment.label == "negative" else (
                0.15 if sentiment.label == "neutral" else 0.03)
        negative_themes = [m for m in themes if m.polarity == "negative"]
        weight = max((self.weights.get(m.theme, 1.0) for m in negative_themes), default=0.8)
        # Several negative themes at once = a broken experience, not a single irritant.
        breadth = 1.0 + 0.1 * max(0, len(negative_themes) - 1)
        base = p_neg * min(1.0, 0.55 + 0.35 * weight) * breadth
        alarms = self.alarms(text, themes)
        if alarms:
            base += 0.25 + 0.05 * (len(alarms) - 1)
        return round(max(0.0, min(1.0, base)), 4)

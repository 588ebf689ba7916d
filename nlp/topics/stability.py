"""Stable topic ids: match this run's topics to the stored ones (Hungarian assignment) and
keep the old id for matched topics; the others get new ids.

A pair's score averages what evidence exists: centroid cosine (only when both centroids are
in a space of the same size), keyword overlap, and, when runs share documents, the Jaccard
overlap of their members on the shared documents (the sharpest signal for re-runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nlp.topics.describe import DiscoveredTopic


@dataclass(frozen=True)
class TopicRef:
    """A topic from an earlier run, as stored."""

    id: int
    keywords: tuple[str, ...]
    centroid: np.ndarray | None = None


@dataclass(frozen=True)
class MatchConfig:
    centroid_weight: float = 0.4
    keyword_weight: float = 0.3
    member_weight: float = 0.3
    # Cosines under this count as 0 (embedding spaces put unrelated topics far above 0).
    centroid_floor: float = 0.5
    top_keywords: int = 10
    min_score: float = 0.45


def keyword_overlap(a: Sequence[str], b: Sequence[str]) -> float:
    """Overlap coefficient of two keyword lists, words of phrases included: one list being a
    reordering or a trimmed version of the other still scores high."""
    wa = {w for k in a for w in k.split()} | set(a)
    wb = {w for k in b for w in k.split()} | set(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / min(len(wa), len(wb))


def _centroid_score(a: np.ndarray | None, b: np.ndarray, floor: float) -> float | None:
    if a is None or len(a) != len(b) or not len(a):
        return None  # another embedding space (or none stored): keywords decide alone
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms < 1e-12:
        return None  # a topic of stop words and emoji only embeds as zero: no direction
    cos = float(np.dot(a, b) / norms)
    return max(0.0, (cos - floor) / (1.0 - floor))


def member_jaccard(
    previous: Sequence[TopicRef],
    current: Sequence[DiscoveredTopic],
    pairs: Sequence[tuple[int | None, int]],
) -> np.ndarray:
    """(len(current), len(previous)) Jaccard of member sets on the documents both runs saw.

    `pairs`: per document of this run, (its previous topic id or None, its current topic
    index or -1). NaN where neither topic has a shared document (no evidence).
    """
    col = {ref.id: j for j, ref in enumerate(previous)}
    row = {t.index: i for i, t in enumerate(current)}
    both = np.zeros((len(current), len(previous)))
    now = np.zeros(len(current))  # members of current topic i that were assigned before
    before = np.zeros(len(previous))  # members of previous j seen in this run
    for prev_id, label in pairs:
        j = col.get(prev_id) if prev_id is not None else None
        i = row.get(label)
        if j is not None:
            before[j] += 1
        if i is not None and prev_id is not None:
            now[i] += 1
            if j is not None:
                both[i, j] += 1
    union = now[:, None] + before[None, :] - both
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, both / union, np.nan)


def match_scores(
    previous: Sequence[TopicRef],
    current: Sequence[DiscoveredTopic],
    config: MatchConfig | None = None,
    members: np.ndarray | None = None,
) -> np.ndarray:
    """(len(current), len(previous)) scores in 0..1. `members`: `member_jaccard` output,
    or None when runs share no documents."""
    cfg = config or MatchConfig()
    scores = np.zeros((len(current), len(previous)), dtype=np.float64)
    for i, topic in enumerate(current):
        kw_now = topic.keywords[: cfg.top_keywords]
        for j, ref in enumerate(previous):
            parts = []
            if kw_now or ref.keywords:  # two topics without keywords: no evidence either way
                kw_before = ref.keywords[: cfg.top_keywords]
                parts.append((cfg.keyword_weight, keyword_overlap(kw_now, kw_before)))
            cen = _centroid_score(ref.centroid, topic.centroid, cfg.centroid_floor)
            if cen is not None:
                parts.append((cfg.centroid_weight, cen))
            if members is not None and not np.isnan(members[i, j]):
                parts.append((cfg.member_weight, float(members[i, j])))
            total = sum(w for w, _ in parts)
            scores[i, j] = sum(w * v for w, v in parts) / total if total else 0.0
    return scores


def match_topics(
    previous: Sequence[TopicRef],
    current: Sequence[DiscoveredTopic],
    config: MatchConfig | None = None,
    members: np.ndarray | None = None,
) -> dict[int, int]:
    """{current topic index: previous id} for the pairs of the best one-to-one assignment
    that score at least `min_score`."""
    from scipy.optimize import linear_sum_assignment

    cfg = config or MatchConfig()
    if not previous or not current:
        return {}
    scores = match_scores(previous, current, cfg, members)
    rows, cols = linear_sum_assignment(-scores)
    return {
        current[r].index: previous[c].id
        for r, c in zip(rows, cols, strict=True)
        if scores[r, c] >= cfg.min_score
    }

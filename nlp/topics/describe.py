"""What both topic paths share once documents have cluster labels: centroids, keywords ->
label, representative verbatims, and the `DiscoveredTopic` contract handed to jobs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

OUTLIER = -1
_WORDS = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class DiscoveredTopic:
    """One topic of one run. `index` is local to the run (0 = largest); stable ids are given
    by `nlp.topics.stability.match_topics` against the stored topics."""

    index: int
    label: str
    keywords: tuple[str, ...]
    weights: tuple[float, ...]
    size: int
    centroid: np.ndarray  # unit vector, in the embedding space the model was fit on
    representatives: tuple[int, ...]  # document indices, most typical first


def normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def centroids(embeddings: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """Unit mean embedding per topic, (n_topics, dim); outliers (-1) are left out."""
    out = np.zeros((n_topics, embeddings.shape[1]), dtype=np.float64)
    for k in range(n_topics):
        members = embeddings[labels == k]
        if len(members):
            out[k] = members.mean(axis=0)
    return normalize_rows(out).astype(np.float32)


def relabel_by_size(labels: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size; clusters under min_size become -1."""
    labels = np.asarray(labels)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = [
        i
        for i, c in sorted(zip(ids, counts, strict=True), key=lambda p: (-p[1], p[0]))
        if c >= min_size
    ]
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(x), OUTLIER) for x in labels], dtype=np.int64)


def make_label(keywords: Sequence[str], n: int = 3) -> str:
    """Up to n keywords, no word said twice (as `variant_key` reads it): a phrase takes the
    place of the one chosen word it extends ("emballage" then "emballage abîmé" reads
    « emballage abîmé »), any other keyword sharing a chosen word is skipped (not
    « excellent, excellent produit, excellent service »)."""
    chosen: list[str] = []
    for kw in keywords:
        words = {variant_key(w) for w in kw.split()}
        shared = [i for i, c in enumerate(chosen) if words & {variant_key(w) for w in c.split()}]
        if not shared:
            chosen.append(kw)
        elif len(shared) == 1 and len(words) > 1 and len(chosen[shared[0]].split()) == 1:
            chosen[shared[0]] = kw
        if len(chosen) == n:
            break
    return ", ".join(chosen)[:200]


def representatives(
    embeddings: np.ndarray, labels: np.ndarray, centers: np.ndarray, docs: Sequence[str], n: int = 3
) -> list[tuple[int, ...]]:
    """Per topic, the n members closest to its centroid, one per distinct text."""
    out: list[tuple[int, ...]] = []
    for k in range(len(centers)):
        members = np.flatnonzero(labels == k)
        sims = embeddings[members] @ centers[k]
        picked: list[int] = []
        seen: set[str] = set()
        for i in members[np.argsort(-sims, kind="stable")]:
            # Words only: "Refusé à chaque fois." and "Refusé à chaque fois... 🤬" are one example.
            key = " ".join(_WORDS.findall(docs[i].lower()))
            if key in seen:
                continue
            seen.add(key)
            picked.append(int(i))
            if len(picked) == n:
                break
        out.append(tuple(picked))
    return out


# A feminine -e after these endings: emballée, reçue, partie, satisfaite, grande.
_FEMININE = re.compile(r"(?<=.{3}[eutid])e$")


def _variant_word(word: str) -> str:
    if len(word) > 3 and word[-1] in "sx":
        word = word[:-1]
    return _FEMININE.sub("", word)


def variant_key(term: str) -> str:
    """One key for the spellings of a keyword that customers mean alike: accents folded, a
    simple plural (-s, -x) and a feminine -e (after é, u, i, t, d) cut from each word ("thés"
    and "thé", "emballées" and "emballé", "satisfaite" and "satisfait")."""
    from nlp.text.normalize import fold_accents

    return " ".join(_variant_word(w) for w in fold_accents(term).split())


def merge_variants(
    keywords: Sequence[tuple[str, float]], frequency: Mapping[str, float] | None = None
) -> list[tuple[str, float]]:
    """Keywords best first, one per `variant_key` ("passée" and "passee", "thés" and "thé":
    one concept, one keyword), at the best weight of its spellings and shown in its most
    frequent one (`frequency`: how many of the topic's verbatims have it; without it, or on a
    tie, the best-weighted one)."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for word, weight in keywords:
        groups.setdefault(variant_key(word), []).append((word, weight))
    out = []
    for variants in groups.values():
        shown = variants[0][0]
        if frequency is not None:
            shown = max(variants, key=lambda v: frequency.get(v[0], 0.0))[0]
        out.append((shown, variants[0][1]))
    return out


def describe(
    docs: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    keywords: Sequence[Sequence[tuple[str, float]]],
    *,
    n_label_words: int = 3,
    n_representatives: int = 3,
) -> list[DiscoveredTopic]:
    """Topics 0..k-1 from labels (relabelled by size beforehand) and their keyword lists."""
    k = len(keywords)
    keywords = [merge_variants(kws) for kws in keywords]
    centers = centroids(embeddings, labels, k)
    reps = representatives(embeddings, labels, centers, docs, n_representatives)
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    return [
        DiscoveredTopic(
            index=i,
            label=make_label([w for w, _ in keywords[i]], n_label_words) or f"Sujet n°{i + 1}",
            keywords=tuple(w for w, _ in keywords[i]),
            weights=tuple(round(s, 5) for _, s in keywords[i]),
            size=int(sizes[i]),
            centroid=centers[i],
            representatives=reps[i],
        )
        for i in range(k)
    ]

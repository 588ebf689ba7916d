"""Match discovered topics to taxonomy themes; topics that match none are *emerging*.

A topic whose keywords are mostly opinion words ("parfait, nickel, rien redire"), or that has
no keyword at all (only stop words, emoji, punctuation), is *generic*: satisfaction or anger
about nothing in particular, neither a theme nor emerging.

Three independent kinds of evidence, any one of which matches a theme:
- the theme detector's hits on the topic's documents (share of docs that mention theme t),
- topic keywords that are theme seeds (compared on light stems: "colis" ~ "colis"),
- the topic centroid's cosine to a theme prototype (mean embedding of the theme's label,
  description, seeds and examples), in the same embedding space as the topic.

Ties go to the theme with more of the other kinds of evidence, then to the one listed first in
the taxonomy. A re-run re-clusters the same verbatims a little differently (k-means starts from
the last run's topics), which moves evidence near a threshold: `settle_theme` keeps a matched
topic's stored theme (or its absence of theme) unless the evidence clearly changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nlp.taxonomy import Taxonomy
from nlp.themes.stem import light_stem
from nlp.topics.describe import DiscoveredTopic, normalize_rows
from nlp.topics.vectorize import FrenchAnalyzer


@dataclass(frozen=True)
class EmergingConfig:
    min_theme_share: float = 0.35  # share of the topic's docs in which the detector finds t
    min_seed_keywords: int = 2  # topic keywords (top_keywords) that are seeds of t
    top_keywords: int = 10
    # Cosine(centroid, theme prototype); space-dependent, None disables this evidence.
    min_similarity: float | None = None
    # Share of the keywords' words that carry an opinion above which an unmatched topic is
    # generic rather than emerging (needs a valence function; None: never generic).
    generic_share: float | None = 0.5
    min_valence: float = 1.0  # |valence| of an opinion word
    # Hysteresis for a topic matched to a stored one (`settle_theme`), on the evidence
    # strength scale (1.0: just enough to match a theme). The stored theme stays while its
    # strength is at least 1 - keep_margin (half the bar: a share of 0.175, one seed keyword
    # of two; keywords are few, a re-run often trades one for another) and no theme is
    # switch_margin stronger; a topic stored without a theme gets one from 1 + switch_margin.
    keep_margin: float = 0.5
    switch_margin: float = 0.25


@dataclass(frozen=True)
class ThemeMatch:
    theme: str | None  # best theme when matched, else None
    is_emerging: bool
    share: float  # detector share of the best theme by share
    seed_keywords: int  # keyword-seed overlap of the best theme by overlap
    similarity: float | None  # cosine to the closest prototype
    evidence: str  # "detector" | "keywords" | "similarity" | "kept" | "generic" | "none"
    opinion_share: float = 0.0  # share of keyword words that are opinion words
    # Per theme with evidence, its strength: the best of detector share / min_theme_share,
    # seed keywords / min_seed_keywords and similarity / min_similarity (1.0: just enough to
    # match), strongest first, then in taxonomy order.
    strengths: tuple[tuple[str, float], ...] = ()
    generic: bool = False  # without a theme, the topic is generic rather than emerging


def _stems(phrase: str) -> tuple[str, ...]:
    return tuple(light_stem(w) for w in phrase.lower().replace("'", " ").split())


def theme_texts(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """Per active theme, the texts that describe it (for prototype embeddings)."""
    out: dict[str, list[str]] = {}
    for theme in taxonomy.active:
        seeds = [s.lstrip("~").strip() for s in theme.seeds if s.strip("~ ")]
        texts = [f"{theme.label} : {theme.description}".strip(" :")]
        texts += [f"{theme.label} : {s}" for s in seeds] + list(theme.examples)
        out[theme.id] = texts
    return out


def theme_prototypes(taxonomy: Taxonomy, embedder: Any) -> tuple[list[str], np.ndarray]:
    """(theme ids, unit prototype per theme) with `embedder.encode(texts)`."""
    texts = theme_texts(taxonomy)
    ids = list(texts)
    flat = [t for tid in ids for t in texts[tid]]
    vecs = np.asarray(embedder.encode(flat), dtype=np.float32)
    protos, start = [], 0
    for tid in ids:
        n = len(texts[tid])
        protos.append(vecs[start : start + n].mean(axis=0))
        start += n
    return ids, normalize_rows(np.stack(protos))


def lexicon_valence() -> Callable[[str], float]:
    """Word -> valence from the project's French polarity lexicon (prefix entries too)."""
    from nlp.sentiment.lexicon_fr import build_lexicon
    from nlp.text.normalize import fold_accents

    words, prefixes, _ = build_lexicon()

    def valence(word: str) -> float:
        w = fold_accents(word)
        if w in words:
            return words[w]
        for size in range(len(w), 3, -1):
            if w[:size] in prefixes:
                return prefixes[w[:size]]
        return 0.0

    return valence


class ThemeMatcher:
    """`match(topics, labels, doc_themes)` -> one ThemeMatch per topic. `valence` (word ->
    polarity, e.g. `lexicon_valence()`) lets it tell generic topics from emerging ones."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        config: EmergingConfig | None = None,
        prototypes: tuple[list[str], np.ndarray] | None = None,
        valence: Callable[[str], float] | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.config = config or EmergingConfig()
        self.prototypes = prototypes
        self.valence = valence
        self._seeds: dict[str, set[tuple[str, ...]]] = {}
        # Taxonomy order breaks the ties that the evidence leaves (deterministic, and the
        # same from run to run whatever order the evidence was gathered in).
        self._order = {theme.id: n for n, theme in enumerate(taxonomy.active)}
        content = FrenchAnalyzer(ngram_max=1)
        for theme in taxonomy.active:
            keys = {_stems(s.lstrip("~")) for s in theme.seeds if s.strip("~ ")}
            # Topic keywords have their stop words taken out ("frais de port" -> "frais
            # port"): a phrase seed is also matched in that form (when two words are left).
            for seed in theme.seeds:
                words = content(seed.lstrip("~"))
                if len(words) == 2:
                    keys.add(_stems(" ".join(words)))
            keys.add(_stems(theme.id.replace("_", " ")))
            self._seeds[theme.id] = {k for k in keys if k}

    def _resolve(self, theme_id: str) -> str | None:
        theme = self.taxonomy.resolve(theme_id)
        return theme.id if theme is not None and not theme.retired else None

    def _shares(
        self, members: np.ndarray, doc_themes: Sequence[Collection[str]]
    ) -> dict[str, float]:
        counts: dict[str, int] = {}
        for i in members:
            for tid in {self._resolve(t) for t in doc_themes[i]}:
                if tid is not None:
                    counts[tid] = counts.get(tid, 0) + 1
        return {t: c / max(1, len(members)) for t, c in counts.items()}

    def _seed_hits(self, keywords: Sequence[str]) -> dict[str, int]:
        stems = [_stems(k) for k in keywords[: self.config.top_keywords]]
        return {tid: sum(1 for s in stems if s in seeds) for tid, seeds in self._seeds.items()}

    def _opinion_share(self, keywords: Sequence[str]) -> float:
        if self.valence is None:
            return 0.0
        words = {w for k in keywords[: self.config.top_keywords] for w in k.split()}
        if not words:
            return 0.0
        strong = sum(1 for w in words if abs(self.valence(w)) >= self.config.min_valence)
        return strong / len(words)

    def _strengths(
        self, shares: dict[str, float], hits: dict[str, int], sims: dict[str, float]
    ) -> tuple[tuple[str, float], ...]:
        cfg = self.config
        out: dict[str, float] = {}

        def add(tid: str, value: float, bar: float | None) -> None:
            if bar is not None and bar > 0 and value > 0:
                out[tid] = max(out.get(tid, 0.0), value / bar)

        for tid, share in shares.items():
            add(tid, share, cfg.min_theme_share)
        for tid, n in hits.items():
            add(tid, float(n), float(cfg.min_seed_keywords))
        for tid, sim in sims.items():
            add(tid, sim, cfg.min_similarity)
        ranked = sorted(out.items(), key=lambda p: (-p[1], self._rank(p[0])))
        return tuple((tid, round(v, 4)) for tid, v in ranked)

    def _rank(self, theme_id: str) -> int:
        return self._order.get(theme_id, len(self._order))

    def match(
        self,
        topics: Sequence[DiscoveredTopic],
        labels: np.ndarray | None = None,
        doc_themes: Sequence[Collection[str]] | None = None,
    ) -> list[ThemeMatch]:
        cfg = self.config
        out: list[ThemeMatch] = []
        for topic in topics:
            shares: dict[str, float] = {}
            if doc_themes is not None and labels is not None:
                shares = self._shares(np.flatnonzero(labels == topic.index), doc_themes)
            hits = self._seed_hits(topic.keywords)
            # Ties: more of the other evidence, then the taxonomy's order.
            best_share = max(
                shares.items(),
                key=lambda p: (p[1], hits.get(p[0], 0), -self._rank(p[0])),
                default=(None, 0.0),
            )
            best_kw = max(
                hits.items(),
                key=lambda p: (p[1], shares.get(p[0], 0.0), -self._rank(p[0])),
                default=(None, 0),
            )
            sims: dict[str, float] = {}
            best_sim: tuple[str | None, float | None] = (None, None)
            if self.prototypes is not None and self.prototypes[1].shape[1] == len(topic.centroid):
                values = self.prototypes[1] @ topic.centroid
                sims = {tid: float(v) for tid, v in zip(self.prototypes[0], values, strict=True)}
                j = int(np.argmax(values))  # the first of equals: prototypes in taxonomy order
                best_sim = (self.prototypes[0][j], float(values[j]))
            theme, evidence = None, "none"
            if best_share[0] is not None and best_share[1] >= cfg.min_theme_share:
                theme, evidence = best_share[0], "detector"
            elif best_kw[0] is not None and best_kw[1] >= cfg.min_seed_keywords:
                theme, evidence = best_kw[0], "keywords"
            elif (
                cfg.min_similarity is not None
                and best_sim[1] is not None
                and best_sim[1] >= cfg.min_similarity
            ):
                theme, evidence = best_sim[0], "similarity"
            opinion = self._opinion_share(topic.keywords)
            # No content word at all ("Très bien merci", "Toujours au top !", "....."): nothing
            # new is named, so nothing to flag as emerging; nor when opinion words dominate.
            generic = not topic.keywords or (
                cfg.generic_share is not None
                and self.valence is not None
                and opinion >= cfg.generic_share
            )
            if theme is None and generic:
                evidence = "generic"
            out.append(
                ThemeMatch(
                    theme=theme,
                    is_emerging=theme is None and not generic,
                    share=round(best_share[1], 4),
                    seed_keywords=int(best_kw[1]),
                    similarity=None if best_sim[1] is None else round(best_sim[1], 4),
                    evidence=evidence,
                    opinion_share=round(opinion, 4),
                    strengths=self._strengths(shares, hits, sims if cfg.min_similarity else {}),
                    generic=generic,
                )
            )
        return out

    def settle_theme(self, match: ThemeMatch, previous: str | None) -> ThemeMatch:
        """`match` for a topic that continues a stored one whose theme was `previous` (None:
        stored without a theme). The stored choice stays unless the evidence clearly changed
        (`EmergingConfig.keep_margin`, `switch_margin`): re-runs over the same verbatims
        re-cluster them a little differently, and a theme should not flip with them."""
        cfg = self.config
        strength = dict(match.strengths)
        fresh = strength.get(match.theme, 0.0) if match.theme is not None else 0.0
        if previous is None:
            if match.theme is None or fresh >= 1.0 + cfg.switch_margin:
                return match
            return replace(
                match,
                theme=None,
                is_emerging=not match.generic,
                evidence="generic" if match.generic else "none",
            )
        kept = self._resolve(previous)
        if kept is None or kept == match.theme:  # retired since (nothing to keep), or same
            return match
        held = strength.get(kept, 0.0)
        if held >= 1.0 - cfg.keep_margin and fresh < held + cfg.switch_margin:
            return replace(match, theme=kept, is_emerging=False, evidence="kept")
        return match

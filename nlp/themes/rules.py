"""RuleThemeDetector: taxonomy seeds (matched on lemmas/light stems) and regex patterns.

Each mention takes the polarity of the clause that expresses it ("livraison rapide mais
produit cassé" -> livraison positive, qualite_produit negative), falling back to the sentence
when the clause itself carries no opinion. Works with a spaCy French pipeline (passed in,
loaded once by the caller) or without one (surface forms + light stemmer).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from nlp.sentiment.lexicon import MEMO_CHARS, ClauseScore, LexiconSentiment
from nlp.taxonomy import CompiledPattern, Taxonomy, compile_pattern
from nlp.text.french import Token, tokenize
from nlp.text.lemmas import LookupLemmatizer
from nlp.text.memo import TextMemo
from nlp.text.normalize import fold_accents
from nlp.text.prefilter import PatternFilter
from nlp.themes.stem import light_stem
from nlp.types import Polarity, Span, ThemeMention

VERSION = "0.3"
POLARITY_MIN = 0.3  # |clause valence| under this is "no opinion" in that clause
WORD_MEMO_MAX = 200_000  # distinct words whose seed keys a detector remembers (then starts over)
WEAK_WINDOW = 4  # max tokens between a weak seed and the opinion word that makes it count
# Matches taken per text: a theme's confidence saturates after a few hits and a clause's cue
# shift is clamped, so more add nothing but work ("." as a pattern matches every character).
MAX_HITS = 256  # per theme and text, seeds and patterns together
MAX_CUE_MATCHES = 64  # per cue
CUE_VALENCE = 1.5  # a taxonomy cue weighs like a clear opinion word of the lexicon
# A cue right after a negator reads the other way ("pas dans les temps", "non respecté").
_CUE_NEGATED = re.compile(
    r"(?:\b(?:pas|non|jamais|plus|aucun|aucune|sans|ni|gu[èe]re|ne)\b|\bn')"
    r"(?:\s+(?:du\s+tout|tr[èe]s|vraiment|toujours|encore|assez|si))?\s*$",
    re.IGNORECASE,
)
# Where a clause naming two themes is cut ("service rapide et plats froids").
_SHARED_SPLIT = {"et", ";", "/", "+", "puis", "ni", "&"}
# Same-length substitutions so spaCy sees plain apostrophes while offsets stay identical.
_SPACY_SAFE = ("\u2019", "\u02bc", "\u2018")
# The elided article a seed may start with: dropped from it (see `_compile`). Not « d' »:
# « d'occasion », « d'origine », « d'accord » mean something else without it.
_ELIDED = frozenset({"l"})
# "livre" without its accent stems as "livré" (the livraison seeds); after a determiner it is
# the noun, a book ("le livre est passionnant", "des livres"), and meets no seed of "livrer".
_BOOK = frozenset({"livre", "livres"})
_BOOK_KEY = frozenset({"livre"})
_DETERMINERS = frozenset(
    {"le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "au", "aux", "ce", "cet"}
    | {"ces", "mon", "ton", "son", "ma", "ta", "sa", "mes", "tes", "ses", "notre", "votre"}
    | {"nos", "vos", "leur", "leurs"}
)
# "il le livre", "on vous les livre", "il me les livre": "le" / "les" there is a pronoun,
# "livre" the verb.
_CLITIC_BEFORE = frozenset(
    {"je", "j", "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "ne", "n", "me", "te"}
)


def _plain(text: str) -> str:
    """Typographic apostrophes as "'" (same length: offsets stay valid). Three C-level
    replaces: `str.translate` with a dict costs a failed lookup per accented character."""
    for quote in _SPACY_SAFE:
        text = text.replace(quote, "'")
    return text


def _clause_at(starts: list[int], offset: int) -> int:
    """Index of the clause holding char `offset`, given the clauses' (increasing, disjoint)
    start offsets: the last one starting at or before it, which is also the nearest preceding
    clause when the offset falls in punctuation between clauses (0 before the first)."""
    return max(0, bisect.bisect_right(starts, offset) - 1)


@dataclass(frozen=True, slots=True)
class _Seed:
    theme: str
    keys: tuple[frozenset[str], ...]  # per token: acceptable stems
    weight: float
    weak: bool = False  # "~seed": needs an opinion in its clause


@dataclass(frozen=True, slots=True)
class RuleMention:
    """A rule mention plus the valences behind its polarity (features for learned heads)."""

    mention: ThemeMention
    valence: float  # what the label was read from (explicit clauses, else fallbacks)
    clauses: tuple[int, ...]  # indices (in the scorer's clause list) that express the theme


@dataclass(slots=True)
class _Hit:
    theme: str
    start: int  # char offsets of the matched words
    end: int
    weight: float
    weak: bool = False


def _token_keys(token: Token, lemma: str | None) -> frozenset[str]:
    return _keys(token.norm, lemma)


@functools.lru_cache(maxsize=65536)
def _keys(norm: str, lemma: str | None) -> frozenset[str]:
    # Memoised: the same words recur across a batch, and stemming is pure Python.
    keys = {light_stem(norm)}
    if lemma:
        keys.add(light_stem(fold_accents(lemma)))
    return frozenset(keys)


class RuleThemeDetector:
    """Multi-label theme detector from a taxonomy; `predict(texts) -> list[list[ThemeMention]]`."""

    name = "rules"

    def __init__(
        self,
        taxonomy: Taxonomy,
        nlp: Any | None = None,
        scorer: LexiconSentiment | None = None,
        fallback: str = "doc",
    ) -> None:
        self.taxonomy = taxonomy
        self.nlp = nlp
        # A lookup table instead of a spaCy pipeline: lemmas per word, no tagger run.
        self.lookup = nlp if isinstance(nlp, LookupLemmatizer) else None
        self.scorer = scorer or LexiconSentiment()
        self.fallback = fallback
        self.version = VERSION
        self._seeds: dict[str, list[_Seed]] = {}
        self._patterns: list[tuple[str, CompiledPattern]] = []
        # Polarity cues: "" = for every theme; a theme id = only for that theme.
        self._cues: dict[str, list[tuple[float, CompiledPattern]]] = {}
        self._word_keys: dict[str, frozenset[str]] = {}  # token text -> seed keys (see _keys_of)
        self._compile()
        # Which patterns / cues can match a text, in one pass over it (nlp/text/prefilter).
        self._pattern_filter = PatternFilter([p for _, p in self._patterns])
        self._cue_filters = {
            owner: PatternFilter([p for _, p in cues]) for owner, cues in self._cues.items()
        }
        # Cued clause scores per (text, theme), once: detection and the learned heads share them.
        self._cued: TextMemo[tuple[str, str], tuple[ClauseScore, ...]] = TextMemo(
            self._cued_clauses, MEMO_CHARS, size=lambda key: len(key[0])
        )

    # --- compilation --------------------------------------------------------------------
    def _compile_cues(self, owner: str, positive: list[str], negative: list[str]) -> None:
        for sign, items in ((1.0, positive), (-1.0, negative)):
            for pattern in items:
                try:
                    compiled = compile_pattern(pattern)
                except ValueError as exc:
                    raise ValueError(f"{owner or 'taxonomy'}: bad cue: {exc}") from exc
                self._cues.setdefault(owner, []).append((sign, compiled))

    def _compile(self) -> None:
        self._compile_cues("", self.taxonomy.positive_cues, self.taxonomy.negative_cues)
        for theme in self.taxonomy.active:
            self._compile_cues(theme.id, theme.positive_cues, theme.negative_cues)
        phrases: list[tuple[str, str]] = []
        for theme in self.taxonomy.active:
            phrases.extend((theme.id, seed) for seed in theme.seeds if seed.strip("~ "))
            for pattern in theme.patterns:
                try:
                    self._patterns.append((theme.id, compile_pattern(pattern)))
                except ValueError as exc:
                    raise ValueError(f"theme {theme.id}: {exc}") from exc
        clean = [seed.lstrip("~").strip() for _, seed in phrases]
        lemma_maps = self._lemmas(clean)
        for (theme_id, seed), text, lemmas in zip(phrases, clean, lemma_maps, strict=True):
            tokens = [t for t in tokenize(text) if t.kind in ("word", "num", "emoji")]
            # « l'emballage »: the elided article is how the keyword was typed, not part of
            # it (it met only « l' » / « le » / « les » before the word).
            while len(tokens) > 1 and tokens[0].norm in _ELIDED and tokens[0].text[-1] in "'’ʼ":
                tokens = tokens[1:]
            if not tokens:
                continue
            # A seed written "livre" (a bookshop's theme) meets the noun too.
            keys = tuple(
                _token_keys(t, self._lemma(t, lemmas))
                | (_BOOK_KEY if t.text.lower() in _BOOK else frozenset())
                for t in tokens
            )
            weak = seed.lstrip().startswith("~")
            weight = 0.6 if weak else (0.9 if len(tokens) > 1 else 0.75)
            entry = _Seed(theme_id, keys, weight, weak)
            for key in keys[0]:
                self._seeds.setdefault(key, []).append(entry)

    def _lemmas(self, texts: Sequence[str]) -> list[dict[int, str]]:
        """Start offset -> lemma for every spaCy token (empty maps without spaCy)."""
        if self.nlp is None or self.lookup is not None:
            return [{} for _ in texts]
        out = []
        for doc in self.nlp.pipe([_plain(t) for t in texts], batch_size=64):
            out.append({tok.idx: tok.lemma_ for tok in doc if not tok.is_space})
        return out

    def _lemma(self, token: Token, lemmas: dict[int, str]) -> str | None:
        if self.lookup is not None and token.kind == "word":
            return self.lookup.lemma(token.text)
        return lemmas.get(token.start)

    # --- matching -----------------------------------------------------------------------
    def _keys_of(self, words: list[Token], lemmas: dict[int, str]) -> list[frozenset[str]]:
        if self.nlp is not None and self.lookup is None:  # spaCy lemmas depend on the context
            return [_token_keys(t, self._lemma(t, lemmas)) for t in words]
        # Lookup lemmas (or none): a word's keys depend on its text alone, memoised here.
        memo = self._word_keys
        out = []
        for t in words:
            keys = memo.get(t.text)
            if keys is None:
                if len(memo) >= WORD_MEMO_MAX:
                    memo.clear()
                keys = memo[t.text] = _token_keys(t, self._lemma(t, lemmas))
            out.append(keys)
        return out

    def _hits(self, text: str, tokens: list[Token], lemmas: dict[int, str]) -> list[_Hit]:
        words = [t for t in tokens if t.kind in ("word", "num", "emoji")]
        keys = self._keys_of(words, lemmas)
        for i in range(1, len(words)):
            if (
                words[i].norm in _BOOK  # cheap first: "livré" folds to "livre" too
                and words[i].text.lower() in _BOOK
                and words[i - 1].norm in _DETERMINERS
                and (i < 2 or words[i - 2].norm not in _CLITIC_BEFORE)
            ):
                keys[i] = _BOOK_KEY
        hits: list[_Hit] = []
        taken: dict[str, int] = {}  # hits per theme, seeds and patterns, up to MAX_HITS
        for i, token_keys in enumerate(keys):
            seen: set[int] = set()
            for key in token_keys:
                for seed in self._seeds.get(key, ()):
                    if id(seed) in seen:
                        continue
                    seen.add(id(seed))
                    size = len(seed.keys)
                    if i + size > len(words):
                        continue
                    if taken.get(seed.theme, 0) >= MAX_HITS:
                        continue
                    if all(seed.keys[k] & keys[i + k] for k in range(1, size)):
                        taken[seed.theme] = taken.get(seed.theme, 0) + 1
                        hits.append(
                            _Hit(
                                seed.theme,
                                words[i].start,
                                words[i + size - 1].end,
                                seed.weight,
                                seed.weak,
                            )
                        )
        plain = _plain(text)  # same length: offsets stay valid
        for k in self._pattern_filter.candidates(plain):
            theme_id, pattern = self._patterns[k]
            left = MAX_HITS - taken.get(theme_id, 0)
            if left <= 0:
                continue
            used = 0  # empty matches count too: they cost a step each
            for m in itertools.islice(pattern.finditer(plain), left):
                used += 1
                if m.end() > m.start():
                    hits.append(_Hit(theme_id, m.start(), m.end(), 0.85))
            taken[theme_id] = taken.get(theme_id, 0) + used
        return hits

    # --- polarity -----------------------------------------------------------------------
    @staticmethod
    def _label(value: float) -> Polarity:
        if value >= POLARITY_MIN:
            return "positive"
        if value <= -POLARITY_MIN:
            return "negative"
        return "neutral"

    def _mention_valence(
        self,
        clauses: list[ClauseScore],
        idx: int,
        doc_value: float,
        sentence_sums: dict[int, float],
    ) -> float:
        """The clause's valence, else its sentence's (`sentence_sums`: sentence -> summed
        clause scores, computed once per theme), else the document's."""
        value = clauses[idx].score
        if abs(value) >= POLARITY_MIN or self.fallback == "none":
            return value
        same = sentence_sums[clauses[idx].clause.sentence]
        if abs(same) >= POLARITY_MIN or self.fallback == "sentence":
            return same
        return doc_value

    @staticmethod
    def _weak_ok(
        hit: _Hit,
        idx: int,
        clauses: list[ClauseScore],
        strong: list[tuple[_Hit, int]],
        word_pos: dict[int, int],
    ) -> bool:
        """A generic word ("site", "produit", "rapide") counts only when an opinion word sits
        within WEAK_WINDOW tokens of it in the same clause, and no other theme is named
        explicitly right next to it ("prix raisonnable, commande reçue")."""
        here = word_pos.get(hit.start)
        if here is None:
            return False
        near = [word_pos[s] for s in clauses[idx].opinion_starts if s in word_pos]
        if not any(abs(k - here) <= WEAK_WINDOW for k in near):
            return False
        for other, other_idx in strong:
            if other.theme == hit.theme or other_idx != idx:
                continue
            there = word_pos.get(other.start)
            if there is not None and abs(there - here) <= 2:
                return False
        return True

    def with_cues(
        self, text: str, clauses: list[ClauseScore], theme: str = ""
    ) -> list[ClauseScore]:
        """Clause scores shifted by the taxonomy's polarity cues (`theme` "" = the cues for
        every theme; a theme id = that theme's own cues)."""
        cues = self._cues.get(theme)
        if not cues or not clauses:
            return clauses
        plain = _plain(text)
        delta = [0.0] * len(clauses)
        starts: list[list[int]] = [[] for _ in clauses]
        clause_starts = [cs.clause.start for cs in clauses]
        for k in self._cue_filters[theme].candidates(plain):
            sign, pattern = cues[k]
            for m in itertools.islice(pattern.finditer(plain), MAX_CUE_MATCHES):
                if m.end() <= m.start():
                    continue
                k = _clause_at(clause_starts, m.start())
                negated = _CUE_NEGATED.search(plain[max(0, m.start() - 24) : m.start()])
                delta[k] += -sign * CUE_VALENCE if negated else sign * CUE_VALENCE
                starts[k].append(m.start())
        return [
            cs
            if not d and not st
            else replace(
                cs,
                score=cs.score + max(-2 * CUE_VALENCE, min(2 * CUE_VALENCE, d)),
                pos=cs.pos + max(0.0, d),
                neg=cs.neg + max(0.0, -d),
                opinion_starts=tuple(sorted({*cs.opinion_starts, *st})),
            )
            for cs, d, st in zip(clauses, delta, starts, strict=True)
        ]

    def clause_scores(
        self, text: str, theme: str = "", tokens: list[Token] | None = None
    ) -> list[ClauseScore]:
        """The lexicon's clause scores with the cues for every theme (and `theme`'s own);
        without `tokens`, computed once per (text, theme) and shared by whoever asks."""
        if not tokens:  # (an empty list meant "tokenise it" too)
            return list(self._cued((text, theme)))
        clauses = self.with_cues(text, self.scorer.clause_scores(text, tokens))
        return self.with_cues(text, clauses, theme) if theme else clauses

    def _cued_clauses(self, key: tuple[str, str]) -> tuple[ClauseScore, ...]:
        text, theme = key
        if theme:  # a theme's cues apply on top of the shared ones (memoised themselves)
            return tuple(self.with_cues(text, list(self._cued((text, ""))), theme))
        return tuple(self.with_cues(text, self.scorer.clause_scores(text)))

    def _split_shared(
        self,
        text: str,
        tokens: list[Token],
        clauses: list[ClauseScore],
        per_theme: dict[str, list[tuple[_Hit, int, float]]],
    ) -> None:
        """ "Service rapide et plats froids": one clause, two themes, two opinions. Where a
        clause names several themes, cut it at "et" / ";" between them and give each theme
        the valence of its own part, when that part carries an opinion."""
        by_clause: dict[int, list[_Hit]] = {}
        splits = [t for t in tokens if t.norm in _SHARED_SPLIT]
        split_starts = [t.start for t in splits]
        for items in per_theme.values():
            for hit, idx, _ in items:
                by_clause.setdefault(idx, []).append(hit)
        for idx, hits in by_clause.items():
            if len({h.theme for h in hits}) < 2:
                continue
            clause = clauses[idx].clause
            hits = sorted(hits, key=lambda h: h.start)
            cuts = []
            for a, b in zip(hits, hits[1:], strict=False):
                if a.theme == b.theme:
                    continue
                # The last "et" / ";" lying wholly between the two hits (a bisection: a
                # clause may hold hundreds of hits).
                k = bisect.bisect_left(split_starts, b.start) - 1
                while k >= 0 and splits[k].end > b.start:
                    k -= 1
                if k >= 0 and splits[k].start >= a.end:
                    cuts.append(splits[k].start)
            if not cuts:
                continue
            bounds = [clause.start, *sorted(set(cuts)), clause.end]
            values: dict[str, float] = {}
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                part = text[lo:hi]
                for theme in {h.theme for h in hits if lo <= h.start < hi}:
                    value = sum(c.score for c in self.clause_scores(part, theme))
                    if abs(value) >= POLARITY_MIN:
                        values[theme] = values.get(theme, 0.0) + value
            for theme, value in values.items():
                per_theme[theme] = [
                    (h, i, value if i == idx else v) for h, i, v in per_theme[theme]
                ]

    # --- public -------------------------------------------------------------------------
    def predict_one(self, text: str, lemmas: dict[int, str] | None = None) -> list[ThemeMention]:
        return [r.mention for r in self.detect_one(text, lemmas)]

    def detect_one(self, text: str, lemmas: dict[int, str] | None = None) -> list[RuleMention]:
        if not text or not text.strip():
            return []
        tokens = self.scorer.tokens(text)
        hits = self._hits(text, tokens, lemmas or {})
        if not hits:
            return []
        clauses = self.clause_scores(text)
        if not clauses:
            return []
        doc_value = sum(c.score for c in clauses)
        themed = {t: self.clause_scores(text, t) for t in {h.theme for h in hits}}
        clause_starts = [cs.clause.start for cs in clauses]
        located = [(hit, _clause_at(clause_starts, hit.start)) for hit in hits]
        strong = [(hit, idx) for hit, idx in located if not hit.weak]
        word_pos = {t.start: k for k, t in enumerate(tokens)}
        per_theme: dict[str, list[tuple[_Hit, int, float]]] = {}
        valences: dict[tuple[str, int], float] = {}
        sentence_sums: dict[str, dict[int, float]] = {}
        for hit, idx in located:
            if hit.weak and not self._weak_ok(hit, idx, clauses, strong, word_pos):
                continue
            valence = valences.get((hit.theme, idx))
            if valence is None:
                sums = sentence_sums.get(hit.theme)
                if sums is None:  # per theme, once: a long text has thousands of clauses
                    sums = sentence_sums[hit.theme] = {}
                    for c in themed[hit.theme]:
                        sums[c.clause.sentence] = sums.get(c.clause.sentence, 0.0) + c.score
                valence = self._mention_valence(themed[hit.theme], idx, doc_value, sums)
                valences[hit.theme, idx] = valence
            per_theme.setdefault(hit.theme, []).append((hit, idx, valence))
        self._split_shared(text, tokens, clauses, per_theme)
        # "Puzzle très beau mais il manque 1 pièce": a contrast clause that names no theme
        # of its own continues about the theme of the clause before it.
        hit_clauses = {idx for items in per_theme.values() for _, idx, _ in items}
        for items in per_theme.values():
            for _, idx, _ in list(items):
                nxt = idx + 1
                if (
                    nxt < len(clauses)
                    and nxt not in hit_clauses
                    and clauses[nxt].clause.after_contrast
                    and clauses[nxt].clause.sentence == clauses[idx].clause.sentence
                    and abs(clauses[nxt].score) >= POLARITY_MIN
                ):
                    # What follows "mais" is the verdict: it outweighs the praise before it.
                    items.append((_Hit("", 0, 0, 0.0), nxt, 2.0 * clauses[nxt].score))
        mentions: list[RuleMention] = []
        for theme_id, items in per_theme.items():
            # One mention per theme: confidence grows with independent hits; polarity sums the
            # distinct clauses that mention it.
            miss = 1.0
            by_clause: dict[int, float] = {}
            for hit, idx, valence in items:
                miss *= 1.0 - hit.weight
                by_clause[idx] = valence
            # Clauses that carry an opinion themselves outrank sentence/document fallbacks.
            own_scores = themed[theme_id]
            explicit = [v for k, v in by_clause.items() if abs(own_scores[k].score) >= POLARITY_MIN]
            total = sum(explicit) if explicit else sum(by_clause.values())
            own = [idx for hit, idx, _ in items if hit.theme] or list(by_clause)
            best_idx = max(own, key=lambda k: abs(by_clause[k]))
            clause = clauses[best_idx].clause
            mention = ThemeMention(
                theme=theme_id,
                polarity=self._label(total),
                score=round(1.0 - miss, 4),
                evidence=Span(clause.start, clause.end, clause.text),
            )
            mentions.append(RuleMention(mention, total, tuple(sorted(by_clause))))
        order = {t: i for i, t in enumerate(self.taxonomy.ids)}
        mentions.sort(key=lambda m: order.get(m.mention.theme, 99))
        return mentions

    def detect(self, texts: Sequence[str]) -> list[list[RuleMention]]:
        """Like `predict`, with the valences behind each polarity."""
        lemma_maps = self._lemmas(texts)
        return [self.detect_one(t, lm) for t, lm in zip(texts, lemma_maps, strict=True)]

    def predict(self, texts: Sequence[str]) -> list[list[ThemeMention]]:
        return [[r.mention for r in doc] for doc in self.detect(texts)]

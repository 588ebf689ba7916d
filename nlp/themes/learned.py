"""LearnedThemeDetector: per-theme logistic heads over rules + TF-IDF (+ encoder vectors).

Presence, one binary logistic regression per theme, two variants trained side by side:
- `lite`: word n-grams of light stems (elisions split, accents folded, SMS expanded), character
  n-grams and the RuleThemeDetector's per-theme scores (all themes: co-occurrence helps);
- `full`: the same plus the standardised document vector of the encoder it is handed.
`full` is used only when the encoder's signature matches the one it was trained with (see
nlp/themes/embed.py); otherwise `lite`, so a missing or different encoder degrades, never fails.

Polarity: the clauses expressing the theme (the rules' clauses when they found it, else the
clause the TF-IDF part of its head scores highest) feed a PolarityHead (nlp/themes/polarity.py):
lexicon valences, and the sentiment model's probabilities for those clauses when its signature
matches. Themes with too few training examples fall back to the rules.

Saved as a small directory: `meta.json` (settings, thresholds, signatures), `vocabulary.json`
(TF-IDF terms) and `arrays.npz` (weights); no pickle.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np

from nlp.errors import VerbatimError
from nlp.sentiment.lexicon import ClauseScore, LexiconSentiment
from nlp.taxonomy import Taxonomy, load_taxonomy
from nlp.text.french import Token, tokenize
from nlp.text.normalize import fold_accents, normalize_text
from nlp.themes.embed import TextSignals
from nlp.themes.polarity import (
    FEATURES,
    MIN_MENTIONS,
    POLARITY_GRID,
    MentionContext,
    PolarityHead,
    context_of,
    lexicon_label,
    tune_head,
)
from nlp.themes.rules import RuleMention, RuleThemeDetector
from nlp.themes.stem import light_stem
from nlp.themes.tfidf import FittedTfidf, FittedTfidfPart, char_wb_ngrams
from nlp.types import POLARITIES, Polarity, Span, ThemeMention

log = logging.getLogger(__name__)

VERSION = "0.2"
FORMAT = 2
MIN_EXAMPLES = 8  # positives per theme below which the theme falls back to the rules
DEFAULT_THRESHOLD = 0.5
_THRESHOLD_RANGE = (0.3, 0.7)
C_STEP = 4.0  # presence heads try C and C * C_STEP (internal CV picks one per taxonomy)
VARIANTS = ("lite", "full")


class ThemeModelError(VerbatimError, ValueError):
    """A theme model directory that cannot be loaded or does not fit the taxonomy."""


# --- text features (module-level functions so the fitted vectorisers pickle) -----------------
def stem_analyzer(text: str) -> list[str]:
    """Unigrams + bigrams of light stems; negators kept (they matter: "pas reçu")."""
    words = [
        light_stem(t.norm)
        for t in tokenize(normalize_text(text))
        if t.kind in ("word", "num", "emoji")
    ]
    words = [w for w in words if w]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def char_preprocessor(text: str) -> str:
    return fold_accents(normalize_text(text))


CHAR_NGRAMS = (3, 5)


def char_analyzer(text: str) -> list[str]:
    """The char part's features (scikit-learn's char_wb over char_preprocessor)."""
    return char_wb_ngrams(char_preprocessor(text), *CHAR_NGRAMS)


WORD_MEMO_MAX = 200_000  # distinct words whose features an id extractor remembers


class StemIds:
    """`stem_analyzer`'s features as vocabulary ids, with the text's tokens read from
    `tokens` (the lexicon scorer's memo: the sentiment already tokenised the same normalised
    text) and each word's stem and id memoised here."""

    def __init__(self, vocabulary: Mapping[str, int], tokens: Callable[[str], list[Token]]):
        self.vocabulary = vocabulary
        self.tokens = tokens
        self._stems: dict[str, str] = {}

    def _stem(self, norm: str) -> str:
        try:
            return self._stems[norm]
        except KeyError:
            pass
        if len(self._stems) >= WORD_MEMO_MAX:
            self._stems = {}
        stem = self._stems[norm] = light_stem(norm)
        return stem

    def __call__(self, text: str) -> list[int]:
        words = [
            stem
            for t in self.tokens(normalize_text(text))
            if t.kind in ("word", "num", "emoji") and (stem := self._stem(t.norm))
        ]
        get = self.vocabulary.get
        ids = [j for j in map(get, words) if j is not None]
        ids.extend(
            j for a, b in zip(words, words[1:], strict=False) if (j := get(f"{a} {b}")) is not None
        )
        return ids


class CharIds:
    """`char_analyzer`'s features as vocabulary ids: char_wb n-grams never cross a word, so
    each distinct word's ids are computed once (memoised here)."""

    def __init__(self, vocabulary: Mapping[str, int]) -> None:
        self.vocabulary = vocabulary
        self._words: dict[str, tuple[int, ...]] = {}

    def _word(self, word: str) -> tuple[int, ...]:
        try:
            return self._words[word]
        except KeyError:
            pass
        if len(self._words) >= WORD_MEMO_MAX:
            self._words = {}
        get = self.vocabulary.get
        ids = tuple(j for j in map(get, char_wb_ngrams(word, *CHAR_NGRAMS)) if j is not None)
        self._words[word] = ids
        return ids

    def __call__(self, text: str) -> list[int]:
        # char_wb_ngrams collapses whitespace then splits on it: split() alone gives the words.
        ids: list[int] = []
        for word in char_preprocessor(text).split():
            ids.extend(self._word(word))
        return ids


def fitted_vectorizer(
    vocab: Mapping[str, Mapping[str, int]],
    arrays: Mapping[str, Any],
    tokens: Callable[[str], list[Token]] | None = None,
) -> Any:
    """The saved vectoriser for transforms only (nlp/themes/tfidf: no scikit-learn import).
    With `tokens` (a memoised tokenizer), features are read through the fast id extractors."""
    analyzers = {"word": stem_analyzer, "char": char_analyzer}
    ids: dict[str, Callable[[str], list[int]] | None] = {"word": None, "char": None}
    if tokens is not None:
        ids = {"word": StemIds(vocab["word"], tokens), "char": CharIds(vocab["char"])}
    return FittedTfidf(
        [
            (name, FittedTfidfPart(analyzers[name], vocab[name], arrays[f"idf_{name}"], ids[name]))
            for name in ("word", "char")
        ]
    )


def _vectorizer(max_word: int, max_char: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer=stem_analyzer,
                    min_df=2,
                    max_df=0.5,
                    sublinear_tf=True,
                    max_features=max_word,
                    dtype=np.float32,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    preprocessor=char_preprocessor,
                    ngram_range=CHAR_NGRAMS,
                    min_df=3,
                    max_df=0.5,
                    sublinear_tf=True,
                    max_features=max_char,
                    dtype=np.float32,
                ),
            ),
        ]
    )


def _best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold maximising F1 on out-of-fold probabilities (clamped to a sane range)."""
    if y.sum() == 0:
        return DEFAULT_THRESHOLD
    best_t, best_f = DEFAULT_THRESHOLD, -1.0
    # Ties go to the value nearest 0.5: thresholds tuned on few examples are noisy.
    grid = sorted(
        np.arange(_THRESHOLD_RANGE[0], _THRESHOLD_RANGE[1] + 1e-9, 0.05),
        key=lambda t: abs(t - DEFAULT_THRESHOLD),
    )
    for t in grid:
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        fp = float((pred & (y == 0)).sum())
        fn = float((~pred & (y == 1)).sum())
        f = 2 * tp / max(1.0, 2 * tp + fp + fn)
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    return round(best_t, 3)


def _micro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float((pred & (y == 1)).sum())
    return 2 * tp / max(1.0, 2 * tp + float((pred & (y == 0)).sum() + (~pred & (y == 1)).sum()))


def encode_with(signals: TextSignals | None, texts: Sequence[str]) -> Any | None:
    """One encoder pass over `texts` when the signals can give one (else None)."""
    encode = getattr(signals, "encode", None)
    return encode(list(texts)) if encode is not None else None


def span_features(
    encoded: Any, docs: Sequence[int], contexts: Sequence[MentionContext], version: int = 1
) -> np.ndarray:
    """(k, 6): sentiment probabilities of each mention's clauses (span-pooled token states of
    its document's pass), then of the whole document. Version 2 (k, 17) adds, from the same
    pass: the highest positive / negative / neutral probability of any one of its clauses
    (praise and fault of one theme in two clauses: mixed) and the lowest positive / negative
    one, then the clauses around the mention and the rest of the text (the document's mood
    apart from the theme's own clauses; the mention's own probabilities where there are none)."""
    pairs = list(zip(docs, contexts, strict=True))
    clause = encoded.span_probs([(d, c.spans) for d, c in pairs])
    whole = encoded.span_probs([(d, ()) for d in docs])
    if version < 2:
        return np.hstack([clause, whole]).astype(np.float32)
    # One batched head call over every single clause, the neighbours and the rests.
    singles = [(d, (s,)) for d, c in pairs for s in c.spans]
    items = singles + [(d, c.around) for d, c in pairs] + [(d, c.rest) for d, c in pairs]
    probs = encoded.span_probs(items)
    one, around, rest = np.split(probs, [len(singles), len(singles) + len(pairs)])
    extremes = np.zeros((len(pairs), 5), dtype=np.float32)
    start = 0
    for k, (_, c) in enumerate(pairs):
        block = one[start : start + len(c.spans)] if c.spans else clause[k : k + 1]
        start += len(c.spans)
        extremes[k] = [*block.max(0), block[:, 0].min(), block[:, 2].min()]
    no_around = np.array([not c.around for _, c in pairs])
    no_rest = np.array([not c.rest for _, c in pairs])
    around[no_around] = clause[no_around]
    rest[no_rest] = clause[no_rest]
    return np.hstack([clause, whole, extremes, around, rest]).astype(np.float32)


def span_states(
    encoded: Any, docs: Sequence[int], contexts: Sequence[MentionContext]
) -> np.ndarray:
    """(k, hidden): each mention's clause token states mean-pooled from its document's pass."""
    return np.stack(
        [encoded.span_pool(d, c.spans) for d, c in zip(docs, contexts, strict=True)]
    ).astype(np.float32)


class LearnedThemeDetector:
    """Multi-label theme detector with learned per-theme heads; ThemeModel protocol.

    `signals` (nlp/themes/embed.TextSignals) gives encoder vectors and sentiment probabilities;
    without it, or when it is not the encoder the model was trained with, the lite heads run.
    """

    name = "learned"

    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        nlp: Any | None = None,
        scorer: LexiconSentiment | None = None,
        signals: TextSignals | None = None,
        use_rules: bool = True,
        min_examples: int = MIN_EXAMPLES,
        C: float = 4.0,
        max_word_features: int = 12000,
        max_char_features: int = 12000,
        rule_weight: float = 3.0,
        vector_weight: float = 0.05,
        use_examples: bool = True,
        polarity_grid: Sequence[tuple[float, float, float]] = POLARITY_GRID,
        polarity_version: int = FEATURES,
    ) -> None:
        self.taxonomy = taxonomy
        self.scorer = scorer or LexiconSentiment()
        self.rules = RuleThemeDetector(taxonomy, nlp=nlp, scorer=self.scorer)
        self.signals = signals
        self.use_rules = use_rules
        self.min_examples = min_examples
        self.C = C
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.rule_weight = rule_weight
        self.vector_weight = vector_weight
        self.use_examples = use_examples
        self.polarity_grid = tuple(polarity_grid)  # polarity settings tried at fit time
        self.polarity_version = polarity_version  # feature set of the heads fitted here
        self.version = VERSION
        self.themes: list[str] = []  # themes with a learned head
        self.rule_only: list[str] = []  # themes that fall back to the rules
        self.vectorizer: Any = None
        self.n_text_features = 0
        # Per variant: thresholds, (n_themes, n_features) coefficients, intercepts.
        self.thresholds: dict[str, dict[str, float]] = {}
        # Per variant, per column of `themes`: the threshold of the head's own (trained) id.
        # After a merge two heads carry the same current id: each keeps its own threshold.
        self.column_thresholds: dict[str, list[float]] = {}
        self.coef: dict[str, np.ndarray] = {}
        self.intercept: dict[str, np.ndarray] = {}
        self.vector_mean: np.ndarray | None = None
        self.vector_scale: np.ndarray | None = None
        self.polarity: dict[str, PolarityHead] = {}
        self.vector_signature: str | None = None
        self.sentiment_signature: str | None = None
        self.info: dict[str, Any] = {}

    # --- which variant runs -----------------------------------------------------------------
    @property
    def detection_variant(self) -> str:
        ok = (
            "full" in self.coef
            and self.signals is not None
            and self.signals.vector_signature is not None
            and self.signals.vector_signature == self.vector_signature
        )
        return "full" if ok else "lite"

    @property
    def polarity_variant(self) -> str | None:
        ok = (
            "full" in self.polarity
            and self.signals is not None
            and self.signals.sentiment_signature is not None
            and self.signals.sentiment_signature == self.sentiment_signature
        )
        if ok:
            return "full"
        return "lite" if "lite" in self.polarity else None

    @property
    def thresholds_active(self) -> dict[str, float]:
        return self.thresholds.get(self.detection_variant, {})

    # --- features ---------------------------------------------------------------------------
    def _rule_matrix(self, mentions: Sequence[Sequence[RuleMention]]) -> np.ndarray:
        cols: dict[str, list[int]] = {}
        for i, t in enumerate(self.themes):  # a merged theme feeds every head it absorbed
            cols.setdefault(t, []).append(i)
        out = np.zeros((len(mentions), len(self.themes)), dtype=np.float32)
        for r, doc in enumerate(mentions):
            for m in doc:
                for i in cols.get(m.mention.theme, ()):
                    out[r, i] = m.mention.score * self.rule_weight
        return out

    def _features(
        self, variant: str, text_x: Any, rule_x: np.ndarray, vectors: np.ndarray | None
    ) -> Any:
        from scipy import sparse

        blocks = [text_x]
        if variant == "full":
            assert vectors is not None and self.vector_mean is not None
            assert self.vector_scale is not None
            z = (vectors - self.vector_mean) / self.vector_scale * self.vector_weight
            blocks.append(sparse.csr_matrix(z.astype(np.float32)))
        if self.use_rules:
            blocks.append(sparse.csr_matrix(rule_x))
        return sparse.hstack(blocks, format="csr")

    # --- training ---------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[Mapping[str, str]],
        *,
        rule_mentions: Sequence[Sequence[RuleMention]] | None = None,
        tune_thresholds: bool = True,
    ) -> LearnedThemeDetector:
        """Fit on `texts` and their gold `labels` ({theme id: polarity}; {} = no theme).

        Theme ids go through the taxonomy's aliases; unknown ids raise ThemeModelError.
        `rule_mentions` (the rule detector's `detect` output for `texts`) saves time. With
        `signals`, the full variants are trained too (vectors / sentiment probabilities).
        """
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} label sets")
        texts = list(texts)
        gold = [self._resolve_labels(lab, i) for i, lab in enumerate(labels)]
        counts = {t: sum(1 for g in gold if t in g) for t in self.taxonomy.ids}
        self.themes = [
            t
            for t in self.taxonomy.ids
            if counts[t] >= self.min_examples and counts[t] < len(texts)
        ]
        self.rule_only = [t for t in self.taxonomy.ids if t not in self.themes]
        for t in self.rule_only:
            warnings.warn(
                f"theme {t!r}: {counts[t]} training example(s) (need {self.min_examples} and "
                "some negatives); it falls back to the rule detector",
                stacklevel=2,
            )
        self.info = {"n_train": len(texts), "positives": counts}
        if rule_mentions is None:
            rule_mentions = self.rules.detect(texts)
        if not self.themes:
            self._fit_polarity(texts, gold, rule_mentions, encode_with(self.signals, texts))
            return self
        # The taxonomy's own `examples:` are extra positives for presence (not for polarity:
        # they carry none), and never count towards `min_examples`.
        extra = (
            [(ex, t.id) for t in self.taxonomy.active if t.id in self.themes for ex in t.examples]
            if self.use_examples
            else []
        )
        self.info["taxonomy_examples"] = len(extra)
        det_texts = texts + [ex for ex, _ in extra]
        det_gold = gold + [{t: "neutral"} for _, t in extra]
        det_rules = list(rule_mentions) + (
            self.rules.detect([ex for ex, _ in extra]) if extra else []
        )
        self.vectorizer = _vectorizer(self.max_word_features, self.max_char_features)
        text_x = self.vectorizer.fit_transform([normalize_text(t) for t in det_texts])
        self.n_text_features = text_x.shape[1]
        rule_x = self._rule_matrix(det_rules)
        y = np.array([[1 if t in g else 0 for t in self.themes] for g in det_gold], dtype=int)
        variants: dict[str, np.ndarray | None] = {"lite": None}
        encoded = encode_with(self.signals, det_texts)
        if self.signals is not None and self.signals.vector_signature is not None:
            vectors = (
                encoded.vectors
                if encoded is not None
                else np.asarray(self.signals.vectors(det_texts), dtype=np.float32)
            )
            self.vector_mean = vectors.mean(0)
            self.vector_scale = vectors.std(0) + 1e-6
            self.vector_signature = self.signals.vector_signature
            variants["full"] = vectors
        for variant, variant_vectors in variants.items():
            x = self._features(variant, text_x, rule_x, variant_vectors)
            self.coef[variant], self.intercept[variant], self.thresholds[variant] = self._fit_heads(
                x, y, tune_thresholds, variant
            )
        self._fit_polarity(
            texts,
            gold,
            rule_mentions,
            encoded.subset(range(len(texts))) if encoded is not None else None,
        )
        return self

    def _fit_heads(
        self, x: Any, y: np.ndarray, tune: bool, variant: str = "lite"
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """One head per theme. With `tune`, 3-fold out-of-fold probabilities on the training
        rows pick the regularisation (self.C or self.C * C_STEP, one for the whole taxonomy:
        the best micro-F1 after threshold tuning) and each theme's threshold."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import KFold

        # Fewer rows than features (the usual case): liblinear's dual is 5-10x faster than
        # its primal here, same optimum.
        dual = x.shape[0] < x.shape[1]

        def model(c: float) -> Any:
            return LogisticRegression(
                C=c, class_weight="balanced", max_iter=3000, solver="liblinear", dual=dual
            )

        n_pos = y.sum(0)
        tunable = [j for j in range(y.shape[1]) if n_pos[j] >= 3 and len(y) - n_pos[j] >= 3]
        thresholds = {t: DEFAULT_THRESHOLD for t in self.themes}
        chosen = self.C
        if tune and tunable and len(y) >= 30:
            folds = list(KFold(3, shuffle=True, random_state=0).split(y))
            best = (-1.0, self.C, thresholds)
            for c in (self.C, self.C * C_STEP):
                oof = np.zeros(y.shape, dtype=np.float64)
                for tr, te in folds:
                    for j in tunable:
                        if 0 < y[tr, j].sum() < len(tr):
                            oof[te, j] = model(c).fit(x[tr], y[tr, j]).predict_proba(x[te])[:, 1]
                cand = dict(thresholds)
                for j in tunable:
                    cand[self.themes[j]] = _best_threshold(y[:, j], oof[:, j])
                cut = np.array([cand[self.themes[j]] for j in tunable])
                f1 = _micro_f1(y[:, tunable], oof[:, tunable] >= cut)
                if f1 > best[0] + 0.002:  # ties keep the stronger regularisation
                    best = (f1, c, cand)
            _, chosen, thresholds = best
        self.info.setdefault("C", {})[variant] = chosen
        coefs, intercepts = [], []
        for j in range(len(self.themes)):
            clf = model(chosen).fit(x, y[:, j])
            coefs.append(clf.coef_[0].astype(np.float32))
            intercepts.append(float(clf.intercept_[0]))
        return np.vstack(coefs), np.array(intercepts, dtype=np.float32), thresholds

    def _fit_polarity(
        self,
        texts: list[str],
        gold: list[dict[str, str]],
        rule_mentions: Sequence[Sequence[RuleMention]],
        encoded: Any | None = None,
    ) -> None:
        """Polarity heads on the gold mentions, located as at inference time."""
        contexts: list[MentionContext] = []
        labels: list[str] = []
        docs: list[int] = []
        for r, (text, g, found) in enumerate(zip(texts, gold, rule_mentions, strict=True)):
            if not g:
                continue
            located = self._contexts(text, list(g), found, "lite")
            for theme, ctx in located.items():
                contexts.append(ctx)
                labels.append(g[theme])
                docs.append(r)
        self.info["polarity_mentions"] = len(contexts)
        if len(contexts) < MIN_MENTIONS or len(set(labels)) < 2:
            return
        ids = self.taxonomy.ids
        version = self.polarity_version
        self.polarity["lite"], self.info["polarity_lite"] = tune_head(
            ids, contexts, labels, docs, use_probs=False, grid=self.polarity_grid, version=version
        )
        if self.signals is not None and self.signals.sentiment_signature is not None:
            states = None
            if encoded is not None:
                kind, probs = "span", span_features(encoded, docs, contexts, version)
                states = span_states(encoded, docs, contexts)
            else:
                kind, probs = "text", self.signals.sentiment_probs([c.text for c in contexts])
            self.polarity["full"], self.info["polarity_full"] = tune_head(
                ids,
                contexts,
                labels,
                docs,
                use_probs=True,
                probs_kind=kind,
                probs=probs,
                states=states,
                grid=self.polarity_grid,
                version=version,
            )
            self.sentiment_signature = self.signals.sentiment_signature

    def _resolve_labels(self, labels: Mapping[str, str], row: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, pol in labels.items():
            theme = self.taxonomy.resolve(key)
            if theme is None or theme.retired:
                raise ThemeModelError(
                    f"example {row + 1}: unknown theme id {key!r}; known: "
                    f"{', '.join(self.taxonomy.ids)}"
                )
            if pol not in POLARITIES:
                raise ThemeModelError(
                    f"example {row + 1}: theme {key!r} has polarity {pol!r}; expected one of "
                    f"{', '.join(POLARITIES)}"
                )
            out[theme.id] = pol
        return out

    # --- inference --------------------------------------------------------------------------
    def _sigmoid(self, variant: str, x: Any) -> np.ndarray:
        z = np.asarray(x @ self.coef[variant].T) + self.intercept[variant]
        return 1.0 / (1.0 + np.exp(-z))

    def predict_proba(
        self,
        texts: Sequence[str],
        rule_mentions: Sequence[Sequence[RuleMention]] | None = None,
        encoded: Any | None = None,
    ) -> np.ndarray:
        """(n_texts, n_learned_themes) presence probabilities, columns in `self.themes`."""
        if not self.themes or not texts:
            return np.zeros((len(texts), len(self.themes)))
        if rule_mentions is None:
            rule_mentions = self.rules.detect(texts)
        variant = self.detection_variant
        vectors = None
        if variant == "full":
            assert self.signals is not None
            vectors = (
                encoded.vectors
                if encoded is not None
                else np.asarray(self.signals.vectors(list(texts)), dtype=np.float32)
            )
        text_x = self.vectorizer.transform([normalize_text(t) for t in texts])
        x = self._features(variant, text_x, self._rule_matrix(rule_mentions), vectors)
        return self._sigmoid(variant, x)

    def _contexts(
        self,
        text: str,
        themes: Sequence[str],
        found: Sequence[RuleMention],
        variant: str,
        clauses: list[ClauseScore] | None = None,
        xc: Any | None = None,
    ) -> dict[str, MentionContext]:
        """Where each theme is expressed: the rules' clauses when they found it. A theme only
        the head found is implicit ("tombé en panne au bout d'un mois" is about the product):
        its polarity is read from the whole text, its evidence is the clause that the TF-IDF
        part of its head scores highest. `clauses`: `self.rules.clause_scores(text)` (passed
        when the caller has them)."""
        if clauses is None:
            clauses = self.rules.clause_scores(text)
        if not clauses:
            return {}
        by_rule = {m.mention.theme: m for m in found}
        out: dict[str, MentionContext] = {}
        need = []
        for theme in themes:
            rule = by_rule.get(theme)
            if rule is not None and rule.clauses:
                ctx = context_of(
                    theme, self.rules.clause_scores(text, theme), rule.clauses, rule.valence
                )
                out[theme] = replace(ctx, evidence=rule.mention.evidence or ctx.evidence)
            else:
                need.append(theme)
        if not need:
            return out
        whole = range(len(clauses))
        cols = {t: j for j, t in enumerate(self.themes)}
        scored = [t for t in need if t in cols and self.vectorizer is not None]
        best: dict[str, int] = {}
        if scored:
            if xc is None:
                xc = self.vectorizer.transform([normalize_text(c.clause.text) for c in clauses])
            w = self.coef.get(variant, self.coef.get("lite"))
            assert w is not None
            z = np.asarray(xc @ w[[cols[t] for t in scored], : self.n_text_features].T)
            best = {t: int(np.argmax(z[:, col])) for col, t in enumerate(scored)}
        for theme in need:
            ctx = context_of(theme, self.rules.clause_scores(text, theme), whole)
            if theme in best:
                c = clauses[best[theme]].clause
                ctx = replace(ctx, evidence=Span(c.start, c.end, c.text))
            out[theme] = ctx
        return out

    def _clause_features(
        self,
        chosen: list[list[tuple[str, float]]],
        rule_mentions: Sequence[Sequence[RuleMention]],
        clauses: dict[int, list[ClauseScore]],
    ) -> dict[int, Any]:
        """TF-IDF rows of the clauses of every text with a theme the rules did not locate,
        in one vectoriser call (row r -> its clauses' matrix)."""
        if self.vectorizer is None:
            return {}
        learned = set(self.themes)
        docs = []
        for r, cl in clauses.items():
            located = {m.mention.theme for m in rule_mentions[r] if m.clauses}
            if cl and any(t in learned and t not in located for t, _ in chosen[r]):
                docs.append(r)
        if not docs:
            return {}
        x = self.vectorizer.transform(
            [normalize_text(c.clause.text) for r in docs for c in clauses[r]]
        )
        out, start = {}, 0
        for r in docs:
            out[r] = x[start : start + len(clauses[r])]
            start += len(clauses[r])
        return out

    def predict(
        self,
        texts: Sequence[str],
        rule_mentions: Sequence[Sequence[RuleMention]] | None = None,
        encoded: Any | None = None,
    ) -> list[list[ThemeMention]]:
        """Mentions per text. `encoded`: the texts' one encoder pass (the sentiment backend's
        `encode_docs`), from which document vectors and clause polarities are read; without
        it the encoder runs here (as many passes as the heads need)."""
        texts = list(texts)
        if rule_mentions is None:
            rule_mentions = self.rules.detect(texts)
        span_head = self.polarity_variant == "full" and self.polarity["full"].probs_kind == "span"
        if encoded is None and texts and (self.detection_variant == "full" or span_head):
            encoded = encode_with(self.signals, texts)  # one pass for vectors and clauses
        probs = self.predict_proba(texts, rule_mentions, encoded)
        variant = self.detection_variant
        thresholds = self.thresholds.get(variant, {})
        per_column = self.column_thresholds.get(variant) or [
            thresholds.get(t, DEFAULT_THRESHOLD) for t in self.themes
        ]
        order = {t: i for i, t in enumerate(self.taxonomy.ids)}
        active = set(self.taxonomy.ids)
        chosen: list[list[tuple[str, float]]] = []
        for r in range(len(texts)):
            by_rule = {m.mention.theme: m.mention for m in rule_mentions[r]}
            picks = [(t, by_rule[t].score) for t in self.rule_only if t in by_rule]
            heads: dict[str, float] = {}  # one mention per theme: its best head that fires
            for j, t in enumerate(self.themes):
                if t in active and probs[r, j] >= per_column[j]:
                    heads[t] = max(heads.get(t, 0.0), round(float(probs[r, j]), 4))
            picks += list(heads.items())
            chosen.append(picks)
        # Contexts of every mention, then one batched polarity pass.
        flat: list[tuple[int, str, float, MentionContext]] = []
        clauses = {r: self.rules.clause_scores(texts[r]) for r in range(len(texts)) if chosen[r]}
        xcs = self._clause_features(chosen, rule_mentions, clauses)
        for r, text in enumerate(texts):
            if not chosen[r]:
                continue
            ctxs = self._contexts(
                text, [t for t, _ in chosen[r]], rule_mentions[r], variant, clauses[r], xcs.get(r)
            )
            flat.extend((r, t, s, ctxs[t]) for t, s in chosen[r] if t in ctxs)
        polarities = self._polarities([c for *_, c in flat], [r for r, *_ in flat], texts, encoded)
        out: list[list[ThemeMention]] = [[] for _ in texts]
        for (r, theme, score, ctx), pol in zip(flat, polarities, strict=True):
            out[r].append(ThemeMention(theme, pol, score, ctx.evidence))
        for mentions in out:
            mentions.sort(key=lambda m: order.get(m.theme, 99))
        return out

    def _polarities(
        self, contexts: list[MentionContext], docs: list[int], texts: list[str], encoded: Any | None
    ) -> list[Polarity]:
        variant = self.polarity_variant
        if not contexts:
            return []
        if variant is None:
            return [lexicon_label(c.valence) for c in contexts]
        head = self.polarity[variant]
        probs = states = None
        if head.use_probs:
            assert self.signals is not None
            if head.probs_kind == "span":
                if encoded is None:
                    encoded = encode_with(self.signals, texts)
                if encoded is None:  # cannot happen when the signatures match; be safe
                    return [lexicon_label(c.valence) for c in contexts]
                probs = span_features(encoded, docs, contexts, head.version)
                if head.uses_states:
                    states = span_states(encoded, docs, contexts)
            else:
                probs = self.signals.sentiment_probs([c.text for c in contexts])
        return list(head.predict(contexts, probs, states))

    # --- persistence ------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        """meta.json (settings, thresholds, vocabularies) + arrays.npz (weights): no pickle,
        so loading a model file never runs code."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        vocab: dict[str, dict[str, int]] = {}
        for name, vec in getattr(self.vectorizer, "transformer_list", []):
            vocab[name] = {str(k): int(v) for k, v in vec.vocabulary_.items()}
            arrays[f"idf_{name}"] = vec.idf_.astype(np.float32)
        for variant in self.coef:
            arrays[f"coef_{variant}"] = self.coef[variant].astype(np.float32)
            arrays[f"intercept_{variant}"] = self.intercept[variant].astype(np.float32)
        if self.vector_mean is not None and self.vector_scale is not None:
            arrays["vector_mean"] = self.vector_mean.astype(np.float32)
            arrays["vector_scale"] = self.vector_scale.astype(np.float32)
        polarity = {}
        for variant, head in self.polarity.items():
            state = head.state()
            arrays[f"polarity_coef_{variant}"] = state.pop("coef")
            arrays[f"polarity_intercept_{variant}"] = state.pop("intercept")
            for key in ("state_mean", "state_scale"):
                if key in state:
                    arrays[f"polarity_{key}_{variant}"] = state.pop(key)
            polarity[variant] = state
        meta = {
            "format": FORMAT,
            "version": self.version,
            "taxonomy": self.taxonomy.name,
            "themes": self.themes,
            "rule_only": self.rule_only,
            "thresholds": self.thresholds,
            "variants": sorted(self.coef),
            "polarity": polarity,
            "vector_signature": self.vector_signature,
            "sentiment_signature": self.sentiment_signature,
            "use_rules": self.use_rules,
            "rule_weight": self.rule_weight,
            "vector_weight": self.vector_weight,
            "use_examples": self.use_examples,
            "min_examples": self.min_examples,
            "C": self.C,
            "max_word_features": self.max_word_features,
            "max_char_features": self.max_char_features,
            "n_text_features": self.n_text_features,
            "info": self.info,
        }
        (path / "meta.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        (path / "vocabulary.json").write_text(
            json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        np.savez_compressed(path / "arrays.npz", **cast(dict[str, Any], arrays))
        return path

    @classmethod
    def load(
        cls,
        directory: Path | str,
        taxonomy: Taxonomy | None = None,
        *,
        nlp: Any | None = None,
        scorer: LexiconSentiment | None = None,
        signals: TextSignals | None = None,
    ) -> LearnedThemeDetector:
        """Load a saved model. With `taxonomy`, learned themes missing from it are dropped
        (retired / removed) and its new themes use the rules."""
        path = Path(directory)
        files = [path / "meta.json", path / "vocabulary.json", path / "arrays.npz"]
        if not all(f.is_file() for f in files):
            raise ThemeModelError(
                f"{path}: not a theme model (needs meta.json, vocabulary.json and arrays.npz)"
            )
        try:
            meta = json.loads(files[0].read_text(encoding="utf-8"))
            vocab = json.loads(files[1].read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ThemeModelError(f"{path}: not valid JSON: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ThemeModelError(
                f"{path}: unsupported format {meta.get('format')!r} "
                f"(this version reads {FORMAT}; retrain it)"
            )
        taxonomy = taxonomy or load_taxonomy(meta.get("taxonomy") or None)
        model = cls(
            taxonomy,
            nlp=nlp,
            scorer=scorer,
            signals=signals,
            use_rules=bool(meta["use_rules"]),
            min_examples=int(meta.get("min_examples", MIN_EXAMPLES)),
            C=float(meta.get("C", 4.0)),
            rule_weight=float(meta.get("rule_weight", 3.0)),
            vector_weight=float(meta.get("vector_weight", 0.05)),
            use_examples=bool(meta.get("use_examples", True)),
            max_word_features=int(meta.get("max_word_features", 12000)),
            max_char_features=int(meta.get("max_char_features", 12000)),
        )
        with np.load(files[2]) as data:
            arrays = {k: data[k] for k in data.files}
        if vocab:
            model.vectorizer = fitted_vectorizer(vocab, arrays, model.scorer.tokens)
        model.n_text_features = int(meta.get("n_text_features", 0))
        for variant in meta.get("variants", []):
            model.coef[variant] = arrays[f"coef_{variant}"]
            model.intercept[variant] = arrays[f"intercept_{variant}"]
        model.vector_mean = arrays.get("vector_mean")
        model.vector_scale = arrays.get("vector_scale")
        model.vector_signature = meta.get("vector_signature")
        model.sentiment_signature = meta.get("sentiment_signature")

        # Ids resolve through aliases (a renamed/merged theme keeps its head); heads of
        # themes the taxonomy no longer has stay in the matrix but are never emitted.
        learned = list(meta["themes"])
        model.themes = [taxonomy.current_id(t) for t in learned]
        model.thresholds = {
            variant: {
                taxonomy.current_id(t): float(values.get(t, DEFAULT_THRESHOLD)) for t in learned
            }
            for variant, values in meta["thresholds"].items()
        }
        model.column_thresholds = {
            variant: [float(values.get(t, DEFAULT_THRESHOLD)) for t in learned]
            for variant, values in meta["thresholds"].items()
        }
        for variant, state in meta.get("polarity", {}).items():
            state = dict(
                state,
                coef=arrays[f"polarity_coef_{variant}"],
                intercept=arrays[f"polarity_intercept_{variant}"],
            )
            for key in ("state_mean", "state_scale"):
                if f"polarity_{key}_{variant}" in arrays:
                    state[key] = arrays[f"polarity_{key}_{variant}"]
            head = PolarityHead.from_state(state)
            head.themes = [taxonomy.current_id(t) for t in head.themes]
            model.polarity[variant] = head
        model.rule_only = [t for t in taxonomy.ids if t not in model.themes]
        model.info = dict(meta.get("info", {}))
        model.version = str(meta.get("version", VERSION))
        # Only an encoder other than the training one deserves a warning: without any (the
        # lexicon tier) the encoder-free heads are the intended path.
        has_encoder = signals is not None and signals.vector_signature is not None
        if has_encoder and model.detection_variant == "lite" and "full" in model.coef:
            log.warning(
                "theme model %s: the encoder differs from the one it was trained with; "
                "using its encoder-free heads (retrain with `verbatim train themes`)",
                path,
            )
        return model


def default_model_dir(taxonomy: str = "ecommerce") -> Path:
    """The packaged theme head for a built-in taxonomy (nlp/resources/models/themes_<name>)."""
    return Path(str(resources.files("nlp.resources").joinpath(f"models/themes_{taxonomy}")))


def load_theme_model(
    path: Path | str | None = None,
    taxonomy: Taxonomy | None = None,
    *,
    nlp: Any | None = None,
    scorer: LexiconSentiment | None = None,
    signals: TextSignals | None = None,
) -> LearnedThemeDetector:
    """A saved LearnedThemeDetector (None: the packaged default of `taxonomy`)."""
    name = taxonomy.name if taxonomy is not None else "ecommerce"
    return LearnedThemeDetector.load(
        path or default_model_dir(name), taxonomy, nlp=nlp, scorer=scorer, signals=signals
    )

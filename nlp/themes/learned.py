"""LearnedThemeDetector: per-theme logistic heads over TF-IDF (+ the rule detector's scores).

Presence: one binary logistic regression per theme on word n-grams of light stems (elisions
split, accents folded, SMS expanded) and character n-grams, optionally stacked with the
RuleThemeDetector's per-theme match score as an extra feature. Each theme has its own decision
threshold, tuned on out-of-fold predictions of the training data.

Polarity: the clause where the theme is expressed decides. When the rule detector also found
the theme its clause (evidence + polarity) is reused; otherwise the clause the theme head scores
highest is the evidence and its lexicon valence (sentence, then document as fall-backs) gives
the polarity. Themes with too few training examples fall back to the rules.

Saved as a small directory: `meta.json` (themes, thresholds, options) + `model.joblib`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nlp.sentiment.lexicon import ClauseScore, LexiconSentiment
from nlp.taxonomy import Taxonomy, load_taxonomy
from nlp.text.french import tokenize
from nlp.text.normalize import fold_accents, normalize_text
from nlp.themes.rules import POLARITY_MIN, RuleThemeDetector
from nlp.themes.stem import light_stem
from nlp.types import POLARITIES, Polarity, Span, ThemeMention

log = logging.getLogger(__name__)

VERSION = "0.1"
FORMAT = 1
MIN_EXAMPLES = 8  # positives per theme below which the theme falls back to the rules
DEFAULT_THRESHOLD = 0.5
_THRESHOLD_RANGE = (0.15, 0.85)


class ThemeModelError(ValueError):
    """A theme model directory that cannot be loaded or does not fit the taxonomy."""


# --- text features (module-level functions so the fitted vectorisers pickle) -----------------
def stem_analyzer(text: str) -> list[str]:
    """Unigrams + bigrams of light stems; negators kept (they matter: "pas reçu")."""
    words = [light_stem(t.norm) for t in tokenize(normalize_text(text))
             if t.kind in ("word", "num", "emoji")]
    words = [w for w in words if w]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def char_preprocessor(text: str) -> str:
    return fold_accents(normalize_text(text))


def _vectorizer(max_word: int, max_char: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer=stem_analyzer, min_df=2, max_df=0.5,
                                 sublinear_tf=True, max_features=max_word, dtype=np.float32)),
        ("char", TfidfVectorizer(analyzer="char_wb", preprocessor=char_preprocessor,
                                 ngram_range=(3, 5), min_df=3, max_df=0.5, sublinear_tf=True,
                                 max_features=max_char, dtype=np.float32)),
    ])


def _best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold maximising F1 on out-of-fold probabilities (clamped to a sane range)."""
    if y.sum() == 0:
        return DEFAULT_THRESHOLD
    best_t, best_f = DEFAULT_THRESHOLD, -1.0
    for t in np.arange(_THRESHOLD_RANGE[0], _THRESHOLD_RANGE[1] + 1e-9, 0.025):
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        fp = float((pred & (y == 0)).sum())
        fn = float((~pred & (y == 1)).sum())
        f = 2 * tp / max(1.0, 2 * tp + fp + fn)
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    return round(best_t, 3)


def _polarity(value: float) -> Polarity:
    if value >= POLARITY_MIN:
        return "positive"
    if value <= -POLARITY_MIN:
        return "negative"
    return "neutral"


class LearnedThemeDetector:
    """Multi-label theme detector with learned per-theme heads; ThemeModel protocol."""

    name = "learned"

    def __init__(self, taxonomy: Taxonomy, *, nlp: Any | None = None,
                 scorer: LexiconSentiment | None = None, use_rules: bool = True,
                 min_examples: int = MIN_EXAMPLES, C: float = 4.0,
                 max_word_features: int = 12000, max_char_features: int = 12000,
                 rule_weight: float = 3.0) -> None:
        self.taxonomy = taxonomy
        self.scorer = scorer or LexiconSentiment()
        self.rules = RuleThemeDetector(taxonomy, nlp=nlp, scorer=self.scorer)
        self.use_rules = use_rules
        self.min_examples = min_examples
        self.C = C
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.rule_weight = rule_weight
        self.version = VERSION
        self.themes: list[str] = []  # themes with a learned head
        self.rule_only: list[str] = []  # themes that fall back to the rules
        self.thresholds: dict[str, float] = {}
        self.vectorizer: Any = None
        self.coef: np.ndarray | None = None  # (n_themes, n_features) float32
        self.intercept: np.ndarray | None = None
        self.info: dict[str, Any] = {}

    # --- features ---------------------------------------------------------------------------
    def _rule_matrix(self, mentions: Sequence[Sequence[ThemeMention]]) -> np.ndarray:
        cols = {t: i for i, t in enumerate(self.themes)}
        out = np.zeros((len(mentions), len(self.themes)), dtype=np.float32)
        for r, doc in enumerate(mentions):
            for m in doc:
                if m.theme in cols:
                    out[r, cols[m.theme]] = m.score * self.rule_weight
        return out

    def _features(self, texts: Sequence[str], mentions: Sequence[Sequence[ThemeMention]]) -> Any:
        from scipy import sparse

        x = self.vectorizer.transform(texts)
        if self.use_rules:
            x = sparse.hstack([x, sparse.csr_matrix(self._rule_matrix(mentions))], format="csr")
        return x

    # --- training ---------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[Mapping[str, str]],
            rule_mentions: Sequence[Sequence[ThemeMention]] | None = None,
            tune_thresholds: bool = True) -> LearnedThemeDetector:
        """Fit on `texts` and their gold `labels` ({theme id: polarity}; {} = no theme).

        Theme ids go through the taxonomy's aliases; unknown ids raise ThemeModelError.
        `rule_mentions` (the rule detector's output for `texts`) may be passed to save time.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} label sets")
        gold = [self._resolve_labels(lab, i) for i, lab in enumerate(labels)]
        counts = {t: sum(1 for g in gold if t in g) for t in self.taxonomy.ids}
        self.themes = [t for t in self.taxonomy.ids if counts[t] >= self.min_examples
                       and counts[t] < len(texts)]
        self.rule_only = [t for t in self.taxonomy.ids if t not in self.themes]
        for t in self.rule_only:
            warnings.warn(
                f"theme {t!r}: {counts[t]} training example(s) (need {self.min_examples} and "
                "some negatives); it falls back to the rule detector",
                stacklevel=2,
            )
        self.info = {"n_train": len(texts), "positives": counts}
        if not self.themes:
            return self
        texts = [normalize_text(t) for t in texts]
        if rule_mentions is None:
            rule_mentions = self.rules.predict(texts) if self.use_rules else [[]] * len(texts)
        self.vectorizer = _vectorizer(self.max_word_features, self.max_char_features)
        self.vectorizer.fit(texts)
        x = self._features(texts, rule_mentions)
        y = np.array([[1 if t in g else 0 for t in self.themes] for g in gold], dtype=int)
        coefs, intercepts = [], []
        for j, theme in enumerate(self.themes):
            yj = y[:, j]
            clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000,
                                     solver="liblinear")
            clf.fit(x, yj)
            coefs.append(clf.coef_[0].astype(np.float32))
            intercepts.append(float(clf.intercept_[0]))
            threshold = DEFAULT_THRESHOLD
            n_pos = int(yj.sum())
            if tune_thresholds and n_pos >= 3 and len(yj) - n_pos >= 3:
                folds = min(3, n_pos, len(yj) - n_pos)
                oof = np.zeros(len(yj))
                for tr, te in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, yj):
                    part = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000,
                                              solver="liblinear")
                    part.fit(x[tr], yj[tr])
                    oof[te] = part.predict_proba(x[te])[:, 1]
                threshold = _best_threshold(yj, oof)
            self.thresholds[theme] = threshold
        self.coef = np.vstack(coefs)
        self.intercept = np.array(intercepts, dtype=np.float32)
        return self

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
    def _proba(self, x: Any) -> np.ndarray:
        assert self.coef is not None and self.intercept is not None
        z = np.asarray(x @ self.coef.T) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def predict_proba(self, texts: Sequence[str],
                      rule_mentions: Sequence[Sequence[ThemeMention]] | None = None
                      ) -> np.ndarray:
        """(n_texts, n_learned_themes) presence probabilities, columns in `self.themes`."""
        if not self.themes:
            return np.zeros((len(texts), 0))
        texts = [normalize_text(t) for t in texts]
        if rule_mentions is None:
            rule_mentions = self.rules.predict(texts) if self.use_rules else [[]] * len(texts)
        return self._proba(self._features(texts, rule_mentions))

    def _locate(self, text: str, theme_idx: list[int]) -> dict[int, tuple[Span, Polarity]]:
        """Best clause for each theme head (highest head score) and its polarity."""
        tokens = tokenize(text)
        clauses: list[ClauseScore] = self.scorer.clause_scores(text, tokens)
        if not clauses:
            return {}
        x = self.vectorizer.transform([c.clause.text for c in clauses])
        if self.use_rules:
            from scipy import sparse

            x = sparse.hstack([x, sparse.csr_matrix((len(clauses), len(self.themes)),
                                                    dtype=np.float32)], format="csr")
        assert self.coef is not None
        z = np.asarray(x @ self.coef[theme_idx].T)  # (n_clauses, n_selected)
        doc_value = sum(c.score for c in clauses)
        out = {}
        for col, j in enumerate(theme_idx):
            best = int(np.argmax(z[:, col]))
            cs = clauses[best]
            value = cs.score
            if abs(value) < POLARITY_MIN:
                same = sum(c.score for c in clauses if c.clause.sentence == cs.clause.sentence)
                value = same if abs(same) >= POLARITY_MIN else doc_value
            out[j] = (Span(cs.clause.start, cs.clause.end, cs.clause.text), _polarity(value))
        return out

    def predict(self, texts: Sequence[str]) -> list[list[ThemeMention]]:
        rule_mentions = self.rules.predict(texts)
        probs = self.predict_proba(texts, rule_mentions if self.use_rules else None)
        order = {t: i for i, t in enumerate(self.taxonomy.ids)}
        active = set(self.taxonomy.ids)
        out: list[list[ThemeMention]] = []
        for r, text in enumerate(texts):
            by_rule = {m.theme: m for m in rule_mentions[r]}
            mentions = [by_rule[t] for t in self.rule_only if t in by_rule]
            chosen = [j for j, t in enumerate(self.themes) if t in active
                      and probs[r, j] >= self.thresholds.get(t, DEFAULT_THRESHOLD)]
            need_locate = [j for j in chosen if self.themes[j] not in by_rule]
            located = self._locate(text, need_locate) if need_locate else {}
            for j in chosen:
                theme = self.themes[j]
                score = round(float(probs[r, j]), 4)
                if theme in by_rule:
                    rule = by_rule[theme]
                    mentions.append(ThemeMention(theme, rule.polarity, score, rule.evidence))
                elif j in located:
                    span, pol = located[j]
                    mentions.append(ThemeMention(theme, pol, score, span))
            mentions.sort(key=lambda m: order.get(m.theme, 99))
            out.append(mentions)
        return out

    # --- persistence ------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        import joblib

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "version": self.version,
            "taxonomy": self.taxonomy.name,
            "themes": self.themes,
            "rule_only": self.rule_only,
            "thresholds": self.thresholds,
            "use_rules": self.use_rules,
            "rule_weight": self.rule_weight,
            "min_examples": self.min_examples,
            "C": self.C,
            "info": self.info,
        }
        (path / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n",
                                        encoding="utf-8")
        joblib.dump({"vectorizer": self.vectorizer, "coef": self.coef,
                     "intercept": self.intercept}, path / "model.joblib", compress=3)
        return path

    @classmethod
    def load(cls, directory: Path | str, taxonomy: Taxonomy | None = None, *,
             nlp: Any | None = None, scorer: LexiconSentiment | None = None
             ) -> LearnedThemeDetector:
        """Load a saved model. With `taxonomy`, learned themes missing from it are dropped
        (retired / removed) and its new themes use the rules."""
        import joblib

        path = Path(directory)
        meta_file = path / "meta.json"
        if not meta_file.is_file() or not (path / "model.joblib").is_file():
            raise ThemeModelError(f"{path}: not a theme model (needs meta.json + model.joblib)")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ThemeModelError(f"{meta_file}: not valid JSON: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ThemeModelError(f"{meta_file}: unsupported format {meta.get('format')!r}")
        taxonomy = taxonomy or load_taxonomy(meta.get("taxonomy") or None)
        model = cls(taxonomy, nlp=nlp, scorer=scorer, use_rules=bool(meta["use_rules"]),
                    min_examples=int(meta.get("min_examples", MIN_EXAMPLES)),
                    C=float(meta.get("C", 4.0)), rule_weight=float(meta.get("rule_weight", 3.0)))
        blob = joblib.load(path / "model.joblib")
        model.vectorizer = blob["vectorizer"]
        coef, intercept = blob["coef"], blob["intercept"]
        learned = list(meta["themes"])
        # Ids resolve through aliases (a renamed/merged theme keeps its head); heads of themes
        # the taxonomy no longer has stay in the matrix (feature layout) but are never emitted.
        ids = []
        for t in learned:
            theme = taxonomy.resolve(t)
            ids.append(theme.id if theme is not None else t)
        model.themes = ids
        model.coef, model.intercept = coef, intercept
        model.thresholds = {ids[j]: float(meta["thresholds"].get(t, DEFAULT_THRESHOLD))
                            for j, t in enumerate(learned)}
        model.rule_only = [t for t in taxonomy.ids if t not in ids]
        model.info = dict(meta.get("info", {}))
        model.version = str(meta.get("version", VERSION))
        return model


def default_model_dir() -> Path:
    """The packaged default e-commerce theme head (nlp/resources/models/themes-fr)."""
    return Path(str(resources.files("nlp.resources").joinpath("models/themes-fr")))


def load_theme_model(path: Path | str | None = None, taxonomy: Taxonomy | None = None, *,
                     nlp: Any | None = None, scorer: LexiconSentiment | None = None
                     ) -> LearnedThemeDetector:
    """A saved LearnedThemeDetector (None: the packaged default)."""
    return LearnedThemeDetector.load(path or default_model_dir(), taxonomy, nlp=nlp,
                                     scorer=scorer)

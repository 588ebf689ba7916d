"""Polarity of a theme mention from the clauses that express it.

Features: the lexicon valences around the mention (the clauses naming the theme, their
sentence, the whole text; squashed), optionally the sentiment model's probabilities for the
mention's context (the same clauses), and the theme (base rates differ: prix is more often
neutral than livraison). A multinomial logistic regression trained on gold mentions turns them
into negative / neutral / positive; without one, the lexicon sign decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nlp.sentiment.lexicon import ClauseScore
from nlp.types import POLARITIES, Polarity, Span

POLARITY_MIN = 0.3  # |valence| under this is "no opinion"
MIN_MENTIONS = 30  # gold mentions under which no polarity head is fitted
FEATURES = 2  # feature set of newly fitted heads (PolarityHead.version; saved heads keep theirs)


@dataclass(frozen=True, slots=True)
class MentionContext:
    """Where a theme is expressed in a text and the lexicon's reading of it."""

    theme: str
    clauses: tuple[int, ...]  # clause indices (into the scorer's clause list)
    text: str  # those clauses joined: what the sentiment model reads
    valence: float  # what the lexicon label is read from (clause, else sentence, else text)
    clause: float  # valence of the clauses themselves
    sentence: float
    doc: float
    pos: float = 0.0  # positive / negative valence mass in the clauses ("bien mais cher")
    neg: float = 0.0
    evidence: Span | None = None  # the most opinionated of those clauses
    spans: tuple[tuple[int, int], ...] = ()  # character spans of those clauses in the text
    # Per clause of the mention: its valence, and whether "mais"/"par contre" opened it.
    values: tuple[float, ...] = ()
    contrast: tuple[bool, ...] = ()
    # The clauses right before/after the mention's (not its own) and the rest of the text:
    # what the mention says against what surrounds it (document mood leaking into a theme).
    around: tuple[tuple[int, int], ...] = ()
    rest: tuple[tuple[int, int], ...] = ()


def lexicon_label(value: float) -> Polarity:
    if value >= POLARITY_MIN:
        return "positive"
    if value <= -POLARITY_MIN:
        return "negative"
    return "neutral"


def context_of(
    theme: str, clauses: Sequence[ClauseScore], idxs: Sequence[int], valence: float | None = None
) -> MentionContext:
    """Context for clauses `idxs`; `valence` defaults to clause -> sentence -> doc fallback."""
    idxs = tuple(sorted(set(idxs)))
    doc = float(sum(c.score for c in clauses))
    own = float(sum(clauses[k].score for k in idxs))
    sentences = {clauses[k].clause.sentence for k in idxs}
    sent = float(sum(c.score for c in clauses if c.clause.sentence in sentences))
    if valence is None:
        valence = own if abs(own) >= POLARITY_MIN else (sent if abs(sent) >= POLARITY_MIN else doc)
    text = " ".join(clauses[k].clause.text for k in idxs)
    evidence = None
    if idxs:
        best = clauses[max(idxs, key=lambda k: abs(clauses[k].score))].clause
        evidence = Span(best.start, best.end, best.text)
    pos = float(sum(clauses[k].pos for k in idxs))
    neg = float(sum(clauses[k].neg for k in idxs))
    spans = tuple((clauses[k].clause.start, clauses[k].clause.end) for k in idxs)
    own_set = set(idxs)
    near = sorted({j for k in idxs for j in (k - 1, k + 1)} - own_set)
    return MentionContext(
        theme,
        idxs,
        text,
        float(valence),
        own,
        sent,
        doc,
        pos,
        neg,
        evidence,
        spans,
        tuple(float(clauses[k].score) for k in idxs),
        tuple(bool(clauses[k].clause.after_contrast) for k in idxs),
        tuple(
            (clauses[j].clause.start, clauses[j].clause.end) for j in near if 0 <= j < len(clauses)
        ),
        tuple((c.clause.start, c.clause.end) for j, c in enumerate(clauses) if j not in own_set),
    )


def lexicon_features(ctx: MentionContext, version: int = 1) -> list[float]:
    """Version 1: the mention's valences. Version 2 adds its clauses one by one (a theme
    praised in one clause and faulted in another is mixed, not the sum), the contrast
    structure and the valence of the rest of the text."""
    out = [
        float(np.tanh(ctx.valence / 2)),
        float(np.tanh(ctx.clause / 2)),
        float(np.tanh(ctx.sentence / 2)),
        float(np.tanh(ctx.doc / 3)),
        1.0 if abs(ctx.clause) < POLARITY_MIN else 0.0,
        float(np.tanh(abs(ctx.pos) / 2)),
        float(np.tanh(abs(ctx.neg) / 2)),
    ]
    if version < 2:
        return out
    values = ctx.values or (ctx.clause,)
    top, low = max(values), min(values)
    contrast = [v for v, c in zip(values, ctx.contrast, strict=False) if c]
    return out + [
        float(np.tanh(max(top, 0.0) / 2)),
        float(np.tanh(min(low, 0.0) / 2)),
        1.0 if top >= POLARITY_MIN and low <= -POLARITY_MIN else 0.0,  # praised and faulted
        float(np.tanh(sum(contrast) / 2)) if contrast else 0.0,  # what follows "mais"
        1.0 if contrast else 0.0,
        float(np.tanh((ctx.doc - ctx.clause) / 3)),  # the rest of the text
        float(np.log1p(len(values))),
    ]


class PolarityHead:
    """Multinomial logistic regression over mention features (see module doc).

    `state_weight` > 0 (span heads): the mention's clause token states pooled from the
    document's own encoder pass (standardised, times the weight) are features too: what the
    clause says about its aspect, beyond the sentiment head's three probabilities.
    `neutral_weight` > 1 weighs neutral (factual or mixed) mentions up in training.
    `version` 2 (FEATURES): the mention's clauses one by one, its neighbours and the rest of
    the text (lexicon, and in span heads the sentiment head over each); 1: older heads."""

    def __init__(
        self,
        themes: Sequence[str],
        use_probs: bool,
        C: float = 0.1,
        probs_kind: str = "span",
        state_weight: float = 0.0,
        neutral_weight: float = 1.0,
        version: int = 1,
    ) -> None:
        self.themes = list(themes)
        self.version = version
        self.use_probs = use_probs
        # "span": sentiment head over the clause's token states in the document's own encoder
        # pass (one pass); "text": the sentiment model re-run on the clause text (older heads).
        self.probs_kind = probs_kind
        self.C = C
        self.state_weight = state_weight
        self.neutral_weight = neutral_weight
        self.state_mean: np.ndarray | None = None
        self.state_scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None  # (3, n_features)
        self.intercept: np.ndarray | None = None
        self.classes: list[str] = list(POLARITIES)

    @property
    def uses_states(self) -> bool:
        return self.state_weight > 0

    def features(
        self,
        contexts: Sequence[MentionContext],
        probs: np.ndarray | None = None,
        states: np.ndarray | None = None,
    ) -> np.ndarray:
        cols = {t: i for i, t in enumerate(self.themes)}
        rows = []
        for k, ctx in enumerate(contexts):
            onehot = [0.0] * len(self.themes)
            if ctx.theme in cols:
                onehot[cols[ctx.theme]] = 1.0
            extra: list[float] = []
            if self.use_probs:
                assert probs is not None, "this head needs sentiment probabilities"
                # Clause probabilities, then (span heads) the whole document's: contrast.
                extra = list(np.log(np.clip(probs[k], 1e-4, 1.0)))
            rows.append(lexicon_features(ctx, self.version) + extra + onehot)
        x = np.asarray(rows, dtype=np.float32).reshape(len(contexts), -1)
        if self.uses_states:
            assert states is not None, "this head needs the clauses' token states"
            assert self.state_mean is not None and self.state_scale is not None
            z = (np.asarray(states, dtype=np.float32) - self.state_mean) / self.state_scale
            x = np.hstack([x, (z * self.state_weight).astype(np.float32)])
        return x

    def fit(
        self,
        contexts: Sequence[MentionContext],
        labels: Sequence[str],
        probs: np.ndarray | None = None,
        states: np.ndarray | None = None,
    ) -> PolarityHead:
        from sklearn.linear_model import LogisticRegression

        if self.uses_states:
            assert states is not None, "this head needs the clauses' token states"
            self.state_mean = np.asarray(states, dtype=np.float32).mean(0)
            self.state_scale = np.asarray(states, dtype=np.float32).std(0) + 1e-6
        x = self.features(contexts, probs, states)
        weights = {str(c): self.neutral_weight if c == "neutral" else 1.0 for c in set(labels)}
        clf = LogisticRegression(C=self.C, max_iter=3000, class_weight=weights)
        clf.fit(x, list(labels))
        self.classes = [str(c) for c in clf.classes_]
        coef, intercept = clf.coef_, clf.intercept_
        if len(self.classes) == 2:  # binary: sklearn keeps one row for the second class
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        return self

    def predict(
        self,
        contexts: Sequence[MentionContext],
        probs: np.ndarray | None = None,
        states: np.ndarray | None = None,
    ) -> list[Polarity]:
        if not contexts:
            return []
        assert self.coef is not None and self.intercept is not None
        z = self.features(contexts, probs, states) @ self.coef.T + self.intercept
        return [self.classes[int(k)] for k in np.argmax(z, axis=1)]  # type: ignore[misc]

    def state(self) -> dict:
        out = {
            "themes": self.themes,
            "use_probs": self.use_probs,
            "C": self.C,
            "probs_kind": self.probs_kind,
            "state_weight": self.state_weight,
            "neutral_weight": self.neutral_weight,
            "version": self.version,
            "coef": self.coef,
            "intercept": self.intercept,
            "classes": self.classes,
        }
        if self.uses_states:
            out["state_mean"], out["state_scale"] = self.state_mean, self.state_scale
        return out

    @classmethod
    def from_state(cls, state: dict) -> PolarityHead:
        head = cls(
            state["themes"],
            bool(state["use_probs"]),
            float(state.get("C", 0.1)),
            str(state.get("probs_kind", "text")),
            float(state.get("state_weight", 0.0)),
            float(state.get("neutral_weight", 1.0)),
            int(state.get("version", 1)),
        )
        head.coef, head.intercept = state["coef"], state["intercept"]
        head.state_mean, head.state_scale = state.get("state_mean"), state.get("state_scale")
        head.classes = list(state["classes"])
        return head


# Polarity settings tried at fit time, (state_weight, C, neutral_weight), simplest first (the
# first is the former default). Grouped 3-fold CV over the training documents picks one.
POLARITY_GRID = (
    (0.0, 0.1, 1.0),
    (0.0, 0.3, 1.0),
    (0.1, 0.3, 1.0),
    (0.2, 0.1, 1.0),
    (0.2, 0.3, 1.0),
    (0.0, 0.1, 2.0),
    (0.2, 0.3, 2.0),
)


def tune_head(
    themes: Sequence[str],
    contexts: Sequence[MentionContext],
    labels: Sequence[str],
    docs: Sequence[int],
    *,
    use_probs: bool,
    probs_kind: str = "span",
    probs: np.ndarray | None = None,
    states: np.ndarray | None = None,
    grid: Sequence[tuple[float, float, float]] = POLARITY_GRID,
    version: int = 1,
) -> tuple[PolarityHead, dict]:
    """The head of `grid` with the best out-of-fold accuracy (3 folds grouped by document;
    near-ties go to the earlier, simpler setting), refitted on every mention. Without
    `states`, settings that need them are skipped."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    options = [g for g in grid if g[0] == 0 or states is not None] or [(0.0, 0.1, 1.0)]
    y = np.asarray(labels)
    groups = np.asarray(docs)
    scores = []
    if len(set(docs)) >= 3 and len(options) > 1:
        folds = list(GroupKFold(3).split(y, y, groups))
        for w, c, nw in options:
            pred = np.empty(len(y), dtype=object)

            def part(a: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
                return None if a is None else a[idx]

            for tr, te in folds:
                if len(set(y[tr])) < 2:
                    pred[te] = y[tr][0]
                    continue
                head = PolarityHead(themes, use_probs, c, probs_kind, w, nw, version)
                head.fit([contexts[i] for i in tr], y[tr], part(probs, tr), part(states, tr))
                held = [contexts[i] for i in te]
                pred[te] = head.predict(held, part(probs, te), part(states, te))
            acc = float(np.mean(pred == y))
            f1 = float(f1_score(y, pred.astype(str), average="macro", zero_division=0))
            scores.append((acc, f1))
        # Accuracy decides; near-ties (a fifth of a point) go to the simplest setting: a
        # neutral weight picked for macro-F1 over-predicted neutral on shifted data.
        top = max(a for a, _ in scores)
        pick = next(k for k, (a, _) in enumerate(scores) if a >= top - 0.002)
    else:
        pick = 0
    w, c, nw = options[pick]
    head = PolarityHead(themes, use_probs, c, probs_kind, w, nw, version)
    head.fit(contexts, labels, probs, states if w > 0 else None)
    report = {
        "state_weight": w,
        "C": c,
        "neutral_weight": nw,
        "cv": [
            {"setting": list(g), "accuracy": round(a, 4), "macro_f1": round(f, 4)}
            for g, (a, f) in (zip(options, scores, strict=True) if scores else ())
        ],
    }
    return head, report

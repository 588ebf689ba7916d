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
    return MentionContext(
        theme, idxs, text, float(valence), own, sent, doc, pos, neg, evidence, spans
    )


def lexicon_features(ctx: MentionContext) -> list[float]:
    return [
        float(np.tanh(ctx.valence / 2)),
        float(np.tanh(ctx.clause / 2)),
        float(np.tanh(ctx.sentence / 2)),
        float(np.tanh(ctx.doc / 3)),
        1.0 if abs(ctx.clause) < POLARITY_MIN else 0.0,
        float(np.tanh(abs(ctx.pos) / 2)),
        float(np.tanh(abs(ctx.neg) / 2)),
    ]


class PolarityHead:
    """Multinomial logistic regression over mention features (see module doc)."""

    def __init__(
        self, themes: Sequence[str], use_probs: bool, C: float = 0.1, probs_kind: str = "span"
    ) -> None:
        self.themes = list(themes)
        self.use_probs = use_probs
        # "span": sentiment head over the clause's token states in the document's own encoder
        # pass (one pass); "text": the sentiment model re-run on the clause text (older heads).
        self.probs_kind = probs_kind
        self.C = C
        self.coef: np.ndarray | None = None  # (3, n_features)
        self.intercept: np.ndarray | None = None
        self.classes: list[str] = list(POLARITIES)

    def features(
        self, contexts: Sequence[MentionContext], probs: np.ndarray | None = None
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
            rows.append(lexicon_features(ctx) + extra + onehot)
        return np.asarray(rows, dtype=np.float32).reshape(len(contexts), -1)

    def fit(
        self,
        contexts: Sequence[MentionContext],
        labels: Sequence[str],
        probs: np.ndarray | None = None,
    ) -> PolarityHead:
        from sklearn.linear_model import LogisticRegression

        x = self.features(contexts, probs)
        clf = LogisticRegression(C=self.C, max_iter=3000)
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
        self, contexts: Sequence[MentionContext], probs: np.ndarray | None = None
    ) -> list[Polarity]:
        if not contexts:
            return []
        assert self.coef is not None and self.intercept is not None
        z = self.features(contexts, probs) @ self.coef.T + self.intercept
        return [self.classes[int(k)] for k in np.argmax(z, axis=1)]  # type: ignore[misc]

    def state(self) -> dict:
        return {
            "themes": self.themes,
            "use_probs": self.use_probs,
            "C": self.C,
            "probs_kind": self.probs_kind,
            "coef": self.coef,
            "intercept": self.intercept,
            "classes": self.classes,
        }

    @classmethod
    def from_state(cls, state: dict) -> PolarityHead:
        head = cls(
            state["themes"],
            bool(state["use_probs"]),
            float(state.get("C", 0.1)),
            str(state.get("probs_kind", "text")),
        )
        head.coef, head.intercept = state["coef"], state["intercept"]
        head.classes = list(state["classes"])
        return head

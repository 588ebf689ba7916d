"""TfidfSentiment: the classic baseline (TF-IDF word 1-2 grams + char 2-5 grams, logistic
regression). Trainable, with fit/predict/save/load; weights are not shipped in the repository.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp.text.normalize import normalize_text
from nlp.types import POLARITIES, SentimentResult

_STAR_MEANS = {"negative": 1.5, "neutral": 3.0, "positive": 4.6}


class TfidfSentiment:
    name = "tfidf"
    version = "0.1"

    def __init__(self, C: float = 4.0, max_features: int = 200_000) -> None:  # noqa: N803
        self.C = C
        self.max_features = max_features
        self.pipeline: Any | None = None

    def _build(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        features = FeatureUnion(
            [
                (
                    "word",
                    TfidfVectorizer(
                        ngram_range=(1, 2),
                        min_df=2,
                        sublinear_tf=True,
                        max_features=self.max_features,
                        lowercase=True,
                    ),
                ),
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=(2, 5),
                        min_df=3,
                        sublinear_tf=True,
                        max_features=self.max_features,
                    ),
                ),
            ]
        )
        clf = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced")
        return Pipeline([("features", features), ("clf", clf)])

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TfidfSentiment:
        unknown = set(labels) - set(POLARITIES)
        if unknown:
            raise ValueError(f"labels must be one of {POLARITIES}, got {sorted(unknown)}")
        self.pipeline = self._build()
        self.pipeline.fit([normalize_text(t) for t in texts], list(labels))
        return self

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        if self.pipeline is None:
            raise RuntimeError("TfidfSentiment is not trained: call fit() or load()")
        if not texts:
            return []
        proba = self.pipeline.predict_proba([normalize_text(t) for t in texts])
        classes = list(self.pipeline.classes_)
        out = []
        for row in proba:
            probs = {c: float(p) for c, p in zip(classes, row, strict=True)}
            probs = {k: probs.get(k, 0.0) for k in POLARITIES}
            label = max(POLARITIES, key=lambda k: probs[k])
            stars = sum(_STAR_MEANS[k] * v for k, v in probs.items())
            out.append(
                SentimentResult(
                    label=label,
                    score=round(probs[label], 4),
                    stars=round(stars, 2),
                    probs={k: round(v, 4) for k, v in probs.items()},
                )
            )
        return out

    def save(self, path: Path | str) -> None:
        """A directory with model.pkl (scikit-learn pipeline) and meta.json."""
        if self.pipeline is None:
            raise RuntimeError("nothing to save: the model is not trained")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "model.pkl").open("wb") as fh:
            pickle.dump(self.pipeline, fh)
        (folder / "meta.json").write_text(
            json.dumps(
                {
                    "name": self.name,
                    "version": self.version,
                    "C": self.C,
                    "max_features": self.max_features,
                },
                indent=1,
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, path: Path | str) -> TfidfSentiment:
        folder = Path(path)
        meta_file, model_file = folder / "meta.json", folder / "model.pkl"
        if not model_file.exists():
            raise FileNotFoundError(f"no TF-IDF model in {folder} (expected model.pkl)")
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
        model = cls(C=meta.get("C", 4.0), max_features=meta.get("max_features", 200_000))
        # Only load model files you trained yourself: pickle runs code from the file.
        with model_file.open("rb") as fh:
            model.pipeline = pickle.load(fh)  # noqa: S301
        return model

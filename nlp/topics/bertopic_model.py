"""BERTopic path: UMAP + HDBSCAN over the encoder's embeddings, c-TF-IDF keywords with the
French analyzer.

BERTopic is imported inside `fit` (its import compiles numba code: 10-30 s). `language` is
set to "french" and the embedding model left out: BERTopic then neither strips non-ASCII
letters (its English preprocessing does) nor tries to fetch a sentence-transformers model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlp.topics.describe import (
    OUTLIER,
    DiscoveredTopic,
    describe,
    normalize_rows,
    relabel_by_size,
)
from nlp.topics.fast import blas_limits
from nlp.topics.vectorize import VectorizerConfig, make_vectorizer


def _topic_level_vectorizer() -> VectorizerConfig:
    # BERTopic fits its vectorizer on one concatenated document per topic, so df bounds
    # count topics: keep every term and let c-TF-IDF's idf weigh the common ones down.
    return VectorizerConfig(min_df=1, max_df=1.0)


@dataclass(frozen=True)
class BertopicConfig:
    min_topic_size: int = 15  # HDBSCAN min_cluster_size
    min_samples: int | None = None  # HDBSCAN; None = min_topic_size (fewer outliers: lower)
    n_neighbors: int = 15  # UMAP
    n_components: int = 5
    min_dist: float = 0.0
    # Outliers more similar than this (cosine) to a topic centroid join it; None keeps -1.
    outlier_threshold: float | None = 0.8
    nr_topics: int | str | None = None  # BERTopic topic reduction ("auto", an int, None)
    top_n_words: int = 10
    n_label_words: int = 3
    n_representatives: int = 3
    random_state: int = 42
    blas_threads: int | None = 1  # as FastTopicConfig.blas_threads (same footing for both)
    vectorizer: VectorizerConfig = field(default_factory=_topic_level_vectorizer)


class BertopicTopicModel:
    """`fit(docs, embeddings)` -> self with `labels_`, `probabilities_`, `topics_` (largest
    first) and `model_` (the fitted BERTopic, for its own visualisations)."""

    def __init__(self, config: BertopicConfig | None = None) -> None:
        self.config = config or BertopicConfig()
        self.model_: Any = None
        self.labels_: np.ndarray | None = None
        self.probabilities_: np.ndarray | None = None
        self.topics_: list[DiscoveredTopic] = []
        self.centroids_: np.ndarray | None = None

    def _build(self, n_docs: int) -> Any:
        from bertopic import BERTopic
        from bertopic.vectorizers import ClassTfidfTransformer
        from hdbscan import HDBSCAN
        from umap import UMAP

        cfg = self.config
        min_size = max(2, min(cfg.min_topic_size, n_docs // 3))
        return BERTopic(
            embedding_model=None,
            umap_model=UMAP(
                n_neighbors=max(2, min(cfg.n_neighbors, n_docs - 1)),
                n_components=cfg.n_components,
                min_dist=cfg.min_dist,
                metric="cosine",
                random_state=cfg.random_state,
            ),
            hdbscan_model=HDBSCAN(
                min_cluster_size=min_size,
                min_samples=cfg.min_samples,
                metric="euclidean",
                cluster_selection_method="eom",
                prediction_data=False,
            ),
            vectorizer_model=make_vectorizer(cfg.vectorizer),
            ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
            language="french",
            top_n_words=cfg.top_n_words,
            nr_topics=cfg.nr_topics,
            calculate_probabilities=False,
            verbose=False,
        )

    def fit(self, docs: Sequence[str], embeddings: np.ndarray) -> BertopicTopicModel:
        if len(docs) != len(embeddings):
            raise ValueError(f"{len(docs)} documents but {len(embeddings)} embeddings")
        cfg = self.config
        docs = list(docs)
        x = normalize_rows(np.asarray(embeddings, dtype=np.float32))
        model = self._build(len(docs))
        with blas_limits(cfg.blas_threads):
            return self._fit(model, docs, x)

    def _fit(self, model: Any, docs: list[str], x: np.ndarray) -> BertopicTopicModel:
        cfg = self.config
        topics, _ = model.fit_transform(docs, embeddings=x)
        if cfg.outlier_threshold is not None and OUTLIER in topics and len(set(topics)) > 1:
            topics = model.reduce_outliers(
                docs,
                topics,
                strategy="embeddings",
                embeddings=x,
                threshold=cfg.outlier_threshold,
            )
            # update_topics warns that custom assignments must come last: they do here.
            bt_log = logging.getLogger("BERTopic")
            level = bt_log.level
            bt_log.setLevel(logging.ERROR)
            try:
                model.update_topics(
                    docs,
                    topics=topics,
                    top_n_words=cfg.top_n_words,
                    vectorizer_model=make_vectorizer(cfg.vectorizer),
                    ctfidf_model=model.ctfidf_model,
                )
            finally:
                bt_log.setLevel(level)
        raw = np.asarray(topics, dtype=np.int64)
        labels = relabel_by_size(raw)
        # BERTopic's own c-TF-IDF keywords, re-indexed to our size order.
        by_new: dict[int, int] = {
            int(n): int(o) for o, n in zip(raw, labels, strict=True) if n >= 0
        }
        keywords = [
            [(w, float(s)) for w, s in (model.get_topic(by_new[k]) or []) if w]
            for k in range(len(by_new))
        ]
        self.topics_ = describe(
            docs,
            x,
            labels,
            keywords,
            n_label_words=cfg.n_label_words,
            n_representatives=cfg.n_representatives,
        )
        self.centroids_ = np.stack([t.centroid for t in self.topics_]) if self.topics_ else None
        self.model_ = model
        self.labels_ = labels
        sims = (
            np.einsum("ij,ij->i", x, self.centroids_[np.maximum(labels, 0)])
            if self.centroids_ is not None
            else np.zeros(len(x))
        )
        self.probabilities_ = np.where(labels >= 0, sims, 0.0).astype(np.float32)
        return self

    def fit_transform(self, docs: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        self.fit(docs, embeddings)
        assert self.labels_ is not None
        return self.labels_

    def transform(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest topic centroid for new documents (cheap; no UMAP/HDBSCAN pass)."""
        if self.centroids_ is None:
            raise RuntimeError("fit first")
        x = normalize_rows(np.asarray(embeddings, dtype=np.float32))
        sims = x @ self.centroids_.T
        labels = sims.argmax(axis=1).astype(np.int64)
        return labels, sims[np.arange(len(x)), labels].astype(np.float32)

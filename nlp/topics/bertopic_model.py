"""BERTopic path: UMAP + HDBSCAN over the encoder's embeddings (k-means where HDBSCAN finds
only a few lumps), c-TF-IDF keywords with the French analyzer.

BERTopic is imported inside `fit` (its import compiles numba code: 10-30 s). `language` is
set to "french" and the embedding model left out: BERTopic then neither strips non-ASCII
letters (its English preprocessing does) nor tries to fetch a sentence-transformers model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlp.topics.ctfidf import class_term_matrix
from nlp.topics.describe import (
    OUTLIER,
    DiscoveredTopic,
    describe,
    merge_variants,
    normalize_rows,
    relabel_by_size,
)
from nlp.topics.fast import blas_limits
from nlp.topics.vectorize import VectorizerConfig, make_vectorizer

log = logging.getLogger(__name__)


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
    # A keyword must occur in this share of the topic's verbatims (and in 2 at least), as on
    # the fast path: a word of one verbatim (a brand, a typo) otherwise wins on idf alone.
    keyword_min_share: float = 0.01
    n_label_words: int = 3
    n_representatives: int = 3
    random_state: int = 42
    # HDBSCAN keeps the most stable groups only: on a small window (a week of one source),
    # often praise / complaint or one source / another, most verbatims in one topic. When it
    # finds fewer than min_topics topics, or one holding over max_topic_share of the window,
    # k-means on the same UMAP reduction replaces it: about sqrt(n)/2 topics within
    # [min_topics, max_topics], no more than n / min_topic_size (min_topics=0: never).
    min_topics: int = 8
    max_topics: int = 20
    max_topic_share: float = 0.5
    blas_threads: int | None = 1  # as FastTopicConfig.blas_threads (same footing for both)
    vectorizer: VectorizerConfig = field(default_factory=_topic_level_vectorizer)


def small_window_topics(n_docs: int, min_size: int, lo: int = 8, hi: int = 20) -> int:
    """k of the small-window k-means: about sqrt(n)/2 (9 for 300 verbatims, 20 from 1,600),
    within [lo, hi], and no more than topics of `min_size` verbatims on average."""
    return max(2, min(hi, max(lo, round(math.sqrt(n_docs) / 2)), n_docs // min_size))


def duplicate_groups(docs: Sequence[str], x: np.ndarray) -> np.ndarray:
    """Group number of each document: documents with the same text or the same vector are
    one group (a text encoded in two batches, or stored in float16, differs in the last
    bits)."""
    parent = list(range(len(docs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str | bytes], int] = {}
    for i, doc in enumerate(docs):
        for key in (("text", doc), ("vector", x[i].tobytes())):
            j = first.setdefault(key, i)
            parent[root(i)] = root(j)
    _, groups = np.unique([root(i) for i in range(len(docs))], return_inverse=True)
    return np.asarray(groups, dtype=np.int64).ravel()


class _HdbscanOrKMeans:
    """HDBSCAN, or k-means on the same points when HDBSCAN's topics are too few or one of
    them too large. BERTopic takes any clusterer with `fit(X)` and `labels_`; k-means
    leaves no outliers.

    `groups` (set before each fit, see `duplicate_groups`) keeps copies of one verbatim
    together: UMAP spreads 200 identical « Très bien » over a patch that k-means would cut
    into several topics of the same text."""

    def __init__(
        self,
        hdbscan: Any,
        *,
        n_clusters: int,
        min_topics: int,
        max_topic_share: float,
        random_state: int,
    ) -> None:
        self.hdbscan = hdbscan
        self.n_clusters = n_clusters
        self.min_topics = min_topics
        self.max_topic_share = max_topic_share
        self.random_state = random_state
        self.groups: np.ndarray | None = None
        self.labels_: np.ndarray | None = None
        self.fallback_ = False

    def fit(self, x: np.ndarray, y: Any = None) -> _HdbscanOrKMeans:
        groups = self.groups if self.groups is not None else np.arange(len(x))
        n_groups = int(groups.max()) + 1 if len(groups) else 0
        labels = _by_group(np.asarray(self.hdbscan.fit(x).labels_), groups, n_groups)
        sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(1, int)
        found = int((sizes > 0).sum())
        lumped = sizes.max() > self.max_topic_share * len(labels)
        if (found < min(self.min_topics, self.n_clusters) or lumped) and self.min_topics > 0:
            from sklearn.cluster import KMeans

            log.info(
                "HDBSCAN: %d topics, the largest %.0f%% of %d verbatims; k-means (k=%d)",
                found,
                100 * sizes.max() / max(1, len(labels)),
                len(labels),
                self.n_clusters,
            )
            # One point per group, weighted by its copies: a group is never cut in two.
            counts = np.bincount(groups, minlength=n_groups)
            means = np.zeros((n_groups, x.shape[1]), dtype=np.float64)
            np.add.at(means, groups, x)
            means /= counts[:, None]
            kmeans = KMeans(
                n_clusters=min(self.n_clusters, n_groups),
                n_init=10,
                random_state=self.random_state,
            )
            labels = kmeans.fit(means, sample_weight=counts).labels_[groups]
            self.fallback_ = True
        self.labels_ = labels
        return self


def _by_group(labels: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's most common label for all its members, clusters renumbered 0..k-1."""
    votes = np.zeros((n_groups, int(labels.max()) + 2), dtype=np.int64)
    np.add.at(votes, (groups, labels + 1), 1)
    labels = votes.argmax(axis=1)[groups] - 1
    kept = np.unique(labels[labels >= 0])
    return np.where(labels >= 0, np.searchsorted(kept, labels), labels)


def _same_label_merged(labels: np.ndarray, topics: Sequence[DiscoveredTopic]) -> np.ndarray | None:
    """`labels` with each topic named as a larger one (keywords alike) moved into it; None
    when every topic's name is its own."""
    into: dict[int, int] = {}
    first: dict[str, int] = {}
    for t in topics:  # largest first
        if t.keywords:  # « Sujet n°… » topics have no name to compare
            into[t.index] = first.setdefault(t.label, t.index)
    if all(k == v for k, v in into.items()):
        return None
    return np.array([into.get(int(v), int(v)) for v in labels], dtype=np.int64)


def _candidates(cfg: BertopicConfig) -> int:
    # BERTopic keeps this many words per topic: room for those keyword_min_share drops.
    return 3 * cfg.top_n_words


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
        cluster_model = _HdbscanOrKMeans(
            HDBSCAN(
                min_cluster_size=min_size,
                min_samples=cfg.min_samples,
                metric="euclidean",
                cluster_selection_method="eom",
                prediction_data=False,
            ),
            n_clusters=small_window_topics(n_docs, min_size, cfg.min_topics, cfg.max_topics),
            min_topics=cfg.min_topics,
            max_topic_share=cfg.max_topic_share,
            random_state=cfg.random_state,
        )
        return BERTopic(
            embedding_model=None,
            umap_model=UMAP(
                n_neighbors=max(2, min(cfg.n_neighbors, n_docs - 1)),
                n_components=cfg.n_components,
                min_dist=cfg.min_dist,
                metric="cosine",
                random_state=cfg.random_state,
            ),
            hdbscan_model=cluster_model,
            vectorizer_model=make_vectorizer(cfg.vectorizer),
            ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
            language="french",
            top_n_words=_candidates(cfg),
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
        model.hdbscan_model.groups = duplicate_groups(docs, x)
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
            self._update_topics(model, docs, topics)
        raw = np.asarray(topics, dtype=np.int64)
        labels = self._describe(model, docs, x, raw)
        # k-means' k is a floor (min_topics): on a window of fewer subjects it cuts one in
        # parts that read the same (« couleur » twice). Parts of one name are one topic.
        while (merged := _same_label_merged(labels, self.topics_)) is not None:
            raw = merged
            self._update_topics(model, docs, raw.tolist())
            labels = self._describe(model, docs, x, raw)
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

    def _update_topics(self, model: Any, docs: list[str], topics: list[int]) -> None:
        """BERTopic's keywords recomputed for our own assignment of `docs` to `topics`."""
        cfg = self.config
        # update_topics warns that custom assignments must come last: they do here.
        bt_log = logging.getLogger("BERTopic")
        level = bt_log.level
        bt_log.setLevel(logging.ERROR)
        try:
            model.update_topics(
                docs,
                topics=topics,
                top_n_words=_candidates(cfg),
                vectorizer_model=make_vectorizer(cfg.vectorizer),
                ctfidf_model=model.ctfidf_model,
            )
        finally:
            bt_log.setLevel(level)

    def _describe(self, model: Any, docs: list[str], x: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """`topics_` for BERTopic's topics `raw`; returns our labels (0 = largest)."""
        cfg = self.config
        labels = relabel_by_size(raw)
        # BERTopic's own c-TF-IDF keywords, re-indexed to our size order.
        by_new: dict[int, int] = {
            int(n): int(o) for o, n in zip(raw, labels, strict=True) if n >= 0
        }
        keywords = self._keywords(model, docs, labels, [by_new[k] for k in range(len(by_new))])
        self.topics_ = describe(
            docs,
            x,
            labels,
            keywords,
            n_label_words=cfg.n_label_words,
            n_representatives=cfg.n_representatives,
        )
        return labels

    def _keywords(
        self, model: Any, docs: list[str], labels: np.ndarray, bertopic_ids: list[int]
    ) -> list[list[tuple[str, float]]]:
        """BERTopic's keywords of each topic (ours: `labels`; its: `bertopic_ids`), best
        first, less those in too few of the topic's verbatims (keyword_min_share)."""
        cfg = self.config
        if not bertopic_ids:
            return []
        vectorizer = model.vectorizer_model
        present = vectorizer.transform(docs).tocsr()
        present.data[:] = 1.0
        class_df = class_term_matrix(present, labels, len(bertopic_ids))  # sparse: k x terms
        sizes = np.bincount(labels[labels >= 0], minlength=len(bertopic_ids))
        vocab: dict[str, int] = vectorizer.vocabulary_
        out = []
        for k, tid in enumerate(bertopic_ids):
            need = max(2.0, cfg.keyword_min_share * sizes[k])
            words = [(w, float(s)) for w, s in (model.get_topic(tid) or []) if w in vocab]
            df = class_df[k, [vocab[w] for w, _ in words]].toarray().ravel() if words else []
            in_docs = {w: float(n) for (w, _), n in zip(words, df, strict=True)}
            kept = [p for p in words if in_docs[p[0]] >= need]
            # "thés" and "thé" one keyword, in the spelling most of the topic's verbatims use.
            out.append(merge_variants(kept, in_docs)[: cfg.top_n_words])
        return out

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

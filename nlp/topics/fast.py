"""Fast topic path for large volumes: (Mini)batch k-means on unit embeddings + c-TF-IDF.

No UMAP, no HDBSCAN, no BERTopic import: cost is linear in the number of documents, and
`partial_fit` takes one chunk of embeddings at a time for streams that do not fit in memory.
Paired with `StaticEmbedder` it never runs the transformer on the documents at all.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlp.topics.ctfidf import class_term_matrix, ctfidf, top_terms
from nlp.topics.describe import (
    OUTLIER,
    DiscoveredTopic,
    centroids,
    describe,
    merge_variants,
    normalize_rows,
    relabel_by_size,
)
from nlp.topics.vectorize import VectorizerConfig, make_vectorizer


def _document_level_vectorizer() -> VectorizerConfig:
    # No document-frequency cap: a topic holding over half the corpus (the one complaint
    # everyone writes about) would lose every word that names it and get no keywords at all.
    # c-TF-IDF's idf already weighs down the words that every topic shares.
    return VectorizerConfig(max_df=1.0)


@dataclass(frozen=True)
class FastTopicConfig:
    n_topics: int | None = None  # None: about sqrt(n)/3 (47 for 20k documents), 2..80
    min_topic_size: int = 10  # smaller clusters become outliers (-1)
    min_similarity: float | None = None  # cosine to the centroid under which a doc is -1
    batch_size: int = 2048
    minibatch_above: int = 10_000  # smaller corpora get full-batch k-means (better optimum)
    n_init: int = 3
    max_iter: int = 100
    top_n_words: int = 10
    # A keyword must occur in this share of the topic's docs (and in 2 at least): rare
    # words (typos, names) otherwise win on idf alone.
    keyword_min_share: float = 0.01
    n_label_words: int = 3
    n_representatives: int = 3
    random_state: int = 42
    # BLAS threads while clustering: small matrix products gain little from more threads,
    # and a busy machine makes spinning BLAS threads 10x slower (None: library default).
    blas_threads: int | None = 1
    vectorizer: VectorizerConfig = field(default_factory=_document_level_vectorizer)


@contextmanager
def blas_limits(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


@contextmanager
def duplicates_quiet() -> Iterator[None]:
    """k-means without its ConvergenceWarning about fewer distinct points than clusters: a
    window of stop words and emoji only ("Très bien 👍") embeds every verbatim alike, which
    makes one topic (without a keyword), not a fault to print on the CLI's stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Number of distinct clusters")
        yield


def auto_n_topics(n_docs: int) -> int:
    return int(min(80, max(2, round(math.sqrt(n_docs) / 3))))


class FastTopicModel:
    """`fit(docs, embeddings)` -> self with `labels_`, `probabilities_` (cosine to the
    assigned centroid) and `topics_` (list of DiscoveredTopic, largest first)."""

    def __init__(self, config: FastTopicConfig | None = None) -> None:
        self.config = config or FastTopicConfig()
        self._kmeans: Any = None
        self.labels_: np.ndarray | None = None
        self.probabilities_: np.ndarray | None = None
        self.topics_: list[DiscoveredTopic] = []
        self.centroids_: np.ndarray | None = None

    def _new_kmeans(self, n_docs: int, online: bool = False, init: Any = "k-means++") -> Any:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        cfg = self.config
        k = (
            len(init)
            if not isinstance(init, str)
            else min(cfg.n_topics or auto_n_topics(n_docs), max(1, n_docs))
        )
        n_init = 1 if not isinstance(init, str) else cfg.n_init
        if not online and n_docs <= cfg.minibatch_above:
            return KMeans(
                n_clusters=k,
                init=init,
                n_init=n_init,
                max_iter=cfg.max_iter,
                random_state=cfg.random_state,
            )
        return MiniBatchKMeans(
            n_clusters=k,
            init=init,
            batch_size=cfg.batch_size,
            n_init=n_init,
            max_iter=cfg.max_iter,
            random_state=cfg.random_state,
        )

    def partial_fit(
        self, embeddings: np.ndarray, expected_docs: int | None = None
    ) -> FastTopicModel:
        """Update the clustering with one chunk (online); call `describe_docs` at the end.

        `expected_docs` sizes the automatic number of topics for the whole stream.
        """
        x = normalize_rows(np.asarray(embeddings, dtype=np.float32))
        if self._kmeans is None:
            self._kmeans = self._new_kmeans(expected_docs or len(x), online=True)
        with blas_limits(self.config.blas_threads):
            self._kmeans.partial_fit(x)
        return self

    def _seeded_init(self, x: np.ndarray, previous: np.ndarray) -> np.ndarray | str:
        """Previous centroids first, then greedy k-means++ picks given those: a re-run
        starts from the last run's topics, so clusters (and so ids) move only where the data
        moved, and new clusters seed where no previous topic covers the data."""
        k = min(self.config.n_topics or auto_n_topics(len(x)), len(x))
        prev = np.asarray(previous, dtype=np.float32)
        if prev.ndim != 2 or prev.shape[1] != x.shape[1] or not len(prev):
            return "k-means++"
        centers = list(normalize_rows(prev)[:k])
        rng = np.random.default_rng(self.config.random_state)
        # Unit vectors: squared distance = 2 - 2 cos.
        d2 = np.maximum(0.0, 2.0 - 2.0 * (x @ np.stack(centers).T).max(axis=1)).astype(
            np.float64
        )  # float64: rng.choice wants probabilities that sum to 1
        trials = 2 + int(math.log(k))
        while len(centers) < k and d2.sum() > 0:
            picks = rng.choice(len(x), size=trials, p=d2 / d2.sum())
            new_d2 = [np.minimum(d2, np.maximum(0.0, 2.0 - 2.0 * (x @ x[i]))) for i in picks]
            best = int(np.argmin([v.sum() for v in new_d2]))
            centers.append(x[picks[best]])
            d2 = new_d2[best]
        return np.stack(centers).astype(np.float32)

    def fit(
        self, docs: Sequence[str], embeddings: np.ndarray, init_centroids: np.ndarray | None = None
    ) -> FastTopicModel:
        """Cluster and describe. `init_centroids`: the previous run's topic centroids (same
        embedding space, most important first) to start from."""
        if len(docs) != len(embeddings):
            raise ValueError(f"{len(docs)} documents but {len(embeddings)} embeddings")
        x = normalize_rows(np.asarray(embeddings, dtype=np.float32))
        init = (
            "k-means++"
            if init_centroids is None or not len(init_centroids)
            else self._seeded_init(x, init_centroids)
        )
        self._kmeans = self._new_kmeans(len(x), init=init)
        with blas_limits(self.config.blas_threads), duplicates_quiet():
            self._kmeans.fit(x)
            return self.describe_docs(docs, x)

    def fit_transform(self, docs: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        self.fit(docs, embeddings)
        assert self.labels_ is not None
        return self.labels_

    def describe_docs(self, docs: Sequence[str], embeddings: np.ndarray) -> FastTopicModel:
        """Assign docs to the learnt clusters, drop small ones, extract keywords."""
        if self._kmeans is None:
            raise RuntimeError("fit or partial_fit first")
        cfg = self.config
        x = normalize_rows(np.asarray(embeddings, dtype=np.float32))
        raw = self._kmeans.predict(x)
        labels = relabel_by_size(raw, cfg.min_topic_size)
        k = int(labels.max()) + 1 if (labels >= 0).any() else 0
        if cfg.min_similarity is not None and k:
            sims = np.einsum("ij,ij->i", x, centroids(x, labels, k)[np.maximum(labels, 0)])
            labels[(labels >= 0) & (sims < cfg.min_similarity)] = OUTLIER
            labels = relabel_by_size(labels, cfg.min_topic_size)
            k = int(labels.max()) + 1 if (labels >= 0).any() else 0
        keywords = self._keywords(docs, labels, k)
        self.topics_ = describe(
            docs,
            x,
            labels,
            keywords,
            n_label_words=cfg.n_label_words,
            n_representatives=cfg.n_representatives,
        )
        self.centroids_ = np.stack([t.centroid for t in self.topics_]) if k else None
        self.labels_ = labels
        self.probabilities_ = self._similarity(x, labels)
        return self

    def _keywords(
        self, docs: Sequence[str], labels: np.ndarray, k: int
    ) -> list[list[tuple[str, float]]]:
        if k == 0:
            return []
        vectorizer = make_vectorizer(self.config.vectorizer, n_docs=len(docs))
        try:
            counts = vectorizer.fit_transform(docs)
        except ValueError:  # no term survives (empty or stop-word-only corpus)
            return [[] for _ in range(k)]
        counts = counts.tocsr()
        weights = ctfidf(class_term_matrix(counts, labels, k))
        present = counts.copy()
        present.data[:] = 1.0
        class_df = class_term_matrix(present, labels, k).toarray()
        sizes = np.bincount(labels[labels >= 0], minlength=k)[:, None]
        weights[class_df < np.maximum(2.0, self.config.keyword_min_share * sizes)] = 0.0
        vocab = vectorizer.get_feature_names_out().tolist()
        column: dict[str, int] = vectorizer.vocabulary_
        # Candidates for the spellings of one keyword ("thés", "thé") that merge into one.
        n = self.config.top_n_words
        out = []
        for k_, terms in enumerate(top_terms(weights, vocab, 3 * n)):
            in_docs = {w: float(class_df[k_, column[w]]) for w, _ in terms}
            out.append(merge_variants(terms, in_docs)[:n])
        return out

    def _similarity(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self.centroids_ is None:
            return np.zeros(len(x), dtype=np.float32)
        sims = np.einsum("ij,ij->i", x, self.centroids_[np.maximum(labels, 0)])
        return np.where(labels >= 0, sims, 0.0).astype(np.float32)

    def transform(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest topic centroid for new documents: (labels, cosine similarities)."""
        if self.centroids_ is None:
            raise RuntimeError("fit first")
        x = normalize_rows(np.asarray(embeddings, dtype=np.float32))
        sims = x @ self.centroids_.T
        labels = sims.argmax(axis=1).astype(np.int64)
        best = sims[np.arange(len(x)), labels]
        if self.config.min_similarity is not None:
            labels[best < self.config.min_similarity] = OUTLIER
        return labels, np.where(labels >= 0, best, 0.0).astype(np.float32)

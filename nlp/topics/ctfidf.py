"""Class-based TF-IDF (BERTopic's c-TF-IDF) over a document-term matrix, without BERTopic.

The fast path uses it so it never pays BERTopic's import; the weighting is the same
(`tf_{t,c} * log(1 + A / f_t)`, A = mean words per class, square-rooted tf to damp words
that are frequent everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


def class_term_matrix(
    counts: sparse.csr_matrix, labels: np.ndarray, n_classes: int
) -> sparse.csr_matrix:
    """Sum document rows per class (label -1 rows are ignored): (n_classes, n_terms)."""
    keep = labels >= 0
    rows = labels[keep]
    onehot = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, np.flatnonzero(keep))),
        shape=(n_classes, counts.shape[0]),
    )
    return (onehot @ counts).tocsr()


def ctfidf(class_terms: sparse.csr_matrix, reduce_frequent_words: bool = True) -> np.ndarray:
    """Dense c-TF-IDF weights, (n_classes, n_terms)."""
    tf = class_terms.toarray().astype(np.float64)
    totals = tf.sum(axis=1, keepdims=True)
    tf = np.divide(tf, totals, out=np.zeros_like(tf), where=totals > 0)
    if reduce_frequent_words:
        tf = np.sqrt(tf)
    freq = np.asarray(class_terms.sum(axis=0)).ravel()
    avg = float(class_terms.sum()) / max(1, class_terms.shape[0])
    idf = np.log(1.0 + avg / np.maximum(freq, 1.0))
    return tf * idf


def top_terms(
    weights: np.ndarray, vocabulary: Sequence[str], n: int
) -> list[list[tuple[str, float]]]:
    """The n best (term, weight) per class, best first; zero weights are left out."""
    out = []
    for row in weights:
        idx = np.argsort(-row, kind="stable")[:n]
        out.append([(vocabulary[i], float(row[i])) for i in idx if row[i] > 0])
    return out

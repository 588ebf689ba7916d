"""Transform-only TF-IDF for a saved theme head: the fitted vocabularies and idf weights applied
exactly as scikit-learn's `TfidfVectorizer.transform` does (counts, sublinear tf, idf, l2 rows;
`char_wb` n-grams as `CountVectorizer._char_wb_ngrams`), with numpy and scipy.sparse only.

Why not scikit-learn itself: importing it (it pulls scipy.stats and pandas) costs more than a
second of every `verbatim analyze` / `enrich` start for a transform of a few lines. Training
still fits scikit-learn's vectoriser (nlp/themes/learned); tests check both give the same
matrix.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")  # as CountVectorizer._white_spaces


def char_wb_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Character n-grams inside word boundaries, words padded with a space (scikit-learn's
    `analyzer="char_wb"`)."""
    text = _WHITE_SPACES.sub(" ", text)
    out: list[str] = []
    for w in text.split():
        w = " " + w + " "
        w_len = len(w)
        for n in range(min_n, max_n + 1):
            offset = 0
            out.append(w[offset : offset + n])
            while offset + n < w_len:
                offset += 1
                out.append(w[offset : offset + n])
            if offset == 0:  # a short word counts once
                break
    return out


class FittedTfidfPart:
    """One fitted vectoriser: analyzer (text -> features), vocabulary, idf (l2 rows, sublinear
    tf). `vocabulary_` and `idf_` keep scikit-learn's names (the model's `save` reads them).

    `ids` (optional) gives a text's features directly as vocabulary ids (those out of the
    vocabulary left out): the same features as `analyzer`, computed faster (memoised per word)."""

    def __init__(
        self,
        analyzer: Callable[[str], list[str]],
        vocabulary: Mapping[str, int],
        idf: Any,
        ids: Callable[[str], list[int]] | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.vocabulary_ = dict(vocabulary)
        self.idf_ = np.asarray(idf)
        self._ids = ids
        if len(self.idf_) != len(self.vocabulary_):
            raise ValueError(
                f"idf length {len(self.idf_)} != vocabulary size {len(self.vocabulary_)}"
            )

    def ids(self, text: str) -> list[int]:
        """The vocabulary ids of the text's features (with repeats)."""
        if self._ids is not None:
            return self._ids(text)
        vocab = self.vocabulary_
        return [j for j in map(vocab.get, self.analyzer(text)) if j is not None]

    def transform(self, texts: Sequence[str]) -> Any:
        return self.matrix([self.ids(t) for t in texts])

    def matrix(self, rows: Sequence[Sequence[int]]) -> Any:
        """The TF-IDF matrix of texts given as their features' vocabulary ids."""
        from scipy import sparse

        n_rows, n_cols = len(rows), len(self.idf_)
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n_rows)
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=lengths.sum())
        # Counts per (row, column) in one sort: rows in order, columns ascending in each row.
        keys, counts = np.unique(
            np.repeat(np.arange(n_rows, dtype=np.int64), lengths) * n_cols + flat,
            return_counts=True,
        )
        cols = (keys % n_cols).astype(np.int32)
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n_cols, minlength=n_rows), out=ptr[1:])
        data = counts.astype(np.float32)
        # Sublinear tf, idf (in place on float32, as TfidfTransformer.transform).
        np.log(data, data)
        data += 1.0
        data *= self.idf_[cols]
        # l2 rows: squares summed in double, division in double (sparsefuncs_fast).
        sq = (data * data).astype(np.float64)
        sums = np.zeros(n_rows, dtype=np.float64)
        nonempty = ptr[1:] > ptr[:-1]
        if nonempty.any():
            sums[nonempty] = np.add.reduceat(sq, ptr[:-1][nonempty])
        norms = np.sqrt(sums)
        norms[norms == 0.0] = 1.0
        data = (data / np.repeat(norms, np.diff(ptr))).astype(np.float32)
        return sparse.csr_matrix((data, cols, ptr.astype(np.int32)), shape=(n_rows, n_cols))


class FittedTfidf:
    """The FeatureUnion of fitted parts: their matrices side by side, in order."""

    def __init__(self, parts: Sequence[tuple[str, FittedTfidfPart]]) -> None:
        self.transformer_list = list(parts)

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse

        texts = list(texts)
        blocks = [part.transform(texts) for _, part in self.transformer_list]
        return sparse.hstack(blocks, format="csr")

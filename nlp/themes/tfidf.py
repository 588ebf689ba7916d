"""Transform-only TF-IDF for a saved theme head: the fitted vocabularies and idf weights applied
exactly as scikit-learn's `TfidfVectorizer.transform` does (counts, sublinear tf, idf, l2 rows;
`char_wb` n-grams as `CountVectorizer._char_wb_ngrams`), with numpy and scipy.sparse only.

Why not scikit-learn itself: importing it (it pulls scipy.stats and pandas) costs more than a
second of every `verbatim analyze` / `enrich` start for a transform of a few lines. Training
still fits scikit-learn's vectoriser (nlp/themes/learned); tests check both give the same
matrix.
"""

from __future__ import annotations

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
    tf). `vocabulary_` and `idf_` keep scikit-learn's names (the model's `save` reads them)."""

    def __init__(
        self, analyzer: Callable[[str], list[str]], vocabulary: Mapping[str, int], idf: Any
    ) -> None:
        self.analyzer = analyzer
        self.vocabulary_ = dict(vocabulary)
        self.idf_ = np.asarray(idf)
        if len(self.idf_) != len(self.vocabulary_):
            raise ValueError(
                f"idf length {len(self.idf_)} != vocabulary size {len(self.vocabulary_)}"
            )

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse

        vocab = self.vocabulary_
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for text in texts:
            row: dict[int, int] = {}
            for feature in self.analyzer(text):
                j = vocab.get(feature)
                if j is not None:
                    row[j] = row.get(j, 0) + 1
            for j in sorted(row):
                indices.append(j)
                counts.append(row[j])
            indptr.append(len(indices))
        cols = np.asarray(indices, dtype=np.int32)
        data = np.asarray(counts, dtype=np.float32)
        # Sublinear tf, idf (in place on float32, as TfidfTransformer.transform).
        np.log(data, data)
        data += 1.0
        data *= self.idf_[cols]
        # l2 rows: squares summed in double, division in double (sparsefuncs_fast).
        ptr = np.asarray(indptr, dtype=np.int64)
        sq = (data * data).astype(np.float64)
        sums = np.zeros(len(texts), dtype=np.float64)
        nonempty = ptr[1:] > ptr[:-1]
        if nonempty.any():
            sums[nonempty] = np.add.reduceat(sq, ptr[:-1][nonempty])
        norms = np.sqrt(sums)
        norms[norms == 0.0] = 1.0
        data = (data / np.repeat(norms, np.diff(ptr))).astype(np.float32)
        return sparse.csr_matrix(
            (data, cols, ptr.astype(np.int32)), shape=(len(texts), len(self.idf_))
        )


class FittedTfidf:
    """The FeatureUnion of fitted parts: their matrices side by side, in order."""

    def __init__(self, parts: Sequence[tuple[str, FittedTfidfPart]]) -> None:
        self.transformer_list = list(parts)

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse

        texts = list(texts)
        blocks = [part.transform(texts) for _, part in self.transformer_list]
        return sparse.hstack(blocks, format="csr")

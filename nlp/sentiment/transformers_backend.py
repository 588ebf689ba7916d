"""TransformersSentiment: any Hugging Face sequence-classification checkpoint (id or local dir).

For users who can reach the Hub (e.g. `cmarkea/distilcamembert-base-sentiment`, a 5-star model)
or have a checkpoint on disk. A label map turns the checkpoint's labels into our three
polarities; star-style labels ("1 star", "5 stars", "LABEL_0".."LABEL_4") are recognised and
also give an expected star rating.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nlp.text.normalize import normalize_text
from nlp.types import POLARITIES, POLARITY_NAMES, Polarity, SentimentResult

# Models' label names: the usual ones and their abbreviations (POLARITY_NAMES), and "mixed".
_NAMED = {**POLARITY_NAMES, "mixed": "neutral"}


def star_of(label: str, n_labels: int) -> int | None:
    """Star rating encoded by a label ("4 stars", "LABEL_3" on a 5-label model), else None."""
    m = re.match(r"^\s*(\d)\s*(?:star|étoile|etoile)s?\s*$", label, re.IGNORECASE)
    if m:
        return int(m.group(1))
    m = re.match(r"^LABEL_(\d)$", label)
    if m and n_labels == 5:
        return int(m.group(1)) + 1
    return None


def polarity_map(
    id2label: Mapping[int, str], override: Mapping[str, str] | None = None
) -> dict[int, Polarity]:
    """Model label index -> polarity; `override` maps label names to polarities."""
    n = len(id2label)
    out: dict[int, Polarity] = {}
    for idx, raw in id2label.items():
        name = str(raw)
        target = (override or {}).get(name) or _NAMED.get(name.lower())
        if target is None:
            stars = star_of(name, n)
            if stars is not None:
                target = "negative" if stars <= 2 else "neutral" if stars == 3 else "positive"
        if target is None and n == 3 and re.match(r"^LABEL_\d$", name):
            target = POLARITIES[int(name[-1])]
        if target not in POLARITIES:
            raise ValueError(
                f"cannot map model label {name!r} to a polarity; pass a label map "
                f"(label=negative|neutral|positive)"
            )
        out[int(idx)] = target
    return out


class TransformersSentiment:
    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        label_map: Mapping[str, str] | None = None,
        max_length: int = 256,
        batch_size: int = 32,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.polarity = polarity_map(id2label, label_map)
        self.stars = {i: star_of(str(v), len(id2label)) for i, v in id2label.items()}
        self.version = str(getattr(model.config, "_name_or_path", "")) or "local"

    @classmethod
    def load(cls, name_or_path: str, **kw: Any) -> TransformersSentiment:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(name_or_path)
        return cls(model, tokenizer, **kw)

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        import torch

        out: list[SentimentResult] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [normalize_text(t) for t in texts[start : start + self.batch_size]]
            enc = self.tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = self.model(**enc).logits.float().numpy()
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            out += [self._result(row) for row in probs]
        return out

    def _result(self, row: np.ndarray) -> SentimentResult:
        agg: dict[str, float] = dict.fromkeys(POLARITIES, 0.0)
        for idx, p in enumerate(row):
            agg[self.polarity[idx]] += float(p)
        label = max(POLARITIES, key=lambda k: agg[k])
        known = [(s, float(row[i])) for i, s in self.stars.items() if s is not None]
        stars = (
            sum(s * p for s, p in known) / max(sum(p for _, p in known), 1e-9)
            if len(known) == len(row)
            else None
        )
        return SentimentResult(label=label, score=agg[label], stars=stars, probs=agg)

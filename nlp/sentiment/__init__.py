"""Sentiment backends behind one small registry: name -> loader(**kw) -> SentimentModel.

Loaders import their heavy dependencies lazily, so importing this package stays cheap.
Other backends ("embedded", "transformers") register themselves in REGISTRY here.
"""

from __future__ import annotations

from collections.abc import Callable
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


REGISTRY: dict[str, Callable[..., SentimentModel]] = {
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


__all__ = ["REGISTRY", "build_sentiment"]

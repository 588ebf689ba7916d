"""Analyzer: one object that runs text prep, sentiment, themes and severity on a batch.

Built once (see core/analysis.build_analyzer) and passed to whoever needs it.
"""

from __future__ import annotations

import inspect
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nlp.severity import SeverityScorer
from nlp.taxonomy import Taxonomy
from nlp.text import detect_language, is_french, normalize_text
from nlp.types import SentimentModel, SentimentResult, ThemeMention, ThemeModel


@dataclass(frozen=True)
class DocAnalysis:
    language: str
    is_french: bool
    sentiment: SentimentResult
    themes: list[ThemeMention]
    severity: float  # 0..1
    # The document vector of the one encoder pass (float16, L2-normalised); None when the
    # sentiment backend has no encoder. Stored at enrich time: topics never re-encode.
    embedding: np.ndarray | None = None


class Analyzer:
    def __init__(
        self,
        sentiment: SentimentModel,
        themes: ThemeModel,
        taxonomy: Taxonomy,
        *,
        one_pass: bool = True,
    ) -> None:
        self.sentiment = sentiment
        self.themes = themes
        # One encoder pass per document when the sentiment backend can share it (embedded):
        # its token states give the sentiment, the theme heads' vectors and clause polarities.
        self.one_pass = one_pass and hasattr(sentiment, "encode_docs")
        self._themes_share_pass = "encoded" in inspect.signature(themes.predict).parameters
        self.embedding_key: str | None = None  # which weights the stored vectors come from
        if self.one_pass:
            from nlp.themes.embed import fingerprint

            encoder = sentiment.encoder  # type: ignore[attr-defined]
            self.embedding_key = f"{encoder.name}:{fingerprint(encoder)}"
        self.taxonomy = taxonomy
        self.severity = SeverityScorer(taxonomy)
        s_ver = getattr(sentiment, "version", "0")
        t_ver = getattr(themes, "version", "0")
        self.model_version = f"{sentiment.name}-{s_ver}+{themes.name}-{t_ver}"

    def analyze(self, texts: Sequence[str]) -> list[DocAnalysis]:
        # Only NFC: evidence offsets then index the text as given (NFC input is unchanged).
        prepared = [unicodedata.normalize("NFC", t or "") for t in texts]
        vectors: Sequence[np.ndarray | None] = [None] * len(prepared)
        if self.one_pass and prepared:
            encoded = self.sentiment.encode_docs(prepared)  # type: ignore[attr-defined]
            sentiments = encoded.results()
            mentions = self._themes(prepared, encoded)
            vectors = list(encoded.vectors.astype(np.float16))
        else:
            sentiments = self.sentiment.predict([normalize_text(t) for t in prepared])
            mentions = self.themes.predict(prepared)
        out = []
        for text, sent, themes, vec in zip(prepared, sentiments, mentions, vectors, strict=True):
            lang, conf = detect_language(text)
            out.append(
                DocAnalysis(
                    language=lang,
                    is_french=is_french(lang, conf),
                    sentiment=sent,
                    themes=list(themes),
                    severity=self.severity.score(text, sent, list(themes)),
                    embedding=vec,
                )
            )
        return out

    def _themes(self, texts: list[str], encoded: object) -> list[list[ThemeMention]]:
        if self._themes_share_pass:
            return self.themes.predict(texts, encoded=encoded)  # type: ignore[call-arg]
        return self.themes.predict(texts)  # rules: no encoder to share

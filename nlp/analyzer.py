"""Analyzer: one object that runs text prep, sentiment, themes and severity on a batch.

Built once (see jobs/factory.build_analyzer) and passed to whoever needs it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

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


class Analyzer:
    def __init__(self, sentiment: SentimentModel, themes: ThemeModel, taxonomy: Taxonomy) -> None:
        self.sentiment = sentiment
        self.themes = themes
        self.taxonomy = taxonomy
        self.severity = SeverityScorer(taxonomy)
        s_ver = getattr(sentiment, "version", "0")
        t_ver = getattr(themes, "version", "0")
        self.model_version = f"{sentiment.name}-{s_ver}+{themes.name}-{t_ver}"

    def analyze(self, texts: Sequence[str]) -> list[DocAnalysis]:
        # Only NFC: evidence offsets then index the text as given (NFC input is unchanged).
        prepared = [unicodedata.normalize("NFC", t or "") for t in texts]
        sentiments = self.sentiment.predict([normalize_text(t) for t in prepared])
        mentions = self.themes.predict(prepared)
        out = []
        for text, sent, themes in zip(prepared, sentiments, mentions, strict=True):
            lang, conf = detect_language(text)
            out.append(
                DocAnalysis(
                    language=lang,
                    is_french=is_french(lang, conf),
                    sentiment=sent,
                    themes=list(themes),
                    severity=self.severity.score(text, sent, list(themes)),
                )
            )
        return out

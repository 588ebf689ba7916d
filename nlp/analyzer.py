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
from nlp.text.content import has_content
from nlp.types import POLARITIES, SentimentModel, SentimentResult, ThemeMention, ThemeModel

# The verdict on a text with nothing to judge (nlp/text/content.py): neutral, as likely as
# either other class, no star estimate. Whatever the backend: each read shortness as praise.
NO_CONTENT = SentimentResult(
    label="neutral",
    score=round(1 / len(POLARITIES), 4),
    stars=None,
    probs=dict.fromkeys(POLARITIES, round(1 / len(POLARITIES), 4)),
)


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
    # Nothing to judge (placeholders, punctuation, a link, a number only): the sentiment is
    # NO_CONTENT, no themes and severity 0, whatever the models said.
    no_content: bool = False


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
        # "+nc1": the no-content rule (NO_CONTENT). Analyses stored before it are another
        # version's, so `verbatim enrich --reanalyze` re-scores them.
        self.model_version = f"{sentiment.name}-{s_ver}+{themes.name}-{t_ver}+nc1"

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
            empty = not has_content(text)
            if empty:
                sent, themes = NO_CONTENT, []
            out.append(
                DocAnalysis(
                    language=lang,
                    is_french=is_french(lang, conf),
                    sentiment=sent,
                    themes=list(themes),
                    # No words: no irritant, no alarm (a neutral third would read as one).
                    severity=0.0 if empty else self.severity.score(text, sent, list(themes)),
                    embedding=vec,
                    no_content=empty,
                )
            )
        return out

    def _themes(self, texts: list[str], encoded: object) -> list[list[ThemeMention]]:
        if self._themes_share_pass:
            return self.themes.predict(texts, encoded=encoded)  # type: ignore[call-arg]
        return self.themes.predict(texts)  # rules: no encoder to share

"""Build the analysis stack once from settings, and the JSON record of one analysed document.

Shared by the CLI jobs, the pipeline and the API: `analysis_record` is both the `verbatim analyze`
JSONL line and the API's per-document shape, so it lives here, below jobs and service.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.settings import Settings
from nlp.analyzer import Analyzer, DocAnalysis
from nlp.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def load_spacy(name: str = "fr_core_news_sm") -> Any | None:
    """spaCy French pipeline for lemmas (parser/NER off), or None when it cannot load."""
    from nlp.text.spacy_loader import load_pipeline

    try:
        return load_pipeline(name, disable=["parser", "ner"])
    except Exception as exc:  # noqa: BLE001 - any failure: fall back to the light stemmer
        log.warning("spaCy %s unavailable (%s); theme seeds use the light stemmer", name, exc)
        return None


def load_lemmatizer(kind: str = "lookup", cache_dir: Path | None = None) -> Any | None:
    """What the theme rules read lemmas from: "lookup" (the spaCy model's lemma table, no
    tagger: the fast default), "spacy" (the full tagger + rule lemmatiser), None without
    spaCy (the light stemmer alone).

    With `cache_dir` (settings.model_dir) the lookup table is read from the copy kept there
    (`verbatim setup` writes it; else the first use does): no spaCy pipeline is loaded."""
    from nlp.text.lemmas import LemmaTable, LookupLemmatizer, table_path

    path = table_path(cache_dir) if cache_dir is not None and kind == "lookup" else None
    if path is not None:
        table = LemmaTable.load(path)
        if table is not None:
            return LookupLemmatizer(table)
    nlp = load_spacy()
    if kind == "spacy" or nlp is None:
        return nlp
    if path is not None:
        table = LemmaTable.from_spacy(nlp)
        if table is not None:
            try:
                table.save(path)
            except OSError as exc:  # a read-only cache: spaCy's own table serves this run
                log.warning("cannot keep the lemma table in %s (%s)", path, exc)
    return LookupLemmatizer.from_spacy(nlp) or nlp


def theme_signals(sentiment: Any) -> Any:
    """Encoder signals for theme heads from the sentiment backend: its encoder (never a second
    copy) and its probabilities; None when it cannot provide them."""
    try:
        from nlp.themes.embed import EncoderSignals

        return EncoderSignals(getattr(sentiment, "encoder", None), sentiment)
    except Exception as exc:  # noqa: BLE001 - theme heads then run their encoder-free variant
        log.warning("theme heads run without encoder signals (%s)", exc)
        return None


def build_theme_model(
    taxonomy: Taxonomy,
    themes_model: Path | None,
    sentiment: Any,
    lemmatizer: str = "lookup",
    cache_dir: Path | None = None,
) -> Any:
    """Rules, or a trained theme head: `themes_model` if given, else the packaged default head
    of a built-in taxonomy when it fits (any failure there falls back to the rules). Heads use
    the sentiment backend's encoder when it is the one they were trained with."""
    from nlp.sentiment.lexicon import LexiconSentiment
    from nlp.themes import RuleThemeDetector

    scorer = sentiment if isinstance(sentiment, LexiconSentiment) else LexiconSentiment()
    nlp = load_lemmatizer(lemmatizer, cache_dir)
    if themes_model is not None:
        from nlp.themes.learned import load_theme_model

        return load_theme_model(
            Path(themes_model), taxonomy, nlp=nlp, scorer=scorer, signals=theme_signals(sentiment)
        )
    try:
        from nlp.themes.learned import default_model_dir, load_theme_model

        default = default_model_dir(taxonomy.name)
        meta_file = default / "meta.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            # A packaged head was trained for one taxonomy: never reuse its heads for another
            # one (a restaurant "prix" is not an e-commerce "prix").
            if meta.get("taxonomy") == taxonomy.name:
                return load_theme_model(
                    default, taxonomy, nlp=nlp, scorer=scorer, signals=theme_signals(sentiment)
                )
    except Exception as exc:  # noqa: BLE001 - the rules always work
        log.warning("packaged theme model unusable (%s); using the taxonomy rules", exc)
    return RuleThemeDetector(taxonomy, nlp=nlp, scorer=scorer)


def analyzer_for(
    settings: Settings,
    taxonomy: Taxonomy,
    version: int,
    loaded: Analyzer | None,
    loaded_version: int | None,
) -> Analyzer:
    """`loaded` when it was built for taxonomy `version`, else a new analyzer for it that keeps
    `loaded`'s sentiment model: a taxonomy edit rebuilds only the theme detector. Long-lived
    holders (the API, the scheduler) call it before each use to follow the database's
    current taxonomy."""
    if loaded is not None and loaded_version == version:
        return loaded
    sentiment = loaded.sentiment if loaded is not None else None
    return build_analyzer(settings, taxonomy=taxonomy, sentiment=sentiment)


def sentiment_for(settings: Settings, backend: str | None = None) -> Any:
    """The sentiment backend `backend` (default: the settings') with the settings' model,
    weights, model directory and encoder runtime: what analyses run with."""
    from nlp.sentiment import build_sentiment

    return build_sentiment(
        backend or settings.sentiment_backend,
        model=settings.sentiment_model,
        path=settings.sentiment_model_path,
        model_dir=settings.resolved_model_dir,
        runtime=settings.encoder_runtime,
    )


def build_analyzer(
    settings: Settings,
    *,
    backend: str | None = None,
    taxonomy: Taxonomy | None = None,
    themes_model: Path | None = None,
    sentiment: Any | None = None,
) -> Analyzer:
    """Analyzer for `backend` (default settings.sentiment_backend) and the given taxonomy.

    Pass `sentiment` to reuse an already loaded model (e.g. when only the taxonomy changed)."""
    taxonomy = taxonomy or load_taxonomy(settings.taxonomy_path)
    if sentiment is None:
        sentiment = sentiment_for(settings, backend)
    themes = build_theme_model(
        taxonomy,
        themes_model or settings.themes_model,
        sentiment,
        settings.lemmatizer,
        settings.resolved_model_dir,
    )
    analyzer = Analyzer(sentiment, themes, taxonomy, one_pass=settings.one_pass)
    trained = trained_weights(settings, backend, themes_model)
    if trained:
        # A trained model keeps its backend's version ("tfidf-0.1", "embedded-1.0", every head
        # "learned-0.3"): without its weights' digest, `enrich --reanalyze` after re-training
        # found every verbatim "already analysed by this version" and re-scored none.
        analyzer.model_version = f"{analyzer.model_version}@{weights_digest(trained)}"
    return analyzer


@functools.cache  # /proc/cpuinfo, read once per runtime and process (/health is probed often)
def _kernels(runtime: str) -> str | None:
    from nlp.encoder.runtime import runtime_kernels

    return runtime_kernels(runtime)


def analyzer_info(analyzer: Analyzer) -> dict[str, str | None]:
    """What `analyzer` runs, for an operator (the API's /health and /metrics): the model
    version stored with each analysis; the encoder runtime (`encoder_runtime = "auto"`: the
    one `verbatim setup` measured fastest, or the fallback on a CPU other than the one it was
    measured on) and the CPU kernels it reaches here, None without an encoder (lexicon,
    tfidf); the theme heads: "full" (with the encoder's vectors), "lite" (the encoder-free
    heads, also the fallback for an encoder other than the training one) or "rules"."""
    runtime = getattr(getattr(analyzer.sentiment, "runtime", None), "name", None)
    kernels = _kernels(runtime) if runtime is not None else None
    return {
        "model_version": analyzer.model_version,
        "encoder_runtime": runtime,
        "kernels": kernels,
        "theme_heads": getattr(analyzer.themes, "detection_variant", "rules"),
    }


def trained_weights(
    settings: Settings, backend: str | None, themes_model: Path | None
) -> list[Path]:
    """The user-trained model files this analyzer reads (`sentiment_model_path` is read by
    the embedded and tfidf backends; a model id of the transformers backend names itself)."""
    paths = []
    if settings.sentiment_model_path and (backend or settings.sentiment_backend) in (
        "embedded",
        "tfidf",
    ):
        paths.append(Path(settings.sentiment_model_path))
    themes = themes_model or settings.themes_model
    if themes:
        paths.append(Path(themes))
    return [p for p in paths if p.exists()]


def weights_digest(paths: Sequence[Path]) -> str:
    """8 hex digits over the files of these models (relative names and contents), their
    documentation left out: editing a MODEL_CARD.md changes no analysis."""
    digest = hashlib.sha256()
    for root in paths:
        files = (
            sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() != ".md")
            if root.is_dir()
            else [root]
        )
        for file in files:
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode())
            with file.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:8]


def analysis_record(doc: DocAnalysis) -> dict:
    """The JSON-able result of one document: {"sentiment": {...}, "themes": [...], ...}."""
    sentiment: dict[str, Any] = {
        "label": doc.sentiment.label,
        "score": round(float(doc.sentiment.score), 4),
    }
    if doc.sentiment.stars is not None:
        sentiment["stars"] = round(float(doc.sentiment.stars), 2)
    if doc.no_content:  # neutral because there is nothing to judge, not a neutral opinion
        sentiment["no_content"] = True
    themes = []
    for m in doc.themes:
        item: dict[str, Any] = {
            "id": m.theme,
            "polarity": m.polarity,
            "score": round(float(m.score), 4),
        }
        if m.evidence is not None:
            item["evidence"] = {
                "start": m.evidence.start,
                "end": m.evidence.end,
                "text": m.evidence.text,
            }
        themes.append(item)
    return {
        "sentiment": sentiment,
        "themes": themes,
        "severity": doc.severity,
        "language": doc.language,
    }

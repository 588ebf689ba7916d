"""The one settings object: environment (`VERBATIM_*`) over an optional TOML file over defaults.

The file is `$VERBATIM_CONFIG` if set, else `./verbatim.toml` when it exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Channel = Literal["review", "social", "complaint", "survey"]


class SourceConfig(BaseModel):
    """One feed that `verbatim run` ingests on each run."""

    path: Path
    source: str
    channel: Channel = "review"
    # Maps our field names (text, id, created_at, rating, customer, ...) to file columns.
    mapping: dict[str, str] = Field(default_factory=dict)


def _config_file() -> Path | None:
    explicit = os.environ.get("VERBATIM_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("verbatim.toml")
    return local if local.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VERBATIM_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("verbatim-data")
    database_url: str | None = None  # default: sqlite file inside data_dir
    model_dir: Path | None = None  # built encoder cache; default: the user's cache directory

    # embedded: offline encoder + the project's fine-tuned delta (verbatim setup builds it).
    sentiment_backend: Literal["embedded", "transformers", "lexicon", "tfidf"] = "embedded"
    sentiment_model: str | None = None  # HF id or local path for the `transformers` backend
    # A delta trained with `verbatim train sentiment` (embedded) or a TF-IDF model dir (tfidf).
    sentiment_model_path: Path | None = None
    themes_model: Path | None = None  # trained theme head directory (verbatim train themes)
    # Encoder runtime of the embedded backend: "auto" = what `verbatim setup` measured fastest
    # on this machine (ONNX Runtime int8/fp32 or torch); "torch" = the training path.
    encoder_runtime: Literal["auto", "torch", "onnx-int8", "onnx-fp32"] = "auto"
    # One encoder pass per document (sentiment, theme vectors, clause polarities); False runs
    # the former three-pass path (kept as the benchmarks' reference).
    one_pass: bool = True
    # Lemmas for the theme rules: "lookup" (spaCy's lemma table, no tagger) or "spacy".
    lemmatizer: Literal["lookup", "spacy"] = "lookup"
    taxonomy_path: Path | None = None  # None: the packaged e-commerce taxonomy

    sources: list[SourceConfig] = Field(default_factory=list)

    # Slack: team name (from the taxonomy) -> incoming-webhook URL; "default" catches the rest.
    slack_webhooks: dict[str, str] = Field(default_factory=dict)
    dashboard_url: str = "http://127.0.0.1:8000"
    alert_language: Literal["fr", "en"] = "fr"

    max_text_chars: int = 20_000
    batch_size: int = 500

    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = 5_000_000
    max_batch_rows: int = 1_000
    # Local single-user mode: read endpoints (and so the dashboard) answer without an API key.
    # Env: VERBATIM_DASHBOARD_READ_WITHOUT_KEY=1. Write endpoints always need a write key.
    dashboard_read_without_key: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'verbatim.db').resolve()}"

    @property
    def resolved_model_dir(self) -> Path:
        """Where `verbatim setup` builds the encoder: shared by every data dir of the user."""
        if self.model_dir:
            return self.model_dir
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(cache) / "verbatim" / "models"


def load_settings(**overrides: Any) -> Settings:
    """Build settings afresh (no module-level singleton: tests and jobs pass them around)."""
    return Settings(**overrides)

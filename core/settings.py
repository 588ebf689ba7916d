"""The one settings object: environment (`VERBATIM_*`) over an optional TOML file over defaults.

The file is `$VERBATIM_CONFIG` if set (it must then be a readable file; `/dev/null` reads none),
else `./verbatim.toml` when it exists.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from nlp.errors import VerbatimError, unknown_names

log = logging.getLogger(__name__)

Channel = Literal["review", "social", "complaint", "survey"]

# `VERBATIM_*` variables that other code reads on purpose, not settings: a variable with the
# prefix that is neither one of these nor a setting is a typo (`VERBATIM_DATABSE_URL`), warned.
OTHER_VARIABLES = (
    "VERBATIM_CONFIG",  # the TOML file (this module)
    "VERBATIM_LOG_LEVEL",  # core.logs
    "VERBATIM_LOG_FORMAT",  # core.logs
    "VERBATIM_TEST_POSTGRES_URL",  # tests: the PostgreSQL server of the `postgres` tests
    "VERBATIM_TEST_REQUIRE",  # tests: kinds of test that must not skip (tests/conftest.py)
    "VERBATIM_SHARED_DATA",  # benchmarks: the evaluation data sets
    "VERBATIM_CI_PG_PORT",  # .ci/run: port of CI's throwaway PostgreSQL
)


class ConfigFileError(VerbatimError, ValueError):
    """The configuration file names a setting that does not exist (a typo, `databse_url`), or
    `VERBATIM_CONFIG` names no readable file: either would otherwise be ignored silently and
    the defaults used instead."""


def _refuse_non_utf8(path: Path) -> None:
    """TOML is UTF-8: a file saved as Latin-1 ("café" in a label) ended every command in a
    UnicodeDecodeError traceback."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the configuration file as UTF-8"
        ) from None
    except OSError:
        return  # unreadable: the TOML source reports it as before


def _unknown_keys(data: dict[str, Any], known: Collection[str], where: str) -> str | None:
    parts = unknown_names(sorted(data), known)
    return f"{where}: unknown setting {', '.join(parts)}" if parts else None


def _expand_home(path: Path | None) -> Path | None:
    """`~/verbatim` in verbatim.toml, or in a systemd or Docker env file (no shell expands it
    there), made a directory named `~` in the working directory and kept the data there."""
    if path is None or not str(path).startswith("~"):
        return path
    try:
        return path.expanduser()
    except RuntimeError as exc:  # `~nosuchuser/`, or no home directory at all
        raise ValueError(f"{path}: {exc}") from None


def _expand_home_text(value: str | None) -> str | None:
    """`sentiment_model = "~/models/camembert"` (a local directory, else a Hugging Face id) as
    `_expand_home`: it was looked up as a model id on the Hub."""
    if value is None or not value.startswith("~"):
        return value
    return str(_expand_home(Path(value)))


# sqlite:///~/verbatim.db: SQLite's path after the three slashes (four: an absolute one).
_SQLITE_HOME = re.compile(r"^(sqlite(?:\+\w+)?:///)(~[^?]*)(.*)$", re.DOTALL)


def _expand_home_url(url: str | None) -> str | None:
    """`database_url = "sqlite:///~/verbatim.db"` as `_expand_home`: it made a directory named
    `~` in the working directory and kept the database there."""
    match = _SQLITE_HOME.match(url or "")
    if match is None:
        return url
    head, path, tail = match.groups()
    return f"{head}{_expand_home(Path(path))}{tail}"


class SourceConfig(BaseModel):
    """One feed that `verbatim run` (and the scheduler's `ingest` job) pulls on each run.

    `kind` picks the connector (jobs/connectors): `file` (one CSV/JSONL file, resumable),
    `folder` (new files matching `pattern`, each read once), `http` (a JSON API pulled with a
    `since` cursor), or a third-party connector registered under its own name (its options in
    `options`).
    """

    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not ignored

    source: str
    kind: str = "file"
    channel: Channel = "review"
    # Maps our field names (text, id, created_at, rating, customer, ...) to file columns.
    mapping: dict[str, str] = Field(default_factory=dict)
    # The scale of the rating column's bare numbers: 10 for a 0-10 `note` (stored out of 5,
    # 8 -> 4.0); with 5, a bare rating above 5 is refused ("8/10", "80 %" say their scale).
    rating_scale: int = Field(default=5, ge=2, le=100)
    path: Path | None = None  # file: the file; folder: the folder
    # folder: glob below `path` ("*.csv", "**/*.jsonl"); files still being written (modified
    # less than `settle_seconds` ago, or named *.part / *.tmp / .*) wait for the next poll.
    # file: a file whose last line is unfinished (no final newline) and that was modified
    # less than `settle_seconds` ago is being written: it waits for the next poll.
    pattern: str = "*"
    settle_seconds: float = 30.0
    encoding: str = "utf-8"
    # http: GET `url` (+ `params`), the auth header's value read from the environment variable
    # `auth_env` (never from the file), `since_param=<cursor>` where the cursor is the largest
    # `cursor_field` seen so far, the records at `records_path` (dotted; "" = the body is the
    # list), the next page at `next_path` (a URL in the body) or else `page_param` (1, 2...).
    url: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    auth_env: str | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # prefix of the header value ("" for none)
    since_param: str = "since"
    cursor_field: str | None = None
    records_path: str = "data"
    next_path: str | None = "next"
    page_param: str | None = None
    # More than 0: `0` failed every request as `ConnectError: [Errno 115] Operation now in
    # progress`, retried as if the API were down; a negative one crashed the pull (ValueError).
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)  # on 429 / 5xx / network errors, with backoff
    options: dict[str, Any] = Field(default_factory=dict)  # third-party connectors

    _expand_path = field_validator("path")(_expand_home)

    @model_validator(mode="after")
    def _check_kind(self) -> SourceConfig:
        if self.kind in ("file", "folder") and self.path is None:
            raise ValueError(f"source {self.source!r}: kind {self.kind!r} needs a path")
        if self.kind == "http" and not self.url:
            raise ValueError(f"source {self.source!r}: kind 'http' needs a url")
        # An option of another kind (`url` on a folder, `pattern` on a file) was accepted and
        # then ignored. Third-party connectors get the whole table: anything goes there.
        readable = _KIND_OPTIONS.get(self.kind)
        if readable is not None:
            ignored = sorted(self.model_fields_set - readable - _COMMON_OPTIONS)
            if ignored:
                raise ValueError(
                    f"source {self.source!r}: kind {self.kind!r} does not read "
                    f"{', '.join(ignored)} (its options: {', '.join(sorted(readable))})"
                )
        return self


_COMMON_OPTIONS = frozenset({"source", "kind", "channel", "mapping", "rating_scale"})
# What each built-in connector reads (jobs/connectors): the rest would be ignored silently.
_FILE_OPTIONS = frozenset({"path", "encoding", "settle_seconds"})
_FOLDER_OPTIONS = _FILE_OPTIONS | {"pattern"}
_KIND_OPTIONS: dict[str, frozenset[str]] = {
    "file": _FILE_OPTIONS,
    "folder": _FOLDER_OPTIONS,
    # Every other field but `options` (third-party connectors') is the HTTP connector's.
    "http": frozenset(SourceConfig.model_fields) - _FOLDER_OPTIONS - _COMMON_OPTIONS - {"options"},
}


class SchedulerJob(BaseModel):
    """One `verbatim scheduler` job: a command run on a cron expression."""

    model_config = ConfigDict(extra="forbid")

    # `job_runs.job` is 64 characters: a longer name failed every tick on PostgreSQL (nothing
    # recorded, nothing in /health), ran on SQLite.
    name: str = Field(min_length=1, max_length=64)
    # 5 fields (minute hour day month weekday), or 6 with seconds first ("*/10 * * * * *").
    cron: str
    command: Literal["run", "ingest", "enrich", "aggregate", "detect", "alert", "digest"] = "run"


class SchedulerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[SchedulerJob] = Field(default_factory=list)
    timezone: str = "UTC"
    # A tick missed by less than this (machine asleep, previous run still going, scheduler
    # restarted) still runs; several missed ticks of one job run once (coalescing).
    misfire_grace_seconds: int = 600
    # How long a tick waits for another job's run (any process) to finish before giving up.
    lock_wait_seconds: float = 300.0
    # Keep the masker and the analyzer loaded between ticks (~0.5–0.85 GB, embedded model);
    # false frees them after each tick and reloads them at the next (a few seconds each).
    keep_models: bool = True
    # Runs kept in `job_runs` (read by /health and /metrics at every call): the scheduler
    # deletes older ones once a day, except each job's latest run and latest success. 0: all.
    # At most 100 years (0 keeps every run): a larger value overflowed the cutoff date.
    runs_retention_days: int = Field(default=90, ge=0, le=36_500)


def _config_file() -> Path | None:
    """The TOML file to read, or None. A `VERBATIM_CONFIG` naming nothing readable is an error:
    it was ignored, and every setting silently fell back to its default (a typo in the path,
    or Docker's bind mount of a missing host file, which makes a directory in the container).
    `VERBATIM_CONFIG=/dev/null` reads no file at all (not even ./verbatim.toml)."""
    explicit = os.environ.get("VERBATIM_CONFIG")
    if explicit:
        try:  # `~/verbatim.toml` in a systemd or Docker env file: no shell expands it there
            path = _expand_home(Path(explicit)) or Path(explicit)
        except ValueError as exc:
            raise ConfigFileError(f"VERBATIM_CONFIG: {exc}") from None
        if path == Path(os.devnull):
            return None
        _check_config_file(path, "VERBATIM_CONFIG")
        return path
    local = Path("verbatim.toml")
    if not local.exists():
        return None  # the default file is optional: no file, no message
    _check_config_file(local.resolve(), "default configuration file")
    return local


def _check_config_file(path: Path, name: str) -> None:
    if path.is_dir():
        raise ConfigFileError(
            f"{name}: {path} is a directory, expected a TOML file (a Docker bind mount of a "
            "missing host file creates a directory)"
        )
    if not path.exists():
        raise ConfigFileError(
            f"{name}: configuration file not found: {path} (unset VERBATIM_CONFIG, or set it "
            "to /dev/null, to run without one)"
        )
    if not path.is_file():
        raise ConfigFileError(f"{name}: {path} is not a regular file, expected a TOML file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigFileError(
            f"{name}: cannot read configuration file {path}: {exc.strerror or exc}"
        ) from None


_warned_variables: set[str] = set()


def unknown_variables(
    environ: Mapping[str, str], fields: Collection[str], read: Collection[str] = ()
) -> list[str]:
    """One line per `VERBATIM_*` variable of `environ` that no setting reads (nor
    OTHER_VARIABLES, nor `read`: the variables the sources name, such as `auth_env`), with
    the known name it most likely means. Nested values (`__`) are checked on their top-level
    setting."""
    known = [f"VERBATIM_{name.upper()}" for name in fields]
    problems = []
    for key in sorted(environ):
        name = key.upper()
        if not name.startswith("VERBATIM_") or name in OTHER_VARIABLES or key in read:
            continue
        top, nested, rest = name.partition("__")
        if top in known:
            continue
        # Compared without the shared prefix, which would make any name "close".
        candidates = [k.removeprefix("VERBATIM_") for k in (*known, *OTHER_VARIABLES)]
        close = difflib.get_close_matches(top.removeprefix("VERBATIM_"), candidates, n=1)
        hint = f" (did you mean VERBATIM_{close[0]}{nested}{rest}?)" if close else ""
        problems.append(f"environment variable {key} is not a Verbatim setting, ignored{hint}")
    return problems


def _warn_unknown_variables(fields: Collection[str], read: Collection[str]) -> None:
    """Log each unknown `VERBATIM_*` variable once per process (settings are built often)."""
    for line in unknown_variables(os.environ, fields, read):
        if line not in _warned_variables:
            _warned_variables.add(line)
            log.warning(line)


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
    # on this machine (OpenVINO int8 or bf16, ONNX Runtime int8/fp32 or torch); "torch" = the
    # training path.
    encoder_runtime: Literal[
        "auto", "torch", "onnx-int8", "onnx-fp32", "openvino-int8", "openvino-bf16"
    ] = "auto"
    # One encoder pass per document (sentiment, theme vectors, clause polarities); False runs
    # the former three-pass path (kept as the benchmarks' reference).
    one_pass: bool = True
    # Lemmas for the theme rules: "lookup" (spaCy's lemma table, no tagger) or "spacy".
    lemmatizer: Literal["lookup", "spacy"] = "lookup"
    taxonomy_path: Path | None = None  # None: the packaged e-commerce taxonomy

    sources: list[SourceConfig] = Field(default_factory=list)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

    # Slack: team name (from the taxonomy) -> incoming-webhook URL; "default" catches the rest.
    slack_webhooks: dict[str, str] = Field(default_factory=dict)
    dashboard_url: str = "http://127.0.0.1:8000"
    alert_language: Literal["fr", "en"] = "fr"

    # Personal data: verbatims older than this many days (by their date, UTC) are deleted by
    # `verbatim purge` and the scheduler's daily housekeeping, their days' counts kept.
    # 0: kept for ever. At most 100 years, as runs_retention_days.
    retention_days: int = Field(default=0, ge=0, le=36_500)
    # Taxonomy edits re-detect themes (no sentiment pass) on verbatims of the last N days of data.
    retheme_days: int = Field(default=30, ge=0)
    # Detection: days older than this (vs today, UTC) raise historical incidents, never sent.
    alert_freshness_days: int = Field(default=2, ge=0)
    # No volume / emerging alert before the feed has this many days of history (see README).
    detection_warmup_days: int = Field(default=21, ge=1)

    # Limits are at least 1: `batch_size = 0` made `enrich` (and `run`) analyse nothing and
    # say "analysed 0 verbatims"; a 0 limit refused every text, batch or body (no "unlimited").
    max_text_chars: int = Field(default=20_000, ge=1)
    # PII masking also runs spaCy's French NER for names without a cue ("Merci Sophie").
    pii_ner: bool = True
    batch_size: int = Field(default=500, ge=1)

    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=5_000_000, ge=1)
    max_batch_rows: int = Field(default=1_000, ge=1)
    # Local single-user mode: read endpoints (and so the dashboard) answer without an API key.
    # Env: VERBATIM_DASHBOARD_READ_WITHOUT_KEY=1. Write endpoints always need a write key.
    dashboard_read_without_key: bool = False
    # While reads are open: the names (besides localhost and IP addresses) the API answers
    # by. Any other Host is a 400 (service.middleware.HostCheck: DNS rebinding).
    open_read_hosts: list[str] = Field(default_factory=list)
    # `verbatim serve`: uvicorn worker processes (each has its own caches and, when preloaded,
    # its own models), and whether the analyzer and the PII NER are built at start-up (true:
    # the first POST /analyze or /feedback is fast) or at the first write (false: a read
    # replica stays small, ~0.3 GB instead of ~1.8 GB with the embedded model).
    api_workers: int = Field(default=1, ge=1, le=64)
    api_preload_models: bool = True
    # Threads that run the API's blocking endpoints (anyio's default is 40): a few are enough
    # to keep both cores busy between SQL calls; more add GIL contention under load.
    api_threads: int = Field(default=40, ge=1, le=256)
    # Requests inside the API at once (others wait, no error): at most half the connection
    # pool (core.db.POOL_CONNECTIONS, 40) and at most `api_threads`, or under load requests
    # holding connections wait for threads held by requests waiting for connections.
    # 0: chosen from the database (`api_admission`).
    api_max_inflight: int = Field(default=0, ge=0, le=256)
    # Memory for rendered read views kept per API process (0: off). A view is served from it
    # only while the data it was computed from is unchanged (service.response_cache).
    api_response_cache_mb: int = Field(default=64, ge=0, le=4096)
    # How far behind the database a kept view may be served while it is rebuilt in the
    # background (stale-while-revalidate), when only job-written data changed (new verbatims,
    # analyses, aggregates, topics); alerts, taxonomy, incidents and API keys are always
    # current, and so are reads sent with `Cache-Control: no-cache` or after a write through
    # the same process. 0: every changed view is rebuilt before it is answered.
    api_stale_while_revalidate_s: float = Field(default=10.0, ge=0, le=3600)
    # Rows of each per-day aggregate table (daily_aggregates, daily_facets) the API keeps in
    # memory to answer period views without SQL (core.day_table; up to ~180 bytes a row). A table
    # over this size is read from the database instead. 0: always read from the database.
    api_day_table_rows: int = Field(default=500_000, ge=0, le=50_000_000)
    # Build the dashboard's landing views (default periods) once at start-up, before the
    # server accepts requests, so that the first callers do not queue behind one-time costs
    # (service.warmup; ~0.5-1 s more start-up).
    api_warm_up: bool = True
    # PostgreSQL: the API reuses its last read of the data versions (one statement per request
    # otherwise) until a change is notified (LISTEN/NOTIFY, core.change_feed), and for at most
    # this long. 0: read them on every request.
    api_versions_max_age_s: float = Field(default=1.0, ge=0, le=60)

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        """A browser sends its Origin as `scheme://host[:port]`, lower case, and CORS compares
        it as text: `https://cx.example.fr/` (the address bar's copy) matched no request, and
        every preflight was a 400 "Disallowed CORS origin" with nothing in the server's log."""
        checked = []
        for origin in origins:
            value = origin.strip().rstrip("/").lower()
            if value != "*" and not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/?#\s]+", value):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], as the browser sends "
                    "it (https://cx.example.fr), or *"
                )
            checked.append(value)
        return checked

    @field_validator("dashboard_url")
    @classmethod
    def _check_dashboard_url(cls, url: str) -> str:
        """Every Slack message's button and link open it: `verbatim.example.fr` (no scheme)
        made a button URL Slack refuses, the whole message with it (400 invalid_blocks: each
        incident `dead`, every team's channel silent), and a stray newline from a CRLF `.env`
        the same."""
        value = url.strip()
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # "http://[::1": Invalid IPv6 URL
            ok = False
        if not ok or re.search(r"\s", value):
            raise ValueError(
                f"{url!r} is not a URL: the dashboard's address as a browser opens it "
                "(https://verbatim.example.fr), put in the Slack messages' links"
            )
        return value

    _expand_paths = field_validator(
        "data_dir", "model_dir", "sentiment_model_path", "themes_model", "taxonomy_path"
    )(_expand_home)
    _expand_model = field_validator("sentiment_model")(_expand_home_text)
    _expand_url = field_validator("database_url")(_expand_home_url)

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
            _refuse_non_utf8(path)
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
            problem = _unknown_keys(toml.toml_data, settings_cls.model_fields, str(path))
            if problem:
                raise ConfigFileError(problem)
            sources.append(toml)
        return tuple(sources)

    @model_validator(mode="after")
    def _warn_misspelt_variables(self) -> Settings:
        # A misspelt variable (`VERBATIM_DATABSE_URL`) was ignored without a word. A source's
        # token variable (`auth_env`, or a third-party connector's option) may share the prefix.
        read = {s.auth_env for s in self.sources if s.auth_env}
        read |= {v for s in self.sources for v in s.options.values() if isinstance(v, str)}
        _warn_unknown_variables(type(self).model_fields, read)
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'verbatim.db').resolve()}"

    @property
    def api_admission(self) -> int:
        """Requests inside the API at once: `api_max_inflight`, or when 0, 2 per core on
        SQLite (its queries run in-process: more requests only contend for the GIL; measured
        at 200 req/s, 4 in flight gave p99 0.2 s where 20 gave 1.7 s) and 5 per core on a
        database server (requests mostly wait on its round trips), never above half the pool
        or `api_threads`."""
        wanted = self.api_max_inflight
        if wanted == 0:
            cores = os.cpu_count() or 1
            sqlite = self.resolved_database_url.startswith("sqlite")
            wanted = (2 if sqlite else 5) * cores
        from core.db import POOL_CONNECTIONS

        return max(1, min(wanted, POOL_CONNECTIONS // 2, self.api_threads))

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

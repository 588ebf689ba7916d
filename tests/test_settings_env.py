"""A misspelt `VERBATIM_*` environment variable is warned about (it was ignored silently), once
per process, naming the setting it most likely means; variables read elsewhere are not."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from core import settings as settings_module
from core.settings import OTHER_VARIABLES, Settings, unknown_variables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.upper().startswith("VERBATIM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)
    monkeypatch.setattr(settings_module, "_warned_variables", set())
    return monkeypatch


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "core.settings"]


def test_a_misspelt_variable_is_warned_once_with_the_setting_it_means(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_env.setenv("VERBATIM_DATABSE_URL", "postgresql+psycopg://db/verbatim")
    clean_env.setenv("VERBATIM_SLACK_WEBHOOK__SAV", "https://hooks.example/sav")
    clean_env.setenv("VERBATIM_WHATEVER", "1")
    with caplog.at_level(logging.WARNING, "core.settings"):
        settings = Settings()
        Settings()  # settings are built many times a run: one warning per variable
    assert settings.database_url is None  # ignored, as before: but no longer silently
    assert _warnings(caplog) == [
        "environment variable VERBATIM_DATABSE_URL is not a Verbatim setting, ignored "
        "(did you mean VERBATIM_DATABASE_URL?)",
        "environment variable VERBATIM_SLACK_WEBHOOK__SAV is not a Verbatim setting, ignored "
        "(did you mean VERBATIM_SLACK_WEBHOOKS__SAV?)",
        "environment variable VERBATIM_WHATEVER is not a Verbatim setting, ignored",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_settings_and_variables_read_elsewhere_are_not_warned(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in OTHER_VARIABLES:
        clean_env.setenv(name, "1")
    clean_env.setenv("VERBATIM_CONFIG", os.devnull)
    clean_env.setenv("VERBATIM_BATCH_SIZE", "10")
    clean_env.setenv("verbatim_pii_ner", "false")  # settings' names are case-insensitive
    clean_env.setenv("VERBATIM_SLACK_WEBHOOKS__LOGISTICS", "https://hooks.example/l")
    # A source's token variable (`auth_env`) may share the prefix.
    clean_env.setenv("VERBATIM_REVIEWS_TOKEN", "secret")
    clean_env.setenv(
        "VERBATIM_SOURCES",
        '[{"source": "api", "kind": "http", "url": "https://x.example",'
        ' "auth_env": "VERBATIM_REVIEWS_TOKEN"}]',
    )
    with caplog.at_level(logging.WARNING, "core.settings"):
        settings = Settings()
    assert settings.batch_size == 10 and settings.pii_ner is False
    assert _warnings(caplog) == []


def test_every_verbatim_variable_the_project_reads_is_known() -> None:
    """Each `VERBATIM_*` variable read from the environment outside the settings (Python or
    shell) is a setting or listed in OTHER_VARIABLES, so none is warned about."""
    reads = re.compile(r"""(?:environ(?:\.get\(|\[)|getenv\()\s*["'](VERBATIM_\w+)["']""")
    shell = re.compile(r"\$\{?(VERBATIM_\w+)")
    found: dict[str, str] = {}
    files = [*ROOT.glob("*/**/*.py"), *ROOT.glob(".ci/*"), ROOT / "Dockerfile"]
    for path in files:
        if ".venv" in path.parts or not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace")
        for pattern in (reads, shell):
            for name in pattern.findall(text):
                found.setdefault(name, str(path.relative_to(ROOT)))
    assert "VERBATIM_TEST_POSTGRES_URL" in found and "VERBATIM_LOG_LEVEL" in found
    unknown = unknown_variables(dict.fromkeys(found, ""), Settings.model_fields)
    assert unknown == [], [(line, found) for line in unknown]


@pytest.mark.parametrize(
    "name", ["batch_size", "max_text_chars", "max_body_bytes", "max_batch_rows"]
)
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_limit_below_one_is_refused(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    """`VERBATIM_BATCH_SIZE=0` made `verbatim enrich` analyse nothing ("analysed 0 verbatims",
    exit 0, every verbatim left pending); a 0 limit refused every text, batch or body."""
    from pydantic import ValidationError

    clean_env.setenv(f"VERBATIM_{name.upper()}", value)
    with pytest.raises(ValidationError, match=name):
        Settings()


def test_a_path_from_the_home_directory_is_expanded(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`data_dir = "~/verbatim"` (no shell expands a TOML file or an env file) made a directory
    named `~` in the working directory and kept the database there."""
    config = tmp_path / "verbatim.toml"
    config.write_text(
        'data_dir = "~/verbatim"\nthemes_model = "~/heads"\n'
        '[[sources]]\nsource = "boutique"\npath = "~/exports/avis.csv"\n',
        encoding="utf-8",
    )
    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("VERBATIM_CONFIG", str(config))
    clean_env.setenv("VERBATIM_TAXONOMY_PATH", "~/taxonomy.yaml")
    settings = Settings()
    assert settings.data_dir == tmp_path / "verbatim"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path}/verbatim/verbatim.db"
    assert settings.themes_model == tmp_path / "heads"
    assert settings.taxonomy_path == tmp_path / "taxonomy.yaml"
    assert settings.sources[0].path == tmp_path / "exports/avis.csv"


@pytest.mark.parametrize("where", ["env", "file"])
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("database_url", "sqlite:///~/verbatim.db", "sqlite:///{home}/verbatim.db"),
        ("database_url", "sqlite:///~/v.db?timeout=5", "sqlite:///{home}/v.db?timeout=5"),
        ("database_url", "sqlite:////srv/v.db", "sqlite:////srv/v.db"),
        ("database_url", "postgresql+psycopg://u@db/~x", "postgresql+psycopg://u@db/~x"),
        ("sentiment_model", "~/models/camembert", "{home}/models/camembert"),
        ("sentiment_model", "cmarkea/distilcamembert-base", "cmarkea/distilcamembert-base"),
    ],
)
def test_a_home_path_in_a_url_or_a_model_setting_is_expanded(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, where: str, name: str, value: str, expected: str
) -> None:
    """`database_url = "sqlite:///~/verbatim.db"` made a directory named `~` in the working
    directory and kept the database there; `sentiment_model = "~/models/x"` was looked up as
    a Hugging Face id; `VERBATIM_CONFIG=~/verbatim.toml` was « not found ». `data_dir` and
    the other paths were expanded."""
    clean_env.setenv("HOME", str(tmp_path))
    if where == "env":
        clean_env.setenv(f"VERBATIM_{name.upper()}", value)
    else:  # the file itself named from the home directory, as an env file would
        config = tmp_path / "verbatim.toml"
        config.write_text(f'{name} = "{value}"\n', encoding="utf-8")
        clean_env.setenv("VERBATIM_CONFIG", "~/verbatim.toml")
    settings = Settings()
    assert getattr(settings, name) == expected.format(home=tmp_path)
    if name == "database_url":
        assert settings.resolved_database_url == expected.format(home=tmp_path)

"""Every command group turns a bad configuration into one `error:` line and exit code 2, and
`verbatim run -v` logs progress lines (rate, ETA) when stderr is not a terminal."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobs.demo import DemoSpec, write_demo

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "pipeline-ingest": ["ingest", "{feed}", "--source", "s"],
    "pipeline-enrich": ["enrich"],
    "pipeline-aggregate": ["aggregate"],
    "pipeline-report": ["report"],
    "pipeline-run": ["run"],
    "pipeline-quarantine": ["quarantine"],
    "models-analyze": ["analyze", "{feed}", "-o", "{tmp}/out.jsonl"],
    "models-evaluate": ["evaluate", "--data", "{feed}"],
    "train-setup": ["setup"],
    "alerts-detect": ["detect"],
    "alerts-alert": ["alert"],
    "alerts-backtest": ["backtest", "{feed}", "-o", "{tmp}/alerts.jsonl"],
    "topics": ["topics", "--method", "fast"],
    "incidents": ["incidents"],
    "incidents-ack": ["incidents", "ack", "1", "--note", "vu"],
    "serve": ["serve"],
    "apikey-list": ["apikey", "list"],
    "apikey-create": ["apikey", "create", "bot"],
}

BAD_CONFIGS = {
    # A TOML file that does not parse.
    "bad-toml": ({}, 'data_dir = "unterminated\n'),
    # A value of the wrong type (pydantic ValidationError).
    "bad-value": ({"VERBATIM_BATCH_SIZE": "lots"}, None),
    # A database URL no driver understands.
    "bad-database-url": ({"VERBATIM_DATABASE_URL": "nosuchdb://nowhere/x"}, None),
    # A misspelt setting, and a misspelt option of a section: errors, not silently ignored.
    "unknown-setting": ({}, 'databse_url = "sqlite:///elsewhere.db"\n'),
    "unknown-option": ({}, "[scheduler]\nlock_wait_second = 5\n"),
    # A file saved as Latin-1: a UnicodeDecodeError traceback before.
    "not-utf8": ({}, b"[scheduler]\n# r\xe9sum\xe9 du lundi\n"),
    # A list setting in the environment without its JSON brackets (a docker .env): a
    # SettingsError traceback in every command, the API and the scheduler included.
    "env-list-not-json": ({"VERBATIM_CORS_ORIGINS": "https://cx.example.fr"}, None),
    # VERBATIM_CONFIG naming no file, or a directory (Docker's bind mount of a missing host
    # file): every setting silently fell back to its default. `serve` refuses to start.
    "config-missing": ({"VERBATIM_CONFIG": "{tmp}/nowhere.toml"}, None),
    "config-directory": ({"VERBATIM_CONFIG": "{tmp}"}, None),
}


def _env(tmp_path: Path, extra: dict[str, str], toml: str | bytes | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    config = tmp_path / "verbatim.toml"
    if isinstance(toml, bytes):
        config.write_bytes(toml)
    elif toml is not None:
        config.write_text(toml, encoding="utf-8")
    env.update(
        VERBATIM_CONFIG=str(config) if toml is not None else os.devnull,  # /dev/null: no file
        VERBATIM_DATA_DIR=str(tmp_path / "data"),
        VERBATIM_SENTIMENT_BACKEND="lexicon",
    )
    env.update({key: value.format(tmp=tmp_path) for key, value in extra.items()})
    return env


@pytest.mark.parametrize("config", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, command: str, config: str) -> None:
    from verbatim_cli import app

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"text": "Livraison en retard", "sentiment": "negative"}\n', "utf-8")
    args = [a.format(feed=feed, tmp=tmp_path) for a in COMMANDS[command]]
    extra, toml = BAD_CONFIGS[config]
    if config == "bad-database-url" and command in (
        "models-analyze",
        "models-evaluate",
        "train-setup",
        "alerts-backtest",
    ):
        pytest.skip("this command never opens the database")
    res = CliRunner().invoke(app, args, env=_env(tmp_path, extra, toml))
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    expected = {
        "bad-toml": "invalid configuration file",
        "bad-value": "batch_size",
        "bad-database-url": "database_url",
        "unknown-setting": "unknown setting 'databse_url' (did you mean 'database_url'?)",
        "unknown-option": "scheduler.lock_wait_second: Extra inputs are not permitted",
        "not-utf8": "not UTF-8 text (byte 0xe9",
        "env-list-not-json": "are JSON (VERBATIM_CORS_ORIGINS='[",
        "config-missing": f"VERBATIM_CONFIG: configuration file not found: {tmp_path}/nowhere",
        "config-directory": f"VERBATIM_CONFIG: {tmp_path} is a directory, expected a TOML file",
    }[config]
    assert expected in lines[0]


def test_which_config_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ./verbatim.toml is optional (absent: silent); an explicit VERBATIM_CONFIG
    must be a readable file, /dev/null meaning none; an empty value is the default."""
    from core.settings import ConfigFileError, Settings

    for key in list(os.environ):
        if key.startswith("VERBATIM_") and not key.startswith("VERBATIM_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    assert Settings().batch_size == 500  # no ./verbatim.toml, no VERBATIM_CONFIG: defaults
    (tmp_path / "verbatim.toml").write_text("batch_size = 7\n", "utf-8")
    assert Settings().batch_size == 7
    monkeypatch.setenv("VERBATIM_CONFIG", "")
    assert Settings().batch_size == 7
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)
    assert Settings().batch_size == 500  # /dev/null: no file, not even ./verbatim.toml
    other = tmp_path / "other.toml"
    other.write_text("batch_size = 9\n", "utf-8")
    monkeypatch.setenv("VERBATIM_CONFIG", str(other))
    assert Settings().batch_size == 9
    other.unlink()
    with pytest.raises(ConfigFileError, match="configuration file not found"):
        Settings()
    other.mkdir()
    with pytest.raises(ConfigFileError, match="is a directory"):
        Settings()
    monkeypatch.delenv("VERBATIM_CONFIG")
    (tmp_path / "verbatim.toml").unlink()
    (tmp_path / "verbatim.toml").mkdir()  # a bind mount of a missing host file
    with pytest.raises(ConfigFileError, match="default configuration file: .* is a directory"):
        Settings()


def test_verbose_run_logs_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    from verbatim_cli import app

    feed = tmp_path / "feed.jsonl"
    write_demo(feed, DemoSpec(days=2, seed=3, per_day=6))
    env = _env(tmp_path, {}, None)
    env["VERBATIM_SOURCES"] = (
        f'[{{"path": "{feed}", "source": "shop", "mapping": {{"channel": "channel"}}}}]'
    )
    res = CliRunner().invoke(app, ["run", "-v", "--no-report"], env=env)
    assert res.exit_code == 0, (res.output, res.exception)
    progress = [line for line in res.stderr.splitlines() if "rows/s" in line]
    assert any("ingest shop" in line and "ETA" in line for line in progress), res.stderr
    assert any("enrich" in line and "ETA" in line for line in progress), res.stderr
    assert any("done" in line for line in progress), res.stderr
    # Without -v the log stays at WARNING: no progress lines.
    res = CliRunner().invoke(app, ["run", "--no-report"], env=env)
    assert res.exit_code == 0 and "rows/s" not in res.stderr


def test_json_log_lines(tmp_path: Path) -> None:
    import json

    from verbatim_cli import app

    feed = tmp_path / "feed.jsonl"
    write_demo(feed, DemoSpec(days=1, seed=4, per_day=5))
    env = _env(tmp_path, {"VERBATIM_LOG_FORMAT": "json", "VERBATIM_LOG_LEVEL": "INFO"}, None)
    res = CliRunner().invoke(app, ["ingest", str(feed), "--source", "s"], env=env)
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    assert any(r["logger"] == "jobs.ingest" and "rows/s" in r["message"] for r in records)


def test_a_log_setting_it_cannot_read_is_a_warning(tmp_path: Path) -> None:
    """`VERBATIM_LOG_LEVEL=DEBG` (or `verbose`) gave the WARNING level and
    `VERBATIM_LOG_FORMAT=jsonl` plain text, both in silence: the operator looked for debug
    lines or JSON that never came. Each is one warning line now; the default is used."""
    from verbatim_cli import app

    env = _env(tmp_path, {"VERBATIM_LOG_LEVEL": "DEBG", "VERBATIM_LOG_FORMAT": "jsonl"}, None)
    res = CliRunner().invoke(app, ["quarantine"], env=env)
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.stderr.splitlines() if "WARNING core.logs" in line]
    assert len(warnings) == 2, res.stderr
    assert warnings[0].endswith(
        "VERBATIM_LOG_LEVEL=DEBG is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL or "
        "a number): WARNING is used"
    )
    assert warnings[1].endswith(
        "VERBATIM_LOG_FORMAT=jsonl is not a log format (json, or text: the default): text is used"
    )
    env.update(VERBATIM_LOG_LEVEL="debug", VERBATIM_LOG_FORMAT="JSON")  # any case
    res = CliRunner().invoke(app, ["quarantine"], env=env)
    assert res.exit_code == 0 and "core.logs" not in res.stderr, res.stderr
    assert '"level": "DEBUG"' in res.stderr


@pytest.mark.parametrize("args", [["quarantine", "--limit", "-5"], ["enrich", "--limit", "0"]])
def test_negative_limits_are_refused(tmp_path: Path, args: list[str]) -> None:
    """A negative LIMIT reached SQL: SQLite reads it as "no limit", PostgreSQL refuses it."""
    from verbatim_cli import app

    res = CliRunner().invoke(app, args, env=_env(tmp_path, {}, None))
    assert res.exit_code == 2 and "--limit" in res.output, res.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["analyze", "{feed}", "-o", "{tmp}"], "output is a directory"),
        (["backtest", "{feed}", "-o", "{tmp}"], "output is a directory"),
        (["analyze", "{feed}", "-o", "{tmp}/no/such/out.jsonl"], "output directory does not"),
        (["analyze", "{tmp}", "-o", "{tmp}/out.jsonl"], "input file is a directory"),
        (["ingest", "{tmp}", "--source", "s"], "is a directory, expected a file"),
        (["evaluate", "--data", "{tmp}"], "data file is a directory"),
        (["taxonomy", "import", "{tmp}"], "taxonomy file is a directory"),
        (
            ["train", "themes", "--examples", "{feed}", "--out", "{feed}", "--no-encoder"],
            "--out exists and is not a directory",
        ),
        (["detect", "--day", "2026-01-02", "--since", "2026-01-05"], "is after --day"),
        (["serve", "--port", "99999"], "65535"),
        (["report", "--channel", "fax"], "unknown channel 'fax'"),
        # A misspelt source advised to "run verbatim ingest" (the data was there).
        (["report", "--source", "Demo"], "unknown source 'Demo'; the sources stored: none yet"),
        # Dates past year 1 or 9999 were OverflowError tracebacks.
        (["report", "--days", "10000000"], "out of range"),
        (["report", "--end", "0001-01-05"], "out of range"),
        (["digest", "--end", "0001-01-03"], "out of range"),
        (["detect", "--day", "0001-01-01"], "out of range"),
        (["aggregate", "--since", "0001-01-01"], "out of range"),
        # A misspelt backend: `analyze` said so, `backtest` was a ValueError traceback.
        (
            ["backtest", "{feed}", "-o", "{tmp}/a.jsonl", "--backend", "lexcion"],
            "cannot build the analyzer: unknown sentiment backend 'lexcion'",
        ),
        # A taxonomy saved as Windows-1252: a UnicodeDecodeError traceback.
        (["analyze", "{feed}", "-o", "{tmp}/o.jsonl", "--taxonomy", "{cp1252}"], "not UTF-8"),
    ],
)
def test_paths_days_and_ports_a_command_cannot_use_are_one_error_line(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """Each was a traceback (IsADirectoryError, FileExistsError after a full training), a
    wrong message ("no such file" for a directory) or a silent misuse (port 99999 listened on
    34463) in an audit."""
    from verbatim_cli import app

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"text": "Livraison en retard", "themes": ["livraison"]}\n', "utf-8")
    cp1252 = tmp_path / "taxo.yaml"
    cp1252.write_bytes("name: t\nthemes:\n  - id: prix\n    label: Prix élevé\n".encode("cp1252"))
    res = CliRunner().invoke(
        app,
        [a.format(feed=feed, tmp=tmp_path, cp1252=cp1252) for a in args],
        env=_env(tmp_path, {}, None),
    )
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    assert expected in " ".join(res.output.split()), res.output


def test_a_taxonomy_of_nested_yaml_aliases_is_refused_at_once(tmp_path: Path) -> None:
    """A 1 KB "billion laughs" taxonomy (nine aliases of nine) parsed into shared references
    and validated as 9**8 themes: `verbatim taxonomy import` ran for minutes and grew without
    bound. Aliases of collections are refused; an alias of a single value still works."""
    from nlp.taxonomy import load_taxonomy
    from verbatim_cli import app

    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join([*lines, "name: x", "themes: *h"]) + "\n", "utf-8")
    res = CliRunner().invoke(app, ["taxonomy", "import", str(bomb)], env=_env(tmp_path, {}, None))
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "aliases" in " ".join(res.output.split()), res.output

    shipped = (ROOT / "nlp/resources/taxonomies/ecommerce.yaml").read_text("utf-8")
    one_value = shipped.replace("team: logistics", "team: &t logistics", 1).replace(
        "team: logistics", "team: *t", 1
    )
    assert "*t" in one_value
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text(one_value, "utf-8")
    assert load_taxonomy(scalar).themes


def test_help_texts_say_what_the_options_do(tmp_path: Path) -> None:
    """Help texts are Rich markup: `[[sources]]`, `[scheduler]` and `verbatim[ray]` were
    eaten as style tags ("Ingest the configured [] ..."); `--quiet` said "warnings and errors"
    while it keeps errors only."""
    import logging

    from verbatim_cli import app

    env = {**_env(tmp_path, {}, None), "COLUMNS": "200"}
    expected = {
        ("pull", "--help"): "Ingest the configured [[sources]] (files",
        ("scheduler", "--help"): "Run the jobs of [scheduler] in verbatim.toml",
        ("enrich", "--help"): 'pip install -e ".[ray]" in the checkout',
        ("--help",): "Only errors in the log.",
    }
    for args, text in expected.items():
        res = CliRunner().invoke(app, list(args), env=env)
        assert res.exit_code == 0, res.output
        assert text in res.stdout, (args, res.stdout)

    root = logging.getLogger()
    before = root.level
    try:
        res = CliRunner().invoke(app, ["--quiet", "quarantine"], env=env)
        assert res.exit_code == 0, res.output
        assert root.level == logging.ERROR  # warnings are not shown
    finally:
        root.setLevel(before)


def test_quiet_means_the_same_before_and_after_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verbatim run --quiet` was the command's own "no progress bar" and kept warnings in the
    log, while `verbatim --quiet run` (README's Logs) kept only errors and left the bar."""
    import logging

    import jobs.ingest
    from verbatim_cli import app

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"text": "Livraison en retard"}\n', "utf-8")
    calls: list[bool] = []

    def fake_ingest(*args: object, progress: bool = False, **kwargs: object) -> object:
        calls.append(progress)
        raise FileNotFoundError("stop here")  # one `error:` line, exit 2

    monkeypatch.setattr(jobs.ingest, "ingest_file", fake_ingest)
    env = _env(tmp_path, {}, None)
    root = logging.getLogger()
    before = root.level
    ingest = ["ingest", str(feed), "-s", "s"]
    try:
        for args, progress, level in (
            ([*ingest], True, logging.WARNING),
            ([*ingest, "--quiet"], False, logging.ERROR),
            ([*ingest, "-q"], False, logging.ERROR),
            (["--quiet", *ingest], False, logging.ERROR),
            (["-q", *ingest], False, logging.ERROR),  # `verbatim -q …` was "No such option"
            ([*ingest, "--no-progress"], False, logging.WARNING),
            (["quarantine", "--quiet"], None, logging.ERROR),  # every command takes it
            (["quarantine", "-q"], None, logging.ERROR),
        ):
            calls.clear()
            res = CliRunner().invoke(app, args, env=env)
            assert res.exit_code == (2 if progress is not None else 0), (args, res.output)
            assert calls == ([] if progress is None else [progress]), args
            assert root.level == level, args
    finally:
        root.setLevel(before)


def test_a_data_dir_that_is_a_file_says_so(tmp_path: Path) -> None:
    """VERBATIM_DATA_DIR naming a file said only "error: [Errno 17] File exists: '…'"."""
    from verbatim_cli import app

    data = tmp_path / "data"
    data.write_text("", "utf-8")
    res = CliRunner().invoke(app, ["quarantine"], env=_env(tmp_path, {}, None))
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert res.stderr.strip().splitlines() == [
        f"error: the database's directory {data} is a file: set data_dir (VERBATIM_DATA_DIR) "
        "or database_url to a directory"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # A password with an unencoded @ then a `:` made its end the port: a ValueError
        # traceback quoting it ("invalid literal for int() with base 10: 'w0rd@db:5432'").
        ("postgresql+psycopg://cx:P@ss:w0rd@127.0.0.1:1/db", "the port is not a number"),
        # Without a `:` after it, its end became the host: "failed to resolve host 'ss@…'".
        ("postgresql+psycopg://cx:P@ss@127.0.0.1:1/db", "'@' in the host name"),
        # An option psycopg does not know: a ProgrammingError traceback. Read by psycopg at
        # connect time: needs the [postgres] extra (the README's install has only [dev]).
        pytest.param(
            "postgresql+psycopg://cx:Pss@127.0.0.1:1/db?schema=x",
            "invalid connection option",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("psycopg") is None,
                reason="the [postgres] extra is not installed",
            ),
        ),
    ],
)
def test_a_database_url_misread_is_one_line_without_the_password(
    tmp_path: Path, url: str, expected: str
) -> None:
    from verbatim_cli import app

    env = _env(tmp_path, {"VERBATIM_DATABASE_URL": url}, None)
    res = CliRunner().invoke(app, ["apikey", "list"], env=env)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid database_url: "), res.stderr
    assert expected in lines[0]
    assert "w0rd" not in lines[0] and "ss@" not in lines[0], lines[0]


def test_run_refuses_a_bad_report_period_before_running(tmp_path: Path) -> None:
    """`verbatim run --days 0` ingested the demo feed, analysed it, queued the alerts, and only
    then said "--days must be at least 1" with exit 2: a cron job read as failed every time."""
    from verbatim_cli import app

    res = CliRunner().invoke(app, ["run", "--days", "0"], env=_env(tmp_path, {}, None))
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert res.stderr.strip().splitlines() == ["error: --days must be at least 1"]
    assert res.stdout == "" and not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("code", "reason"),
    [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system")],
)
def test_a_full_disk_or_a_read_only_data_dir_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, reason: str
) -> None:
    """A data dir on a read-only mount (a Docker volume mounted `:ro`) or a full disk was a
    traceback (OSError errno 30 / 28) in every command; PermissionError alone was caught."""
    import errno

    import jobs.ingest
    from verbatim_cli import app

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"text": "Livraison en retard"}\n', "utf-8")
    where = str(tmp_path / "data" / "verbatim.db.migrate.lock")

    def no_room(*args: object, **kwargs: object) -> object:
        raise OSError(getattr(errno, code), reason, where)

    monkeypatch.setattr(jobs.ingest, "ingest_file", no_room)
    res = CliRunner().invoke(app, ["ingest", str(feed), "-s", "s"], env=_env(tmp_path, {}, None))
    assert res.exit_code == 1, (res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit)
    lines = res.stderr.strip().splitlines()
    assert lines == [f"error: cannot write: [Errno {getattr(errno, code)}] {reason}: '{where}'"]


def test_no_command_option_shadows_a_root_option_with_another_meaning() -> None:
    import typer.main

    from verbatim_cli import app

    root = typer.main.get_command(app)
    meaning = {
        opt: (param.name, param.help) for param in root.params for opt in getattr(param, "opts", [])
    }

    def commands(group: Any, path: str) -> list[tuple[str, Any]]:
        found = [(path, group)]
        for name, sub in getattr(group, "commands", {}).items():
            found += commands(sub, f"{path} {name}")
        return found

    checked = 0
    for path, command in commands(root, "verbatim")[1:]:
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt in meaning and opt != "--version":
                    name, text = meaning[opt]
                    assert param.name == name, (path, opt)
                    assert (text or "").rstrip(".").lower() in (param.help or "").lower(), (
                        path,
                        opt,
                        param.help,
                    )
                    checked += 1
    assert checked > 40


@pytest.mark.parametrize(
    "url", ["verbatim.example.fr", "https://verbatim.example.fr/\nx", "ftp://x"]
)
def test_a_dashboard_url_slack_cannot_link_to_is_refused(tmp_path: Path, url: str) -> None:
    """`dashboard_url = "verbatim.example.fr"` (no scheme) went into every Slack message's
    button, whose URL Slack refuses with the whole message (400 invalid_blocks): every
    incident `dead`, no channel told. It is a configuration error now, one line."""
    from verbatim_cli import app

    env = _env(tmp_path, {"VERBATIM_DASHBOARD_URL": url}, None)
    res = CliRunner().invoke(app, ["alert"], env=env)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: dashboard_url:")
    assert "is not a URL" in lines[0] and "https://verbatim.example.fr" in lines[0]
    ok = _env(tmp_path, {"VERBATIM_DASHBOARD_URL": " https://verbatim.example.fr/\r"}, None)
    assert CliRunner().invoke(app, ["alert", "--dry-run"], env=ok).exit_code == 0

"""`verbatim` command line: the root app. It sits above jobs and service and registers both.

Command modules keep imports light at module level (torch, spaCy, BERTopic are imported inside
the commands) so `verbatim --help` stays instant. Every command is wrapped in
`core.cli.user_errors` here, so user errors are one line on stderr and exit code 2 everywhere.
"""

from __future__ import annotations

import importlib

import typer

from core.cli import wrap_commands
from core.logs import configure_logging

app = typer.Typer(
    name="verbatim",
    help="Verbatim: French customer-feedback mining (ingest, analyse, themes, spikes, alerts).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "jobs.cli_pipeline",  # ingest, enrich, aggregate, report, demo, run
    "jobs.cli_models",  # analyze, evaluate
    "jobs.cli_train",  # setup (build the offline encoder), train sentiment|themes
    "jobs.cli_alerts",  # detect, alert, backtest
    "jobs.cli_incidents",  # incidents list|ack|resolve
    "jobs.cli_topics",  # topics
    "jobs.cli_taxonomy",  # taxonomy show|export|import|history|retheme
    "jobs.cli_corrections",  # corrections export|import
    "jobs.cli_digest",  # digest (weekly Slack summary)
    "jobs.cli_privacy",  # forget (right to erasure), purge (retention)
    "jobs.cli_ops",  # scheduler
    "service.cli",  # serve, apikey
)


def _version(value: bool) -> None:
    if value:
        from core import __version__

        typer.echo(f"verbatim {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log lines on stderr (-v info, -vv debug)."
    ),
    # `-q` as every command takes it after its name (and as `-v` works in both places).
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors in the log."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Verbatim: French customer-feedback mining (ingest, analyse, themes, spikes, alerts).

    Logging: VERBATIM_LOG_LEVEL (default WARNING), VERBATIM_LOG_FORMAT=json for JSON lines."""
    configure_logging(verbose=verbose, quiet=quiet)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
wrap_commands(app)

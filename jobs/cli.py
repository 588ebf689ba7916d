"""`verbatim` command line. Each area registers its commands from its own module.

Command modules keep imports light at module level (torch, spaCy, BERTopic are imported inside
the commands) so `verbatim --help` stays instant.
"""

from __future__ import annotations

import importlib

import typer

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
    "jobs.cli_topics",  # topics
    "jobs.cli_ops",  # scheduler
    "service.cli",  # serve, apikey
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


if __name__ == "__main__":
    app()

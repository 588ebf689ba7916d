"""Connectors: where verbatims come from (folder, HTTP JSON API, stdin, your own).

See `jobs.connectors.base` for the interface and README "Connectors" for a worked example.
"""

from jobs.connectors.base import Batch, Connector, ConnectorError, SourceConfigError, register
from jobs.connectors.runner import PullResult, build_connector, check_source, pull, pull_source

__all__ = [
    "Batch",
    "Connector",
    "ConnectorError",
    "PullResult",
    "SourceConfigError",
    "build_connector",
    "check_source",
    "pull",
    "pull_source",
    "register",
]

"""Shared core: settings, storage schema and the query layer used by jobs and service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("verbatim")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

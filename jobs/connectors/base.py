"""The connector interface: a source of raw records with a persisted cursor.

A connector is a small class with `read(state) -> Iterator[Batch]`. It never touches the
database: `jobs.connectors.runner.pull` stores each batch's records (validated, PII-masked,
deduplicated by `core.store`) and the batch's `state` in ONE transaction, then hands the stored
state back on the next run. So a restart resumes exactly after the last stored batch and a
record is never stored twice. A new system (Zendesk, Trustpilot, Google reviews...) is one
file: a class registered with `@register("name")` and built from a `SourceConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.settings import Settings, SourceConfig
from jobs.readers import RawRecord
from nlp.errors import VerbatimError


class ConnectorError(VerbatimError, RuntimeError):
    """The source cannot be read now (remote down, bad answer...): one clear message."""

    exit_code = 1  # not the user's input: a later pull may succeed


class SourceConfigError(ConnectorError):
    """The source is misconfigured (unknown kind, missing folder or token): a user error."""

    exit_code = 2


@dataclass
class Batch:
    """Records read from the source, and the cursor to persist once they are stored."""

    records: list[RawRecord]
    state: dict[str, Any]  # JSON-able; what `read` gets back on the next run
    location: str = ""  # file path, URL page: for logs and ingestion_runs
    errors: list[str] = field(default_factory=list)  # a file that cannot be read, etc.


class Connector(Protocol):
    kind: str

    def read(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        """Yield the records not yet delivered according to `state` ({} on the first run)."""
        ...


Factory = Callable[[SourceConfig, Settings], Connector]
REGISTRY: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    """Make a connector available as `kind = "<kind>"` in verbatim.toml `[[sources]]`."""

    def deco(factory: Factory) -> Factory:
        REGISTRY[kind] = factory
        return factory

    return deco


def record(number: int, obj: Any, raw: str | None = None) -> RawRecord:
    """A RawRecord from one decoded JSON value (not an object: rejected, with the reason)."""
    import json

    text = raw if raw is not None else json.dumps(obj, ensure_ascii=False, default=str)
    if not isinstance(obj, dict):
        return RawRecord(number, None, text, ("not_an_object", None, f"got {type(obj).__name__}"))
    return RawRecord(number, obj, text)

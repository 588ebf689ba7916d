"""Store what a connector reads: each batch's rows, rejected rows and cursor in one transaction."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import SourceState
from core.settings import Settings, SourceConfig
from core.store import (
    RATING_SCALE,
    Rejection,
    add_quarantine,
    advance_run,
    finish_run,
    insert_feedback,
    prepare_feedback,
    start_run,
    utcnow,
)
from jobs.connectors.base import REGISTRY, Connector, SourceConfigError

log = logging.getLogger(__name__)


@dataclass
class PullResult:
    source: str
    run_id: int | None = None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    requarantined: int = 0  # rejected rows an earlier read had already quarantined
    repaired: int = 0  # stored rows whose text was repaired (entities, garbled accents)
    batches: int = 0
    errors: list[str] = field(default_factory=list)  # files that could not be read, etc.
    reasons: dict[str, int] = field(default_factory=dict)


def load_state(session: Session, source: str) -> dict[str, Any]:
    row = session.get(SourceState, source)
    return dict(row.state) if row is not None else {}


def save_state(session: Session, source: str, kind: str, state: Mapping[str, Any]) -> None:
    row = session.get(SourceState, source)
    if row is None:
        session.add(SourceState(source=source, kind=kind, state=dict(state), updated_at=utcnow()))
    else:
        row.state, row.kind, row.updated_at = dict(state), kind, utcnow()


def build_connector(cfg: SourceConfig, settings: Settings) -> Connector:
    # Importing the modules registers the built-in connectors.
    from jobs.connectors import folder, http  # noqa: F401

    factory = REGISTRY.get(cfg.kind)
    if factory is None:
        raise SourceConfigError(
            f"source {cfg.source!r}: unknown kind {cfg.kind!r} "
            f"(known: file, {', '.join(sorted(REGISTRY))})"
        )
    return factory(cfg, settings)


def check_source(cfg: SourceConfig, settings: Settings) -> None:
    """Raise SourceConfigError for what a pull of `cfg` would refuse at once, whatever the
    remote or the folder holds: an unknown kind, a URL without a scheme, an unknown encoding,
    an `auth_env` variable not set. `verbatim scheduler` checks its sources with it at start:
    it started, and each `ingest` / `run` tick failed on it (a nightly job: at 3 a.m.)."""
    from jobs.readers import ReaderError, check_encoding_name

    try:
        if cfg.kind == "file":
            check_encoding_name(cfg.encoding)
        else:
            build_connector(cfg, settings)
    except (ReaderError, SourceConfigError) as exc:
        said = str(exc)
        named = (
            said if said.startswith(f"source {cfg.source!r}") else f"source {cfg.source!r}: {said}"
        )
        raise SourceConfigError(named) from None


class _Mapper:
    """Field mapping resolved once per set of record keys (records of an API may differ)."""

    def __init__(self, explicit: Mapping[str, str]) -> None:
        self.explicit = dict(explicit)
        self.cache: dict[frozenset[str], dict[str, str] | Rejection] = {}

    def __call__(self, fields: Mapping[str, Any]) -> dict[str, str] | Rejection:
        from jobs.ingest import MappingError, resolve_mapping

        keys = frozenset(fields)
        if keys not in self.cache:
            # A record without a mapped optional field (a review with no rating) is that
            # field left empty, as in a file; only the text must be there. It rejected the
            # whole record, whose text went to the quarantine.
            absent = {f for f, c in self.explicit.items() if c not in keys and f != "text"}
            present = {f: c for f, c in self.explicit.items() if f not in absent}
            try:
                resolved = resolve_mapping(sorted(keys), present)
            except MappingError as exc:
                self.cache[keys] = Rejection("bad_mapping", None, str(exc)[:200])
            else:
                # Never another column guessed by name for a field the user mapped.
                self.cache[keys] = {f: c for f, c in resolved.items() if f not in absent}
        return self.cache[keys]


def pull(
    sessions: sessionmaker[Session],
    settings: Settings,
    connector: Connector,
    *,
    source: str,
    channel: str = "review",
    mapping: Mapping[str, str] | None = None,
    stop: Callable[[], bool] | None = None,
    masker: Callable[[str], str] | None = None,
    rating_scale: int = RATING_SCALE,
) -> PullResult:
    """Read every new batch of `connector` into `feedback`; `stop()` is checked between batches.

    `masker`: the PII masker to reuse (`jobs.ingest.LazyMasker`); one is made here when not
    given, with spaCy's NER like a file ingest (names have no pattern the rules could see)."""
    from jobs.ingest import LazyMasker, _not_stored, _repaired

    mask = masker or LazyMasker(settings)
    mapper = _Mapper(mapping or {})
    if stop is not None and hasattr(connector, "stop"):
        connector.stop = stop  # its retry waits end on a stop request (HttpConnector)
    result = PullResult(source=source)
    with session_scope(sessions) as session:
        state = load_state(session, source)
    try:
        for batch in connector.read(state):
            result.errors.extend(batch.errors)
            if not batch.records and result.run_id is None:
                # Nothing read yet (a file not readable this poll, an empty last page): the
                # state moves, no ingestion run is opened for it at every poll.
                with session_scope(sessions) as session:
                    save_state(session, source, connector.kind, batch.state)
                result.batches += 1
                if stop is not None and stop():
                    break
                continue
            with session_scope(sessions) as session:
                if result.run_id is None:
                    run = start_run(
                        session,
                        source=source,
                        channel=channel,
                        location=f"{connector.kind}:{batch.location}"[:2000],
                        fingerprint=None,
                    )
                    result.run_id = run.id
                rows, rejected = [], []
                repaired: list[str] = []  # dedup keys of the rows whose text was repaired
                now = utcnow()
                for rec in batch.records:
                    if rec.error is not None:
                        reason, fld, detail = rec.error
                        rejected.append((rec.number, Rejection(reason, fld, detail), rec.raw))
                        continue
                    fields = rec.fields or {}
                    resolved = mapper(fields)
                    if isinstance(resolved, Rejection):
                        rejected.append((rec.number, resolved, rec.raw))
                        continue
                    mapped = set(resolved.values())
                    canonical = {f: fields.get(c) for f, c in resolved.items()}
                    prepared = prepare_feedback(
                        canonical,
                        source=source,
                        channel=channel,
                        max_text_chars=settings.max_text_chars,
                        extra={k: v for k, v in fields.items() if k not in mapped},
                        run_id=result.run_id,
                        now=now,
                        mask=mask,
                        rating_scale=rating_scale,
                    )
                    if isinstance(prepared, Rejection):
                        rejected.append((rec.number, prepared, rec.raw))
                    else:
                        rows.append(prepared)
                        if _repaired(canonical):
                            repaired.append(prepared["dedup_key"])
                # As a file ingest counts them: the rows this batch stores, duplicates left out.
                fresh_repaired = _not_stored(session, source, repaired) if repaired else 0
                stored, dups = insert_feedback(session, rows)
                kept = add_quarantine(
                    session, rejected, source=source, run_id=result.run_id, mask=mask
                )
                save_state(session, source, connector.kind, batch.state)
                advance_run(
                    session,
                    result.run_id,
                    watermark=result.read + len(batch.records),
                    read=len(batch.records),
                    stored=stored,
                    duplicates=dups,
                    rejected=len(rejected),
                )
            result.read += len(batch.records)
            result.stored += stored
            result.duplicates += dups
            result.rejected += len(rejected)
            result.requarantined += len(rejected) - kept
            result.repaired += fresh_repaired
            result.batches += 1
            for _n, rej, _raw in rejected:
                result.reasons[rej.reason] = result.reasons.get(rej.reason, 0) + 1
            if stop is not None and stop():
                break
    except BaseException as exc:
        if result.run_id is not None:
            try:
                with session_scope(sessions) as session:
                    finish_run(
                        session,
                        result.run_id,
                        status="failed",
                        error=f"{type(exc).__name__}: {exc}",
                    )
            except Exception:  # noqa: BLE001 - the database itself may be what failed
                pass
        raise
    if result.run_id is not None:
        with session_scope(sessions) as session:
            finish_run(session, result.run_id, status="done")
    return result


def being_written(path: Path, settle_seconds: float, now: float | None = None) -> bool:
    """A file another process is still writing: its last line has no newline yet and it was
    modified less than `settle_seconds` ago. A finished export without a final newline (many
    have none) is read once it has not changed for that long."""
    try:
        stat = path.stat()
        if stat.st_size == 0:
            return False
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            unfinished = f.read(1) not in (b"\n", b"\r")
    except OSError:
        return False  # missing or unreadable: ingest_file says so
    return unfinished and (time.time() if now is None else now) - stat.st_mtime < settle_seconds


def pull_source(
    sessions: sessionmaker[Session],
    settings: Settings,
    cfg: SourceConfig,
    *,
    progress: bool = False,
    stop: Callable[[], bool] | None = None,
    masker: Callable[[str], str] | None = None,
) -> Any:
    """One configured source: a `file` goes through the resumable file ingester, any other
    kind through its connector. Returns an IngestResult (file) or a PullResult. `masker`:
    the PII masker to share between sources (made per source when not given)."""
    if cfg.kind == "file":
        from jobs.ingest import IngestResult, ingest_file

        assert cfg.path is not None
        if being_written(cfg.path, cfg.settle_seconds):
            # Read now, its last row would be stored cut short, and the whole row dropped
            # later as a duplicate of that id: the text truncated for good.
            log.info("%s: last line unfinished, written to just now: next pull", cfg.path)
            return IngestResult(None, str(cfg.path.resolve()))
        return ingest_file(
            sessions,
            settings,
            cfg.path,
            source=cfg.source,
            channel=cfg.channel,
            mapping=cfg.mapping,
            progress=progress,
            encoding=cfg.encoding,
            masker=masker,
            rating_scale=cfg.rating_scale,
        )
    connector = build_connector(cfg, settings)
    return pull(
        sessions,
        settings,
        connector,
        source=cfg.source,
        channel=cfg.channel,
        mapping=cfg.mapping,
        stop=stop,
        masker=masker,
        rating_scale=cfg.rating_scale,
    )


__all__ = ["PullResult", "build_connector", "check_source", "load_state", "pull", "pull_source"]

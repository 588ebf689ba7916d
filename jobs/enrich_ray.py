"""`verbatim enrich --engine ray`: the same analysis, scaled out on a Ray cluster.

The driver cuts the pending verbatims (analyzed = false) into id ranges and hands the ranges,
not the texts, to Ray Data. `map_batches` runs them on a pool of actors; each actor loads the
analyzer once, then for each range reads the still-pending rows from the database, analyses
them and writes the analyses back with `core.store.store_analyses` (ON CONFLICT DO NOTHING on
(feedback_id, model_version)) in one transaction per range. A range that Ray retries after a
lost worker, or a second run, finds its rows analysed or its analyses present: nothing is
counted twice. Verbatims stored during a pass (ids past its ranges) get a further pass.
Every worker needs the code installed and the database reachable
(PostgreSQL for a real cluster; SQLite works on a single machine).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import Feedback
from core.settings import Settings
from jobs.enrich import EnrichResult, _progress_log
from jobs.progress import ProgressLog
from nlp.errors import VerbatimError

log = logging.getLogger(__name__)


class RayEngineError(VerbatimError, RuntimeError):
    """The Ray run cannot start or finish (cluster unreachable, workers dying): one line."""

    exit_code = 1  # not the user's input: a later run may succeed


class RayConfigError(RayEngineError, ValueError):
    """A bad --address or --backend: a user error, said before any worker starts."""

    exit_code = 2


# "ValueError: …", "sqlalchemy.exc.OperationalError: …": the worker's exception line.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception)\b[^:\s]*: \S")


def _last_line(exc: BaseException) -> str:
    """The root cause of a Ray error: the worker's last exception line in its message (not
    SQLAlchemy's "(Background on this error at: …)" after it), else its last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return found[-1] if found else lines[-1] if lines else type(exc).__name__


def _probe(address: str | None, timeout: float = 5.0) -> None:
    """Refuse a host:port where nothing answers: Ray itself retries such an address about 14
    minutes (20 tries of ~40 s), printing a warning each time, before it gives up."""
    if not address or address in ("auto", "local") or "://" in address:
        return  # a local instance, Ray's own lookup, Ray Client: Ray fails fast on those
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # malformed: ray.init says so (RayConfigError)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise RayEngineError(
            f"cannot reach the Ray cluster at {address}: nothing answers there ({exc})"
        ) from None


def pending_ranges(
    sessions: sessionmaker[Session], size: int, after: int = 0
) -> list[tuple[int, int]]:
    """Inclusive id ranges of at most `size` pending verbatims each (ids above `after`), in
    id order."""
    ranges: list[tuple[int, int]] = []
    with session_scope(sessions) as session:
        ids = session.execute(
            select(Feedback.id)
            .where(Feedback.analyzed.is_(False), Feedback.id > after)
            .order_by(Feedback.id)
        ).scalars()
        first = last = None
        count = 0
        for fid in ids:
            if first is None:
                first = fid
            last, count = fid, count + 1
            if count == size:
                ranges.append((first, last))
                first, count = None, 0
        if first is not None and last is not None:
            ranges.append((first, last))
    return ranges


class RangeAnalyzer:
    """A Ray actor: the analyzer and a database engine, loaded once per actor. The analyzer
    uses the database's current taxonomy, as the in-process `verbatim enrich` does."""

    def __init__(self, settings: dict[str, Any], backend: str | None = None) -> None:
        from core.analysis import build_analyzer
        from core.db import make_engine, session_factory
        from core.taxonomy_store import for_job

        self.settings = Settings(**settings)
        url = self.settings.resolved_database_url
        parsed = make_url(url)
        path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not Path(path).is_file():
            # make_engine would create an empty database here, then fail on "no such table".
            raise RayEngineError(
                f"the SQLite database {path} is not on this Ray worker "
                f"({socket.gethostname()}): a cluster of several machines needs PostgreSQL"
            )
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        taxonomy = for_job(self.sessions, self.settings).taxonomy
        self.analyzer = build_analyzer(self.settings, backend=backend, taxonomy=taxonomy)
        self.version = str(getattr(self.analyzer, "model_version", "unknown"))[:100]

    def analyse_range(self, lo: int, hi: int) -> tuple[int, int, int, int, list[date]]:
        """(analysed, stored, mentions, failed, days) for the pending rows with lo <= id <=
        hi: `analysed` counts those another run stored first too (not `stored`), as
        `jobs.enrich` counts them."""
        from core.store import as_utc, store_analyses, utcnow
        from jobs.enrich import _analyze, _kept, _recurrent, _store_embeddings

        with session_scope(self.sessions) as session:
            rows = session.execute(
                select(Feedback.id, Feedback.text, Feedback.created_at, Feedback.customer_key)
                .where(Feedback.analyzed.is_(False), Feedback.id.between(lo, hi))
                .order_by(Feedback.id)
            ).all()
            if not rows:
                return 0, 0, 0, 0, []
            docs = _analyze(self.analyzer, [r.text for r in rows])
            kept = [(r, d) for r, d in zip(rows, docs, strict=True) if d is not None]
            failed = len(rows) - len(kept)
            if failed:  # left analyzed=False for the next run, as the in-process engine does
                bad = sorted({r.id for r in rows} - {r.id for r, _ in kept})
                log.warning("analyzer failed on feedback ids %s", bad[:20])
            rows, docs = [r for r, _ in kept], [d for _, d in kept]
            stored = store_analyses(
                session,
                rows,
                docs,
                model_version=self.version,
                recurrent=_recurrent(session, rows),
                now=utcnow(),
            )
            rows, docs = _kept(rows, docs, stored.kept)
            # The document vectors too (topics reuse them), as the in-process engine stores.
            key = getattr(self.analyzer, "embedding_key", None)
            _store_embeddings(session, rows, docs, key, utcnow())
            days = sorted({as_utc(r.created_at).date() for r in rows})
        # Stored by this worker: rows another run stored first are not counted twice.
        return len(rows), stored.analyses, stored.mentions, failed, days

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out: dict[str, list[Any]] = {
            "analyzed": [],
            "stored": [],
            "mentions": [],
            "failed": [],
            "days": [],
        }
        for lo, hi in zip(batch["lo"], batch["hi"], strict=True):
            analysed, stored, mentions, failed, days = self.analyse_range(int(lo), int(hi))
            out["analyzed"].append(analysed)
            out["stored"].append(stored)
            out["mentions"].append(mentions)
            out["failed"].append(failed)
            out["days"].append(",".join(d.isoformat() for d in days))
        return {
            "analyzed": np.array(out["analyzed"], dtype=np.int64),
            "stored": np.array(out["stored"], dtype=np.int64),
            "mentions": np.array(out["mentions"], dtype=np.int64),
            "failed": np.array(out["failed"], dtype=np.int64),
            "days": np.array(out["days"], dtype=object),
            "version": np.array([self.version] * len(out["days"]), dtype=object),
        }


@dataclass
class RayOptions:
    address: str | None = None  # None: a local Ray instance; "auto" or "ray://host:10001"
    workers: int = 2  # actors in the pool (each loads the analyzer once)
    cpus_per_worker: float = 1.0
    range_size: int = 500  # verbatims per id range (one transaction each)
    num_cpus: int | None = None  # local instance only: CPUs Ray may use (default: all)


def enrich_ray(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    options: RayOptions | None = None,
    backend: str | None = None,
    reanalyze_as: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EnrichResult:
    """Analyse every pending verbatim on Ray; returns the same counts as `jobs.enrich`.

    `reanalyze_as`: the model version the workers write (the driver's analyzer's): first, as
    `verbatim enrich --reanalyze` does, languages detected again and every verbatim without an
    analysis by that version marked pending (the store stays idempotent: nothing counted twice).
    `on_batch` is told the verbatims analysed so far as each range finishes, and with `-v`
    the same `enrich: N rows, …` progress lines as the in-process engine are logged.
    """
    import ray
    import ray.data
    import ray.exceptions

    from jobs.enrich import prepare_reanalysis
    from nlp.sentiment import REGISTRY

    opts = options or RayOptions()
    name = backend or settings.sentiment_backend
    if name not in REGISTRY:  # else every actor dies on it, in pages of Ray tracebacks
        known = ", ".join(sorted(REGISTRY))
        raise RayConfigError(f"unknown sentiment backend {name!r}; known: {known}")
    prepared = EnrichResult()
    if reanalyze_as is not None:  # before the ranges: they are cut from the pending rows
        prepare_reanalysis(sessions, reanalyze_as, prepared)
    ranges = pending_ranges(sessions, opts.range_size)
    if not ranges:
        return prepared
    if not ray.is_initialized():
        # Without --address, Ray connects to $RAY_ADDRESS when set: that is the one to try.
        target = opts.address or os.environ.get("RAY_ADDRESS") or None
        where = target or "a local Ray instance"
        _probe(target)
        try:
            ray.init(
                address=opts.address,
                num_cpus=opts.num_cpus if opts.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except ConnectionError as exc:  # no cluster there (or none running for "auto")
            raise RayEngineError(f"cannot reach the Ray cluster at {where}: {exc}") from None
        except ValueError as exc:  # a malformed address, ray:// without ray[client]
            raise RayConfigError(f"--address {opts.address!r}: {exc}") from None
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # Workers build their own Settings from these values (their environment may differ).
    worker_settings = settings.model_dump(mode="json")
    worker_settings["database_url"] = settings.resolved_database_url
    # Only the options each source was given: its kind's check refuses the others (the
    # defaults of `url`, `max_retries`… on a folder source failed every actor).
    worker_settings["sources"] = [
        source.model_dump(mode="json", exclude_unset=True) for source in settings.sources
    ]
    result = EnrichResult(relabelled=prepared.relabelled, days=set(prepared.days))
    progress = _progress_log(sessions, None)
    # Verbatims stored while a pass runs (an ingest, the API) are past its ranges: another
    # pass takes them, as the in-process engine's batches do, so `enrich` then `aggregate`
    # leaves none pending. A range's failed rows stay below the cursor: not retried here.
    while ranges:
        _run_pass(ranges, worker_settings, backend, opts, result, on_batch, progress)
        ranges = pending_ranges(sessions, opts.range_size, after=ranges[-1][1])
    if progress is not None:
        progress.finish(result.analyzed)
    return result


def _run_pass(
    ranges: list[tuple[int, int]],
    worker_settings: dict[str, Any],
    backend: str | None,
    opts: RayOptions,
    result: EnrichResult,
    on_batch: Callable[[int], None] | None = None,
    progress: ProgressLog | None = None,
) -> None:
    """Analyse `ranges` on a pool of actors; adds the counts and days to `result`."""
    import ray.data
    import ray.exceptions

    ds = ray.data.from_items([{"lo": lo, "hi": hi} for lo, hi in ranges])
    results = ds.map_batches(
        RangeAnalyzer,
        fn_constructor_kwargs={"settings": worker_settings, "backend": backend},
        batch_size=1,  # one id range per call: one transaction each
        batch_format="numpy",
        # No more actors than ranges: each one loads the analyzer (seconds, memory), and a
        # further pass often has a few verbatims only.
        compute=ray.data.ActorPoolStrategy(size=max(1, min(opts.workers, len(ranges)))),
        num_cpus=opts.cpus_per_worker,
    )
    try:
        for row in results.iter_rows():
            result.analyzed += int(row["analyzed"])
            result.skipped += int(row["analyzed"]) - int(row["stored"])
            result.mentions += int(row["mentions"])
            result.failed += int(row["failed"])
            result.model_version = str(row["version"]) or result.model_version
            result.days.update(date.fromisoformat(d) for d in str(row["days"]).split(",") if d)
            if on_batch is not None:
                on_batch(result.analyzed)
            if progress is not None:
                progress.update(result.analyzed)
    except ray.exceptions.RayError as exc:  # an actor that cannot load, a range that raised
        raise RayEngineError(
            f"the Ray run failed: {_last_line(exc)} (the ranges finished before are stored: "
            "run it again to continue)"
        ) from None

"""`verbatim ingest`: stream a CSV/JSONL/.xlsx file into `feedback`, in batches.

Each batch commits its rows, its quarantined rows and the run's watermark in ONE transaction,
so a crash loses at most the batch in flight and the next run of the same file resumes right
after the last committed record: nothing lost, nothing doubled.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.masking import build_masker
from core.models import Feedback
from core.settings import Settings
from core.store import (
    CHANNELS,
    FIELDS,
    RATING_SCALE,
    Rejection,
    add_quarantine,
    advance_run,
    count_encoding_errors,
    delete_encoding_errors,
    find_resumable_run,
    finish_run,
    float_keyed,
    insert_feedback,
    prepare_feedback,
    start_run,
    utcnow,
)
from jobs.readers import (
    Format,
    ReaderError,
    check_encoding_name,
    check_text_file,
    columns,
    detect_format,
    fingerprint,
    iter_records,
)
from nlp.errors import VerbatimError
from nlp.text import PiiMasker

# Column names recognised without a --map (compared case-insensitively).
AUTO_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": (
        "text",
        "texte",
        "verbatim",
        "review",
        "avis",
        "comment",
        "commentaire",
        "message",
        "content",
        "contenu",
        "body",
    ),
    "id": ("id", "review_id", "external_id", "uid", "identifiant"),
    "created_at": (
        "created_at",
        "date",
        "datetime",
        "timestamp",
        "created",
        "published_at",
        "date_avis",
    ),
    "rating": ("rating", "stars", "note", "score", "etoiles", "étoiles"),
    "customer": ("customer", "customer_id", "client", "client_id", "order_id", "commande"),
    "channel": ("channel", "canal"),
    "nps": ("nps", "nps_score", "recommandation"),
    "csat": ("csat", "csat_score", "satisfaction"),
    "ces": ("ces", "ces_score", "effort"),
}
# A title is glued in front of the text ("Titre. Texte") only when asked: --map title=titre.
# Id columns named after the verbatim ("id_avis", "avis_id", "review_ref") are ids, not
# customers ("client_id", "order_id" are listed as customer above).
_ID_LIKE = re.compile(
    r"(?i)^(?:id|ref|num(?:ero)?|no)[ _-]?(?:avis|review|commentaire|comment|message|verbatim|"
    r"retour|feedback|reponse|post|ticket)s?$|^(?:avis|review|commentaire|comment|message|"
    r"verbatim|retour|feedback|reponse|post|ticket)s?[ _-]?(?:id|ref|num(?:ero)?|no)$"
)

# Column names that say "a date" in the exports of the usual tools ("Date de création",
# "Review Created (UTC)", "Submitted At", "Heure"): named in the warning of a file whose
# verbatims are all dated at ingest time because no column was read as their date.
_DATE_LIKE = re.compile(r"(?i)date|cr[ée]{2}|created|creation|time|heure|submitted|posted|publi")

# A hook gets (event, number): "row" after each record, "commit" just before a batch commits.
Hook = Callable[[str, int], None]


log = logging.getLogger(__name__)


class MappingError(VerbatimError, ValueError):
    """The column mapping does not fit the file; raised before anything is written."""


@dataclass
class IngestResult:
    run_id: int | None
    path: str
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    resumed_from: int = 0  # watermark the run resumed after (0 = from the start)
    skipped: bool = False  # this exact file content was already ingested completely
    encoding_errors: int = 0  # rows rejected as not decodable (hint: --encoding)
    requarantined: int = 0  # rejected rows an earlier read had already quarantined
    # Rows an earlier read with another encoding could not decode, read again: their
    # quarantine entries are gone (stored now, or quarantined again with the new reason).
    reread_undecodable: int = 0
    # Stored rows whose text had HTML entities or tags, or accents garbled by an encoding
    # mix-up (« Ã© »), repaired before storage (`nlp.text.repair`).
    repaired: int = 0
    reasons: dict[str, int] = dataclass_field(default_factory=dict)  # rejection code -> rows
    mapping: dict[str, str] = dataclass_field(default_factory=dict)  # field -> file column
    inferred: list[str] = dataclass_field(default_factory=list)  # fields not given by --map
    # No column read as `created_at` (every verbatim dated at ingest time): the file's other
    # columns whose name looks like a date, for the warning.
    date_like: list[str] = dataclass_field(default_factory=list)


def parse_mapping(items: Sequence[str] | str | None) -> dict[str, str]:
    """`text=col,id=col` (or several such options) -> {"text": "col", "id": "col"}."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [items]
    mapping: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            field, sep, column = part.partition("=")
            field, column = field.strip(), column.strip()
            if not sep or not field or not column:
                raise MappingError(f"bad --map entry {part!r}: expected field=column")
            if mapping.get(field, column) != column:  # the last one silently won
                raise MappingError(
                    f"--map gives {field!r} twice ({field}={mapping[field]}, {field}={column}): "
                    "keep one"
                )
            mapping[field] = column
    return mapping


def resolve_mapping(file_columns: Sequence[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Our field -> the file's column. Explicit entries must exist; the rest is auto-detected."""
    unknown = sorted(set(explicit) - set(FIELDS))
    if unknown:
        raise MappingError(
            f"unknown field(s) in --map: {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    available = list(file_columns)
    missing = [f"{f}={c}" for f, c in explicit.items() if c not in available]
    if missing:
        raise MappingError(
            f"column(s) not in the file: {', '.join(missing)}; "
            f"file columns: {', '.join(available) or '(none)'}"
        )
    mapping = dict(explicit)
    lowered = {c.lower().strip(): c for c in available}
    used = set(mapping.values())
    for field, names in AUTO_COLUMNS.items():
        if field in mapping:
            continue
        for name in names:
            column = lowered.get(name)
            if column is not None and column not in used:
                mapping[field] = column
                used.add(column)
                break
        if field == "id" and "id" not in mapping:
            for column in available:
                if column not in used and _ID_LIKE.match(column.strip()):
                    mapping["id"] = column
                    used.add(column)
                    break
    if "text" not in mapping:
        raise MappingError(
            "no text column found; name it with --map text=COLUMN "
            f"(file columns: {', '.join(available) or '(none)'})"
        )
    return mapping


def _split(fields: Mapping[str, Any], mapping: Mapping[str, str]) -> tuple[dict, dict]:
    # Only the keys the row has: a JSON object without "created_at" has no date (ingest time),
    # which is not the same as an empty date.
    canonical = {field: fields[column] for field, column in mapping.items() if column in fields}
    mapped = set(mapping.values())
    extra = {k: v for k, v in fields.items() if k not in mapped}
    return canonical, extra


def _repaired(fields: Mapping[str, Any]) -> bool:
    """Whether storing the row repairs its text or title (counted for the summary)."""
    from nlp.text.repair import repair_text

    return any(
        isinstance(value, str) and repair_text(value) != value
        for value in (fields.get("text"), fields.get("title"))
    )


def _not_stored(session: Session, source: str, keys: Sequence[str]) -> int:
    """How many of `keys` (dedup keys of `source`) no stored verbatim has yet: the repaired
    rows this batch stores, its duplicates (a file read again with --force) left out."""
    wanted = set(keys)
    found: set[str] = set()
    chunks = sorted(wanted)
    for start in range(0, len(chunks), 500):
        chunk = float_keyed(chunks[start : start + 500])
        found.update(
            chunk[key]
            for key in session.execute(
                select(Feedback.dedup_key).where(
                    Feedback.source == source, Feedback.dedup_key.in_(chunk)
                )
            ).scalars()
        )
    return len(wanted - found)


def _blank(path: Path) -> bool:
    with path.open("rb") as fh:
        return not any(
            chunk.strip(b" \t\r\n\xef\xbb\xbf") for chunk in iter(lambda: fh.read(1 << 16), b"")
        )


class _Progress:
    """A rich bar on a terminal's stderr (bytes of the file); elsewhere (cron, CI) progress log
    lines with rate and ETA, shown at INFO (`verbatim -v`)."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        from jobs.progress import ProgressLog, stderr_is_terminal

        self.bar = None
        self.log: ProgressLog | None = None
        if enabled and stderr_is_terminal():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]} rows"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task(label, total=total, rows=0)
            self.bar.start()
        else:
            self.log = ProgressLog(log, f"ingest {label}", total=total)
        self.rows = 0

    def update(self, offset: int, rows: int) -> None:
        self.rows = rows
        if self.bar is not None:
            self.bar.update(self.task, completed=offset, rows=rows)
        elif self.log is not None:
            self.log.update(rows, offset)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.log is not None:
            self.log.finish(self.rows)


class LazyMasker:
    """`build_masker(settings)` on the first text masked, then reused: a run or a scheduler
    shares one masker over all its sources, and spaCy loads only when something is masked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._masker: PiiMasker | None = None
        self._building = threading.Lock()

    def __call__(self, text: str) -> str:
        if self._masker is None:
            with self._building:
                if self._masker is None:
                    self._masker = build_masker(self.settings)
        return self._masker(text)


def check_file(
    path: Path, mapping: Mapping[str, str] | None, encoding: str = "utf-8"
) -> tuple[Format, dict[str, str]] | None:
    """What is checked before a file is read: (its format, the column mapping), or None for
    an empty file. Raises ReaderError (binary, UTF-16, a JSON array) or MappingError (no text
    column, unknown columns) before anything is written."""
    checked = _check_file(path, mapping, encoding)
    return None if checked is None else checked[:2]


def _check_file(
    path: Path, mapping: Mapping[str, str] | None, encoding: str
) -> tuple[Format, dict[str, str], list[str]] | None:
    """`check_file`, and the file's columns."""
    check_text_file(path)
    fmt: Format = detect_format(path)
    file_columns = columns(path, fmt, encoding=encoding)
    if not file_columns and (fmt == "xlsx" or _blank(path)):
        return None  # an empty export (a workbook whose first sheet has no row)
    if not file_columns and fmt == "jsonl":
        # Not one line is a JSON object (the whole file was scanned): nothing to map, and
        # every line is quarantined with its own reason rather than the file refused.
        return fmt, {}, []
    return fmt, resolve_mapping(file_columns, mapping or {}), file_columns


def mapping_notes(
    resolved: Mapping[str, str], mapping: Mapping[str, str] | None, file_columns: Sequence[str]
) -> tuple[list[str], list[str]]:
    """What `verbatim ingest` tells of a mapping: the fields recognised by name (not given by
    --map) and, with no date column read, the file's columns whose name looks like a date."""
    inferred = [f for f in resolved if f not in (mapping or {})]
    date_like: list[str] = []
    if "created_at" not in resolved:
        used = set(resolved.values())
        date_like = [c for c in file_columns if c not in used and _DATE_LIKE.search(c)]
    return inferred, date_like


def ingest_file(
    sessions: sessionmaker[Session],
    settings: Settings,
    path: Path | str,
    *,
    source: str,
    channel: str = "review",
    mapping: Mapping[str, str] | None = None,
    force: bool = False,
    hook: Hook | None = None,
    progress: bool = False,
    encoding: str = "utf-8",
    masker: Callable[[str], str] | None = None,
    rating_scale: int = RATING_SCALE,
) -> IngestResult:
    """Ingest one file; resumes an interrupted run of the same file content.

    `masker`: the PII masker to reuse (`LazyMasker`); one is made here when not given.
    `rating_scale`: the scale of the rating column's bare numbers (stored out of 5).

    Raises MappingError / ReaderError / FileNotFoundError before writing anything when the
    file or the mapping is unusable.
    """
    path = Path(path)
    if not path.is_file():
        kind = "is a directory, expected a file" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"{kind}: {path}")
    if channel not in CHANNELS:
        raise MappingError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    source = source.strip()
    if not source or len(source) > 100:
        raise MappingError("--source must be a non-empty name of at most 100 characters")
    encoding = check_encoding_name(encoding)
    location = str(path.resolve())
    checked = _check_file(path, mapping, encoding)
    if checked is None:
        return IngestResult(None, location)  # an empty export: nothing to do, not an error
    fmt, resolved, file_columns = checked
    digest = fingerprint(path)
    mask = masker or LazyMasker(settings)

    same_file = {"source": source, "location": location, "fingerprint": digest}
    undecodable = 0  # rows an earlier encoding could not decode, quarantined
    with session_scope(sessions) as session:
        previous = find_resumable_run(session, **same_file)
        if previous is not None and previous.encoding != encoding and not force:
            # Read before with another encoding (the source's `encoding` fixed since, or
            # NULL: a run older than the column): rows it could not decode are read again,
            # not skipped as already read; a resumed run would mix both encodings.
            undecodable = count_encoding_errors(session, **same_file)
            if previous.status == "done" and not undecodable:
                return IngestResult(previous.id, location, skipped=True)
            previous = None
        if previous is not None and previous.status == "done" and not force:
            return IngestResult(previous.id, location, skipped=True)
        if previous is not None and previous.status in ("running", "failed") and not force:
            run_id, watermark = previous.id, previous.watermark
        else:
            run = start_run(session, channel=channel, encoding=encoding, **same_file)
            run_id, watermark = run.id, 0
            if undecodable:
                # Removed before the file is read again, not after: a row the new read rejects
                # as the earlier one did (same reason, same text) would otherwise count as
                # already quarantined, not be stored, and leave with the earlier entry.
                delete_encoding_errors(session, **same_file)
    result = IngestResult(run_id, location, resumed_from=watermark, mapping=dict(resolved))
    result.inferred, result.date_like = mapping_notes(resolved, mapping, file_columns)

    bar = _Progress(progress, path.stat().st_size, f"{source} ← {path.name}")
    batch: list[dict[str, Any]] = []
    rejected: list[tuple[int | None, Rejection, str]] = []
    repaired: list[str] = []  # dedup keys of the batch's rows whose text was repaired
    batch_read = 0
    last = watermark

    def flush() -> None:
        nonlocal batch, rejected, batch_read, repaired
        with session_scope(sessions) as session:
            # Before the insert: a duplicate is not stored, so its text was repaired for naught.
            fresh_repaired = _not_stored(session, source, repaired) if repaired else 0
            stored, dup = insert_feedback(session, batch)
            kept = add_quarantine(session, rejected, source=source, run_id=run_id, mask=mask)
            advance_run(
                session,
                run_id,
                watermark=last,
                read=batch_read,
                stored=stored,
                duplicates=dup,
                rejected=len(rejected),
            )
            if hook is not None:
                hook("commit", last)
        result.read += batch_read
        result.stored += stored
        result.duplicates += dup
        result.rejected += len(rejected)
        result.requarantined += len(rejected) - kept
        result.repaired += fresh_repaired
        for _number, rejection, _raw in rejected:
            result.reasons[rejection.reason] = result.reasons.get(rejection.reason, 0) + 1
        batch, rejected, repaired, batch_read = [], [], [], 0

    try:
        now = utcnow()
        for record in iter_records(path, fmt, encoding):
            if record.number <= watermark:
                continue  # committed by an earlier, interrupted run
            last = record.number
            batch_read += 1
            if record.error is not None:
                reason, field, detail = record.error
                if reason == "encoding_error":
                    result.encoding_errors += 1
                rejected.append((record.number, Rejection(reason, field, detail), record.raw))
            else:
                canonical, extra = _split(record.fields or {}, resolved)
                prepared = prepare_feedback(
                    canonical,
                    source=source,
                    channel=channel,
                    max_text_chars=settings.max_text_chars,
                    extra=extra,
                    run_id=run_id,
                    now=now,
                    mask=mask,
                    rating_scale=rating_scale,
                )
                if isinstance(prepared, Rejection):
                    rejected.append((record.number, prepared, record.raw))
                else:
                    batch.append(prepared)
                    if _repaired(canonical):
                        repaired.append(prepared["dedup_key"])
            if hook is not None:
                hook("row", record.number)
            if batch_read >= settings.batch_size:
                flush()
                bar.update(record.offset, result.read)
                now = utcnow()
        if batch_read:
            flush()
        bar.update(path.stat().st_size, result.read)
        with session_scope(sessions) as session:
            finish_run(session, run_id, status="done")
            # Every row read again: stored, or quarantined anew with why.
            result.reread_undecodable = undecodable
    except BaseException as exc:
        # Keep what was committed; mark the run so the next one resumes after its watermark.
        try:
            with session_scope(sessions) as session:
                finish_run(session, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # the database itself may be what failed; the watermark stands
            pass
        raise
    finally:
        bar.close()
    return result


__all__ = [
    "IngestResult",
    "MappingError",
    "ReaderError",
    "LazyMasker",
    "build_masker",
    "check_file",
    "ingest_file",
    "parse_mapping",
    "resolve_mapping",
]

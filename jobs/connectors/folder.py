"""Folder/glob source: every new file matching the pattern is read once, never twice.

A file is identified by its content hash (sha256), with path + size + mtime as a cheap first
check: a file seen before is skipped without being re-read, a renamed or touched copy of a
file already read is skipped after hashing, a file whose content changed is a new file (its
rows are still deduplicated on their id / content). Files being written are not read: names
ending in .part/.tmp/.partial/.crdownload, hidden files, and files modified less than
`settle_seconds` ago wait for the next poll. A file interrupted mid-way resumes after its last
stored row. A file with rows its encoding could not decode is read again, from its first row,
once the source's `encoding` is changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.settings import Settings, SourceConfig
from jobs.connectors.base import Batch, SourceConfigError, register
from jobs.readers import (
    ReaderError,
    check_encoding_name,
    check_text_file,
    detect_format,
    fingerprint,
    iter_records,
)

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


def shown(path: Path | str) -> str:
    """The path as text the database can store: a name that is not UTF-8 (a Latin-1 file
    from a Windows share) has lone surrogates in Python's str, which SQLite refuses to encode
    (UnicodeEncodeError: the whole pull, and `verbatim run`, died on it at every poll) and
    PostgreSQL's JSON refuses too. Its bytes are written as \\xNN escapes instead."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class FolderConnector:
    kind = "folder"

    def __init__(
        self,
        root: Path,
        pattern: str = "*",
        *,
        settle_seconds: float = 30.0,
        batch_size: int = 500,
        encoding: str = "utf-8",
    ) -> None:
        self.root = Path(root)
        self.pattern = pattern
        self.settle_seconds = settle_seconds
        self.batch_size = batch_size
        self.encoding = encoding

    def listing(self) -> list[Path]:
        """Every path matching the pattern, complete or not."""
        if not self.root.is_dir():
            raise SourceConfigError(f"folder {self.root} does not exist")
        try:
            return list(self.root.glob(self.pattern))
        except (ValueError, NotImplementedError) as exc:  # "", "/abs/*.csv", "**.csv"
            raise SourceConfigError(
                f"folder {self.root}: pattern {self.pattern!r} is not a glob relative to the "
                f"folder, like '*.csv' ({exc})"
            ) from None

    def candidates(self, now: float | None = None, found: list[Path] | None = None) -> list[Path]:
        """Complete-looking files matching the pattern, oldest first."""
        found = self.listing() if found is None else found
        now = time.time() if now is None else now
        out = []
        for path in found:
            if not path.is_file() or path.name.startswith((".", "~")):
                continue
            if path.name.lower().endswith(PARTIAL_SUFFIXES):
                continue
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue  # moved away since the listing
            if now - mtime < self.settle_seconds:
                log.info("%s was modified less than %ss ago: next poll", path, self.settle_seconds)
                continue
            out.append((mtime, str(path), path))
        return [path for _m, _s, path in sorted(out)]

    def _read_again(self, entry: Mapping[str, Any]) -> bool:
        """A file read with another encoding, some of its rows not decodable then: read again
        (from its first row) now that the source's `encoding` changed, instead of skipped."""
        return bool(entry.get("undecodable")) and entry.get("encoding") != self.encoding

    def read(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        """Small files share a batch: its rows, and the state marking each of its files read
        (or read up to a row), are stored in one transaction, so a stop or a kill between two
        batches resumes exactly, and a folder of 20,000 small files is not 20,000 writes of
        the state. Entries of files gone from the folder are dropped from the state (it kept
        one per file ever read, all written again with each batch); a gone file dropped in
        again is read again, its rows deduplicated."""
        files: dict[str, dict[str, Any]] = {k: dict(v) for k, v in state.get("files", {}).items()}
        seen = {
            (v["path"], v["size"], v["mtime"]): k
            for k, v in files.items()
            if v.get("done") and not self._read_again(v)
        }
        found = self.listing()
        present = {shown(path) for path in found}
        hashed: set[str] = set()  # digests of the files in the folder now
        changed = False  # the state differs from what was stored: written once at the end
        batch: list = []
        errors: list[str] = []
        where = ""

        def pending() -> Batch:
            nonlocal batch, errors, where, changed
            out = Batch(batch, {"files": {k: dict(v) for k, v in files.items()}}, where, errors)
            batch, errors, where, changed = [], [], "", False
            return out

        for path in self.candidates(found=found):
            try:
                stat = path.stat()
                quick = (shown(path), stat.st_size, stat.st_mtime)
                if quick in seen:
                    hashed.add(seen[quick])
                    continue
                digest = fingerprint(path)
            except FileNotFoundError:
                # Moved away (archived by another tool) while earlier files were stored: it
                # is not there to read, and the files after it still are.
                log.info("%s disappeared before it was read: skipped", path)
                continue
            except OSError as exc:
                # Not readable now (mode 0600 of another user, a share gone stale): reported,
                # retried at the next poll (not marked done), and the files after it are read.
                # Raised, it stopped the whole source at every poll, behind this one file.
                error = f"{shown(path)}: cannot be read yet ({exc.strerror or exc}); next poll"
                log.warning("%s", error)
                errors.append(error)
                continue
            hashed.add(digest)
            entry = files.get(digest)
            again = entry is not None and self._read_again(entry)
            if entry is not None and entry.get("done") and not again:
                # Same content already read (renamed, copied or touched). Renamed: its entry
                # follows it, so the quick check knows it next time and it is not forgotten.
                if entry["path"] not in present:
                    entry.update(path=quick[0], size=stat.st_size, mtime=stat.st_mtime)
                    changed = True
                continue
            start_after = int(entry["rows"]) if entry and not again else 0
            undecodable = int(entry.get("undecodable", 0)) if entry and not again else 0
            entry = {
                "path": shown(path),
                "size": stat.st_size,
                "mtime": stat.st_mtime,
                "encoding": self.encoding,
            }

            def mark(rows: int, done: bool, **extra: Any) -> None:
                # The loop's current file: called only within this iteration.
                nonlocal changed
                files[digest] = {  # noqa: B023
                    **entry,  # noqa: B023
                    "rows": rows,
                    "done": done,
                    "undecodable": undecodable,  # noqa: B023
                    **extra,
                }
                changed = True

            last = start_after
            where = where or shown(path)
            try:
                check_text_file(path)  # a binary file dropped in the folder: one clear error
                for rec in iter_records(path, detect_format(path), self.encoding):
                    if rec.number <= start_after:
                        continue
                    if rec.error is not None and rec.error[0] == "encoding_error":
                        undecodable += 1
                    batch.append(rec)
                    last = rec.number
                    if len(batch) >= self.batch_size:
                        mark(last, False)
                        yield pending()
                        where = shown(path)
            except (ReaderError, OSError) as exc:
                error = shown(str(exc))
                mark(last, True, error=error[:300])
                errors.append(error)
                continue
            mark(last, True)
        gone = [k for k, v in files.items() if v["path"] not in present and k not in hashed]
        if found and gone:  # nothing matched at all (a share not mounted): nothing forgotten
            for digest in gone:
                del files[digest]
            changed = True
        if batch or errors or changed:
            yield pending()


@register("folder")
def _from_config(cfg: SourceConfig, settings: Settings) -> FolderConnector:
    assert cfg.path is not None  # checked by SourceConfig
    try:
        # An unknown name ("ansi") failed at the first file with a LookupError traceback that
        # ended `verbatim pull` and `verbatim run` there, the sources after it not pulled.
        check_encoding_name(cfg.encoding)
    except ReaderError as exc:
        raise SourceConfigError(str(exc)) from None
    return FolderConnector(
        cfg.path,
        cfg.pattern,
        settle_seconds=cfg.settle_seconds,
        batch_size=settings.batch_size,
        encoding=cfg.encoding,
    )

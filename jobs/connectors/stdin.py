"""stdin source (`verbatim ingest -`): JSONL or CSV piped in, e.g. from another tool's export.

The stream is spooled to a temporary file first (bounded memory, any size), then read by the
same readers as a file. There is no cursor: piping the same rows twice stores them once
(deduplication on id / content).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from jobs.connectors.base import Batch
from jobs.readers import iter_records
from nlp.errors import VerbatimError


class StdinConnector:
    kind = "stdin"

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        *,
        batch_size: int = 500,
        encoding: str = "utf-8",
        mapping: Mapping[str, str] | None = None,
    ) -> None:
        self.stream = stream
        self.batch_size = batch_size
        self.encoding = encoding
        self.mapping = dict(mapping or {})  # checked against the piped columns up front
        # The piped columns as read (field -> column), what was recognised by name and the
        # date-like columns: `verbatim ingest -` says them as for a file.
        self.resolved: dict[str, str] = {}
        self.inferred: list[str] = []
        self.date_like: list[str] = []

    def read(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        from jobs.ingest import _check_file, mapping_notes

        stream = self.stream if self.stream is not None else sys.stdin.buffer
        with tempfile.TemporaryDirectory(prefix="verbatim-stdin-") as tmp:
            path = Path(tmp) / "stdin"
            with path.open("wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            # The checks a file gets (binary data, a JSON array, no text column), refused
            # before anything is stored; the message names stdin, not the spooled copy.
            try:
                checked = _check_file(path, self.mapping, self.encoding)
            except VerbatimError as exc:
                raise type(exc)(str(exc).replace(str(path), "stdin")) from None
            if checked is None:
                return
            self.resolved = checked[1]
            self.inferred, self.date_like = mapping_notes(checked[1], self.mapping, checked[2])
            batch: list = []
            for rec in iter_records(path, checked[0], self.encoding):
                batch.append(rec)
                if len(batch) >= self.batch_size:
                    yield Batch(batch, {}, "stdin")
                    batch = []
            yield Batch(batch, {}, "stdin")

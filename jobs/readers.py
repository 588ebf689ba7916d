"""Streaming readers for feedback files: CSV (sniffed delimiter, BOM) and JSONL.

Files are read as bytes and decoded line by line, so one undecodable line is one rejected row
and never the end of the file. Nothing holds more than one record in memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from nlp.errors import VerbatimError

Format = Literal["csv", "jsonl"]
BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", ";", "\t", "|")
SINGLE_COLUMN = "\x1f"  # ASCII unit separator: never in text, so each line is one field
CSV_FIELD_LIMIT = 10_000_000  # bigger fields are rejected as rows, not a crash


class ReaderError(VerbatimError, ValueError):
    """The file as a whole cannot be read (message says why)."""


@dataclass(slots=True)
class RawRecord:
    number: int  # 1-based record number in the file (header and blank lines excluded)
    fields: dict[str, Any] | None  # None when `error` is set
    raw: str
    error: tuple[str, str | None, str] | None = None  # (reason, field, detail)
    offset: int = 0  # bytes of the file consumed so far (progress bar)


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(BOM).lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


def fingerprint(path: Path) -> str:
    """sha256 of the file content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_encoding(head: bytes, path: Path) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReaderError(f"{path}: the file is UTF-16; save it as UTF-8 and retry")


class _Lines:
    """Iterates decoded lines of a binary file; remembers whether a line was undecodable."""

    def __init__(self, fh: BinaryIO, encoding: str = "utf-8") -> None:
        self.fh = fh
        self.encoding = encoding
        self.bad = False
        self.first = True

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.fh.readline()
        if not line:
            raise StopIteration
        if self.first:
            self.first = False
            if line.startswith(BOM):
                line = line[len(BOM) :]
        try:
            return line.decode(self.encoding)
        except UnicodeDecodeError:
            self.bad = True
            return line.decode(self.encoding, errors="replace")


def sniff_delimiter(header_line: str, path: Path) -> str:
    """The delimiter that occurs most in the header line, outside quotes."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the order of DELIMITERS
    # One column (a plain list of texts): commas inside the texts are not separators.
    return best if counts[best] else SINGLE_COLUMN


def _read_header(path: Path, encoding: str = "utf-8") -> tuple[list[str], str]:
    with path.open("rb") as fh:
        head = fh.read(4)
        _check_encoding(head, path)
        fh.seek(0)
        lines = _Lines(fh, encoding)
        try:
            first = next(lines)
        except StopIteration:
            return [], ","
        while not first.strip():
            try:
                first = next(lines)
            except StopIteration:
                return [], ","
    delimiter = sniff_delimiter(first, path)
    header = next(csv.reader([first], delimiter=delimiter))
    return _unique_names(header), delimiter


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def columns(path: Path, fmt: Format, sample: int = 200, encoding: str = "utf-8") -> list[str]:
    """Column names: the CSV header, or the keys seen in the first `sample` JSON objects."""
    if fmt == "csv":
        return _read_header(path, encoding)[0]
    keys: dict[str, None] = {}
    seen = 0
    for record in iter_jsonl(path, encoding):
        if record.fields is not None:
            keys.update(dict.fromkeys(record.fields))
            seen += 1
            if seen >= sample:
                break
    return list(keys)


def iter_csv(path: Path, encoding: str = "utf-8") -> Iterator[RawRecord]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    header, delimiter = _read_header(path, encoding)
    if not header:
        return
    with path.open("rb") as fh:
        lines = _Lines(fh, encoding)
        reader = csv.reader(lines, delimiter=delimiter)
        # Skip blank lines before the header, then the header itself.
        for row in reader:
            if row and any(cell.strip() for cell in row):
                break
        lines.bad = False
        number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                lines.bad = False
                yield RawRecord(number, None, "", ("csv_error", None, str(exc)[:150]), fh.tell())
                continue
            if not row or not any(cell.strip() for cell in row):
                lines.bad = False
                continue
            number += 1
            raw = delimiter.join(row)
            if lines.bad:
                lines.bad = False
                yield RawRecord(
                    number,
                    None,
                    raw,
                    ("encoding_error", None, f"bytes that are not {lines.encoding}"),
                    fh.tell(),
                )
                continue
            if len(row) != len(header):
                yield RawRecord(
                    number,
                    None,
                    raw,
                    (
                        "wrong_field_count",
                        None,
                        f"{len(row)} fields, the header has {len(header)}",
                    ),
                    fh.tell(),
                )
                continue
            yield RawRecord(number, dict(zip(header, row, strict=True)), raw, None, fh.tell())


def iter_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[RawRecord]:
    with path.open("rb") as fh:
        head = fh.read(4096)
        _check_encoding(head, path)
        if head.lstrip(BOM).lstrip().startswith(b"["):
            raise ReaderError(
                f"{path}: a JSON array is not supported; write one JSON object per line (JSONL)"
            )
        fh.seek(0)
        lines = _Lines(fh, encoding)
        number = 0
        for line in lines:
            if not line.strip():
                lines.bad = False
                continue
            number += 1
            raw = line.rstrip("\r\n")
            if lines.bad:
                lines.bad = False
                yield RawRecord(
                    number,
                    None,
                    raw,
                    ("encoding_error", None, f"bytes that are not {lines.encoding}"),
                    fh.tell(),
                )
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield RawRecord(number, None, raw, ("invalid_json", None, exc.msg), fh.tell())
                continue
            if not isinstance(obj, dict):
                yield RawRecord(
                    number,
                    None,
                    raw,
                    ("not_an_object", None, f"got {type(obj).__name__}"),
                    fh.tell(),
                )
                continue
            yield RawRecord(number, obj, raw, None, fh.tell())


def iter_records(path: Path, fmt: Format, encoding: str = "utf-8") -> Iterator[RawRecord]:
    return iter_csv(path, encoding) if fmt == "csv" else iter_jsonl(path, encoding)


def check_encoding_name(encoding: str) -> str:
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ReaderError(f"unknown encoding {encoding!r} (try utf-8, cp1252, latin-1)") from None

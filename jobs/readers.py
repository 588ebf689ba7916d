"""Streaming readers for feedback files: CSV (sniffed delimiter, BOM), JSONL and Excel .xlsx.

Files are read as bytes and decoded line by line, so one undecodable line is one rejected row
and never the end of the file. Nothing holds more than one record in memory (a workbook is
streamed row by row by openpyxl's read-only mode).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import shlex
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from nlp.errors import VerbatimError

Format = Literal["csv", "jsonl", "xlsx"]
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
    line: int = 0  # 1-based line of the file where the record starts (0: not tracked)


ZIP_MAGIC = b"PK\x03\x04"


def _zip_kind(path: Path) -> Literal["xlsx", "ods", "zip"] | None:
    """What a ZIP file is (an Excel workbook, an OpenDocument spreadsheet, another archive),
    or None when the file is no ZIP. Told by its members, not its name."""
    with path.open("rb") as fh:
        if fh.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError):
        return "zip"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if b"opendocument.spreadsheet" in mimetype:
        return "ods"
    return "zip"


def detect_format(path: Path) -> Format:
    # An Excel workbook, whatever its name (a ".csv" that is one, stdin's spooled copy).
    if _zip_kind(path) == "xlsx":
        return "xlsx"
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    # Anything else, ".txt" included (JSONL saved as text: `verbatim analyze` read it as JSONL
    # for years), is told by its content.
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(BOM).lstrip()
    # "[": a JSON array, which the JSONL reader refuses with a clear message.
    return "jsonl" if head.startswith((b"{", b"[")) else "csv"


def fingerprint(path: Path) -> str:
    """sha256 of the file content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Signatures of files people export by mistake instead of CSV/JSONL/.xlsx.
_MAGIC = {
    b"%PDF": "a PDF",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "an SQLite database",
    b"\x7fELF": "a program",
}


def check_text_file(path: Path) -> None:
    """Refuse binary files up front with one clear line (instead of garbage rows); an Excel
    .xlsx workbook is read (`iter_xlsx`)."""
    with path.open("rb") as fh:
        head = fh.read(8192)
    zip_kind = _zip_kind(path)
    if zip_kind == "xlsx":
        return
    if zip_kind == "ods":
        raise ReaderError(
            f"{path}: this is an OpenDocument spreadsheet (.ods), which is not read; save it "
            "as Excel (.xlsx) or CSV (UTF-8)"
        )
    if zip_kind == "zip":
        raise ReaderError(
            f"{path}: this is a ZIP archive but not a readable .xlsx spreadsheet; "
            "export it as .xlsx or CSV (UTF-8)"
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReaderError(f"{path}: the file is UTF-16; save it as UTF-8 and retry")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        # Excel can save it as .xlsx, which is read: « export it as CSV » said it is not.
        raise ReaderError(
            f"{path}: this is an old Excel/Word (.xls/.doc) file, which is not read; save it "
            "as Excel (.xlsx) or CSV (UTF-8)"
        )
    if head.startswith(b"\x1f\x8b"):
        # A CSV or JSONL already, compressed: "export it as CSV" sent people back to a tool
        # whose export was right.
        raise ReaderError(
            f"{path}: the file is gzip-compressed; decompress it first, "
            f"e.g. `gunzip -k {shlex.quote(str(path))}`"
        )
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise ReaderError(f"{path}: this is {what}, not CSV or JSONL; export it as CSV (UTF-8)")
    # Text has almost no control bytes; a few NULs in a CSV are tolerated (and cleaned).
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    if head and control / len(head) > 0.05:
        raise ReaderError(f"{path}: binary content, not CSV or JSONL text")


def file_encoding(path: Path, encoding: str) -> str:
    """`encoding`, or UTF-8 for a file that starts with the UTF-8 byte order mark (Excel's
    "CSV UTF-8"): a folder set to `cp1252` for its old exports read a new one as cp1252 and
    stored every accent garbled ("arrÃªt"), silently (cp1252 decodes any byte).

    Latin-1 is read as cp1252, as browsers read it: ISO-8859-1 has control codes where
    Windows' Latin-1 has ’ œ € – …, which normalisation then dropped without a word
    (« J’ai reçu un cœur » stored « Jai reçu un cur »)."""
    with path.open("rb") as fh:
        if fh.read(len(BOM)) == BOM:
            return "utf-8"
    return "cp1252" if codecs.lookup(encoding).name == "iso8859-1" else encoding


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


# Excel's "sep=;" first line names the delimiter; the header comes after it.
_EXCEL_SEP = re.compile(r"^sep=(.)\s*$")


def _cr_only(line: str, path: Path) -> None:
    if "\r" in line.rstrip("\r\n"):
        raise ReaderError(
            f"{path}: lines end with a carriage return only (old Mac format); convert them to "
            "\\n, e.g. `tr '\\r' '\\n' < in.csv > out.csv`"
        )


def _read_header(path: Path, encoding: str = "utf-8") -> tuple[list[str], str]:
    encoding = file_encoding(path, encoding)
    with path.open("rb") as fh:
        head = fh.read(4)
        _check_encoding(head, path)
        fh.seek(0)
        lines = _Lines(fh, encoding)
        try:
            first = next(lines)
        except StopIteration:
            return [], ","
        named: str | None = None  # the delimiter an Excel "sep=" line gives
        while not first.strip() or _EXCEL_SEP.match(first):
            if sep := _EXCEL_SEP.match(first):
                named = sep.group(1)
            try:
                first = next(lines)
            except StopIteration:
                return [], ","
    _cr_only(first, path)
    delimiter = named or sniff_delimiter(first, path)
    try:
        header = next(csv.reader([first], delimiter=delimiter))
    except csv.Error as exc:
        raise ReaderError(f"{path}: unreadable CSV header ({exc})") from None
    return _unique_names(header), delimiter


def _unique_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        base = name = name.strip() or f"column_{i + 1}"
        n = 1
        # Past the names already taken, the file's own included: "note;note_2;note" named its
        # last column note_2 too, and one of the two values was dropped without a word.
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        out.append(name)
    return out


MAX_JSON_KEYS = 10_000  # distinct keys remembered by `columns` (memory stays bounded)


def columns(path: Path, fmt: Format, encoding: str = "utf-8") -> list[str]:
    """Column names: the CSV header, or every key of every JSON object in the file (in order
    of first appearance). JSONL rows are self-describing: a key that first appears at row
    100 000 is a column all the same, so the whole file is scanned (one streaming pass)."""
    if fmt == "csv":
        return _read_header(path, encoding)[0]
    if fmt == "xlsx":
        with _Workbook(path) as book:
            for _line, row in book.rows():
                return _unique_names([_header_cell(cell) for cell in _trimmed(row)])
        return []
    keys: dict[str, None] = {}
    for record in iter_jsonl(path, encoding):
        if record.fields is not None and len(keys) < MAX_JSON_KEYS:
            keys.update(dict.fromkeys(record.fields))
    return list(keys)


MAX_RECORD_LINES = 10_000  # a quoted field spanning more physical lines is a broken quote
RAW_KEEP = 2_000  # characters of a broken record kept for the quarantine
# While a quote is open, the lines read ahead to see whether it closes into a whole record.
LOOKAHEAD_LINES = 50
LOOKAHEAD_CHARS = 1_000_000


def _scan_quotes(line: str, delimiter: str, in_quote: bool) -> tuple[bool, bool]:
    """(quoted field still open at the end of `line`, text right after a closing quote).

    RFC 4180: a quote opens a field only at its start; inside, "" is an escaped quote and a
    lone quote closes the field, which must then end (delimiter or end of line)."""
    if '"' not in line:
        return in_quote, False
    at_start = not in_quote
    closed_at = -1
    stray = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if in_quote:
            if ch == '"':
                if i + 1 < n and line[i + 1] == '"':
                    i += 1
                else:
                    in_quote = False
                    closed_at = i
        elif ch == '"' and at_start:
            in_quote = True
        elif closed_at == i - 1 and ch not in (delimiter, "\r", "\n"):
            stray = True
        at_start = ch == delimiter and not in_quote
        i += 1
    return in_quote, stray


def _quote_state(line: str, delimiter: str, in_quote: bool) -> bool:
    return _scan_quotes(line, delimiter, in_quote)[0]


def _physical_lines(fh: BinaryIO, encoding: str) -> Iterator[tuple[str, bool, int]]:
    """(decoded line, undecodable, quotes). `quotes` is -1 for a normal line; a line longer
    than CSV_FIELD_LIMIT comes back as its first RAW_KEEP characters with `quotes` = the number
    of quote characters in the whole line (so the quote state stays right): the rest is read
    and dropped, never held in memory."""
    first = True
    while True:
        chunk = fh.readline(CSV_FIELD_LIMIT + 1)
        if not chunk:
            return
        if first:
            first = False
            chunk = chunk.removeprefix(BOM)
        if len(chunk) > CSV_FIELD_LIMIT and not chunk.endswith(b"\n"):
            head = chunk[:RAW_KEEP].decode(encoding, errors="replace")
            quotes = chunk.count(b'"')
            while chunk and not chunk.endswith(b"\n"):
                chunk = fh.readline(CSV_FIELD_LIMIT + 1)
                quotes += chunk.count(b'"')
            yield head, False, quotes
            continue
        try:
            yield chunk.decode(encoding), False, -1
        except UnicodeDecodeError:
            yield chunk.decode(encoding, errors="replace"), True, -1


class _Peekable:
    """An iterator of physical lines that can look ahead without consuming."""

    def __init__(self, lines: Iterator[tuple[str, bool, int]]) -> None:
        self.lines = lines
        self.ahead: deque[tuple[str, bool, int]] = deque()

    def __iter__(self) -> _Peekable:
        return self

    def __next__(self) -> tuple[str, bool, int]:
        return self.ahead.popleft() if self.ahead else next(self.lines)

    def peek(self, k: int) -> tuple[str, bool, int] | None:
        """The k-th line after the current one (0: the next), or None at the end."""
        while len(self.ahead) <= k:
            item = next(self.lines, None)
            if item is None:
                return None
            self.ahead.append(item)
        return self.ahead[k]


def iter_csv(path: Path, encoding: str = "utf-8") -> Iterator[RawRecord]:
    """CSV records, one at a time. Records are assembled from physical lines by their quote
    state, so a broken quote costs one quarantined record, never the records after it. While
    a quote is open, the next line continues the record when the quote closes on it or a few
    lines later (LOOKAHEAD_LINES) into a record of the header's width with nothing glued after
    the closing quote (a comment over several lines); otherwise, when that line is a complete
    record on its own, the open record is rejected as `unterminated_quote` and reading goes on
    with that line."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    encoding = file_encoding(path, encoding)
    header, delimiter = _read_header(path, encoding)
    if not header:
        return
    width = len(header)
    # A header cell left empty (named column_N): a trailing ";" some tools write on the header
    # but not on the rows, or on the rows but not on the header, is an empty column either way.
    unnamed = {i for i, name in enumerate(header) if name == f"column_{i + 1}"}
    # How many empty fields past the header the file's rows end with, as its first record
    # does (None: no record yet). A row with more is broken, not padded: « 3;Colis arrivé;
    # mais cassé; » (an unquoted ";" in the text, the last column empty) was stored as
    # « Colis arrivé », the rest read as the next column.
    trailing: int | None = None

    def extra(row: list[str]) -> int:
        """The empty fields `row` has past the header's width (0 when one is not empty)."""
        return 0 if any(cell.strip() for cell in row[width:]) else max(0, len(row) - width)

    def fitted(row: list[str]) -> list[str]:
        """`row` at the header's width when it differs only by empty trailing columns."""
        if len(row) > width and extra(row) and trailing in (None, extra(row)):
            return row[:width]
        if len(row) < width and unnamed.issuperset(range(len(row), width)):
            return row + [""] * (width - len(row))
        return row

    with path.open("rb") as fh:
        lines = _Peekable(_physical_lines(fh, encoding))
        # Skip blank lines before the header, then the header itself (it may span lines).
        in_quote = False
        line_no = 0  # physical lines read (the record's first one is `start`)
        start = 0
        for line, _bad, quotes in lines:
            line_no += 1
            if not in_quote and (not line.strip() or _EXCEL_SEP.match(line)):
                continue
            if quotes >= 0:
                in_quote = in_quote ^ (quotes % 2 == 1)
            else:
                in_quote = _quote_state(line, delimiter, in_quote)
            if not in_quote:
                break
        number = 0
        buffer: list[str] = []
        bad = oversized = False
        size = 0
        confirmed = 0  # lines ahead known to continue the open record

        def closes_into_record(line: str) -> bool:
            """While a quote is open: does it close on `line` or within the next few lines,
            with nothing glued after the closing quote, into a record of `width` fields?"""
            nonlocal confirmed
            if confirmed > 0:  # an earlier look ahead already saw it close
                confirmed -= 1
                return True
            if oversized or size > LOOKAHEAD_CHARS:
                return False  # too big to look through
            parts, state, k, total = [*buffer], True, 0, size
            current: tuple[str, bool, int] | None = (line, False, -1)
            while current is not None and k <= LOOKAHEAD_LINES:
                part, _bad, quotes = current
                total += len(part)
                if quotes >= 0 or total > LOOKAHEAD_CHARS:
                    return False
                state, stray = _scan_quotes(part, delimiter, state)
                if stray:
                    return False
                parts.append(part)
                if not state:
                    try:
                        rows = list(csv.reader(io.StringIO("".join(parts)), delimiter=delimiter))
                    except csv.Error:
                        return False
                    if len(rows) == 1 and len(fitted(rows[0])) == width:
                        confirmed = k
                        return True
                    return False
                current = lines.peek(k)
                k += 1
            return False

        def starts_a_record(line: str) -> bool:
            """While a quote is open: does `line` rather begin a new record (so the quote
            before it was never closed)? No if the quote closes into a whole record on it or
            soon after; yes if it is a whole record on its own, or if the open quote would
            close on it with text glued after the closing quote."""
            if _scan_quotes(line, delimiter, True)[1]:
                return True
            if closes_into_record(line):
                return False
            if _quote_state(line, delimiter, False):
                return False
            if width < 2:
                return True
            return len(fitted(next(csv.reader([line], delimiter=delimiter), []))) == width

        def emit() -> RawRecord | None:
            nonlocal number, trailing
            text = "".join(buffer)
            if not text.strip():
                return None
            number += 1
            raw = text.rstrip("\r\n")
            if oversized:
                return RawRecord(
                    number,
                    None,
                    raw[:RAW_KEEP],
                    ("oversized_field", None, f"a field over {CSV_FIELD_LIMIT:,} bytes"),
                    fh.tell(),
                    start,
                )
            try:
                rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
            except csv.Error as exc:
                error = ("csv_error", None, str(exc)[:150])
                return RawRecord(number, None, raw[:RAW_KEEP], error, fh.tell(), start)
            row = rows[0] if len(rows) == 1 else []
            if not any(cell.strip() for cell in row):
                number -= 1
                return None
            raw = delimiter.join(row)
            if bad:
                return RawRecord(
                    number,
                    None,
                    raw,
                    ("encoding_error", None, f"bytes that are not {encoding}"),
                    fh.tell(),
                    start,
                )
            if trailing is None:
                trailing = extra(row)
            row = fitted(row)
            if len(row) != width:
                return RawRecord(
                    number,
                    None,
                    raw,
                    ("wrong_field_count", None, f"{len(row)} fields, the header has {width}"),
                    fh.tell(),
                    start,
                )
            fields = dict(zip(header, row, strict=True))
            return RawRecord(number, fields, raw, None, fh.tell(), start)

        def unterminated() -> RawRecord:
            nonlocal number
            number += 1
            raw = "".join(buffer)[:RAW_KEEP].rstrip("\r\n")
            return RawRecord(
                number,
                None,
                raw,
                ("unterminated_quote", None, "a quoted field is never closed"),
                fh.tell(),
                start,
            )

        in_quote = False
        for line, line_bad, quotes in lines:
            line_no += 1
            line_big = quotes >= 0
            if in_quote and (starts_a_record(line) or len(buffer) >= MAX_RECORD_LINES):
                yield unterminated()
                buffer, bad, oversized, size, in_quote = [], False, False, 0, False
            if not in_quote:
                confirmed = 0
            if not in_quote and not buffer and not line.strip():
                continue
            if line_big:  # only its start was kept: the quote count says where it ends
                in_quote = in_quote ^ (quotes % 2 == 1)
            else:
                in_quote = _quote_state(line, delimiter, in_quote)
            if not buffer:
                start = line_no
            size += len(line)
            bad = bad or line_bad
            if line_big or size > CSV_FIELD_LIMIT:
                oversized = True
                if len(buffer) < 2:  # keep the start for the quarantine, drop the rest
                    buffer.append(line[:RAW_KEEP])
            else:
                buffer.append(line)
            if not in_quote:
                record = emit()
                buffer, bad, oversized, size = [], False, False, 0
                if record is not None:
                    yield record
        if buffer and in_quote:
            yield unterminated()


def _json_array_file(fh: BinaryIO) -> bool:
    """A JSON array document ("[" alone, or a first line that is a list of objects), as
    opposed to a JSONL feed whose first row happens to be an array (one rejected row)."""
    fh.seek(0)
    first = b""
    while not first.strip():
        first = fh.readline(1 << 20)
        if not first:
            return False
    try:
        value = json.loads(first.removeprefix(BOM))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True
    except RecursionError:  # one row nested too deep to parse: a JSONL feed, that row rejected
        return False
    return isinstance(value, list) and any(isinstance(v, dict) for v in value)


def iter_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[RawRecord]:
    encoding = file_encoding(path, encoding)
    with path.open("rb") as fh:
        head = fh.read(4096)
        _check_encoding(head, path)
        if head.lstrip(BOM).lstrip().startswith(b"[") and _json_array_file(fh):
            raise ReaderError(
                f"{path}: a JSON array is not supported; write one JSON object per line (JSONL), "
                "e.g. `jq -c '.[]' in.json > out.jsonl`"
            )
        if b"\r" in head and b"\n" not in head:
            _cr_only(head.decode(encoding, errors="replace"), path)
        if head.lstrip(BOM).lstrip().split(b"\n", 1)[0].strip() == b"{":
            raise ReaderError(
                f"{path}: a JSON document spread over several lines is not JSONL; write one "
                "object per line, e.g. `jq -c . in.json > out.jsonl`"
            )
        fh.seek(0)
        lines = _Lines(fh, encoding)
        number = 0
        for line_no, line in enumerate(lines, start=1):
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
                    line_no,
                )
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield RawRecord(
                    number, None, raw, ("invalid_json", None, exc.msg), fh.tell(), line_no
                )
                continue
            except RecursionError:
                # Arrays or objects nested ~1000 deep: the parser gives up. One rejected row
                # (the same reason as a row that parses but nests past MAX_NESTING).
                detail = "lists or objects nested too deep to parse"
                yield RawRecord(number, None, raw, ("too_deep", None, detail), fh.tell(), line_no)
                continue
            if not isinstance(obj, dict):
                yield RawRecord(
                    number,
                    None,
                    raw,
                    ("not_an_object", None, f"got {type(obj).__name__}"),
                    fh.tell(),
                    line_no,
                )
                continue
            yield RawRecord(number, obj, raw, None, fh.tell(), line_no)


class _Workbook:
    """`with _Workbook(path) as book`: `book.rows()` are the first worksheet's non-empty rows
    as (1-based row of the sheet, cell values), streamed (openpyxl read-only: one row in
    memory at a time); the workbook is closed on exit (read-only mode keeps the file open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: BinaryIO | None = None
        self.book: Any = None
        self.sheet: Any = None
        self.max_row = 0  # the sheet's size as it declares it (0: not declared)

    def __enter__(self) -> _Workbook:
        from openpyxl import load_workbook

        # Opened here, not by name: openpyxl refuses a name without an Excel extension
        # (stdin's spooled copy, an export saved as ".csv").
        self.fh = fh = self.path.open("rb")
        try:
            # data_only: a formula's last computed value, not its text.
            self.book = load_workbook(fh, read_only=True, data_only=True)
            self.sheet = self.book.worksheets[0]
            self.max_row = int(self.sheet.max_row or 0)
        except Exception as exc:  # a damaged or half-copied workbook: openpyxl's errors vary
            fh.close()
            raise self._unreadable(exc) from None
        return self

    def _unreadable(self, exc: Exception) -> ReaderError:
        return ReaderError(
            f"{self.path}: unreadable .xlsx workbook ({type(exc).__name__}: "
            f"{str(exc)[:150]}); open it in Excel and save it again, or export it as CSV"
        )

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        rows = enumerate(self.sheet.iter_rows(values_only=True), start=1)
        while True:
            # The sheet is parsed as it is read: a damaged sheet (its XML cut short, a member
            # failing its CRC) fails here, after the header, not when the workbook opens.
            try:
                line, row = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # openpyxl's, ElementTree's and zipfile's errors vary
                raise self._unreadable(exc) from None
            if any(not _empty_cell(cell) for cell in row):
                yield line, row

    def __exit__(self, *exc: object) -> None:
        if self.book is not None:
            self.book.close()
        if self.fh is not None:
            self.fh.close()


def _empty_cell(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _trimmed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """`row` without its empty cells at the end (a sheet's rows are as wide as its widest)."""
    end = len(row)
    while end and _empty_cell(row[end - 1]):
        end -= 1
    return row[:end]


def _header_cell(value: Any) -> str:
    return "" if value is None else str(value)


def _cell(value: Any) -> Any:
    """A cell as a field: dates stay datetimes, numbers numbers (a whole float as an int:
    an id typed 1042 is not "1042.0"), an empty cell the empty string a CSV gives."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _raw_cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return "" if value is None else str(value)


def iter_xlsx(path: Path) -> Iterator[RawRecord]:
    """The first worksheet's rows as records: the first non-empty row is the header (names
    as a CSV's are made unique), empty rows are skipped, a row with a value past the header's
    columns is `wrong_field_count` (as in a CSV). `offset` estimates the bytes read from the
    row's place in the sheet (the file is compressed)."""
    size = path.stat().st_size
    with _Workbook(path) as book:
        header: list[str] = []
        width = 0
        number = 0
        for line, row in book.rows():
            if not header:
                header = _unique_names([_header_cell(cell) for cell in _trimmed(row)])
                width = len(header)
                continue
            number += 1
            cells = _trimmed(row)
            raw = ";".join(_raw_cell(cell) for cell in cells)[:RAW_KEEP]
            offset = min(size, size * line // book.max_row) if book.max_row else 0
            if len(cells) > width:
                error = ("wrong_field_count", None, f"{len(cells)} fields, the header has {width}")
                yield RawRecord(number, None, raw, error, offset, line)
                continue
            values = [_cell(cell) for cell in cells] + [""] * (width - len(cells))
            yield RawRecord(number, dict(zip(header, values, strict=True)), raw, None, offset, line)


def iter_records(path: Path, fmt: Format, encoding: str = "utf-8") -> Iterator[RawRecord]:
    if fmt == "xlsx":
        return iter_xlsx(path)  # no encoding: the workbook's XML says its own
    return iter_csv(path, encoding) if fmt == "csv" else iter_jsonl(path, encoding)


def check_encoding_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ReaderError(f"unknown encoding {encoding!r} (try utf-8, cp1252, latin-1)") from None

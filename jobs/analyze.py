"""`verbatim analyze`: stream a JSONL or CSV file through the analyzer, batch by batch.

Every input field is kept, PII-masked as ingest and `POST /analyze` mask (the text before its
analysis, so that evidence spans index the text written; keys too; the `id` as given) unless
the caller passes no masker; `sentiment` and `themes` (+ `severity`, `language` when the
input has no such field) are added. Bad lines are written back with an `error` field, never
dropped: a line that is not UTF-8 (a Latin-1 export) is one such line, not silently garbled
text.
A UTF-8 BOM and CRLF line ends are fine. CSV (`,` `;` tab `|`, as `verbatim ingest` reads it)
is written out as JSONL, one object per row with the CSV's columns.

The output is written whole or not at all: a temporary file next to it, renamed at the end.
An interrupted run (Ctrl-C, SIGTERM) leaves the previous output as it was; run it again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from core.analysis import analysis_record
from nlp.analyzer import Analyzer
from nlp.errors import VerbatimError
from nlp.text.normalize import normalize_text

if TYPE_CHECKING:
    from nlp.text import PiiMasker

BOM = "\ufeff"
# Echoed as given when masking: what joins an output line to its input line.
UNMASKED = ("id",)


class OutputError(VerbatimError, ValueError):
    """The output path cannot be used (the input file itself, a directory, a missing one)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the output is being written (exit 143 rather than 130)."""


class InputError(VerbatimError, ValueError):
    """The input as a whole cannot be analysed (no text column, binary file...)."""


def check_not_input(input_path: Path, output: Path) -> None:
    """Refuse writing over the input: it would be gone before (or while) it is read."""
    try:
        same = output.exists() and os.path.samefile(input_path, output)
    except OSError:
        same = False
    if same:
        raise OutputError(
            f"the output {output} is the input file itself: write to another file "
            "(the input would be overwritten)"
        )


def is_stdout(path: Path) -> bool:
    """`-`, or a path naming this process's standard output (`/dev/stdout`, `/dev/fd/1`):
    written through it, not reopened (that truncated a `>> log` file) nor renamed over (the
    output redirected to a file: the file was replaced, what went to stdout after it lost)."""
    return str(path) == "-" or standard_stream(path) is sys.stdout


def standard_stream(path: Path) -> IO[str] | None:
    """sys.stdout or sys.stderr when `path` names the file or device this process's standard
    output or error is open on (`/dev/stderr`, `/dev/fd/2`, the `2>> log` file itself), else
    None. Such an output is written through the stream, where it stands (`>>` appends):
    `-o /dev/stderr 2>> log` replaced the log with the output, its earlier lines lost."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            if os.path.samestat(st, os.fstat(stream.fileno())):
                return stream
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            continue
    return None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[str]]:
    """A text file that appears at `path` only once complete: written to a temporary file in
    the same folder, renamed over `path` at the end. On any error or interruption (Ctrl-C,
    SIGTERM: turned into KeyboardInterrupt for the time of the block) the temporary file is
    removed and `path` is left as it was. A device or a named pipe (`-o /dev/stdout`,
    `/dev/null`, a FIFO) is written in place: renaming over it would replace it with a regular
    file. A symbolic link is kept: the file it points to is the one replaced. The file this
    process's stdout or stderr is open on (`-o /dev/stderr 2>> log`) is written through that
    stream (`standard_stream`). A directory, or a directory that does not exist (a link into
    one), raises OutputError."""
    stream = standard_stream(path)
    if stream is not None:
        yield stream
        stream.flush()
        return
    if path.is_dir():  # a link to a folder too: not IsADirectoryError at the end of the work
        raise OutputError(f"the output {path} is a directory: name a file")
    special = path.exists() and not path.is_file()
    if path.is_symlink() and not special:
        target = Path(os.path.realpath(path))
        if not target.parent.is_dir():
            raise OutputError(
                f"the output {path} is a link to {target}, in a directory that does not exist"
            )
        path = target
    elif not special and not path.parent.is_dir():
        raise OutputError(f"the output directory {path.parent} does not exist")
    tmp = path if special else path.with_name(f".{path.name}.{os.getpid()}.partial")
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(_signum: int, _frame: Any) -> None:
            raise Terminated

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            yield fh
            fh.flush()
            if not special:  # a pipe cannot be synced
                os.fsync(fh.fileno())
        if not special:
            os.replace(tmp, path)
    except BaseException:
        if not special:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@dataclass
class AnalyzeSummary:
    total: int = 0  # total == analyzed + errors
    analyzed: int = 0
    errors: int = 0
    error_lines: list[int] = field(default_factory=list)  # 1-based line numbers (first 20)

    def note_error(self, line_no: int) -> None:
        self.errors += 1
        if len(self.error_lines) < 20:
            self.error_lines.append(line_no)


_ID = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')


def _salvage_id(line: str) -> dict[str, Any]:
    """Keep the id of a broken line when it can still be read, so the error can be traced."""
    m = _ID.search(line)
    if m:
        try:
            return {"id": json.loads(m.group(1))}
        except json.JSONDecodeError:
            pass
    return {}


# A JSON escape of a UTF-16 surrogate: valid in pairs (an escaped emoji), not alone.
_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")


def _writable(row: Any) -> bool:
    """Whether `row` can be written back as UTF-8 JSON (no lone surrogate anywhere in it)."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _broken(line: str) -> dict[str, Any]:
    """What is kept of a line that cannot be read or written back: its id, its raw text."""
    kept = _salvage_id(line)
    return {**(kept if _writable(kept) else {}), "raw": line[:2000]}


def _parse_line(line: str, text_field: str) -> tuple[dict[str, Any], str | None]:
    """(record, error). The record is what we could recover (at least the raw line)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return _broken(line), f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return _broken(line), "invalid JSON: nested too deeply"
    if _SURROGATE_ESCAPE.search(line) and not _writable(row):
        # "\ud800" alone decodes to a character UTF-8 cannot write: the whole output would stop.
        return _broken(line), "encoding error: a lone UTF-16 surrogate escape (like \\ud800)"
    if not isinstance(row, dict):
        return {"raw": row}, "line is not a JSON object"
    if text_field not in row:
        return row, f"missing field {text_field!r}"
    text = row[text_field]
    if not isinstance(text, str):
        return row, f"field {text_field!r} must be a string, got {type(text).__name__}"
    if _blank(text):
        return row, f"field {text_field!r} is empty"
    return row, None


def _blank(text: str) -> bool:
    """No text once normalised, as `verbatim ingest` sees it: only spaces, zero-width or
    control characters (the analyzer scored such a line, "positive 0.92")."""
    return not normalize_text(text).strip()


def _masked(
    row: dict[str, Any], mask: PiiMasker, text: tuple[str, str] | None = None
) -> dict[str, Any]:
    """`row` as written out: every string in it masked, keys too, as `POST /analyze` echoes
    its items, but `UNMASKED`; `text`: (its field, that field already masked)."""
    from core.masking import masked_key
    from nlp.text import mask_nested

    kept = {k: row[k] for k in UNMASKED if k in row}
    if text is not None:
        kept[text[0]] = text[1]
    # The kept values out of the masking (the text: one NER call per batch, not two).
    out = mask_nested(
        {k: None if k in kept else v for k, v in row.items()},
        mask.mask,
        # The masker itself: `masked_key` remembers a CSV's column names per masker, and
        # `mask.mask` is a new bound method at each call (its cache never hit).
        mask_key=lambda k: k if k in kept else masked_key(k, mask),
    )
    return {k: kept.get(k, v) for k, v in out.items()}


def _merge(row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["sentiment"] = result["sentiment"]
    out["themes"] = result["themes"]
    for extra in ("severity", "language"):
        if extra not in out:
            out[extra] = result[extra]
    return out


def iter_lines(stream: Iterable[str]) -> Iterator[tuple[int, str]]:
    for line_no, line in enumerate(stream, start=1):
        stripped = line.strip().lstrip(BOM).strip() if line_no == 1 else line.strip()
        if stripped:
            yield line_no, stripped


def _encoding_hint(encoding: str) -> str:
    return (
        f"encoding error: bytes that are not {encoding} (save the file as UTF-8, "
        "or give its encoding: --encoding cp1252)"
    )


def iter_binary_lines(
    stream: BinaryIO, encoding: str = "utf-8"
) -> Iterator[tuple[int, str, str | None]]:
    """(line number, stripped text, error): a line that does not decode comes back decoded
    with replacement characters and an error, instead of garbled text analysed as good."""
    for line_no, raw in enumerate(stream, start=1):
        if line_no == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            text, err = raw.decode(encoding), None
        except UnicodeDecodeError:
            text, err = raw.decode(encoding, errors="replace"), _encoding_hint(encoding)
        stripped = text.strip()
        if stripped:
            yield line_no, stripped, err


def analyze_stream(
    analyzer: Analyzer,
    src: Iterable[str],
    dst: IO[str],
    *,
    batch_size: int = 256,
    text_field: str = "text",
    max_chars: int = 20_000,
    mask: PiiMasker | None = None,
) -> AnalyzeSummary:
    """Analyze JSONL from `src` into `dst`, keeping order; only one batch is held in memory."""
    return _analyze_records(
        analyzer,
        ((n, *_parse_line(line, text_field)) for n, line in iter_lines(src)),
        dst,
        batch_size=batch_size,
        text_field=text_field,
        max_chars=max_chars,
        mask=mask,
    )


def _jsonl_records(
    lines: Iterable[tuple[int, str, str | None]], text_field: str
) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    for line_no, line, err in lines:
        if err is not None:
            yield line_no, _broken(line), err
        else:
            yield (line_no, *_parse_line(line, text_field))


def _analyze_records(
    analyzer: Analyzer,
    records: Iterable[tuple[int, dict[str, Any], str | None]],
    dst: IO[str],
    *,
    batch_size: int = 256,
    text_field: str = "text",
    max_chars: int = 20_000,
    mask: PiiMasker | None = None,
) -> AnalyzeSummary:
    summary = AnalyzeSummary()
    batch: list[tuple[int, dict[str, Any], str | None]] = []

    def flush() -> None:
        if mask is not None:  # before the analysis, as ingest and POST /analyze do
            texts = mask.mask_many(row[text_field] for _, row, err in batch if err is None)
            read = iter(texts)
            batch[:] = [
                (n, _masked(row, mask, None if err else (text_field, next(read))), err)
                for n, row, err in batch
            ]
        good = [(i, row) for i, (_, row, err) in enumerate(batch) if err is None]
        texts = [row[text_field][:max_chars] for _, row in good]
        results: dict[int, dict[str, Any]] = {}
        if texts:
            try:
                docs = analyzer.analyze(texts)
                results = {i: analysis_record(doc) for (i, _), doc in zip(good, docs, strict=True)}
            except Exception:  # noqa: BLE001 - retry one by one so one bad text can't sink all
                for i, row in good:
                    try:
                        doc = analyzer.analyze([row[text_field][:max_chars]])[0]
                        results[i] = analysis_record(doc)
                    except Exception as exc:  # noqa: BLE001
                        batch[i] = (batch[i][0], row, f"analysis failed: {exc}")
        for i, (line_no, row, err) in enumerate(batch):
            if err is None and i in results:
                dst.write(json.dumps(_merge(row, results[i]), ensure_ascii=False) + "\n")
                summary.analyzed += 1
            else:
                out = dict(row)
                out["error"] = err or "analysis failed"
                out.setdefault("line", line_no)
                dst.write(json.dumps(out, ensure_ascii=False) + "\n")
                summary.note_error(line_no)
        batch.clear()

    for line_no, row, err in records:
        summary.total += 1
        batch.append((line_no, row, err))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return summary


def _csv_records(
    path: Path, text_field: str, encoding: str
) -> tuple[str, Iterator[tuple[int, dict[str, Any], str | None]]]:
    """(the text column, records) of a CSV file, read as `verbatim ingest` reads it. When the
    file has no `text_field` column and it is the default "text", ingest's names for a text
    column (commentaire, avis, verbatim...) are tried."""
    from jobs.ingest import AUTO_COLUMNS
    from jobs.readers import ReaderError, columns, iter_csv

    try:
        names = columns(path, "csv", encoding)
    except ReaderError as exc:
        raise InputError(str(exc)) from None
    column = text_field
    if names and text_field not in names and text_field == "text":
        lowered = {n.lower().strip(): n for n in names}
        column = next((lowered[c] for c in AUTO_COLUMNS["text"] if c in lowered), text_field)
    if names and column not in names:
        raise InputError(
            f"{path}: no {text_field!r} column; name the text column with --text-field "
            f"(file columns: {', '.join(names)})"
        )

    def records() -> Iterator[tuple[int, dict[str, Any], str | None]]:
        try:
            for rec in iter_csv(path, encoding):
                line = rec.line or rec.number  # the file's line (a header, a `sep=` before)
                if rec.fields is None:
                    reason, _f, detail = rec.error or ("bad_row", None, "unreadable")
                    if reason == "encoding_error":
                        yield line, {"raw": rec.raw}, _encoding_hint(encoding)
                    else:
                        yield line, {"raw": rec.raw}, f"{reason}: {detail}"
                    continue
                row: dict[str, Any] = dict(rec.fields)
                if _blank(str(row.get(column) or "")):
                    yield line, row, f"field {column!r} is empty"
                else:
                    yield line, row, None
        except ReaderError as exc:
            raise InputError(str(exc)) from None

    return column, records()


def analyze_file(
    analyzer: Analyzer,
    input_path: Path,
    output_path: Path,
    *,
    batch_size: int = 256,
    text_field: str = "text",
    max_chars: int = 20_000,
    encoding: str = "utf-8",
    mask: PiiMasker | None = None,
) -> AnalyzeSummary:
    """Analyze a JSONL or CSV file (format from the name, else the content; "-": JSONL on
    stdin) into JSONL at `output_path` ("-": stdout), written whole or not at all (see
    `atomic_output`). `mask`: the PII masker of the fields written (None: as given)."""

    from jobs.readers import (
        ReaderError,
        check_encoding_name,
        check_text_file,
        detect_format,
        iter_jsonl,
    )

    try:
        encoding = check_encoding_name(encoding)
    except ReaderError as exc:
        raise InputError(str(exc)) from None
    stdin = str(input_path) == "-"
    fmt = "jsonl"
    if not stdin:
        check_not_input(input_path, output_path)
        try:
            check_text_file(input_path)
            fmt = detect_format(input_path)
            if fmt == "xlsx":  # read as JSONL it was a row of garbage per line of the archive
                raise ReaderError(
                    f"{input_path}: an Excel workbook; `verbatim analyze` reads CSV or JSONL "
                    "(export it as CSV, or load it with `verbatim ingest`)"
                )
            if fmt == "jsonl":  # a JSON array or a pretty-printed document: one clear error
                next(iter_jsonl(input_path, encoding), None)
        except ReaderError as exc:
            raise InputError(str(exc)) from None
    out: contextlib.AbstractContextManager[IO[str]] = (
        contextlib.nullcontext(sys.stdout) if is_stdout(output_path) else atomic_output(output_path)
    )
    options: dict[str, Any] = {"batch_size": batch_size, "max_chars": max_chars, "mask": mask}
    with out as dst:
        if fmt == "csv":
            column, records = _csv_records(input_path, text_field, encoding)
            return _analyze_records(analyzer, records, dst, text_field=column, **options)
        with contextlib.ExitStack() as stack:
            src = sys.stdin.buffer if stdin else stack.enter_context(input_path.open("rb"))
            lines = _jsonl_records(iter_binary_lines(src, encoding), text_field)
            return _analyze_records(analyzer, lines, dst, text_field=text_field, **options)

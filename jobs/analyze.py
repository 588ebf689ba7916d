"""`verbatim analyze`: stream a JSONL file through the analyzer, batch by batch.

Every input field is kept; `sentiment` and `themes` (+ `severity`, `language` when the input
has no such field) are added. Bad lines are written back with an `error` field, never dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.analysis import analysis_record
from nlp.analyzer import Analyzer


@dataclass
class AnalyzeSummary:
    total: int = 0
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
    if not text.strip():
        return row, f"field {text_field!r} is empty"
    return row, None


def _merge(row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["sentiment"] = result["sentiment"]
    out["themes"] = result["themes"]
    for extra in ("severity", "language"):
        if extra not in out:
            out[extra] = result[extra]
    return out


def iter_lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for line_no, line in enumerate(stream, start=1):
        stripped = line.strip()
        if stripped:
            yield line_no, stripped


def analyze_stream(
    analyzer: Analyzer,
    src: IO[str],
    dst: IO[str],
    *,
    batch_size: int = 256,
    text_field: str = "text",
    max_chars: int = 20_000,
) -> AnalyzeSummary:
    """Analyze JSONL from `src` into `dst`, keeping order; only one batch is held in memory."""
    summary = AnalyzeSummary()
    batch: list[tuple[int, dict[str, Any], str | None]] = []

    def flush() -> None:
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
                        results[i] = analysis_record(analyzer.analyze([row[text_field]])[0])
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

    for line_no, line in iter_lines(src):
        summary.total += 1
        row, err = _parse_line(line, text_field)
        batch.append((line_no, row, err))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return summary


def analyze_file(
    analyzer: Analyzer,
    input_path: Path,
    output_path: Path,
    *,
    batch_size: int = 256,
    text_field: str = "text",
    max_chars: int = 20_000,
) -> AnalyzeSummary:
    with (
        input_path.open(encoding="utf-8", errors="replace") as src,
        output_path.open("w", encoding="utf-8") as dst,
    ):
        return analyze_stream(
            analyzer, src, dst, batch_size=batch_size, text_field=text_field, max_chars=max_chars
        )

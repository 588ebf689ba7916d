"""`verbatim corrections export|import`: the analysts' corrections as a labelled file.

The export writes the rows `verbatim evaluate --data`, `verbatim train themes --examples` and
`verbatim train sentiment --data` read (`id`, `text`, `sentiment`, `themes: {id: polarity}`),
or a CSV to review; the import applies such a file on another install, each row matched to
its verbatim by source and key, else by its text.
"""

from __future__ import annotations

import getpass
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import typer

from core.cli import bootstrap, check_output_file, fail, not_a_file, parse_day

corrections_app = typer.Typer(
    help="The analysts' corrections: export them (labelled JSONL, CSV), import them.",
    no_args_is_help=True,
)

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


def _output_format(format_: str | None, output: Path | None) -> str:
    """--format, else -o's extension, else JSONL; an extension that is neither is refused
    (`-o corrections.xlsx` would have held JSONL)."""
    if format_ is not None:
        if format_ not in ("jsonl", "csv"):
            raise fail("--format must be jsonl or csv")
        return format_
    suffix = output.suffix.lower() if output is not None else ""
    if suffix and suffix not in FORMATS:
        raise fail(f"give -o a .jsonl or .csv file, or --format jsonl|csv (got {output})")
    return FORMATS.get(suffix, "jsonl")


@corrections_app.command("export")
def export(
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="file: .jsonl (labelled rows, as `evaluate --data` and `train` read them) or .csv "
        "(to review); default: JSONL on stdout",
    ),
    format_: str | None = typer.Option(
        None, "--format", "-f", help="jsonl | csv (default: from -o's extension, else jsonl)"
    ),
    since: str | None = typer.Option(
        None, help="only verbatims last corrected on or after this day (YYYY-MM-DD, UTC)"
    ),
    theme: str | None = typer.Option(
        None, help="only verbatims an analyst put this theme on (id or former id)"
    ),
    label: str | None = typer.Option(
        None,
        help="sentiment | themes: only that kind of fix, and only that label in each row",
    ),
) -> None:
    """Write every corrected verbatim with the analysts' labels (text as stored: PII-masked).

    A row has `sentiment` where an analyst fixed it and `themes` where one fixed them, named
    as the database's current taxonomy names them (a theme removed or retired since is left
    out, and said)."""
    from core.corrections import LABELS, corrected_verbatims
    from core.db import session_scope
    from core.exports import corrections_table, to_csv
    from core.taxonomy_store import for_job
    from jobs.analyze import atomic_output

    fmt = _output_format(format_, output)
    if output is not None:
        check_output_file(output)
    if label is not None and label not in LABELS:
        raise fail(f"--label must be one of {', '.join(LABELS)}")
    first = parse_day(since, "--since")
    ctx = bootstrap()
    tax = for_job(ctx.sessions, ctx.settings).taxonomy
    with session_scope(ctx.sessions) as session:
        rows = corrected_verbatims(session, tax, since=first, theme=theme, label=label)
    if fmt == "csv":
        body = to_csv(corrections_table(rows))
    else:
        body = "".join(json.dumps(r.as_example(), ensure_ascii=False) + "\n" for r in rows)
    if output is None:
        typer.echo(body, nl=False)
    else:
        # utf-8-sig for the CSV, as the API's: Excel reads the accents right.
        with atomic_output(output) as fh:
            fh.write("\ufeff" + body if fmt == "csv" else body)
    left_out = Counter(t for r in rows for t in r.left_out)
    if left_out:  # those rows now read "not this theme": said, not silent
        shown = ", ".join(f"{t} ({n})" for t, n in left_out.most_common())
        typer.echo(
            f"warning: corrected themes that taxonomy {tax.name!r} has removed or retired "
            f"since were left out: {shown}",
            err=True,
        )
    sentiments = sum(r.sentiment is not None for r in rows)
    themed = sum(r.themes is not None for r in rows)
    typer.echo(
        f"{len(rows)} corrected verbatim(s) ({sentiments} sentiment, {themed} themes)"
        + (f" -> {output}" if output is not None else ""),
        err=True,
    )


def _labels(row: dict[str, Any], where: str) -> tuple[str | None, dict[str, str] | None]:
    from jobs.evaluate import LabelError, checked_sentiment, gold_themes

    try:
        return checked_sentiment(row), gold_themes(row)
    except LabelError as exc:
        raise fail(f"{where}: {exc}") from None


@corrections_app.command("import")
def import_(
    path: Path = typer.Argument(
        ..., help="labelled JSONL (`verbatim corrections export`, or id/text/sentiment/themes)"
    ),
    author: str | None = typer.Option(
        None, help="who makes the corrections (default: cli:<OS user>)"
    ),
) -> None:
    """Apply a labelled file as corrections (one transaction; the days are re-aggregated).

    Each row is matched to a stored verbatim by `source` and `dedup_key` (an export of
    Verbatim), else by its text (`content_hash`, or the text as ingested): a row that finds
    none, or several verbatims with its text, is counted and left out. A row whose labels
    are already the verbatim's corrected ones stores nothing (importing twice is harmless)."""
    from sqlalchemy import select

    from core.aggregate import aggregate
    from core.corrections import CorrectionError, apply_correction
    from core.db import lock_aggregates, session_scope
    from core.models import Correction, Feedback
    from core.store import key_text, sha256, text_hash
    from core.taxonomy_store import for_job

    if not path.is_file():
        raise fail(not_a_file(path, "corrections file"))
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}") from None
    ctx = bootstrap()
    tax = for_job(ctx.sessions, ctx.settings).taxonomy
    who = author or f"cli:{getpass.getuser()}"
    counts: Counter[str] = Counter()
    days: set[date] = set()
    with session_scope(ctx.sessions) as session:
        lock_aggregates(session)  # before apply_correction's row locks, as the API
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise fail(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise fail(f"{where}: expected an object with a 'text'")
            sentiment, themes = _labels(row, where)
            if sentiment is None and themes is None:
                counts["unlabelled"] += 1
                continue
            for key in themes or {}:  # refused even on a row that finds no verbatim here
                known = tax.resolve(key)
                if known is None or known.retired:
                    raise fail(
                        f"{where}: unknown theme id {key!r} (taxonomy {tax.name!r} has: "
                        f"{', '.join(tax.ids)}); nothing imported"
                    )
            ids: list[int] = []
            if isinstance(row.get("source"), str) and isinstance(row.get("dedup_key"), str):
                ids = list(
                    session.scalars(
                        select(Feedback.id).where(
                            Feedback.source == row["source"],
                            Feedback.dedup_key == row["dedup_key"],
                        )
                    )
                )
            if not ids:
                # A verbatim stored before the text repair (2026-12-06) has the hash of its
                # text unrepaired: « tr&egrave;s » was « not found » after the upgrade.
                hashes = {text_hash(row["text"]), sha256(key_text(row["text"]))}
                if isinstance(row.get("content_hash"), str):
                    hashes.add(row["content_hash"])
                ids = list(
                    session.scalars(select(Feedback.id).where(Feedback.content_hash.in_(hashes)))
                )
            if len(ids) != 1:
                counts["not found" if not ids else "ambiguous"] += 1
                continue
            fixes = session.scalars(
                select(Correction)
                .where(Correction.feedback_id == ids[0])
                .order_by(Correction.id.desc())
            ).all()
            had_sentiment = next((c.sentiment for c in fixes if c.sentiment), None)
            had = next((c.themes for c in fixes if c.themes is not None), None)
            had_themes = None if had is None else {m["theme"]: m["polarity"] for m in had}
            if themes is not None:  # former ids as the stored ones: the current ids
                themes = {tax.current_id(t): p for t, p in themes.items()}
                if had_themes is not None:
                    had_themes = {tax.current_id(t): p for t, p in had_themes.items()}
            if sentiment in (None, had_sentiment) and themes in (None, had_themes):
                counts["unchanged"] += 1
                continue
            note = "; ".join(
                str(x)
                for x in (
                    f"importé de {path.name}",
                    f"par {row['author']}" if isinstance(row.get("author"), str) else None,
                    row.get("note"),
                )
                if x
            )
            try:
                applied = apply_correction(
                    session,
                    ids[0],
                    author=who,
                    taxonomy=tax,
                    sentiment=sentiment,
                    themes=None if themes is None else list(themes.items()),
                    note=note,
                )
            except CorrectionError as exc:  # nothing stored: the file is fixed and run again
                raise fail(f"{where}: {exc}; nothing imported") from None
            days.update(applied.days)
            counts["applied"] += 1
        if days:
            aggregate(session, days=sorted(days))
    typer.echo(
        f"{counts['applied']} correction(s) applied, {counts['unchanged']} already there, "
        f"{counts['not found']} verbatim(s) not found, {counts['ambiguous']} ambiguous (the "
        f"same text stored several times), {counts['unlabelled']} row(s) without a label"
        + (f"; {len(days)} day(s) re-aggregated" if days else "")
    )


def register(app: typer.Typer) -> None:
    app.add_typer(corrections_app, name="corrections")

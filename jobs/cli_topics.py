"""`verbatim topics`: topic discovery over the stored verbatims (heavy imports inside)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from core.cli import bootstrap, fail, parse_day


def _has_embeddings(engine: Any) -> bool:
    from sqlalchemy import select

    from core.models import Embedding

    with engine.connect() as conn:
        return conn.execute(select(Embedding.feedback_id).limit(1)).first() is not None


def _analysis_encoder(settings: Any) -> tuple[Any, str | None]:
    """The encoder `enrich` analysed with (the embedded backend's, its delta applied) and the
    key its stored vectors carry; the plain encoder when the backend has none."""
    from nlp.encoder import load_encoder
    from nlp.sentiment import build_sentiment
    from nlp.themes.embed import fingerprint

    if settings.sentiment_backend != "embedded":
        return load_encoder("embedded", cache_dir=settings.resolved_model_dir), None
    model = build_sentiment(
        "embedded", path=settings.sentiment_model_path, model_dir=settings.resolved_model_dir
    )
    enc = model.encoder  # type: ignore[attr-defined]
    return enc, f"{enc.name}:{fingerprint(enc)}"


def static_cache_path(model_dir: Path, encoder_name: str) -> Path:
    """Where the fast path keeps the piece vectors distilled from an encoder."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_name)
    return model_dir / f"static-{safe}.npz"


def register(app: typer.Typer) -> None:
    @app.command()
    def topics(
        method: str = typer.Option(
            "bertopic",
            help="bertopic (UMAP+HDBSCAN) or fast (static embeddings + mini-batch k-means).",
        ),
        since: str | None = typer.Option(None, help="First day (YYYY-MM-DD) of verbatims."),
        until: str | None = typer.Option(None, help="Last day (inclusive)."),
        max_docs: int | None = typer.Option(None, min=1, help="Only the most recent N."),
        min_topic_size: int | None = typer.Option(None, min=2, help="Smallest topic."),
        n_topics: int | None = typer.Option(
            None, min=2, help="fast: number of clusters (default: about sqrt(N)/3)."
        ),
        taxonomy: str | None = typer.Option(None, help="Taxonomy file or builtin name."),
        encoder: str = typer.Option("embedded", help="Encoder: embedded, a directory or an id."),
        stored: bool = typer.Option(
            True,
            "--stored/--no-stored",
            help="bertopic: reuse the document vectors `enrich` stored (the analysis "
            "encoder's) and encode only the verbatims without one.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Discover topics (French keywords, 3 examples, emerging flag, stable ids) and store
        them with per-verbatim assignments (sizes per day for trends)."""
        from dataclasses import asdict, replace

        from core.settings import load_settings
        from jobs.topics import TopicJobConfig, run_topics
        from nlp.encoder import EncoderBuildError, load_encoder
        from nlp.taxonomy import TaxonomyError, load_taxonomy

        if method not in ("bertopic", "fast"):
            raise fail(f"--method must be bertopic or fast, got {method!r}")
        settings = load_settings()
        tax = None
        if taxonomy is not None:
            try:
                tax = load_taxonomy(taxonomy)
            except TaxonomyError as exc:
                raise fail(str(exc)) from None
        first, last = parse_day(since, "--since"), parse_day(until, "--until")
        if first is not None and last is not None and first > last:
            # The window would be empty: « 0 verbatims in the window » reads as an empty feed.
            raise fail(f"--since {first} is after --until {last}")
        cfg = TopicJobConfig(
            method=method,  # type: ignore[arg-type]
            since=first,
            until=last,
            max_docs=max_docs,
        )
        if min_topic_size is not None:
            cfg = replace(
                cfg,
                bertopic=replace(cfg.bertopic, min_topic_size=min_topic_size),
                fast=replace(cfg.fast, min_topic_size=min_topic_size),
            )
        if n_topics is not None:
            cfg = replace(cfg, fast=replace(cfg.fast, n_topics=n_topics))
        ctx = bootstrap(settings)
        if tax is None:  # the database's current taxonomy, as every job
            from core.taxonomy_store import for_job

            cur = for_job(ctx.sessions, settings)
            tax = cur.taxonomy
            typer.echo(f"taxonomy version {cur.version}", err=True)
        key = None
        try:
            if (
                stored
                and method == "bertopic"
                and encoder == "embedded"
                and _has_embeddings(ctx.engine)
            ):
                enc, key = _analysis_encoder(settings)
            else:
                enc = load_encoder(encoder, cache_dir=settings.resolved_model_dir)
        except (EncoderBuildError, OSError, ValueError) as exc:
            raise fail(f"cannot load encoder {encoder!r}: {exc}", 1) from None
        result = run_topics(
            ctx.sessions,
            encoder=enc,
            taxonomy=tax,
            config=cfg,
            static_cache=static_cache_path(settings.resolved_model_dir, enc.name),
            embedding_key=key,
            language=settings.alert_language,
        )
        if as_json:
            typer.echo(json.dumps(asdict(result), ensure_ascii=False, default=str, indent=1))
            return
        if result.skipped:
            typer.echo(f"topics: nothing written ({result.skipped})")
            return
        timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
        typer.echo(
            f"topics ({result.method}): {result.documents} verbatims, "
            f"{len(result.topics)} topics, {result.outliers} outliers ({timing})"
        )
        if result.closed:
            typer.echo(
                f"{result.closed} incident(s) of topics left without a verbatim closed "
                "(their alerts too)"
            )
        for t in sorted(result.topics, key=lambda t: (not t.is_emerging, -t.size)):
            flag = "EMERGING" if t.is_emerging else (t.theme or "-")
            typer.echo(f"  #{t.id:<4} {t.size:>6}  {t.status:<4}  {flag:<22} {t.label}")

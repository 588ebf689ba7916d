"""Spike and alert commands: `verbatim detect`, `verbatim alert`, `verbatim backtest`.

Heavy modules are imported inside the commands so `verbatim --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from core.cli import bootstrap, check_output_file, fail, not_a_file, parse_day


def _settings() -> Any:
    from core.settings import load_settings

    return load_settings()


def _sessions(settings: Any) -> Any:
    return bootstrap(settings).sessions


def _taxonomy(path: str | None, settings: Any) -> Any:
    from core.taxonomy_default import default_taxonomy
    from nlp.taxonomy import TaxonomyError, load_taxonomy

    try:
        return default_taxonomy(settings) if path is None else load_taxonomy(path)
    except TaxonomyError as exc:
        raise fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def detect(
        day: str | None = typer.Option(None, help="Day to test (default: latest aggregated)."),
        since: str | None = typer.Option(None, help="Test every day from this one to --day."),
        per_channel: bool = typer.Option(False, help="Also one series per channel."),
        taxonomy: str | None = typer.Option(
            None, help="Taxonomy file or builtin name (default: the database's current one)."
        ),
    ) -> None:
        """Detect spikes on every day not evaluated yet; raise/update incidents, queue messages.

        SIGTERM / SIGINT: the day in progress is finished, the next run continues after it
        (exit 143 / 130)."""
        from jobs.detect import run_detect
        from jobs.scheduler import stop_on_signals

        settings = _settings()
        tax = _taxonomy(taxonomy, settings) if taxonomy is not None else None
        with stop_on_signals(second_interrupts=True) as stop:
            result = run_detect(
                settings,
                _sessions(settings),
                day=parse_day(day, "--day"),
                since=parse_day(since, "--since"),
                taxonomy=tax,
                per_channel=per_channel,
                stop=stop,
            )
        typer.echo(f"taxonomy version {result.taxonomy_version}", err=True)
        if not result.days:
            typer.echo("no aggregated data yet: run `verbatim aggregate` first")
            return
        for name, tested_from in sorted(result.warming.items()):
            typer.echo(
                f"source {name!r} connected recently (or back after an outage): held out of "
                f"spike tests until {tested_from} (warm-up; its mentions still count in the "
                "aggregates)"
            )
        for sig in result.signals:
            typer.echo(
                f"{sig.day} {sig.theme} {sig.kind} {sig.severity}: observed "
                f"{sig.observed:.3g} vs expected {sig.expected:.3g} (p={sig.p_value:.1e})"
            )
        typer.echo(
            f"{len(result.signals)} signal(s): {result.new} new alert(s), "
            f"{result.updated} updated, {result.resolved} resolved; "
            f"{len(result.incidents)} incident(s) ({result.historical} historical, never "
            f"sent); {result.queued} message(s) queued"
        )
        if result.stopped:
            raise typer.Exit(stop.exit_code)

    @app.command()
    def alert(
        dry_run: bool = typer.Option(False, "--dry-run", help="Print payloads, send nothing."),
        retry_unknown: bool = typer.Option(
            False,
            "--retry-unknown",
            help="Re-queue messages whose delivery is unknown (sent, no answer) - check Slack "
            "first: they may already be there.",
        ),
        retry_dead: bool = typer.Option(
            False,
            "--retry-dead",
            help="Re-queue messages given up for good (a webhook refused them, or too many "
            "attempts), once the webhook is fixed.",
        ),
    ) -> None:
        """Deliver queued alert messages (and pending digests) to the Slack webhooks of each
        team.

        SIGTERM / SIGINT: the message being posted is finished, the others stay pending for
        the next run (exit 143 / 130)."""
        from jobs import alerts as outbox
        from jobs.scheduler import stop_on_signals

        settings = _settings()
        sessions = _sessions(settings)
        if retry_unknown and not dry_run:
            typer.echo(f"{outbox.retry_unknown(sessions)} unknown message(s) re-queued", err=True)
        if retry_dead and not dry_run:
            typer.echo(f"{outbox.retry_dead(sessions)} dead message(s) re-queued", err=True)
        with stop_on_signals(second_interrupts=True) as stop:
            result = outbox.deliver_pending(
                settings, sessions, dry_run=dry_run, echo=typer.echo, stop=stop
            )
        if dry_run:
            typer.echo(f"dry run: {len(result.printed)} message(s) due, nothing sent", err=True)
            return
        waiting = (
            f"; {result.waiting} waiting, the next due {result.next_due:%Y-%m-%d %H:%M} UTC"
            if result.waiting and result.next_due is not None
            else ""
        )
        typer.echo(
            f"{result.sent} sent, {result.deferred} deferred (retried later), "
            f"{result.dead} failed permanently, {result.unknown} unknown (sent, no answer: "
            f"not re-posted; see --retry-unknown){waiting}"
        )
        if result.stopped:
            raise typer.Exit(stop.exit_code)
        if result.dead:
            raise typer.Exit(1)

    @app.command()
    def backtest(
        feed: Path = typer.Argument(
            ...,
            help="JSONL or CSV feed (read as `verbatim ingest` reads it): id, text, "
            "created_at[, channel...]",
        ),
        output: Path = typer.Option(..., "-o", "--output", help="Alerts JSONL to write."),
        taxonomy: str | None = typer.Option(
            None,
            help="Taxonomy file or builtin name (default: the database's current one when the "
            "database exists, else the taxonomy_path setting).",
        ),
        backend: str | None = typer.Option(None, help="Sentiment backend (default: settings)."),
        updates: bool = typer.Option(False, help="Also write escalation lines (update: true)."),
        per_channel: bool = typer.Option(
            False, help="Also one series per channel (the overall ones are still tested)."
        ),
        encoding: str = typer.Option(
            "utf-8", help="Encoding of the feed, e.g. cp1252 for a Windows export."
        ),
        map_: list[str] = typer.Option(
            None,
            "--map",
            "-m",
            help="field=column pairs, as `verbatim ingest --map`, e.g. "
            "created_at=date_experience,text=avis (the rest is recognised by name)",
        ),
        rating_scale: int = typer.Option(
            5,
            "--rating-scale",
            min=2,
            max=100,
            help="scale of the rating column's bare numbers, as `verbatim ingest --rating-scale`",
        ),
    ) -> None:
        """Replay a feed day by day through analysis + the spike detector; write alerts.

        The feed is read as `verbatim ingest` reads it (JSONL or CSV, same dates, same
        duplicate rule, French rows only in the theme series) and the detector runs with the
        settings `verbatim detect` uses, so both raise the same alerts on the same feed."""
        from jobs.backtest import check_output, run_backtest
        from jobs.ingest import parse_mapping
        from nlp.spikes import DetectorConfig

        if not feed.is_file():
            raise fail(not_a_file(feed, "feed"))
        check_output_file(output)
        check_output(feed, output)
        columns_map = parse_mapping(map_)  # a bad entry before the analyzer loads
        settings = _settings()
        tax = _taxonomy(taxonomy, settings)
        from core.analysis import build_analyzer

        try:
            analyzer = build_analyzer(settings, backend=backend, taxonomy=tax)
        except (ValueError, OSError, ImportError) as exc:  # `--backend lexcion`: a traceback
            raise fail(f"cannot build the analyzer: {exc}") from None
        result = run_backtest(
            feed,
            output,
            analyzer=analyzer,
            taxonomy=tax,
            per_channel=per_channel,
            include_updates=updates,
            batch_size=settings.batch_size,
            warn=lambda m: typer.echo(m, err=True),
            # As `verbatim detect` (jobs.detect.run_detect) and `verbatim ingest` read them.
            config=DetectorConfig(warmup_days=settings.detection_warmup_days),
            max_text_chars=settings.max_text_chars,
            encoding=encoding,
            columns_map=columns_map,
            rating_scale=rating_scale,
        )
        typer.echo(
            f"read {result.read} row(s): {result.rows} verbatim(s) over {result.days} day(s), "
            f"{result.duplicates} duplicate(s), {result.bad} rejected; "
            f"{len(result.alerts)} alert line(s) -> {output}"
        )
        if result.tested_from is not None:
            typer.echo(
                f"spikes tested from {result.tested_from}: the feed's first "
                f"{settings.detection_warmup_days} day(s) are the detector's warm-up "
                "(detection_warmup_days), as in `verbatim detect`"
            )

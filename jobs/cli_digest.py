"""`verbatim digest`: the weekly Slack summary (the scheduler calls it once a week)."""

from __future__ import annotations

import json
from datetime import date

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def digest(
        days: int = typer.Option(7, min=1, max=366, help="length of the period, in days"),
        end: str = typer.Option(None, help="last day (YYYY-MM-DD); default: last day with data"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the payload, send nothing"),
        force: bool = typer.Option(False, help="resend a digest already sent for this period"),
    ) -> None:
        """Post the weekly digest (top movers, open alerts) to Slack."""
        from core.db import make_engine, migrate, session_factory
        from core.settings import load_settings
        from jobs.digest import send_digest
        from nlp.taxonomy import load_taxonomy

        last = None
        if end:
            try:
                last = date.fromisoformat(end)
            except ValueError:
                typer.echo(f"error: --end: {end!r} is not a YYYY-MM-DD date", err=True)
                raise typer.Exit(2) from None
        settings = load_settings()
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        try:
            result = send_digest(
                settings,
                session_factory(engine),
                load_taxonomy(settings.taxonomy_path),
                days=days,
                end=last,
                dry_run=dry_run,
                force=force,
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            engine.dispose()
        d = result.digest
        period = f"{d.start} .. {d.end}"
        if result.outcome == "dry_run":
            typer.echo(json.dumps(d.payload, ensure_ascii=False, indent=2))
        elif result.outcome == "already_sent":
            typer.echo(f"digest {period} already sent (--force resends it)")
        elif result.outcome == "sent":
            typer.echo(f"digest {period} sent: {d.movers} movers, {d.open_alerts} open alerts")
        else:
            typer.echo(f"error: digest {period} not delivered: {result.error}", err=True)
            raise typer.Exit(1)

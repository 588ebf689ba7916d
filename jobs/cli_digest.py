"""`verbatim digest`: the weekly Slack summary (the scheduler calls it once a week)."""

from __future__ import annotations

import json

import typer

from core.cli import EXIT_FAILED, bootstrap, fail, parse_day


def register(app: typer.Typer) -> None:
    @app.command()
    def digest(
        days: int = typer.Option(7, min=1, max=366, help="length of the period, in days"),
        end: str = typer.Option(None, help="last day (YYYY-MM-DD); default: last day with data"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the payload, send nothing"),
        force: bool = typer.Option(False, help="resend a digest already sent for this period"),
    ) -> None:
        """Post the weekly digest (top movers, incidents in progress) to Slack.

        Slack unavailable (5xx, 429, timeout): the digest stays pending and the next
        `verbatim alert` or `verbatim digest` posts it (exit 1 meanwhile)."""
        from core.taxonomy_store import for_job
        from jobs.digest import send_digest
        from jobs.scheduler import stop_on_signals

        last = parse_day(end, "--end")
        ctx = bootstrap()
        try:
            with stop_on_signals(second_interrupts=True) as stop:
                result = send_digest(
                    ctx.settings,
                    ctx.sessions,
                    for_job(ctx.sessions, ctx.settings).taxonomy,
                    days=days,
                    end=last,
                    dry_run=dry_run,
                    force=force,
                    stop=stop,
                )
        except ValueError as exc:
            raise fail(str(exc)) from None
        finally:
            ctx.engine.dispose()
        d = result.digest
        period = f"{d.start} .. {d.end}"
        for day, outcome in result.earlier:
            typer.echo(f"earlier digest ending {day}: {outcome}", err=True)
        if result.outcome == "dry_run":
            typer.echo(json.dumps(d.payload, ensure_ascii=False, indent=2))
        elif result.outcome == "already_sent":
            typer.echo(f"digest {period} already sent (--force resends it)")
        elif result.outcome == "sent":
            typer.echo(f"digest {period} sent: {d.movers} movers, {d.incidents} incidents open")
        elif result.outcome == "retry":
            raise fail(
                f"digest {period} not delivered yet: {result.error}; kept pending, the next "
                "`verbatim alert` or `verbatim digest` posts it",
                EXIT_FAILED,
            )
        elif result.outcome == "unknown":
            raise fail(
                f"digest {period}: {result.error}; it may be in the channel (check Slack, then "
                "`verbatim alert --retry-unknown` or `verbatim digest --force`)",
                EXIT_FAILED,
            )
        else:
            raise fail(
                f"digest {period} not delivered: {result.error} (fix the webhook, then "
                "`verbatim digest --force`)",
                EXIT_FAILED,
            )

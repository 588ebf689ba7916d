"""Operations commands: `verbatim scheduler`."""

from __future__ import annotations

import typer

from core.cli import bootstrap


def register(app: typer.Typer) -> None:
    @app.command()
    def scheduler(
        list_: bool = typer.Option(
            False, "--list", help="print the jobs and their next run times, then exit"
        ),
    ) -> None:
        """Run the jobs of \\[scheduler] in verbatim.toml on their cron expressions, until
        SIGTERM; one run at a time across every scheduler on the same database."""
        import logging

        from rich.console import Console

        from core.store import utcnow
        from jobs.scheduler import Scheduler

        ctx = bootstrap()
        sched = Scheduler(ctx.settings, ctx.engine, ctx.sessions)
        if list_:
            out = Console()
            for job in ctx.settings.scheduler.jobs:
                fire = sched.triggers[job.name].get_next_fire_time(None, utcnow())
                out.print(f"{job.name}: {job.command} on '{job.cron}', next {fire.isoformat()}")
            return
        # A long-running service: its own start/finish lines are the point of its log.
        logging.getLogger("jobs.scheduler").setLevel(logging.INFO)
        sched.serve()

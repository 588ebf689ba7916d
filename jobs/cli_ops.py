"""Operations commands: `verbatim scheduler`."""

from __future__ import annotations

import typer

from jobs.cli_pipeline import _err, _settings, _user_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @_user_errors
    def scheduler(
        list_: bool = typer.Option(
            False, "--list", help="print the jobs and their next run times, then exit"
        ),
    ) -> None:
        """Run the jobs of [scheduler] in verbatim.toml on their cron expressions, until
        SIGTERM; one run at a time across every scheduler on the same database."""
        import logging

        from rich.console import Console

        from core.db import make_engine, migrate, session_factory
        from jobs.scheduler import Scheduler, SchedulerConfigError

        settings = _settings()
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        try:
            sched = Scheduler(settings, engine, session_factory(engine))
        except SchedulerConfigError as exc:
            raise _err(str(exc)) from None
        if list_:
            from core.store import utcnow

            out = Console()
            for job in settings.scheduler.jobs:
                fire = sched.triggers[job.name].get_next_fire_time(None, utcnow())
                out.print(f"{job.name}: {job.command} on '{job.cron}', next {fire.isoformat()}")
            return
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            force=True,
        )
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        sched.serve()

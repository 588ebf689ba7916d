"""Pipeline commands: ingest, enrich, aggregate, report, demo, run, quarantine.

Heavy modules (the analyzer, rich tables) are imported inside the commands so that
`verbatim --help` stays instant. User errors print one clear line and exit non-zero
(core.cli.user_errors wraps every command).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer

from core.cli import bootstrap, fail, parse_day, rich_text

EXIT_FAILED = 1


def _analyzer(settings: Any, backend: str | None = None, sessions: Any = None) -> Any:
    """The analyzer from settings and the database's current taxonomy; a bad backend name or
    missing model is a user error."""
    from core.analysis import build_analyzer
    from core.taxonomy_store import for_job

    cur = for_job(sessions or _open(settings), settings)
    typer.echo(f"taxonomy version {cur.version}", err=True)
    try:
        return build_analyzer(settings, backend=backend, taxonomy=cur.taxonomy)
    except (ValueError, OSError, ImportError) as exc:
        raise fail(f"cannot build the analyzer: {exc}") from None


def _relabelled(count: int) -> str:
    """`enrich --reanalyze`: the verbatims whose language changed (their days re-aggregate)."""
    if not count:
        return ""
    return f"; {count} verbatim(s) changed language (`verbatim aggregate` updates the figures)"


def _meanwhile(result: Any) -> str:
    """`enrich` (both engines): rows another run (a second enrich, the scheduler) stored
    first are not this run's."""
    if not result.skipped:
        return ""
    return f"; {result.skipped} analysed meanwhile by another run"


def _reanalysing(result: Any) -> str:
    """`enrich --reanalyze`, before the first batch: how many analyses it redoes (a new model
    version re-scores every stored verbatim: a year of them takes hours)."""
    if not result.reanalysed:
        return f"no verbatim analysed by another model version than {result.model_version}"
    return (
        f"{result.reanalysed} verbatim(s) analysed by another model version, marked for "
        f"re-analysis by {result.model_version}"
    )


def _older_analyses(settings: Any, backend: str | None, sessions: Any, console: Any) -> str:
    """`enrich` with nothing pending: the verbatims another model version analysed (an
    upgrade that changed the model: only `--reanalyze` re-scores them), else ""."""
    from jobs.enrich import not_analysed_by

    with console.status("loading the analyzer…"):
        version = str(_analyzer(settings, backend, sessions).model_version)[:100]
    older = not_analysed_by(sessions, version)
    if not older:
        return ""
    return (
        f"; {older} of them by another model version than {version}: "
        "`verbatim enrich --reanalyze` re-scores them"
    )


def _open(settings: Any) -> Any:
    return bootstrap(settings).sessions


def _settings() -> Any:
    from core.settings import load_settings

    return load_settings()


def _encoding_hint(source: str, configured: bool) -> str:
    """What to do about rows that are not in the encoding they were read with: a configured
    source (pull, run, the scheduler) has no --encoding option, its `encoding` is in the file."""
    if configured:
        return (
            f'set encoding = "cp1252" (for example) on source {source!r} in the configuration '
            "file: the next pull (or run) reads this file again"
        )
    return "retry with e.g. --encoding cp1252"


def _print_ingest(console: Any, result: Any, source: str, *, configured: bool = False) -> None:
    """`configured`: the source is a configured [[sources]] entry (pull, run), not a file
    given to `verbatim ingest`: the hints name its settings, not ingest's options."""
    from rich.markup import escape

    from jobs.connectors import PullResult

    if isinstance(result, PullResult):
        if result.run_id is None:
            console.print(f"[bold]{source}[/]: nothing new")
            return
        console.print(
            f"[bold]{source}[/]: read {result.read}, stored [green]{result.stored}[/], "
            f"duplicates {result.duplicates}, rejected [red]{result.rejected}[/] "
            f"(run #{result.run_id})"
        )
        if result.repaired:
            _print_repaired(console, result.repaired)
        if result.rejected:
            top = sorted(result.reasons.items(), key=lambda kv: -kv[1])
            console.print("  rejected: " + ", ".join(f"{c} ×{n}" for c, n in top), highlight=False)
            _print_quarantined(console, result.requarantined)
        undecodable = result.reasons.get("encoding_error", 0)
        if undecodable and undecodable * 2 >= result.read:
            console.print(
                f"[yellow]{undecodable} rows could not be decoded: is a file in another "
                f"encoding? {escape(_encoding_hint(source, configured))}[/]"
            )
        return
    if result.skipped:
        again = (
            "an unchanged file is read once"
            if configured
            else "--force re-reads it, duplicates are still skipped"
        )
        console.print(
            f"[yellow]{source}[/]: {result.path} already ingested (run #{result.run_id}); "
            f"nothing to do ({again})"
        )
        return
    if result.run_id is None:
        console.print(f"[yellow]{source}[/]: {result.path} is empty; nothing to ingest")
        return
    _print_columns(
        console,
        result.mapping,
        result.inferred,
        result.date_like,
        stored=result.stored,
        source=source,
        configured=configured,
    )
    resumed = f", resumed after row {result.resumed_from}" if result.resumed_from else ""
    console.print(
        f"[bold]{source}[/]: read {result.read}, stored [green]{result.stored}[/], "
        f"duplicates {result.duplicates}, rejected [red]{result.rejected}[/]"
        f"{resumed} (run #{result.run_id})"
    )
    if result.repaired:
        _print_repaired(console, result.repaired)
    if result.encoding_errors and result.encoding_errors * 2 >= result.read:
        console.print(
            f"[yellow]{result.encoding_errors} rows could not be decoded: is the file in "
            f"another encoding? {escape(_encoding_hint(source, configured))}[/]"
        )
    if result.reread_undecodable:
        console.print(
            f"  read again in this encoding: the {result.reread_undecodable} rows an earlier "
            "read could not decode left the quarantine (stored, or rejected again with why)",
            highlight=False,
        )
    if result.rejected:
        top = sorted(result.reasons.items(), key=lambda kv: -kv[1])
        console.print(
            "  rejected: " + ", ".join(f"{code} ×{count}" for code, count in top),
            highlight=False,
        )
        _print_quarantined(console, result.requarantined)


def _print_columns(
    console: Any,
    mapping: dict[str, str],
    inferred: list[str],
    date_like: list[str],
    *,
    stored: int,
    source: str,
    configured: bool = False,
) -> None:
    """Which columns were recognised by name (`mapping`: field -> column as read) and, with
    no date column, that every verbatim is dated now: a file's ingest or stdin's."""
    from rich.markup import escape

    if inferred:
        # Never pick columns silently: say which ones were recognised by name.
        pairs = ", ".join(f"{f}={mapping[f]}" for f in mapping)
        console.print(
            f"  columns: {pairs} ({', '.join(inferred)} recognised by name; "
            "--map field=column to change)",
            highlight=False,
        )
    if "created_at" not in mapping and stored:
        # Every verbatim dated now: a year of reviews reads as one day's spike, unless said.
        where = (
            f"set created_at in the mapping of source {source!r}"
            if configured
            else "--map created_at=COLUMN"
        )
        hint = ""
        if date_like:
            hint = f" (date-like: {', '.join(repr(c) for c in date_like)})"
        console.print(
            f"[yellow]  no date column read: the verbatims are dated now, at this ingest; "
            f"{escape(where)}{escape(hint)}[/]",
            highlight=False,
        )


def _print_repaired(console: Any, repaired: int) -> None:
    console.print(
        f"  repaired {repaired} text(s): HTML entities or tags (&eacute;, <br>), "
        "or accents garbled by an encoding mix-up (Ã© → é)",
        highlight=False,
    )


def _print_quarantined(console: Any, requarantined: int) -> None:
    """Where the rejected rows are, and how many an earlier read had already quarantined
    (a file ingested again, stdin, a folder or HTTP source asked again: not stored twice)."""
    again = (
        f" ({requarantined} of them already there from an earlier read)" if requarantined else ""
    )
    console.print(
        f"  the rows are kept in quarantine{again}: see [bold]verbatim quarantine[/]",
        style="dim",
    )


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to the root app."""

    @app.command()
    def ingest(
        path: Path = typer.Argument(
            ...,
            help="CSV (, ; or tab), JSONL or Excel .xlsx file (its first sheet); - reads stdin",
        ),
        source: str = typer.Option(..., "--source", "-s", help="name of the feed"),
        channel: str = typer.Option(
            "review", "--channel", "-c", help="review | social | complaint | survey"
        ),
        map_: list[str] = typer.Option(
            None,
            "--map",
            "-m",
            help="field=column pairs, e.g. text=comment,id=review_id,created_at=date,"
            "rating=stars,customer=order,nps=reco (fields: text id created_at rating customer "
            "channel title nps csat ces; NPS 0-10, CSAT 1-5, CES 1-7)",
        ),
        force: bool = typer.Option(False, help="re-read a file already ingested"),
        rating_scale: int = typer.Option(
            5,
            "--rating-scale",
            min=2,
            max=100,
            help="scale of the rating column's bare numbers, e.g. 10 for a 0-10 note "
            "(stored out of 5; '8/10' and '80 %' say their own)",
        ),
        encoding: str = typer.Option(
            "utf-8", help="CSV/JSONL encoding, e.g. cp1252 for old Excel CSV (.xlsx: unused)"
        ),
        quiet: bool = typer.Option(
            False, "--quiet", "-q", help="no progress bar, only errors in the log"
        ),
        no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
    ) -> None:
        """Load a feedback file (streamed, in batches, resumable); bad rows go to quarantine."""
        from rich.console import Console

        from jobs.ingest import ingest_file, parse_mapping

        settings = _settings()
        mapping = parse_mapping(map_)
        sessions = _open(settings)
        if str(path) == "-":
            from jobs.connectors import pull
            from jobs.connectors.stdin import StdinConnector
            from jobs.readers import check_encoding_name

            connector = StdinConnector(
                batch_size=settings.batch_size,
                encoding=check_encoding_name(encoding),
                mapping=mapping,
            )
            pulled = pull(
                sessions,
                settings,
                connector,
                source=source,
                channel=channel,
                mapping=mapping,
                rating_scale=rating_scale,
            )
            console = Console()
            if pulled.run_id is not None:  # as a file's ingest: never columns picked silently
                _print_columns(
                    console,
                    connector.resolved,
                    connector.inferred,
                    connector.date_like,
                    stored=pulled.stored,
                    source=source,
                )
            _print_ingest(console, pulled, source)
            return
        result = ingest_file(
            sessions,
            settings,
            path,
            source=source,
            channel=channel,
            mapping=mapping,
            force=force,
            progress=not (quiet or no_progress),
            encoding=encoding,
            rating_scale=rating_scale,
        )
        _print_ingest(Console(), result, source)

    @app.command()
    def pull(
        source: list[str] = typer.Option(
            None, "--source", "-s", help="only these configured sources (default: all)"
        ),
    ) -> None:
        """Ingest the configured \\[\\[sources]] (files, folders, HTTP APIs): only what is new."""
        from rich.console import Console
        from rich.markup import escape

        from jobs.connectors import pull_source
        from nlp.errors import VerbatimError

        settings = _settings()
        chosen = [s for s in settings.sources if not source or s.source in source]
        unknown = sorted(set(source or []) - {s.source for s in settings.sources})
        if unknown:
            raise fail(f"no configured source named {', '.join(unknown)}")
        if not chosen:
            raise fail("no source configured: add [[sources]] to verbatim.toml")
        sessions = _open(settings)
        out, err = Console(), Console(stderr=True)
        code = 0
        for src in chosen:
            try:
                result = pull_source(sessions, settings, src)
            except (VerbatimError, OSError) as exc:  # an API down must not block the folder
                code = max(code, getattr(exc, "exit_code", EXIT_FAILED))
                line = f"[bold red]error:[/] {escape(src.source)}: {escape(str(exc))}"
                err.print(line, soft_wrap=True)
                continue
            _print_ingest(out, result, src.source, configured=True)
            for message in getattr(result, "errors", []):
                code = max(code, EXIT_FAILED)
                err.print(f"[bold red]error:[/] {escape(src.source)}: {escape(message)}")
        if code:
            raise typer.Exit(code)

    @app.command()
    def enrich(
        limit: int = typer.Option(None, help="analyse at most this many verbatims", min=1),
        backend: str = typer.Option(None, help="sentiment backend (default: settings)"),
        reanalyze: bool = typer.Option(
            False,
            help="also re-analyse verbatims analysed by another model version, and detect "
            "every verbatim's language again",
        ),
        # Help texts are Rich markup: "\\[" keeps a literal "[" (else "[ray]" is eaten).
        engine: str = typer.Option(
            "local",
            help='local (this process) or ray (pip install -e ".\\[ray]" in the checkout)',
        ),
        address: str = typer.Option(
            None, help="ray: cluster address ('auto', 'ray://head:10001'); default: local Ray"
        ),
        workers: int = typer.Option(2, min=1, help="ray: actors, each loads the analyzer once"),
        range_size: int = typer.Option(500, min=1, help="ray: verbatims per id range"),
    ) -> None:
        """Analyse stored verbatims not analysed yet (sentiment, themes, severity)."""
        from rich.console import Console

        from jobs.enrich import enrich as run_enrich
        from jobs.enrich import has_pending

        if engine not in ("local", "ray"):
            raise fail(f"--engine: {engine!r} is not local or ray")
        if engine == "ray" and limit is not None:
            raise fail("--engine ray analyses every pending verbatim: no --limit")
        settings = _settings()
        sessions = _open(settings)
        console = Console(stderr=True)
        if not reanalyze and not has_pending(sessions):
            Console().print(
                "nothing to analyse: every stored verbatim is analysed"
                + _older_analyses(settings, backend, sessions, console)
            )
            return
        if engine == "ray":
            from jobs.enrich_ray import RayOptions, enrich_ray

            try:
                import ray.data
            except ImportError:
                # The checkout's extra: PyPI's `verbatim` is another project (speech-to-text).
                raise fail(
                    'Ray is not installed: pip install -e ".[ray]" in the checkout'
                ) from None
            # Ray Data's console lines ("Starting execution of Dataset …", "Progress bars
            # disabled …"): the spinner, `-v` progress and the summary below say it; they
            # stay in its log file in the Ray session's logs.
            for handler in logging.getLogger(ray.data.__name__).handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setLevel(logging.ERROR)
            version = None
            if reanalyze:
                # The version the workers will write, to know what is not analysed by it yet.
                with console.status("loading the analyzer…"):
                    version = str(_analyzer(settings, backend, sessions).model_version)[:100]
            with console.status(f"analysing on Ray ({workers} workers)…") as status:
                result = enrich_ray(
                    settings,
                    sessions,
                    options=RayOptions(address=address, workers=workers, range_size=range_size),
                    backend=backend,
                    reanalyze_as=version,
                    on_batch=lambda n: status.update(
                        f"analysing on Ray ({workers} workers)… {n} done"
                    ),
                )
            Console().print(
                f"analysed [green]{result.stored}[/] verbatims on Ray ({result.mentions} "
                f"theme mentions, model {result.model_version or version}) over "
                f"{len(result.days)} day(s){_meanwhile(result)}{_relabelled(result.relabelled)}"
            )
            if result.failed:  # as the in-process engine says it
                Console(stderr=True).print(
                    f"[yellow]{result.failed} verbatim(s) could not be analysed[/] "
                    "(left for the next run; see the Ray workers' log)"
                )
            return
        with console.status("loading the analyzer…"):
            analyzer = _analyzer(settings, backend, sessions)
        with console.status("analysing…") as status:
            result = run_enrich(
                sessions,
                settings,
                analyzer=analyzer,
                limit=limit,
                on_batch=lambda n: status.update(f"analysing… {n} done"),
                reanalyze=reanalyze,
                on_reanalysis=lambda marked: console.print(_reanalysing(marked)),
            )
        Console().print(
            f"analysed [green]{result.stored}[/] verbatims "
            f"({result.mentions} theme mentions, model {result.model_version}) over "
            f"{len(result.days)} day(s){_meanwhile(result)}{_relabelled(result.relabelled)}"
        )
        if result.failed:
            Console(stderr=True).print(
                f"[yellow]{result.failed} verbatim(s) could not be analysed[/] "
                "(left for the next run; see the log)"
            )

    @app.command()
    def aggregate(
        since: str = typer.Option(
            None, help="recompute only days from this date (YYYY-MM-DD); default: all"
        ),
    ) -> None:
        """Recompute the daily aggregates (day x theme x channel x source).

        Days whose verbatims `retention_days` purged keep their counts: never recomputed."""
        from rich.console import Console

        from core.db import session_scope
        from jobs.aggregate import aggregate as run_aggregate

        first = parse_day(since or None, "--since")
        settings = _settings()
        sessions = _open(settings)
        with session_scope(sessions) as session:
            written = run_aggregate(session, since=first)
        Console().print(f"wrote {written} aggregate rows")

    @app.command()
    def report(
        days: int = typer.Option(7, help="length of the period, in days"),
        end: str = typer.Option(None, help="last day (YYYY-MM-DD); default: last day with data"),
        channel: str = typer.Option(None, help="only this channel"),
        source: str = typer.Option(None, help="only this source"),
        format_: str = typer.Option(
            None,
            "--format",
            "-f",
            help="table | csv | xlsx | json (default: from -o's extension, else table; "
            "xlsx needs -o)",
        ),
        output: Path = typer.Option(
            None, "--output", "-o", help="write to this file (.csv, .xlsx or .json)"
        ),
    ) -> None:
        """Themes table of the last N days vs the N days before, and key drivers of the
        scores (NPS, CSAT, CES, rating) when the feed has them; exportable."""
        from jobs.report import FORMATS

        if format_ is None:  # `-o weekly.csv` alone printed the table and wrote no file
            suffix = output.suffix.lower().lstrip(".") if output is not None else ""
            format_ = suffix if suffix in FORMATS else "table"
        if format_ == "table" and output is not None:
            raise fail(
                f"the table is printed, not written to {output}: "
                "give -o a .csv, .xlsx or .json file, or --format csv|xlsx|json"
            )
        if format_ not in FORMATS:
            raise fail(f"--format must be one of {', '.join(FORMATS)}")
        if format_ == "xlsx" and output is None:
            raise fail("--format xlsx needs an output file: -o report.xlsx")
        from core.store import CHANNELS

        if channel is not None and channel not in CHANNELS:
            raise fail(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
        _show_report(days=days, end=end, channel=channel, source=source, fmt=format_, output=output)

    @app.command()
    def demo(
        output: Path = typer.Option(
            Path("demo-feed.jsonl"), "--output", "-o", help="file to write (.jsonl or .csv)"
        ),
        days: int = typer.Option(60, min=1, max=3650, help="number of days, ending today"),
        seed: int = typer.Option(7, help="random seed (same seed, same day = same feed)"),
        per_day: int = typer.Option(90, min=1, help="mean verbatims per day"),
    ) -> None:
        """Write a synthetic French feedback feed (with a packaging spike in the last days)."""
        from rich.console import Console

        from jobs.analyze import is_stdout
        from jobs.demo import DemoSpec, write_demo

        count = write_demo(output, DemoSpec(days=days, seed=seed, per_day=per_day))
        # `-o /dev/stdout | verbatim ingest`: this line is not a verbatim of the feed.
        Console(stderr=is_stdout(output)).print(
            f"wrote {count} verbatims to {output}\n"
            f"next: verbatim ingest {output} --source demo --map channel=channel"
        )

    @app.command()
    def quarantine(
        source: str = typer.Option(None, help="only this source"),
        run_id: int = typer.Option(None, "--run", help="only this ingestion run"),
        limit: int = typer.Option(10, help="example rows to show", min=0),
    ) -> None:
        """Rejected input rows: counts by reason, then the latest examples."""
        from rich.console import Console
        from rich.table import Table
        from sqlalchemy import func, select

        from core.db import session_scope
        from core.models import Quarantine

        settings = _settings()
        sessions = _open(settings)
        where = []
        if source:
            where.append(Quarantine.source == source)
        if run_id is not None:
            where.append(Quarantine.run_id == run_id)
        with session_scope(sessions) as session:
            reasons = session.execute(
                select(Quarantine.reason, Quarantine.field, func.count())
                .where(*where)
                .group_by(Quarantine.reason, Quarantine.field)
            ).all()
            examples = session.scalars(
                select(Quarantine).where(*where).order_by(Quarantine.id.desc()).limit(limit)
            ).all()
        console = Console()
        if not reasons:
            console.print("quarantine is empty")
            return
        by_code: dict[tuple[str, str | None], int] = {}
        for reason, field, count in reasons:
            key = (reason.split(":", 1)[0], field)
            by_code[key] = by_code.get(key, 0) + count
        table = Table(title="Rejected rows by reason", title_justify="left")
        table.add_column("reason")
        table.add_column("field")
        table.add_column("rows", justify="right")
        for (code, field), count in sorted(by_code.items(), key=lambda kv: -kv[1]):
            table.add_row(code, field or "", str(count))
        console.print(table)
        sample = Table(title=f"Latest {len(examples)}", title_justify="left")
        for name in ("run", "row", "source", "reason", "raw (masked)"):
            sample.add_column(name, overflow="fold")
        for q in examples:
            sample.add_row(  # user data: no rich markup
                str(q.run_id or ""),
                str(q.row_number or ""),
                rich_text(q.source),
                rich_text(q.reason),
                rich_text(q.raw[:120]),  # a feed's row: no escape sequence to the terminal
            )
        console.print(sample)

    @app.command()
    def run(
        days: int = typer.Option(7, help="report period, in days"),
        no_report: bool = typer.Option(False, "--no-report", help="skip the report"),
        quiet: bool = typer.Option(
            False, "--quiet", "-q", help="no progress bar, only errors in the log"
        ),
        no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
    ) -> None:
        """Ingest every configured source, analyse, aggregate, then report (demo if none)."""
        from rich.console import Console
        from rich.markup import escape

        from jobs.run import Stopped, run_pipeline
        from jobs.scheduler import stop_on_signals

        if days < 1:  # before the pipeline: not an exit 2 once it has ingested and alerted
            raise fail("--days must be at least 1")
        settings = _settings()
        sessions = _open(settings)
        err = Console(stderr=True)
        if not settings.sources:
            err.print(
                "no source configured: using the demo feed in "
                f"{settings.data_dir / 'demo'} (configure [bold]sources[/] in verbatim.toml)"
            )

        def load_analyzer() -> Any:  # only called when there is something to analyse
            if quiet or no_progress:
                return _analyzer(settings, sessions=sessions)
            with err.status("loading the analyzer…"):
                return _analyzer(settings, sessions=sessions)

        status: Any = None

        def analysing(done: int) -> None:
            nonlocal status
            if quiet or no_progress:
                return
            if status is None:
                status = err.status("analysing…")
                status.start()
            status.update(f"analysing… {done} verbatims done")

        try:
            # SIGTERM / SIGINT: the step in progress reaches its next safe point (a batch, a
            # source, a detected day, a message), what is stored stays, exit 143 / 130.
            with stop_on_signals(second_interrupts=True) as stop:
                summary = run_pipeline(
                    settings,
                    sessions,
                    progress=not (quiet or no_progress),
                    analyzer_factory=load_analyzer,
                    on_enrich_batch=analysing,
                    stop=stop,
                )
        except Stopped as exc:
            err.print(
                f"stopped on request ({stop.name}): {escape(str(exc))}; what was stored stays, "
                "run the same command again to continue",
                highlight=False,
            )
            raise typer.Exit(stop.exit_code) from None
        finally:
            if status is not None:
                status.stop()
        out = Console()
        for src, result in summary.ingested:
            _print_ingest(out, result, src.source, configured=True)
        for src, message in summary.errors:
            err.print(
                f"[bold red]error:[/] source {escape(src.source)}: {escape(message)}",
                highlight=False,
            )
        if summary.rethemed is not None:
            r = summary.rethemed
            out.print(
                f"taxonomy version {r.version}: themes re-detected on {r.verbatims} verbatims "
                f"since {r.start} (no sentiment pass)"
            )
        if summary.enriched is not None:
            failed = summary.enriched.failed
            note = f" ({failed} could not be analysed, retried next run)" if failed else ""
            out.print(f"analysed {summary.enriched.stored} new verbatims{note}")
        _print_alerts(out, summary, webhooks=bool(settings.slack_webhooks))
        if settings.retention_days:
            _apply_retention(settings, sessions, out)
        if not no_report:
            _show_report(days=days, end=None, channel=None, source=None, sessions=sessions)
        if summary.errors:
            raise typer.Exit(EXIT_FAILED)


def _apply_retention(settings: Any, sessions: Any, console: Any) -> None:
    """`retention_days` applied after the run, as the scheduler does after a tick: a
    `verbatim run` from cron kept every verbatim for ever unless `verbatim purge` ran too."""
    from core.db import session_scope
    from core.erasure import audit, purge
    from jobs.cli_privacy import cutoff, who_runs

    before = cutoff(settings.retention_days)
    with session_scope(sessions) as session:
        erased = purge(session, before=before, language=settings.alert_language)
        if erased.verbatims or erased.quarantine:
            audit(session, settings.data_dir, "purge", who_runs(), erased)
    if erased.verbatims or erased.quarantine:
        console.print(
            f"retention ({settings.retention_days} days): deleted {erased.verbatims} "
            f"verbatim(s) dated before {before}; their days' counts are kept"
        )


def _print_alerts(console: Any, summary: Any, *, webhooks: bool) -> None:
    """One line on what detection raised and what was delivered (or why it waits)."""
    found = summary.detected
    if found is None:
        console.print("spike detection failed (see the log); the next run retries")
        return
    line = (
        f"alerts: {found.new} new, {found.updated} updated, {found.resolved} resolved; "
        f"{found.queued} message(s) queued"
    )
    sent = summary.delivered
    if sent is not None:
        line += f"; Slack: {sent.sent} sent, {sent.deferred} deferred, {sent.dead} failed"
    elif not webhooks:
        line += " (no slack_webhooks configured: `verbatim alert --dry-run` shows them)"
    console.print(line, highlight=False)


def _show_report(
    *,
    days: int,
    end: str | None,
    channel: str | None,
    source: str | None,
    sessions: Any = None,
    fmt: str = "table",
    output: Path | None = None,
) -> None:
    from rich.console import Console

    from core.db import session_scope
    from core.taxonomy_store import for_job
    from jobs.report import (
        build_report,
        empty_report,
        render_drivers,
        render_report,
        write_report,
    )

    settings = _settings()
    if days < 1:
        raise fail("--days must be at least 1")
    end_day = parse_day(end or None, "--end")
    sessions = sessions or _open(settings)
    cur = for_job(sessions, settings)
    taxonomy = cur.taxonomy
    Console(stderr=True).print(f"taxonomy version {cur.version}", highlight=False)
    with session_scope(sessions) as session:
        if source is not None:
            from sqlalchemy import select

            from core.models import Feedback

            stored = select(Feedback.id).where(Feedback.source == source).limit(1)
            if session.scalar(stored) is None:  # a typo read as "no data: run ingest"
                known = session.scalars(select(Feedback.source).distinct()).all()
                shown = ", ".join(sorted(known)[:20]) or "none yet"
                raise fail(f"unknown source {source!r}; the sources stored: {shown}")
        rep = build_report(
            session, taxonomy, days=days, end=end_day, channel=channel, source=source
        )
    console = Console()
    if fmt != "table":
        try:
            text = write_report(rep, fmt, output)
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc}", EXIT_FAILED) from None
        if text is not None:
            sys.stdout.write(text)
        else:
            Console(stderr=True).print(f"wrote {output}")
        return
    empty = empty_report(rep)
    if empty is not None:
        console.print(empty, highlight=False)
        return
    console.print(render_report(rep))
    for table in render_drivers(rep):
        console.print(table)

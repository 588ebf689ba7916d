"""`verbatim forget` (right to erasure) and `verbatim purge` (retention): personal data.

Both delete verbatims with everything derived from them (core.erasure) and write anonymous
lines to `<data_dir>/erasure-audit.jsonl` (core.erasure.audit): when, who, how many rows.
"""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import typer

from core.cli import bootstrap, fail

SHOWN = 50  # rows a dry run lists


def who_runs() -> str:
    """The audit line's `by` for a command: `cli:<user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def _summary(erased: Any) -> str:
    parts = [
        f"{erased.analyses} analyses",
        f"{erased.mentions} mentions",
        f"{erased.corrections} corrections",
        f"{erased.embeddings} embeddings",
        f"{erased.topic_assignments} topic assignments",
        f"{erased.quarantine} rejected rows",
    ]
    quotes = erased.topic_examples + erased.incident_examples + erased.messages
    if quotes:
        parts.append(
            f"quotes removed from {erased.topic_examples} topic example(s), "
            f"{erased.incident_examples} incident example(s), {erased.messages} stored message(s)"
        )
    if erased.incidents:  # their topic was left without a verbatim
        parts.append(f"{erased.incidents} incident(s) of emptied topics closed")
    return ", ".join(parts)


def _sources(session: Any) -> set[str]:
    """The sources of the stored verbatims and rejected rows."""
    from sqlalchemy import select, union

    from core.models import Feedback, Quarantine

    query = union(select(Feedback.source).distinct(), select(Quarantine.source).distinct())
    return {s for s in session.scalars(query) if s is not None}


def cutoff(days: int, today: date | None = None) -> date:
    """The first day kept by a retention of `days` days: verbatims of earlier days go."""
    return (today or datetime.now(UTC).date()) - timedelta(days=days)


def register(app: typer.Typer) -> None:
    @app.command()
    def forget(
        ids: list[int] = typer.Option(
            None, "--id", help="feedback id (repeatable), as /feedback/{id} and exports show it"
        ),
        source: str = typer.Option(None, help="the verbatims' source (needed by --key)"),
        key: str = typer.Option(
            None, help="the id the source gave the row (or its stored dedup key id:… / h:…)"
        ),
        customer: str = typer.Option(
            None, help="customer / order reference as in the feed (stored hashed)"
        ),
        contains: str = typer.Option(
            None, help="verbatims whose stored (PII-masked) text contains this, any case"
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="list what would go, delete nothing"),
        yes: bool = typer.Option(
            False, "--yes", "-y", help="no confirmation when several rows would go"
        ),
    ) -> None:
        """Right to erasure: delete verbatims and everything derived from them.

        Analyses, mentions and evidence spans, corrections and notes, embeddings, topic
        assignments, their quotes in topic and incident examples and in stored Slack
        messages, and the rejected rows that quote the key, customer or text. Their days are
        re-aggregated; anonymous lines go to <data_dir>/erasure-audit.jsonl."""
        from rich.console import Console
        from rich.markup import escape

        from core.db import session_scope
        from core.erasure import (
            ErasureError,
            Target,
            audit,
            check_target,
            erase,
            matching,
            quarantine_matching,
        )

        # feedback.id is a 32-bit integer: a larger one was a driver traceback, not an answer.
        if any(not 1 <= i <= 2**31 - 1 for i in ids or []):
            raise fail("--id must be a feedback id (1 to 2147483647)")
        target = Target(
            ids=tuple(ids or ()), source=source, key=key, customer=customer, contains=contains
        )
        try:
            check_target(target)
        except ErasureError as exc:
            raise fail(str(exc)) from None
        ctx = bootstrap()
        console = Console()
        with session_scope(ctx.sessions) as session:
            rows = session.execute(matching(session, target)).all()
            rejected = len(quarantine_matching(session, target))
            if not rows and not rejected and source is not None:
                # A misspelt source read as « nothing matches »: the person told they have no data.
                known = _sources(session)
                if source not in known:
                    shown = ", ".join(sorted(known)[:20]) or "none yet"
                    raise fail(f"unknown source {source!r}; the sources stored: {shown}")
        if dry_run:
            for fid, src, day, text in rows[:SHOWN]:
                clipped = " ".join(text.split())[:80]
                console.print(f"{fid}\t{escape(src)}\t{day}\t{escape(clipped)}", soft_wrap=True)
            if len(rows) > SHOWN:
                console.print(f"… and {len(rows) - SHOWN} more")
            console.print(
                f"{len(rows)} verbatim(s) and {rejected} rejected row(s) would be erased "
                "(dry run: nothing deleted)"
            )
            return
        if not rows and not rejected:
            console.print("nothing matches: no verbatim erased")
            return
        # Rejected rows are lost for good too: one verbatim with its rejected rows asks.
        if len(rows) + rejected > 1 and not yes:
            what = f"{len(rows)} verbatim(s) and {rejected} rejected row(s)"
            try:
                confirmed = typer.confirm(f"erase {what}?")
            except typer.Abort:  # no terminal to answer on
                confirmed = False
            if not confirmed:
                raise fail(
                    f"{what} match, nothing erased: check them with --dry-run, then add --yes",
                    1,
                )
        with session_scope(ctx.sessions) as session:
            erased = erase(session, target, ctx.settings.alert_language)
            audit(session, ctx.settings.data_dir, "forget", who_runs(), erased, target.criteria())
        console.print(
            f"erased {erased.verbatims} verbatim(s) ({_summary(erased)}); "
            f"re-aggregated {len(erased.days)} day(s)"
        )

    @app.command()
    def purge(
        days: int = typer.Option(
            None,
            min=1,
            max=36_500,
            help="delete verbatims older than this many days (default: the retention_days setting)",
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="count what would go, delete nothing"
        ),
    ) -> None:
        """Retention: delete the verbatims older than `retention_days` and their derived rows.

        Their days keep their anonymous counts (trends, spike baselines) and lose their
        keywords; no later rebuild recomputes them. Also run once a day by `verbatim
        scheduler`. Anonymous lines go to <data_dir>/erasure-audit.jsonl."""
        from rich.console import Console
        from sqlalchemy import func, select

        from core.aggregate import feedback_day
        from core.db import session_scope
        from core.erasure import audit
        from core.erasure import purge as run_purge
        from core.models import Feedback

        ctx = bootstrap()
        keep = days if days is not None else ctx.settings.retention_days
        if not keep:
            raise fail("retention_days is 0 (verbatims kept for ever): set it, or give --days")
        before = cutoff(keep)
        console = Console()
        if dry_run:
            with session_scope(ctx.sessions) as session:
                n = session.scalar(
                    select(func.count()).select_from(Feedback).where(feedback_day(session) < before)
                )
            console.print(
                f"{n} verbatim(s) dated before {before} would be deleted (dry run: nothing deleted)"
            )
            return
        with session_scope(ctx.sessions) as session:
            erased = run_purge(session, before=before, language=ctx.settings.alert_language)
            audit(session, ctx.settings.data_dir, "purge", who_runs(), erased)
        console.print(
            f"deleted {erased.verbatims} verbatim(s) dated before {before} ({_summary(erased)}); "
            "their days' counts are kept"
        )

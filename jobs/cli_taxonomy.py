"""`verbatim taxonomy show|export|import|history|retheme`: the taxonomy stored in the database.

The same versioned store as `PUT /taxonomy` (`core/taxonomy_store.py`); YAML is the exchange
format. An import records who (`--author`, default the OS user) and what changed.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import typer

from core.cli import not_a_file, printable

taxonomy_app = typer.Typer(
    help="The taxonomy in the database: show, export, import, history, retheme."
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)  # one line
    return typer.Exit(code)


def _sessions() -> tuple[Any, Any]:
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from core.db import make_engine, migrate, session_factory
    from core.settings import load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        raise _fail(f"invalid configuration: {exc}") from None
    try:
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise _fail(f"invalid database_url: {exc}") from None
    except OperationalError as exc:
        raise _fail(f"database error: {exc.orig}", 1) from None
    return settings, session_factory(engine)


def _current(settings: Any, sessions: Any) -> Any:
    from core.taxonomy_store import for_job
    from nlp.taxonomy import TaxonomyError

    try:
        return for_job(sessions, settings)
    except TaxonomyError as exc:
        raise _fail(str(exc)) from None


@taxonomy_app.command("show")
def show() -> None:
    """The current version: its themes, teams and aliases."""
    settings, sessions = _sessions()
    cur = _current(settings, sessions)
    tax = cur.taxonomy
    typer.echo(f"taxonomy {tax.name!r} version {cur.version}: {len(tax.active)} active themes")
    for t in tax.themes:
        flags = " (retired)" if t.retired else ""
        aliases = f"  aliases: {', '.join(t.aliases)}" if t.aliases else ""
        # A label or team given through the API is printed as text (`printable`).
        typer.echo(printable(f"  {t.id:<22} {t.label:<28} team={t.team}{flags}{aliases}"))


@taxonomy_app.command("export")
def export(
    output: Path | None = typer.Option(None, "-o", "--output", help="file (default: stdout)"),
    version: int | None = typer.Option(None, help="an older version (default: current)"),
) -> None:
    """Write the taxonomy as YAML (the exchange format)."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import TaxonomyVersion

    settings, sessions = _sessions()
    cur = _current(settings, sessions)
    body = cur.taxonomy.to_yaml()
    if version is not None:
        with session_scope(sessions) as session:
            row = session.execute(
                select(TaxonomyVersion).where(TaxonomyVersion.version == version)
            ).scalar_one_or_none()
            if row is None:
                raise _fail(f"no taxonomy version {version} (current: {cur.version})")
            body = row.body
    if output is None:
        typer.echo(body, nl=False)
        return
    from jobs.analyze import atomic_output

    try:
        # Not write_text: `-o /dev/stdout >> file` reopened the file with truncation.
        with atomic_output(output) as fh:
            fh.write(body)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc}", 1) from None
    typer.echo(f"wrote version {version or cur.version} to {output}", err=True)


@taxonomy_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="a taxonomy YAML file"),
    author: str | None = typer.Option(None, help="who makes the change (default: OS user)"),
    retheme_now: bool = typer.Option(
        True,
        "--retheme/--no-retheme",
        help="re-detect the recent window's themes now (else the next `verbatim run` does)",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="store the file even if it was exported from an older version than the current "
        "one (the changes made since are undone: last writer wins)",
    ),
) -> None:
    """Store a YAML file as the next version (validated first; nothing stored if invalid).

    The same taxonomy as the current one stores nothing. A file exported from an older
    version than the current one is refused (it would undo the changes made since) unless
    `--force`; a file without `version` replaces the taxonomy."""
    from sqlalchemy.exc import IntegrityError

    from core import taxonomy_store
    from core.db import session_scope
    from nlp.taxonomy import TaxonomyError

    if not path.is_file():
        raise _fail(not_a_file(path, "taxonomy file"))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    settings, sessions = _sessions()
    who = author or f"cli:{getpass.getuser()}"
    try:
        with session_scope(sessions) as session:
            try:
                before = taxonomy_store.current(session, settings).taxonomy
            except TaxonomyError:
                before = None  # unreadable: `import_yaml` replaces it
            stored = taxonomy_store.import_yaml(
                session, settings, text, who, origin=str(path), force=force
            )
            summary = taxonomy_store.history(session)[0].summary
    except TaxonomyError as exc:
        raise _fail(str(exc)) from None
    except taxonomy_store.TaxonomyConflict as exc:
        raise _fail(f"{exc}, or import with --force to replace it anyway", 1) from None
    except IntegrityError:
        raise _fail("the taxonomy changed concurrently; run the import again", 1) from None
    if not stored.changed:
        typer.echo(f"no change: {path} is the current taxonomy (version {stored.version})")
        return
    typer.echo(f"taxonomy version {stored.version} stored ({summary})")
    for warning in _warnings(settings, before, stored.taxonomy):
        typer.echo(f"warning: {warning}", err=True)
    if retheme_now:
        _retheme(settings, sessions)


def _warnings(settings: Any, before: Any, after: Any) -> list[str]:
    """What this version stores that will not work as its author expects (it is stored all
    the same): a theme given nothing to match, a team moved to that has no Slack webhook."""
    from jobs.alerts import team_webhook

    out = []
    slack_set_up = any(settings.slack_webhooks.values())
    for theme in after.active:
        old = before.resolve(theme.id) if before is not None else None
        matched = (theme.seeds, theme.patterns)
        if (
            not theme.patterns
            and not any(seed.strip("~ ") for seed in theme.seeds)  # as the rules read them
            and (old is None or (old.seeds, old.patterns) != matched)
        ):
            out.append(
                f"theme {theme.id!r} has no seeds nor patterns: no verbatim is found under it "
                "(only a theme model trained with it could)"
            )
        # Without any webhook Slack is not set up: nothing to say per team.
        moved = old is None or old.team != theme.team
        if slack_set_up and moved and team_webhook(settings, theme.team) is None:
            fallback = (
                ": its alerts will go to the 'default' webhook"
                if team_webhook(settings, "default")
                else " nor a 'default' one: its alerts will stay queued"
            )
            out.append(
                f"theme {theme.id!r}: team {theme.team!r} has no Slack webhook "
                f"(slack_webhooks.{theme.team}){fallback}"
            )
    return out


def _retheme(settings: Any, sessions: Any) -> None:
    from jobs.retheme import retheme

    result = retheme(settings, sessions)
    if result is None:
        typer.echo("themes already up to date with the current version")
        return
    if result.start is None and settings.retheme_days <= 0:
        # Off by the setting: « no stored verbatims » read as an empty database.
        typer.echo(
            f"taxonomy version {result.version}: re-detection is off (retheme_days = 0): "
            "stored mentions keep the themes they were found with"
        )
        return
    if result.start is None:
        typer.echo(f"taxonomy version {result.version}: no stored verbatims to re-detect yet")
        return
    typer.echo(
        f"taxonomy version {result.version}: themes re-detected on {result.verbatims} "
        f"verbatims since {result.start} ({result.mentions} mentions), aggregates updated"
    )


@taxonomy_app.command("retheme")
def retheme_cmd() -> None:
    """Apply the current version to the recent window now (`retheme_days`; no sentiment pass)."""
    settings, sessions = _sessions()
    _current(settings, sessions)
    _retheme(settings, sessions)


@taxonomy_app.command("history")
def history() -> None:
    """Every version: number, when, who, what changed."""
    from core import taxonomy_store
    from core.db import session_scope

    settings, sessions = _sessions()
    _current(settings, sessions)
    with session_scope(sessions) as session:
        for row in taxonomy_store.history(session):
            when = row.created_at.strftime("%Y-%m-%d %H:%M")
            typer.echo(printable(f"v{row.version:<4} {when}  {row.author:<20} {row.summary}"))


def register(app: typer.Typer) -> None:
    app.add_typer(taxonomy_app, name="taxonomy")

"""`verbatim incidents [list] | ack ID | resolve ID`: incidents from the terminal.

For an on-call operator on the server (no browser): the same query and update as `GET
/incidents` and `POST /incidents/{id}/acknowledge|resolve` (`core.queries.list_incidents`,
`set_incident_status`), the same checks (an action already taken is refused, naming who
took it and when) and the same PII-masked note; who is the OS user (`cli:<user>`), as
`verbatim forget` records it.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from core.cli import bootstrap, fail, printable, user_errors

MAX_NOTE = 2000  # as the API's IncidentAction.note
LIVE = ("open", "acknowledged")

incidents_app = typer.Typer(
    help="Incidents: list them (open and acknowledged by default), acknowledge, resolve.",
    invoke_without_command=True,
)


def _when(moment: Any) -> str:
    return "?" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _iso(moment: Any) -> str | None:
    from core.store import as_utc

    return None if moment is None else as_utc(moment).isoformat()  # SQLite's are naive


def _as_dict(inc: Any, theme: str, dashboard_url: str) -> dict[str, Any]:
    """The fields of the API's IncidentOut (`core.queries.incident_fields`), JSON-ready."""
    from core.queries import incident_fields

    out = incident_fields(inc, theme, dashboard_url)
    for day in ("first_day", "last_day"):
        out[day] = out[day].isoformat()
    for moment in ("acknowledged_at", "resolved_at"):
        out[moment] = _iso(out[moment])
    return out


def _list(
    status: str | None, team: str | None, historical: bool, limit: int, as_json: bool
) -> None:
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import Incident
    from core.queries import INCIDENT_STATUSES, list_incidents
    from core.taxonomy_store import for_job

    if status is not None and status not in (*INCIDENT_STATUSES, "all"):
        raise fail(f"--status must be one of {', '.join(INCIDENT_STATUSES)} or all, got {status!r}")
    ctx = bootstrap()
    tax = for_job(ctx.sessions, ctx.settings).taxonomy
    wanted = LIVE if status is None else None if status == "all" else status
    with session_scope(ctx.sessions) as session:
        rows = list_incidents(
            session, status=wanted, team=team, include_historical=historical, limit=limit
        )
        if not rows and team is not None:
            # A misspelt team read as « nothing to do »: the on-call told all is quiet.
            known = {t.team for t in tax.themes} | {"default"}
            known |= set(session.scalars(select(Incident.team).distinct()))
            if team not in known:
                raise fail(f"unknown team {team!r}; the teams: {', '.join(sorted(known))}")
        items = []
        for inc in rows:
            # The id stored when it opened may be a former one (renamed, merged): the current
            # one, as the API shows it.
            theme = tax.current_id(inc.theme)
            items.append(_as_dict(inc, theme, ctx.settings.dashboard_url))
    if as_json:
        typer.echo(json.dumps({"items": items}, ensure_ascii=False, indent=1))
        return
    if not items:
        what = {None: "open or acknowledged ", "all": ""}.get(status, f"{status} ")
        typer.echo(f"no {what}incident" + (f" of team {team}" if team else ""))
        return
    for it in items:
        found = tax.resolve(it["theme"])
        label = f" « {found.label} »" if found is not None else ""
        period = it["first_day"] + (
            "" if it["first_day"] == it["last_day"] else f"..{it['last_day']}"
        )
        # Labels, teams and notes come through the API: printed as text (`printable`).
        typer.echo(
            printable(
                f"#{it['id']:<5} {it['status']:<12} {it['severity']:<8} {it['team']:<14} "
                f"{it['theme']}{label}  {period}  {'+'.join(it['kinds'])}"
                + ("  (historical, never sent)" if it["historical"] else "")
            )
        )
        if it["acknowledged_by"]:
            note = f": {' '.join(it['ack_note'].split())}" if it["ack_note"] else ""
            typer.echo(printable(f"       acknowledged by {it['acknowledged_by']}{note}"))
        if it["resolved_by"]:
            note = f": {' '.join(it['resolve_note'].split())}" if it["resolve_note"] else ""
            typer.echo(printable(f"       resolved by {it['resolved_by']}{note}"))


def _act(incident_id: int, action: str, note: str) -> None:
    from core.db import session_scope
    from core.queries import set_incident_status
    from jobs.cli_privacy import who_runs
    from jobs.ingest import LazyMasker

    note = note.strip()
    if len(note) > MAX_NOTE:
        raise fail(f"--note has {len(note)} characters: at most {MAX_NOTE}")
    ctx = bootstrap()
    who = who_runs()
    with session_scope(ctx.sessions) as session:
        # The API's update: an action already taken is an IncidentConflict (one line, exit 2).
        inc = set_incident_status(session, incident_id, action, who, note, LazyMasker(ctx.settings))
        if inc is None:
            raise fail(f"no incident {incident_id}: see `verbatim incidents list --status all`")
        done = "acknowledged" if action == "acknowledge" else "resolved"
        at = inc.acknowledged_at if action == "acknowledge" else inc.resolved_at
        line = f"incident {inc.id} {done} by {who} at {_when(at)} (status {inc.status})"
    typer.echo(line)


# The list's options, on `verbatim incidents` itself and on `verbatim incidents list`.
STATUS = typer.Option(
    None, help="open, acknowledged, resolved or all (default: open and acknowledged)"
)
TEAM = typer.Option(None, help="only this team's incidents")
HISTORICAL = typer.Option(True, help="include incidents raised on old days (never sent)")
LIMIT = typer.Option(50, min=1, max=500, help="the latest N")
AS_JSON = typer.Option(False, "--json", help="JSON, the fields of GET /incidents")


@incidents_app.callback()
def incidents(
    ctx: typer.Context,
    status: str | None = STATUS,
    team: str | None = TEAM,
    historical: bool = HISTORICAL,
    limit: int = LIMIT,
    as_json: bool = AS_JSON,
) -> None:
    """Incidents (one per theme and period): without a sub-command, the open and
    acknowledged ones, latest first (as `verbatim incidents list`)."""
    if ctx.invoked_subcommand is None:
        # A group's callback is not among the commands core.cli.wrap_commands wraps.
        user_errors(_list)(status, team, historical, limit, as_json)
    elif (status, team, historical, limit, as_json) != (None, None, True, 50, False):
        # `verbatim incidents --team x ack 3`: the filter would be silently ignored.
        raise fail(
            "--status, --team, --historical, --limit and --json are the list's options: "
            f"`verbatim incidents {ctx.invoked_subcommand}` takes none of them"
        )


@incidents_app.command("list")
def list_(
    status: str | None = STATUS,
    team: str | None = TEAM,
    historical: bool = HISTORICAL,
    limit: int = LIMIT,
    as_json: bool = AS_JSON,
) -> None:
    """Incidents, latest first (by last day): open and acknowledged unless --status."""
    _list(status, team, historical, limit, as_json)


@incidents_app.command("ack")
def ack(
    incident_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="the incident's id"),
    note: str = typer.Option("", "--note", "-n", help="optional note (stored PII-masked)"),
) -> None:
    """Acknowledge an incident (as POST /incidents/{id}/acknowledge).

    Who (the OS user, `cli:<user>`), when and the note are recorded; an incident already
    acknowledged, or resolved by someone, is refused, naming who and when."""
    _act(incident_id, "acknowledge", note)


@incidents_app.command("resolve")
def resolve(
    incident_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="the incident's id"),
    note: str = typer.Option("", "--note", "-n", help="optional note (stored PII-masked)"),
) -> None:
    """Resolve an incident (as POST /incidents/{id}/resolve).

    Who (the OS user, `cli:<user>`), when and the note are recorded; an incident already
    resolved by someone is refused, naming who and when (one the detector closed can be)."""
    _act(incident_id, "resolve", note)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")

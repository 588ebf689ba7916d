"""`verbatim serve` and `verbatim apikey create|list|revoke` (registered on the root app)."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli import bootstrap, fail

apikey_app = typer.Typer(
    help="Manage API keys (stored hashed; a token is shown only once).", no_args_is_help=True
)


def _sessions():  # noqa: ANN202 - sessionmaker
    return bootstrap().sessions


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="who or what uses the key")],
    scope: Annotated[
        str, typer.Option("--scope", help="read or write (write includes read)")
    ] = "read",
) -> None:
    """Create a key and print its token (once: only its hash is stored)."""
    from core.db import session_scope
    from service.auth import create_key

    if scope not in ("read", "write"):
        raise fail(f"--scope must be 'read' or 'write', not {scope!r}")
    if not name.strip():
        raise fail("NAME must not be empty")
    with session_scope(_sessions()) as session:
        key, token = create_key(session, name.strip(), scope)  # type: ignore[arg-type]
        key_id = key.id
    typer.echo(f"created key {key_id} ({name.strip()}, scope {scope})")
    typer.echo(f"token (shown once, keep it safe): {token}")


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (id, name, prefix, scopes, created, revoked)."""
    from core.db import session_scope
    from service.auth import list_keys

    with session_scope(_sessions()) as session:
        keys = list_keys(session)
        if not keys:
            typer.echo("no API keys")
        for k in keys:
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            typer.echo(
                f"{k.id}\t{k.name}\t{k.prefix}…\t{k.scopes}\t{k.created_at:%Y-%m-%d}\t{state}"
            )


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[int, typer.Argument(help="id from `apikey list`")]) -> None:
    """Revoke a key: it stops working at once."""
    from core.db import session_scope
    from service.auth import revoke_key

    with session_scope(_sessions()) as session:
        ok = revoke_key(session, key_id)
    if not ok:
        raise fail(f"no active API key with id {key_id}", 1)
    typer.echo(f"revoked key {key_id}")


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    open_read: Annotated[
        bool,
        typer.Option("--open-read", help="read endpoints without API key (local single user)"),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(help="uvicorn worker processes (default: setting api_workers, 1)", min=1),
    ] = None,
) -> None:
    """Run the API and the dashboard (http://HOST:PORT/)."""
    import logging
    import os

    import uvicorn

    from core.logs import server_log_level
    from service.app import create_app

    if open_read:  # also seen by worker processes, which read the settings themselves
        os.environ["VERBATIM_DASHBOARD_READ_WITHOUT_KEY"] = "1"
    ctx = bootstrap()  # settings checked and the schema migrated once, before any worker
    _check_listen(host, port)  # before the models and the warm-up
    count = workers or ctx.settings.api_workers
    typer.echo(f"Verbatim dashboard: http://{host}:{port}/  (API docs: /docs)")
    # uvicorn's loggers without handlers of their own (log_config=None): their lines go
    # through the CLI's one handler, in its format (VERBATIM_LOG_FORMAT=json) and level.
    logs = {"log_config": None, "log_level": server_log_level()}
    if count > 1:
        ctx.engine.dispose()
        # Each worker configures its logging as this process did (-v / -q included).
        os.environ["VERBATIM_LOG_LEVEL"] = str(logging.getLogger().level)
        uvicorn.run(
            "service.app:app_from_settings",
            factory=True,
            host=host,
            port=port,
            workers=count,
            **logs,
        )
        return
    app = create_app(ctx.settings, engine=ctx.engine)
    uvicorn.run(app, host=host, port=port, **logs)


def _check_listen(host: str, port: int) -> None:
    """Refuse a port another server holds (a second `verbatim serve`) or an unknown host before
    start-up: uvicorn said so only after the models and the warm-up (seconds to a minute),
    with its own log line and exit code 3. Binding as uvicorn does (SO_REUSEADDR: a port in
    TIME_WAIT after a restart is free)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn picks it
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            raise fail(f"--host {host}: {exc.strerror}") from None
        except OSError as exc:
            # Only a busy port is another server's: an address of no interface here (or a
            # port below 1024 without the right) was called busy too.
            hint = {
                errno.EADDRINUSE: "another server, another `verbatim serve` perhaps, uses it: "
                "stop it or choose another --port",
                errno.EADDRNOTAVAIL: "no network interface of this machine has this address: "
                "choose another --host",
                errno.EACCES: "a port below 1024 needs privileges: choose another --port",
            }.get(exc.errno or 0)
            why = f" ({hint})" if hint else ""
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}{why}") from None


def register(app: typer.Typer) -> None:
    """Add `serve` and the `apikey` group to the root `verbatim` app."""
    app.command("serve")(serve)
    app.add_typer(apikey_app, name="apikey")

"""The CLI kit every command module uses: `bootstrap()`, `fail()`, `parse_day()`, `user_errors`.

It sits in core (below jobs and service) so both sides' command modules share one copy. The root
app (verbatim_cli) wraps every command in `user_errors`, so a command only raises: a
`VerbatimError`, a bad setting or a bad TOML file becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
import functools
import inspect
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from nlp.errors import VerbatimError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from core.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2
EXIT_FAILED = 1


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` (one line) on stderr; return the Exit to raise."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


# C0 controls but tab and line feed, DEL and C1 controls: ESC (and C1's CSI, OSC) opens the
# terminal's escape sequences (colours, clearing the screen, the window title, OSC 52 writing
# the clipboard, OSC 8 links), CR rewrites the line.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text a command prints but did not write (a feed's row, a label or a note given through
    the API) with its control characters written out (`\\x1b`), never sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def rich_text(text: str) -> str:
    """`printable` for a rich table or console, its `[...]` markup escaped too (a label
    « Prix [/] » was a MarkupError traceback, « [link=https://…]ici[/link] » a link)."""
    from rich.markup import escape

    return escape(printable(text))


def not_a_file(path: Path, what: str) -> str:
    """Why `path` cannot be read as the `what` file: a directory, or nothing there."""
    if path.is_dir():
        return f"{what} is a directory, expected a file: {path}"
    return f"{what} not found: {path}"


def check_output_file(path: Path, what: str = "output") -> None:
    """Refuse, before any work, an output path that cannot be written as a file."""
    if path.is_dir():
        raise fail(f"{what} is a directory, expected a file path: {path}")
    if not path.parent.is_dir():
        raise fail(f"{what} directory does not exist: {path.parent}")
    if path.is_symlink() and not path.exists():  # a dangling link: its target is written
        target = Path(os.path.realpath(path))
        if not target.parent.is_dir():
            raise fail(f"{what} is a link into a directory that does not exist: {target}")


def parse_day(value: str | None, name: str) -> date | None:
    """An ISO day from an option (`name` is the option, for the message), or None."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{name}: {value!r} is not a YYYY-MM-DD date (like 2026-01-31)") from None


def _validation_line(exc: Any) -> str:
    """A pydantic ValidationError as one line: `field: message; field: message`."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _database_errors() -> tuple[type[BaseException], ...]:
    """SQLAlchemy's user-facing errors, once a command has imported SQLAlchemy.

    Commands without a database (`analyze`) never import it: 0.15 s of their start."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None:
        return ()
    return (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, sa_exc.OperationalError)


# A data dir, output or lock file the machine cannot write: a read-only mount (a Docker volume
# mounted `:ro`), a full disk, a quota. PermissionError (EACCES, EPERM) is caught on its own.
_CANNOT_WRITE = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT})

# What datetime/timedelta say when arithmetic leaves years 1..9999.
_DATE_OVERFLOW = re.compile(r"date value out of range|year -?\d+ is out of range|days=")


def user_errors(func: F) -> F:
    """Known failures -> one clear line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import tomllib

        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        try:
            return func(*args, **kwargs)
        except VerbatimError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except ValidationError as exc:
            raise fail(f"invalid configuration: {_validation_line(exc)}") from None
        except tomllib.TOMLDecodeError as exc:
            raise fail(f"invalid configuration file (TOML): {exc}") from None
        except SettingsError as exc:  # a list/map setting in the environment that is not JSON
            raise fail(
                f"invalid configuration: {exc}; list and map settings in the environment are "
                """JSON (VERBATIM_CORS_ORIGINS='["https://cx.example.fr"]')"""
            ) from None
        except OverflowError as exc:
            if not _DATE_OVERFLOW.search(str(exc)):
                raise  # not a date: a real fault, with its traceback
            # Date arithmetic past year 1 or 9999 (`report --days 10000000`).
            raise fail(
                "a date or period out of range (years 1 to 9999): check --day, --days, "
                "--since, --start and --end"
            ) from None
        except _database_errors() as exc:
            from sqlalchemy.exc import OperationalError

            if isinstance(exc, OperationalError):
                raise fail(f"database error: {exc.orig}", EXIT_FAILED) from None
            raise fail(f"invalid database_url: {exc}") from None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            raise fail(str(exc)) from None
        except PermissionError as exc:
            raise fail(str(exc), EXIT_FAILED) from None
        except OSError as exc:
            if exc.errno not in _CANNOT_WRITE:
                raise  # not the machine's storage: a real fault, with its traceback
            raise fail(f"cannot write: {exc}", EXIT_FAILED) from None
        except KeyboardInterrupt:
            raise fail("interrupted; run the same command again to resume", 130) from None

    return wrapper  # type: ignore[return-value]


def _with_log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add `-v/--verbose` and `-q/--quiet` to a command, so `verbatim run -v` works like
    `verbatim -v run` and `verbatim run --quiet` like `verbatim --quiet run` (only errors in
    the log). A command with its own `quiet` (ingest, run: no progress bar either) gets it
    true from either position."""
    # Annotations evaluated: typer reads a given __signature__ as it is, and string annotations
    # (`from __future__ import annotations`) would hide `Annotated[int, typer.Option(min=1)]`:
    # the option then kept its name but lost its help and bounds (`serve --port 99999`).
    sig = inspect.signature(func, eval_str=True)
    own_verbose, own_quiet = "verbose" in sig.parameters, "quiet" in sig.parameters
    # The command's context, to read the root's `--quiet` (typer fills a typer.Context).
    extra = [
        inspect.Parameter("_cli_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    ]
    if not own_verbose:
        option = typer.Option(
            0, "--verbose", "-v", count=True, help="More log lines on stderr (-v info, -vv debug)."
        )
        extra.append(
            inspect.Parameter(
                "verbose", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=int
            )
        )
    if not own_quiet:
        option = typer.Option(False, "--quiet", "-q", help="Only errors in the log.")
        extra.append(
            inspect.Parameter(
                "quiet", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=bool
            )
        )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: typer.Context | None = kwargs.pop("_cli_ctx", None)
        root_quiet = bool(ctx is not None and ctx.find_root().params.get("quiet"))
        verbose = 0 if own_verbose else kwargs.pop("verbose", 0)
        quiet = (kwargs["quiet"] if own_quiet else kwargs.pop("quiet", False)) or root_quiet
        if own_quiet:
            kwargs["quiet"] = quiet
        if verbose or quiet:
            from core.logs import configure_logging

            configure_logging(verbose=verbose, quiet=quiet)
        return func(*args, **kwargs)

    params = list(sig.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    params[at:at] = extra
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **getattr(func, "__annotations__", {}),
        **{p.name: p.annotation for p in extra},
    }
    return wrapper


def wrap_commands(app: typer.Typer) -> None:
    """Wrap every command (and sub-group command) of `app` in `user_errors` and give it
    `-v/--verbose` and `-q/--quiet`, once."""
    for info in app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "_wrapped_cli", False):
            info.callback = user_errors(_with_log_options(info.callback))
            info.callback._wrapped_cli = True  # type: ignore[attr-defined]
    for group in app.registered_groups:
        if group.typer_instance is not None:
            wrap_commands(group.typer_instance)


@dataclass(frozen=True)
class CliContext:
    """What a command needs from the environment: settings, the engine, a session factory."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


def bootstrap(settings: Settings | None = None, **overrides: Any) -> CliContext:
    """Load settings (unless given), open the database, migrate it, make sessions.

    A bad setting, URL or missing driver raises what `user_errors` turns into one line."""
    from core.db import make_engine, migrate, session_factory
    from core.settings import load_settings

    if settings is None:
        settings = load_settings(**overrides)
    try:
        engine = make_engine(settings.resolved_database_url)
    except ModuleNotFoundError as exc:
        raise fail(
            f"database driver missing ({exc.name}); "
            'for PostgreSQL: pip install -e ".[postgres]" in the checkout (PyPI\'s `verbatim` is '
            "another project)"
        ) from None
    migrate(engine)
    return CliContext(settings, engine, session_factory(engine))

"""Commands of this area (registered on the root `verbatim` app)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app` (filled in by the area's work)."""

"""Corrections as training data for `verbatim train themes|sentiment --corrections`."""

from __future__ import annotations

from typing import Any


def corrected_rows(need: str) -> tuple[list[dict[str, Any]], Any]:
    """Rows from the configured database (settings): see core.corrections.training_rows; and
    that database's current taxonomy, the version the corrections were made against."""
    from core.corrections import training_rows
    from core.db import make_engine, migrate, session_factory, session_scope
    from core.settings import load_settings
    from core.taxonomy_store import for_job

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        sessions = session_factory(engine)
        with session_scope(sessions) as session:
            rows = training_rows(session, need=need)
        return rows, for_job(sessions, settings).taxonomy
    finally:
        engine.dispose()

"""Corrections as training data for `verbatim train themes|sentiment --corrections`."""

from __future__ import annotations

from typing import Any


def corrected_rows(need: str) -> list[dict[str, Any]]:
    """Rows from the configured database (settings): see core.corrections.training_rows."""
    from core.corrections import training_rows
    from core.db import make_engine, migrate, session_factory, session_scope
    from core.settings import load_settings

    engine = make_engine(load_settings().resolved_database_url)
    try:
        migrate(engine)
        with session_scope(session_factory(engine)) as session:
            return training_rows(session, need=need)
    finally:
        engine.dispose()


def database_taxonomy() -> Any:
    """The configured database's current taxonomy: the version the analysts' corrections were
    made against (the one the pipeline and the API use)."""
    from core.db import make_engine, migrate, session_factory
    from core.settings import load_settings
    from core.taxonomy_store import for_job

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        return for_job(session_factory(engine), settings).taxonomy
    finally:
        engine.dispose()

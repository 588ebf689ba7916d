"""The Alembic revisions must build exactly the schema of core/models.py (no drift)."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from core.db import make_engine, migrate
from core.models import Base


def _diff(engine: Engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_fresh_sqlite_matches_models(engine: Engine) -> None:
    # `engine` is migrated by the fixture from an empty file.
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    assert _diff(engine) == []


def test_migrate_is_idempotent(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == _head()


def _head() -> str:
    """The single head of the revision graph (two heads would be a merge mistake)."""
    from alembic.script import ScriptDirectory

    from core.db import MIGRATIONS_DIR

    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}"
    return heads[0]


def test_drift_is_detected(tmp_path) -> None:
    """The check above can fail: a schema missing a column is reported."""
    eng = make_engine(f"sqlite:///{tmp_path / 'drift.db'}")
    migrate(eng)
    with eng.begin() as conn:
        conn.execute(text("alter table quarantine drop column field"))
    assert any("field" in str(d) for d in _diff(eng))
    eng.dispose()


@pytest.mark.postgres
def test_postgres_matches_models() -> None:
    url = os.environ.get("VERBATIM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("VERBATIM_TEST_POSTGRES_URL not set")
    admin = make_engine(url)
    schema = f"t_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))
    # A throwaway schema keeps the test off any data already in that database.
    eng = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(eng)
        assert _diff(eng) == []
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()


def test_downgrade_then_upgrade(tmp_path) -> None:
    from alembic import command
    from alembic.config import Config

    from core.db import MIGRATIONS_DIR

    eng = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(eng)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    migrate(eng)
    assert _diff(eng) == []
    eng.dispose()

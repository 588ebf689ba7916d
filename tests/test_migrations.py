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


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from core.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}"
    return heads[0]


def test_fresh_sqlite_matches_models(engine: Engine) -> None:
    # `engine` is migrated by the fixture from an empty file.
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    assert _diff(engine) == []


def test_migrate_is_idempotent(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert version == _head()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from core.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(cfg).get_heads()
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


def test_an_upgrade_with_data_rebuilds_the_aggregates_once_at_head(tmp_path) -> None:
    """0006 splits daily_keywords by channel and source: on a database with data, the rows
    of every channel are rebuilt by `migrate` once the schema is at head (today's aggregate
    code run inside an older revision would meet an older schema)."""
    from alembic import command
    from alembic.config import Config

    from core.db import MIGRATIONS_DIR, REBUILD_MARKER, session_factory
    from tests.api_seed import seed

    eng = make_engine(f"sqlite:///{tmp_path / 'up.db'}")
    migrate(eng)
    seed(session_factory(eng))
    count = "SELECT count(*) FROM daily_keywords WHERE channel <> '*'"
    with eng.connect() as conn:
        per_channel = conn.execute(text(count)).scalar()
    assert per_channel > 0
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005_aggregate_changes")
    columns = {c["name"] for c in inspect(eng).get_columns("daily_keywords")}
    assert "channel" not in columns
    migrate(eng)
    with eng.connect() as conn:
        assert conn.execute(text(count)).scalar() == per_channel
        marker = "SELECT count(*) FROM data_versions WHERE name = :n"
        assert conn.execute(text(marker), {"n": REBUILD_MARKER}).scalar() == 0
    assert _diff(eng) == []
    eng.dispose()


def test_upgrade_fills_the_quarantine_digests(tmp_path) -> None:
    """0008 gives the rows quarantined before it their digest, so a later read of the same
    data recognises them (`core.store.add_quarantine`)."""
    from alembic import command
    from alembic.config import Config

    from core.db import MIGRATIONS_DIR, session_factory
    from core.models import Quarantine
    from core.store import Rejection, add_quarantine, quarantine_digest

    eng = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    migrate(eng)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007_change_feed")
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO quarantine (source, row_number, reason, field, raw, created_at)"
                " VALUES ('s', 2, 'empty_text: no text', 'text', 'r3,2026-10-02,,3',"
                " '2026-12-01 10:00:00')"
            )
        )
    migrate(eng)
    assert _diff(eng) == []
    sessions = session_factory(eng)
    with sessions() as session:
        row = session.query(Quarantine).one()
        assert row.digest == quarantine_digest(row.reason, row.raw)
        rejection = Rejection("empty_text", "text", "no text")
        assert rejection.message == row.reason
        assert add_quarantine(session, [(2, rejection, row.raw)], source="s", run_id=1) == 0
    eng.dispose()

"""The Alembic revisions must build exactly the schema of core/models.py (no drift)."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, inspect, text

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


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_upgrade_rebuilds_the_hourly_trend_and_drivers_french_only(tmp_path, dialect) -> None:
    """0009: `hourly_aggregates` and `driver_cells` written before counted every language
    (the hourly trend showed twice the alert's mentions, /drivers regressed English answers);
    neither has a language column, so the upgrade marks a rebuild that `migrate` runs at
    head. Rows written while some verbatims counted stand in for the old code's rows."""
    from contextlib import ExitStack

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import select, update

    from core.db import MIGRATIONS_DIR, REBUILD_MARKER, session_factory
    from core.models import Feedback, ThemeMention
    from tests.api_seed import seed
    from tests.pg_schema import pg_schema_url

    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'fr.db'}"
            if dialect == "sqlite"
            else stack.enter_context(pg_schema_url())
        )
        eng = make_engine(url)
        stack.callback(eng.dispose)
        migrate(eng)
        sessions = session_factory(eng)
        seed(sessions)
        with sessions() as session:
            ids = session.scalars(select(Feedback.id).where(Feedback.id % 3 == 0)).all()
            session.execute(
                update(Feedback).where(Feedback.id.in_(ids)).values(language="en", is_french=False)
            )
            session.commit()
            french = select(Feedback.id).where(Feedback.language.in_(("fr", "und")))
            mentions = session.scalar(
                select(func.count())
                .select_from(ThemeMention)
                .where(ThemeMention.feedback_id.in_(french))
            )
            answers = session.scalar(
                select(func.count()).where(Feedback.nps.is_not(None), Feedback.id.in_(french))
            )
        hourly = "SELECT sum(volume) FROM hourly_aggregates"
        cells = "SELECT sum(count) FROM driver_cells WHERE score = 'nps'"
        with eng.connect() as conn:  # as the code before 0009 wrote them: every language
            assert conn.execute(text(hourly)).scalar() > mentions
            assert conn.execute(text(cells)).scalar() > answers
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008_quarantine_digest")
        migrate(eng)
        with eng.connect() as conn:
            assert conn.execute(text(hourly)).scalar() == mentions
            assert conn.execute(text(cells)).scalar() == answers
            marker = "SELECT count(*) FROM data_versions WHERE name = :n"
            assert conn.execute(text(marker), {"n": REBUILD_MARKER}).scalar() == 0
        assert _diff(eng) == []


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_upgrade_stores_weak_foreign_guesses_as_french(tmp_path, dialect) -> None:
    """0009: a row flagged French but stored under a weak foreign guess ("en") left the French
    figures while topics counted it; the upgrade gives it "fr" (what detection now stores) and
    rebuilds the aggregates, so the theme counts take it in. Real foreign rows stay."""
    from contextlib import ExitStack

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import select, update

    from core.db import MIGRATIONS_DIR, session_factory
    from core.models import ALL_THEMES, DailyAggregate, Feedback
    from tests.api_seed import seed
    from tests.pg_schema import pg_schema_url

    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'weak.db'}"
            if dialect == "sqlite"
            else stack.enter_context(pg_schema_url())
        )
        eng = make_engine(url)
        stack.callback(eng.dispose)
        migrate(eng)
        sessions = session_factory(eng)
        seed(sessions)
        volume = select(func.sum(DailyAggregate.volume)).where(DailyAggregate.theme == ALL_THEMES)
        with sessions() as session:
            total = session.scalar(volume)
            assert total
            weak = session.scalars(select(Feedback.id).where(Feedback.id % 4 == 0)).all()
            foreign = session.scalars(select(Feedback.id).where(Feedback.id % 4 == 1)).all()
            session.execute(update(Feedback).where(Feedback.id.in_(weak)).values(language="en"))
            session.execute(
                update(Feedback)
                .where(Feedback.id.in_(foreign))
                .values(language="de", is_french=False)
            )
            session.commit()
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008_quarantine_digest")
        migrate(eng)
        with sessions() as session:
            languages = dict(session.execute(select(Feedback.id, Feedback.language)).all())
            assert {languages[i] for i in weak} == {"fr"}
            assert {languages[i] for i in foreign} == {"de"}
            # The rebuilt aggregates count the relabelled rows, not the real foreign ones.
            assert session.scalar(volume) == total - len(foreign)

"""Upgrades as a team with data runs them: every revision from the one before with rows in
every table (non-ASCII text, NULLs, ids near the 32-bit limit), the oldest revision to head
through `core.db.migrate`, databases this code must refuse with one clear error, several
processes migrating one fresh database, and downgrades that keep referencing rows.

Each case runs on SQLite and, in CI's PostgreSQL job, on a throwaway PostgreSQL schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, MetaData, text

from core.db import MIGRATIONS_DIR, REBUILD_MARKER, make_engine, migrate
from tests.pg_schema import pg_schema_url

ROOT = Path(__file__).resolve().parents[1]
DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# Rebuilt from the source tables by the upgrade (`REBUILD_MARKER`), or bookkeeping.
DERIVED = {
    "daily_aggregates",
    "daily_facets",
    "hourly_aggregates",
    "daily_keywords",
    "driver_cells",
    "aggregate_changes",
    "data_versions",
    "alembic_version",
}
TEXT = "Très déçu 😡 — « livraison » ñ 中文 'quote' \"dq\" \\ back\nligne"


@pytest.fixture(params=DIALECTS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'v.db'}"
        return
    with pg_schema_url() as url:
        yield url


def _config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    return [
        s.revision for s in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))
    ]


def _upgrade(engine: Engine, target: str) -> None:
    """One `alembic upgrade` on `engine`, the way `core.db.migrate` runs it (no rebuild)."""
    from alembic import command

    from core.db import foreign_keys_off

    cfg = _config()
    with engine.connect() as conn, foreign_keys_off(conn), conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def _build(engine: Engine, target: str) -> None:
    """The schema of revision `target` on an empty database, built by the old migrations."""
    from alembic import command

    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def _value(col: sa.Column[Any], i: int, written: dict[tuple[str, str], list[Any]]) -> Any:
    """Row i's value for `col`: row 0 has NULL in every nullable column; the foreign keys
    point at rows already written; text is non-ASCII; integers reach 2**31 - 650."""
    if col.foreign_keys:
        target = next(iter(col.foreign_keys)).column
        return written[(target.table.name, target.name)][i]
    if col.nullable and i == 0 and not col.primary_key:
        return None
    if (col.table.name, col.name) == ("feedback", "language"):
        # As detection stores them: French flag (row 1) <=> "fr". 0009 gives "fr" to the rows
        # flagged French under a foreign code (the only data it corrects: tested in
        # test_migrations), which rows of random text would all be.
        return ("de", "fr", "en")[i]
    kind = col.type
    if isinstance(kind, sa.Integer):
        return (2_147_483_000, 7, 1_000_003)[i] + (0 if col.primary_key else 1)
    if isinstance(kind, sa.Float):
        return (0.1 + 2**-40, -3.5, 1e300)[i]
    if isinstance(kind, sa.Boolean):
        return bool(i % 2)
    if isinstance(kind, sa.DateTime):
        return datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC) + timedelta(days=i)
    if isinstance(kind, sa.Date):
        return date(2024, 2, 29) + timedelta(days=i)
    if isinstance(kind, sa.JSON):
        return {"é": [i, "ü", None], "n": 1.5}
    if isinstance(kind, sa.LargeBinary):
        return bytes(range(256)) * (i + 1)
    if isinstance(kind, sa.String):  # Text too
        value = f"{i}-{TEXT}"
        return value[: kind.length] if kind.length else value
    raise TypeError(f"no test value for {col.table.name}.{col.name}: {kind!r}")


def _populate(engine: Engine) -> None:
    """Three rows in every table of the schema as it is now (old column set)."""
    md = MetaData()
    md.reflect(engine)
    written: dict[tuple[str, str], list[Any]] = {}
    with engine.begin() as conn:
        for table in md.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [{c.name: _value(c, i, written) for c in table.columns} for i in range(3)]
            conn.execute(table.insert(), rows)
            for c in table.columns:
                written[(table.name, c.name)] = [r[c.name] for r in rows]


def _snapshot(engine: Engine, columns: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Every row of every table (or of `columns`' tables and columns), comparable."""
    md = MetaData()
    md.reflect(engine)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in md.sorted_tables:
            if columns is not None and table.name not in columns:
                continue
            names = (
                sorted(c.name for c in table.columns) if columns is None else columns[table.name]
            )
            rows = conn.execute(sa.select(*[table.c[n] for n in names])).all()
            out[table.name] = (names, sorted(tuple(repr(v) for v in r) for r in rows))
    return out


def _diff(engine: Engine) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.models import Base

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def _clear(engine: Engine) -> None:
    md = MetaData()
    md.reflect(engine)
    with engine.begin() as conn:
        for table in reversed(md.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(table.delete())


@pytest.mark.parametrize("db", DIALECTS, indirect=True)
def test_each_revision_keeps_every_row(db: str) -> None:
    """One database walked up the revisions; before each one, every table holds fresh rows."""
    revisions = _revisions()
    engine = make_engine(db)
    try:
        _build(engine, revisions[0])
        for before_rev, rev in zip(revisions, revisions[1:], strict=False):
            _clear(engine)
            _populate(engine)
            before = _snapshot(engine)
            _upgrade(engine, rev)
            kept = {t: v[0] for t, v in before.items() if t != "alembic_version"}
            after = _snapshot(engine, kept)
            if "data_versions" in after:  # without the row a migration adds to ask a rebuild
                names, rows = after["data_versions"]
                marker = repr(REBUILD_MARKER)
                after["data_versions"] = (names, [r for r in rows if marker not in r])
            changed = [t for t in kept if before[t] != after[t]]
            assert not changed, f"{before_rev} -> {rev} changed rows of {changed}"
    finally:
        engine.dispose()


@pytest.mark.parametrize("db", DIALECTS, indirect=True)
def test_oldest_to_head_keeps_every_row(db: str) -> None:
    """A database at the first revision, rows in every table, upgraded by `migrate` (as the app
    does): every row and value of the old columns is still there, the schema is the models'.
    On SQLite every `outbox` row was lost: 0002_incidents_taxonomy rewrites `alerts` in batch
    mode, and its DROP TABLE with foreign keys on cascaded into `outbox`."""
    engine = make_engine(db)
    try:
        _build(engine, _revisions()[0])
        _populate(engine)
        before = _snapshot(engine)
        migrate(engine)
        kept = {t: v[0] for t, v in before.items() if t not in DERIVED}
        assert _snapshot(engine, kept) == {t: before[t] for t in kept}
        assert _diff(engine) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("start", ["new", "oldest"])
@pytest.mark.parametrize("db", DIALECTS, indirect=True)
def test_a_migration_cut_short_leaves_nothing_and_the_next_start_completes_it(
    db: str, start: str
) -> None:
    """Ctrl-C, a full disk or a kill during a migration: on SQLite each CREATE / ALTER / DROP
    had committed on its own, so a first start cut short left Verbatim tables without
    `alembic_version` and every later start refused the database ("no migration record"), and
    a cut upgrade left a half-changed schema. Now the cut migration leaves the database as it
    was, and the next start migrates it, rows kept."""
    engine = make_engine(db)
    try:
        if start == "oldest":
            _build(engine, _revisions()[0])
            _populate(engine)
        before = _snapshot(engine)
        ddl = 0

        def cut(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            nonlocal ddl
            if statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
                ddl += 1
                if ddl == 6:
                    raise KeyboardInterrupt  # what Ctrl-C raises mid-statement

        sa.event.listen(engine, "after_cursor_execute", cut)
        with pytest.raises(KeyboardInterrupt):
            migrate(engine)
        sa.event.remove(engine, "after_cursor_execute", cut)
        assert _snapshot(engine) == before
        migrate(engine)
        kept = {t: v[0] for t, v in before.items() if t not in DERIVED}
        assert _snapshot(engine, kept) == {t: before[t] for t in kept}
        assert _diff(engine) == []
    finally:
        engine.dispose()


def _stamp(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


@pytest.mark.parametrize("db", DIALECTS, indirect=True)
def test_a_database_newer_than_the_code_is_refused(db: str) -> None:
    """A package downgraded after an upgrade: one error naming the revision, nothing changed."""
    from core.db import SchemaError

    engine = make_engine(db)
    try:
        migrate(engine)
        _stamp(engine, "0099_from_the_future")
        before = _snapshot(engine)
        with pytest.raises(SchemaError, match="0099_from_the_future, newer than this Verbatim"):
            migrate(engine)
        assert _snapshot(engine) == before
    finally:
        engine.dispose()


@pytest.mark.parametrize("db", DIALECTS, indirect=True)
def test_verbatim_tables_without_a_migration_record_are_refused(db: str) -> None:
    """Tables made without the migrations (`create_all`, a partial restore): one clear error
    instead of "table alerts already exists" half-way through revision 0001."""
    from core.db import SchemaError
    from core.models import Base

    engine = make_engine(db)
    try:
        Base.metadata.create_all(engine)
        with pytest.raises(SchemaError, match="no migration record"):
            migrate(engine)
        assert "alembic_version" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A database_url pointing at another application's SQLite file used to get Verbatim's 25
    tables added to it, silently."""
    from core.db import SchemaError

    path = tmp_path / "crm.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("create table clients (id integer primary key, nom text)"))
        with pytest.raises(SchemaError, match="not a Verbatim database .*clients"):
            migrate(engine)
        assert sa.inspect(engine).get_table_names() == ["clients"]
    finally:
        engine.dispose()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    from core.db import SchemaError

    path = tmp_path / "notes.db"
    path.write_text("pas une base de données\n" * 10, "utf-8")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(SchemaError, match="not a SQLite database"):
            migrate(engine)
    finally:
        engine.dispose()
    assert path.read_text("utf-8").startswith("pas une base")


def test_the_cli_says_a_newer_database_in_one_line(tmp_path: Path) -> None:
    """Was an alembic `CommandError` traceback ("Can't locate revision identified by ...")."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    migrate(engine)
    _stamp(engine, "0099_from_the_future")
    engine.dispose()
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(tmp_path),
        "VERBATIM_DATABASE_URL": url,
    }
    res = CliRunner().invoke(app, ["aggregate"], env=env)
    assert res.exit_code == 1, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "0099_from_the_future" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("db", DIALECTS, indirect=True)
def test_processes_migrating_a_fresh_database_at_once_make_one_schema(db: str) -> None:
    code = "import sys\nfrom core.db import make_engine, migrate\nmigrate(make_engine(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, db], env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v for (v,) in versions] == [_revisions()[-1]]
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_a_sqlite_downgrade_keeps_referencing_rows(tmp_path: Path) -> None:
    """`alembic downgrade` (env.py on a URL): 0002_scores' downgrade rewrites `feedback`, and
    with foreign keys on its DROP TABLE cascaded into `analyses` and every other child."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    try:
        _build(engine, "0002_scores")
        _populate(engine)
        before = _snapshot(engine, {"analyses": ["id"], "theme_mentions": ["id"]})
        cfg = _config()
        cfg.set_main_option("sqlalchemy.url", url)
        command.downgrade(cfg, "0002_incidents_taxonomy")
        assert _snapshot(engine, {"analyses": ["id"], "theme_mentions": ["id"]}) == before
    finally:
        engine.dispose()

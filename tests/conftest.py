"""Shared fixtures: a fresh SQLite file per test, migrated with the real Alembic revisions.

Use `settings` (data_dir in tmp_path, no config file read), `engine` (migrated), `sessions`
(a sessionmaker) and `session` (one open session, closed after the test).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, migrate, session_factory, session_scope
from core.settings import Settings

# Kinds of test that must run, never skip, here: a comma list of markers among
# "browser,postgres,schemathesis". `.ci/run` sets it to all three after installing Chromium and
# starting PostgreSQL, so a missing system package fails CI instead of silently skipping.
REQUIRED = {k.strip() for k in os.environ.get("VERBATIM_TEST_REQUIRE", "").split(",") if k.strip()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    kinds = {mark.name for mark in item.iter_markers()} & REQUIRED
    if kinds:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped, but VERBATIM_TEST_REQUIRE requires {sorted(kinds)}: {report.longrepr}"
        )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings isolated from the developer's environment and any ./verbatim.toml."""
    for key in list(os.environ):
        if key.startswith("VERBATIM_") and not key.startswith("VERBATIM_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)
    # Pipeline, API and alert tests exercise mechanics, not model quality: they run the fast
    # lexicon backend. The default embedded model has its own tests (tests/test_embedded.py).
    monkeypatch.setenv("VERBATIM_SENTIMENT_BACKEND", "lexicon")
    data_dir = tmp_path / "data"
    # spaCy NER for PII names costs a second per ingest call; tests/test_pii.py turns it on.
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'verbatim.db'}",
        sentiment_backend="lexicon",
        pii_ner=False,
    )


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head by the real revisions, copied by each `engine`:
    migrating a new file costs about 0.13 CPU-s, and most of the suite's tests need one."""
    path = tmp_path_factory.mktemp("schema") / "verbatim.db"
    eng = make_engine(f"sqlite:///{path}")
    migrate(eng)
    eng.dispose()
    # The last connection's close checkpoints the WAL: the file alone is the database.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def engine(settings: Settings, migrated_template: Path) -> Iterator[Engine]:
    url = settings.resolved_database_url
    target = Path(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite:///") and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_template, target)
    eng = make_engine(url)
    migrate(eng)  # at head already: checks the copy is ours and runs nothing
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def keys(sessions: sessionmaker[Session]) -> dict[str, str]:
    """A read and a write API key (tokens) in the test database."""
    from service.auth import create_key

    with session_scope(sessions) as session:
        _, read = create_key(session, "lecture", "read")
        _, write = create_key(session, "ecriture", "write")
    return {"read": read, "write": write}


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    s = sessions()
    yield s
    s.close()


@pytest.fixture
def pg_sessions() -> Iterator[sessionmaker[Session]]:
    """A migrated throwaway schema on VERBATIM_TEST_POSTGRES_URL (skipped when unset)."""
    import uuid

    from sqlalchemy import create_engine, text

    url = os.environ.get("VERBATIM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("VERBATIM_TEST_POSTGRES_URL not set")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))
    eng = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(eng)
        yield session_factory(eng)
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()

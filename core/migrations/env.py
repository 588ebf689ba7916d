"""Alembic environment: runs on a connection handed over by `core.db.migrate`, or on a URL.

URL order: `-x url=...`, then `sqlalchemy.url` in the ini file, then the Verbatim settings.
SQLite needs batch mode (copy-and-move) to alter tables, hence `render_as_batch`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from core.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    from core.settings import load_settings

    return load_settings().resolved_database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: emit SQL without a database."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from core.db import ddl_transaction, foreign_keys_off, make_engine

    engine = make_engine(_url())
    try:
        # SQLite: batch mode's DROP TABLE would cascade into referencing tables otherwise.
        with engine.connect() as conn, foreign_keys_off(conn), ddl_transaction(conn):
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""PostgreSQL: notify `verbatim_versions` when a table that the versions statement reads
changes, so the API reuses its last read until then (`core.change_feed`). Statement-level
triggers: one notification per statement at most, and PostgreSQL folds the identical ones of a
transaction into one, sent at commit. Nothing on SQLite (`PRAGMA data_version` does this).

Revision ID: 0007_change_feed
Revises: 0006_keywords_by_channel
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_change_feed"
down_revision: str | None = "0006_keywords_by_channel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "verbatim_versions"  # core.change_feed.CHANNEL (kept literal: migrations are frozen)
# What core.versions.read_versions reads.
TABLES = (
    "data_versions",
    "daily_aggregates",
    "alerts",
    "taxonomy_versions",
    "analyses",
    "incidents",
    "api_keys",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION verbatim_notify_versions() RETURNS trigger"
        f" LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER verbatim_versions_notify"
            f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION verbatim_notify_versions()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS verbatim_versions_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS verbatim_notify_versions()")

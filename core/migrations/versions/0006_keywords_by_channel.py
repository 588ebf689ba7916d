"""`daily_keywords` per channel and source: the channel- or source-filtered /themes reads
precomputed words instead of sampling mentions per request. Existing rows become the
all-channel rows ("*"); the per-channel rows come from a rebuild of the aggregates that
`core.db.migrate` runs once the schema is at head (`REBUILD_MARKER`).

Revision ID: 0006_keywords_by_channel
Revises: 0005_aggregate_changes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_keywords_by_channel"
down_revision: str | None = "0005_aggregate_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REBUILD_MARKER = "rebuild:aggregates"  # core.db.REBUILD_MARKER


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a unique constraint in place (the table is copied).
    with op.batch_alter_table("daily_keywords") as batch:
        batch.drop_constraint("uq_daily_keyword", type_="unique")
        batch.drop_index("ix_daily_keywords_theme_day")
        batch.add_column(
            sa.Column("channel", sa.String(length=20), server_default="*", nullable=False)
        )
        batch.add_column(
            sa.Column("source", sa.String(length=100), server_default="*", nullable=False)
        )
        batch.create_unique_constraint(
            "uq_daily_keyword", ["day", "theme", "channel", "source", "word"]
        )
        batch.create_index(
            "ix_daily_keywords_theme_channel_day", ["theme", "channel", "day"], unique=False
        )
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM daily_keywords LIMIT 1")).first() is not None:
        _mark_rebuild(bind)


def downgrade() -> None:
    op.execute("DELETE FROM daily_keywords WHERE channel <> '*' OR source <> '*'")
    with op.batch_alter_table("daily_keywords") as batch:
        batch.drop_index("ix_daily_keywords_theme_channel_day")
        batch.drop_constraint("uq_daily_keyword", type_="unique")
        batch.drop_column("source")
        batch.drop_column("channel")
        batch.create_unique_constraint("uq_daily_keyword", ["day", "theme", "word"])
        batch.create_index("ix_daily_keywords_theme_day", ["theme", "day"], unique=False)


def _mark_rebuild(bind: sa.Connection) -> None:
    bind.execute(sa.text("DELETE FROM data_versions WHERE name = :n"), {"n": REBUILD_MARKER})
    bind.execute(
        sa.text("INSERT INTO data_versions (name, version) VALUES (:n, 1)"), {"n": REBUILD_MARKER}
    )

"""`aggregate_changes`: the day range each rebuild of the aggregates touched, so that cached
views of untouched periods survive a new day of data.

Revision ID: 0005_aggregate_changes
Revises: 0004_period_views
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_aggregate_changes"
down_revision: str | None = "0004_period_views"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No backfill: versions without a row are read as "every day changed" (core.versions).
    op.create_table(
        "aggregate_changes",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )


def downgrade() -> None:
    op.drop_table("aggregate_changes")

"""Analysts' corrections of a verbatim's sentiment and themes; data version counters.

Revision ID: 0003_corrections
Revises: 0002_scores
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_corrections"
down_revision: str | None = "0002_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("sentiment", sa.String(length=10), nullable=True),
        sa.Column("themes", sa.JSON(), nullable=True),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "data_versions",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index(
        op.f("ix_corrections_feedback_id"), "corrections", ["feedback_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_corrections_feedback_id"), table_name="corrections")
    op.drop_table("corrections")
    op.drop_table("data_versions")

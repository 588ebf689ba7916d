"""Document embeddings stored at enrich time (table `embeddings`).

Revision ID: 0002_embeddings
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_embeddings"
down_revision: str | None = "0002_job_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feedback_id"),
    )
    op.create_index(op.f("ix_embeddings_model"), "embeddings", ["model"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_embeddings_model"), table_name="embeddings")
    op.drop_table("embeddings")

"""Survey scores on feedback (NPS, CSAT, CES).

Revision ID: 0002_scores
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_scores"
down_revision: str | None = "0002_incidents_taxonomy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("nps", sa.Float(), nullable=True))
        batch.add_column(sa.Column("csat", sa.Float(), nullable=True))
        batch.add_column(sa.Column("ces", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("ces")
        batch.drop_column("csat")
        batch.drop_column("nps")

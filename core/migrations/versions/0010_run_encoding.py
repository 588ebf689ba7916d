"""`ingestion_runs.encoding`: the text encoding a file was read with. A file read with the
wrong one (its rows quarantined as encoding errors) is read again once its source's encoding
is fixed, instead of being skipped as already read. Existing runs keep NULL (unknown).

Revision ID: 0010_run_encoding
Revises: 0009_french_trend_drivers
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_run_encoding"
down_revision: str | None = "0009_french_trend_drivers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingestion_runs") as batch:
        batch.add_column(sa.Column("encoding", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingestion_runs") as batch:
        batch.drop_column("encoding")

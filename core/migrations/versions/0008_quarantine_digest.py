"""`quarantine.digest`: a hash of each rejected row's (reason, raw text) as stored, indexed with
the source, so a row rejected again by a later read of the same data (`ingest --force`, a file
that grew, an HTTP source asked again, a client retrying `POST /feedback`) is stored once.
Existing rows get their digest here, with the same function `core.store.add_quarantine` uses.

Revision ID: 0008_quarantine_digest
Revises: 0007_change_feed
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_quarantine_digest"
down_revision: str | None = "0007_change_feed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000


def _digest(reason: str, raw: str) -> str:
    # Frozen copy of core.store.quarantine_digest (migrations never import the app).
    return hashlib.blake2b(f"{reason}\0{raw}".encode(), digest_size=16).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=32), nullable=True))
        batch.create_index("ix_quarantine_source_digest", ["source", "digest"], unique=False)
    bind = op.get_bind()
    table = sa.table(
        "quarantine",
        sa.column("id", sa.Integer),
        sa.column("reason", sa.String),
        sa.column("raw", sa.Text),
        sa.column("digest", sa.String),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(table.c.id, table.c.reason, table.c.raw)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            table.update().where(table.c.id == sa.bindparam("row_id")),
            [{"row_id": i, "digest": _digest(reason, raw)} for i, reason, raw in rows],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_index("ix_quarantine_source_digest")
        batch.drop_column("digest")

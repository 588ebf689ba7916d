"""No schema change: `hourly_aggregates` (the hourly trend) and `driver_cells` (the key drivers)
now hold French verbatims only (`core.queries.AGGREGATED_LANGUAGES`), as the theme figures and
alerts; `daily_keywords` too since the language audit before. The rows written before counted
every language and neither table has a language column to filter them on, so a database with
such rows is marked for a rebuild of the aggregates, which `core.db.migrate` runs once the schema
is at head (`REBUILD_MARKER`, as 0006).

Rows flagged French whose stored language was a foreign guess too weak to trust ("Impeccable !
No souci !" stored "en", `is_french` true: French in topics, foreign in every figure) get the
language that `nlp.text.language.detect_language` now gives them, "fr", and a rebuild.

Downgrade changes nothing: the older code reads French-only rows as they are, and its next
rebuild of a day writes every language again.

Revision ID: 0009_french_trend_drivers
Revises: 0008_quarantine_digest
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_french_trend_drivers"
down_revision: str | None = "0008_quarantine_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REBUILD_MARKER = "rebuild:aggregates"  # core.db.REBUILD_MARKER (kept literal: frozen)
REBUILT = ("hourly_aggregates", "driver_cells", "daily_keywords")


def upgrade() -> None:
    bind = op.get_bind()
    relabelled = bind.execute(
        sa.text(
            "UPDATE feedback SET language = 'fr' "
            "WHERE is_french = :yes AND language NOT IN ('fr', 'und')"
        ),
        {"yes": True},
    ).rowcount
    if relabelled or any(
        bind.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None
        for table in REBUILT
    ):
        bind.execute(sa.text("DELETE FROM data_versions WHERE name = :n"), {"n": REBUILD_MARKER})
        bind.execute(
            sa.text("INSERT INTO data_versions (name, version) VALUES (:n, 1)"),
            {"n": REBUILD_MARKER},
        )


def downgrade() -> None:
    pass

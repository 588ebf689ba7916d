"""Precomputed period views: `daily_facets` (day x theme x channel x source x language x
severity band, with survey scores on "*" rows), `hourly_aggregates`, `daily_keywords`
(each day's top words per theme) and `driver_cells` (grouped key-driver input), plus the
indexes that keep re-aggregation of given days and topic trends off full scans. Existing data is
aggregated once at the end of the upgrade (`core.db.migrate`), so the API reads complete tables
from the first request.

Revision ID: 0004_period_views
Revises: 0002_embeddings
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_period_views"
down_revision: str | None = "0002_embeddings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = ("volume", "negatives", "neutrals", "positives")


def upgrade() -> None:
    op.create_table(
        "daily_facets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("theme", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in _COUNTS),
        sa.Column("rating_sum", sa.Float(), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column("severity_sum", sa.Float(), nullable=False),
        sa.Column("severe", sa.Integer(), nullable=False),
        sa.Column("recurrent", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("rated_sum", sa.Float(), nullable=False),
        sa.Column("nps_count", sa.Integer(), nullable=False),
        sa.Column("nps_points", sa.Float(), nullable=False),
        sa.Column("csat_count", sa.Integer(), nullable=False),
        sa.Column("csat_points", sa.Float(), nullable=False),
        sa.Column("ces_count", sa.Integer(), nullable=False),
        sa.Column("ces_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "day", "theme", "channel", "source", "language", "band", name="uq_daily_facet_key"
        ),
    )
    op.create_index("ix_daily_facets_theme_day", "daily_facets", ["theme", "day"])
    op.create_table(
        "hourly_aggregates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("theme", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in _COUNTS),
        sa.Column("rating_sum", sa.Float(), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "hour", "theme", "channel", "source", name="uq_hourly_key"),
    )
    op.create_index("ix_hourly_theme_day", "hourly_aggregates", ["theme", "day"])
    op.create_table(
        "daily_keywords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("theme", sa.String(length=64), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "theme", "word", name="uq_daily_keyword"),
    )
    op.create_index("ix_daily_keywords_theme_day", "daily_keywords", ["theme", "day"])
    op.create_table(
        "driver_cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("score", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("themes", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_driver_cells_score_day", "driver_cells", ["score", "day"])
    op.create_index("ix_mentions_day", "theme_mentions", ["day"])
    op.create_index("ix_topic_assignments_topic_day", "topic_assignments", ["topic_id", "day"])
    # Backfill from the stored analyses: `core.db.migrate` runs `verbatim aggregate`'s code
    # once the schema is at head (run here, today's code would meet an older schema).
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM analyses LIMIT 1")).first() is not None:
        bind.execute(
            sa.text("DELETE FROM data_versions WHERE name = :n"), {"n": "rebuild:aggregates"}
        )
        bind.execute(
            sa.text("INSERT INTO data_versions (name, version) VALUES (:n, 1)"),
            {"n": "rebuild:aggregates"},
        )


def downgrade() -> None:
    op.drop_index("ix_topic_assignments_topic_day", table_name="topic_assignments")
    op.drop_index("ix_mentions_day", table_name="theme_mentions")
    op.drop_index("ix_driver_cells_score_day", table_name="driver_cells")
    op.drop_table("driver_cells")
    op.drop_index("ix_daily_keywords_theme_day", table_name="daily_keywords")
    op.drop_table("daily_keywords")
    op.drop_index("ix_hourly_theme_day", table_name="hourly_aggregates")
    op.drop_table("hourly_aggregates")
    op.drop_index("ix_daily_facets_theme_day", table_name="daily_facets")
    op.drop_table("daily_facets")

"""Storage schema (SQLAlchemy 2). Portable types: the same schema runs on SQLite and PostgreSQL.

Changes go through Alembic migrations in `core/migrations`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class IngestionRun(Base):
    """One ingest of one file/feed; `watermark` is the last row committed (resume point)."""

    __tablename__ = "ingestion_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    location: Mapped[str] = mapped_column(Text)  # file path or "api"
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # file content hash
    encoding: Mapped[str | None] = mapped_column(String(40))  # a file's text encoding
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|done|failed
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    watermark: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_stored: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Feedback(Base):
    """One verbatim. `text` is stored already PII-masked; `dedup_key` makes re-ingestion a no-op."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("source", "dedup_key", name="uq_feedback_source_dedup"),
        Index("ix_feedback_created_at", "created_at"),
        Index("ix_feedback_channel_created", "channel", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))  # review | social | complaint | survey
    external_id: Mapped[str | None] = mapped_column(String(200))
    dedup_key: Mapped[str] = mapped_column(String(220))  # "id:<external>" or "h:<content hash>"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rating: Mapped[float | None] = mapped_column(Float)
    # Survey scores when the feed has them: NPS 0-10, CSAT 1-5, CES 1-7.
    nps: Mapped[float | None] = mapped_column(Float)
    csat: Mapped[float | None] = mapped_column(Float)
    ces: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    is_french: Mapped[bool] = mapped_column(Boolean, default=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # Hashed customer / order reference, for recurrence ("the same customer comes back").
    customer_key: Mapped[str | None] = mapped_column(String(64), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingestion_runs.id"))
    analyzed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    analyses: Mapped[list[Analysis]] = relationship(back_populates="feedback")


class Analysis(Base):
    """Sentiment and severity of a verbatim by one model version (re-analysis adds a row)."""

    __tablename__ = "analyses"
    __table_args__ = (
        UniqueConstraint("feedback_id", "model_version", name="uq_analysis_feedback_model"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(100))
    sentiment: Mapped[str] = mapped_column(String(10))
    sentiment_score: Mapped[float] = mapped_column(Float)
    expected_stars: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[float] = mapped_column(Float, default=0.0)  # 0-1
    is_recurrent: Mapped[bool] = mapped_column(Boolean, default=False)
    analyzed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    feedback: Mapped[Feedback] = relationship(back_populates="analyses")
    mentions: Mapped[list[ThemeMention]] = relationship(
        back_populates="analysis", cascade="all, delete-orphan"
    )


CORRECTION_MODEL = "correction"  # Analysis.model_version of an analyst's correction


class Correction(Base):
    """An analyst's fix of a verbatim's sentiment and/or themes (the history: every fix is a
    row). The latest one is materialised as an `Analysis` with model_version "correction",
    which the aggregates prefer to any model's analysis."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), index=True
    )
    sentiment: Mapped[str | None] = mapped_column(String(10))  # None: keep the model's
    # [{"theme": id, "polarity": ...}]; None: keep the model's themes.
    themes: Mapped[list[Any] | None] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(100))  # API key name
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Embedding(Base):
    """A verbatim's document vector from its analysis pass (float16, L2-normalised), so topics
    and re-detection never re-encode. One row per verbatim: a re-analysis replaces it."""

    __tablename__ = "embeddings"

    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100), index=True)  # encoder weights key
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float16, little-endian
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThemeMention(Base):
    __tablename__ = "theme_mentions"
    __table_args__ = (
        Index("ix_mentions_theme_day", "theme", "day"),
        Index("ix_mentions_feedback", "feedback_id"),
        Index("ix_mentions_day", "day"),  # re-aggregating given days
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"))
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    theme: Mapped[str] = mapped_column(String(64))
    polarity: Mapped[str] = mapped_column(String(10))
    score: Mapped[float] = mapped_column(Float)
    day: Mapped[date] = mapped_column(Date)  # feedback day, denormalised for fast aggregates
    evidence_start: Mapped[int | None] = mapped_column(Integer)
    evidence_end: Mapped[int | None] = mapped_column(Integer)
    evidence_text: Mapped[str | None] = mapped_column(Text)

    analysis: Mapped[Analysis] = relationship(back_populates="mentions")


# DailyAggregate.theme of the row that counts every verbatim of the day, whatever its themes.
ALL_THEMES = "*"

# The columns of the per-day aggregate tables, as the aggregate job writes them and the API's
# in-memory copies (core.day_table) read them: keys, then summed counts.
KEY_COLUMNS = ("day", "theme", "channel", "source")
# The polarity and rating counts every aggregate table has (_ThemeDayCounts).
COUNT_COLUMNS = ("volume", "negatives", "neutrals", "positives", "rating_sum", "rating_count")
COLUMNS = (*KEY_COLUMNS, *COUNT_COLUMNS, "severity_sum")  # daily_aggregates
FACET_KEYS = (*KEY_COLUMNS, "language", "band")
FACET_VALUES = (
    *COUNT_COLUMNS,
    "severity_sum",
    "severe",
    "recurrent",
    "rated",
    "rated_sum",
    "nps_count",
    "nps_points",
    "csat_count",
    "csat_points",
    "ces_count",
    "ces_sum",
)


class _ThemeDayCounts:
    """The key and counts every per-day (or per-hour) aggregate table has: day x theme x
    channel x source, the mentions by polarity and the ratings (declared once for three)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    theme: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    volume: Mapped[int] = mapped_column(Integer, default=0)
    negatives: Mapped[int] = mapped_column(Integer, default=0)
    neutrals: Mapped[int] = mapped_column(Integer, default=0)
    positives: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[float] = mapped_column(Float, default=0.0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)


class DailyAggregate(_ThemeDayCounts, Base):
    """Per day x theme x channel x source. theme "*" holds all verbatims of that day."""

    __tablename__ = "daily_aggregates"
    __table_args__ = (
        UniqueConstraint("day", "theme", "channel", "source", name="uq_daily_key"),
        Index("ix_daily_theme_day", "theme", "day"),
    )

    severity_sum: Mapped[float] = mapped_column(Float, default=0.0)

    @property
    def negative_share(self) -> float:
        return self.negatives / self.volume if self.volume else 0.0

    @property
    def net_sentiment(self) -> float:
        return (self.positives - self.negatives) / self.volume if self.volume else 0.0

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.rating_count if self.rating_count else None


class DailyFacet(_ThemeDayCounts, Base):
    """Per day x theme x channel x source x language x severity band: what the period views
    (breakdowns, day trends, rating impact, survey scores, other languages) read instead of
    scanning mentions per request. Every language (daily_aggregates keeps French only and is
    derived from this table); theme "*" counts verbatims by document sentiment and carries
    the survey scores. Rebuilt with daily_aggregates by core.aggregate, for the same days."""

    __tablename__ = "daily_facets"
    __table_args__ = (
        UniqueConstraint(
            "day", "theme", "channel", "source", "language", "band", name="uq_daily_facet_key"
        ),
        Index("ix_daily_facets_theme_day", "theme", "day"),
    )

    language: Mapped[str] = mapped_column(String(8))
    band: Mapped[int] = mapped_column(Integer)  # index in core.queries.SEVERITY_BANDS
    severity_sum: Mapped[float] = mapped_column(Float, default=0.0)
    severe: Mapped[int] = mapped_column(Integer, default=0)  # severity >= 0.5
    recurrent: Mapped[int] = mapped_column(Integer, default=0)
    # Rated verbatims, each once however many mentions of the theme it has (rating impact).
    rated: Mapped[int] = mapped_column(Integer, default=0)
    rated_sum: Mapped[float] = mapped_column(Float, default=0.0)
    # Survey scores ("*" rows): answers and the sum of coded points (NPS +100/0/-100, CSAT
    # 100 for 4-5), CES as given.
    nps_count: Mapped[int] = mapped_column(Integer, default=0)
    nps_points: Mapped[float] = mapped_column(Float, default=0.0)
    csat_count: Mapped[int] = mapped_column(Integer, default=0)
    csat_points: Mapped[float] = mapped_column(Float, default=0.0)
    ces_count: Mapped[int] = mapped_column(Integer, default=0)
    ces_sum: Mapped[float] = mapped_column(Float, default=0.0)


KEYWORDS_ALL = "*"  # daily_keywords' channel and source of the all-channel rows


class DailyKeyword(Base):
    """Per day x theme x cell: the most frequent content words of its evidence spans (latest
    analysis of each verbatim, the top 30 of the cell), so /themes sums a period's keywords
    instead of tokenising spans per request, with or without a channel or source filter.
    Cells: (channel, source), (channel, "*") over the channel's sources, ("*", "*") over
    everything. Rebuilt with daily_aggregates, for the same days."""

    __tablename__ = "daily_keywords"
    __table_args__ = (
        UniqueConstraint("day", "theme", "channel", "source", "word", name="uq_daily_keyword"),
        Index("ix_daily_keywords_theme_channel_day", "theme", "channel", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    theme: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20), server_default=KEYWORDS_ALL)
    source: Mapped[str] = mapped_column(String(100), server_default=KEYWORDS_ALL)
    word: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(Integer)


class DriverCell(Base):
    """Key-driver input, grouped: analysed French verbatims per day x channel x source x score x
    answer x set of themes (stored ids of the latest analysis, sorted, comma-separated). The
    regression runs on these counts (frequency weights) instead of one row per verbatim.
    Rebuilt with daily_aggregates, for the same days."""

    __tablename__ = "driver_cells"
    __table_args__ = (Index("ix_driver_cells_score_day", "score", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    score: Mapped[str] = mapped_column(String(8))  # nps | csat | ces | rating
    value: Mapped[float] = mapped_column(Float)
    themes: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)


class HourlyAggregate(_ThemeDayCounts, Base):
    """Per UTC day x hour x theme x channel x source, French verbatims only (as the theme
    figures and alerts): hourly theme trends without scanning mentions. Rebuilt with
    daily_aggregates, for the same days."""

    __tablename__ = "hourly_aggregates"
    __table_args__ = (
        UniqueConstraint("day", "hour", "theme", "channel", "source", name="uq_hourly_key"),
        Index("ix_hourly_theme_day", "theme", "day"),
    )

    hour: Mapped[int] = mapped_column(Integer)  # 0-23, UTC


class DataVersion(Base):
    """A counter bumped by every rebuild of a derived table (name "aggregates"): the cache key
    of views computed from it. (Row ids are not enough: SQLite reuses ids 1..n when a full
    rebuild empties the table, so a rebuild could look unchanged.)"""

    __tablename__ = "data_versions"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class AggregateChange(Base):
    """Which days one rebuild of the aggregates touched, keyed by the "aggregates" data
    version it set: a cached view of a period that no later change touched stays valid (a
    new day of data does not invalidate last month's views). Written in the rebuild's
    transaction, after the version bump, so versions are in commit order."""

    __tablename__ = "aggregate_changes"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Alert(Base):
    """A raised spike. `alert_key` identifies an episode: a persisting spike updates its row."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_key: Mapped[str] = mapped_column(String(200), unique=True)
    theme: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # volume | negativity | emerging
    team: Mapped[str] = mapped_column(String(64), default="default")
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    severity: Mapped[str] = mapped_column(String(10))  # low | medium | high | critical
    observed: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # bumps when the episode updates
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The incident this signal feeds (volume, negativity and per-channel signals of one theme
    # on overlapping days share one); None for rows raised before incidents existed.
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )


class Incident(Base):
    """What a team is told about and acts on: every signal of one theme on overlapping days.

    `historical` incidents (all their days older than the freshness window when raised) are
    recorded, never sent. `revision` bumps on each change worth a new Slack message (opening,
    material escalation); `status` is open | acknowledged | resolved (by a person, with a note,
    or by the detector when its signals have been quiet for the cooldown).
    """

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_theme_days", "theme", "first_day", "last_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    theme: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(64), default="default")
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    severity: Mapped[str] = mapped_column(String(10))
    kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # {"volume": {...}, "negativity": {...}, "channels": {"review": {"volume": {...}}}}
    signals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    drivers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    examples: Mapped[list[Any]] = mapped_column(JSON, default=list)
    historical: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    notified_severity: Mapped[str | None] = mapped_column(String(10))
    taxonomy_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ack_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_note: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """Slack deliveries; undelivered ones are retried later, sent ones never again.

    One row per incident revision (older rows: per alert revision), and one per digest
    (route `digest`, no alert or incident, `revision` the period's last day and length as a
    number, `jobs.digest.period_revision`: it is retried like a message). `route` is the
    theme's team: its webhook is looked up when the message is *delivered*, so a message
    queued before the team's webhook existed goes to that team once it is configured.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("alert_id", "revision", "route", name="uq_outbox_alert_rev_route"),
        UniqueConstraint("incident_id", "revision", name="uq_outbox_incident_rev"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(64))  # team name -> webhook in settings
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Quarantine(Base):
    """A rejected input row, with why, so nothing is lost silently."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingestion_runs.id"))
    source: Mapped[str] = mapped_column(String(100))
    row_number: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    field: Mapped[str | None] = mapped_column(String(100))
    raw: Mapped[str] = mapped_column(Text)  # truncated raw row (PII-masked)
    # Hash of (reason, raw) as stored: a row rejected again by a later read of the same
    # data is recognised through the index instead of comparing texts (`add_quarantine`).
    digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_quarantine_source_digest", "source", "digest"),)


class Topic(Base):
    """A discovered topic; `id` is stable across runs (new clusters are matched to old ones)."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Examples: [{"feedback_id": int, "text": str}] (verbatims nearest the centroid).
    representatives: Mapped[list[Any]] = mapped_column(JSON, default=list)
    theme: Mapped[str | None] = mapped_column(String(64))  # matched taxonomy theme, if any
    is_emerging: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    centroid: Mapped[list[Any]] = mapped_column(JSON, default=list)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TopicAssignment(Base):
    __tablename__ = "topic_assignments"
    __table_args__ = (Index("ix_topic_assignments_topic_day", "topic_id", "day"),)

    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    probability: Mapped[float] = mapped_column(Float, default=1.0)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12), index=True)  # shown, to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[str] = mapped_column(String(50))  # "read" or "read,write"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TaxonomyVersion(Base):
    """One version of the taxonomy: the single source of truth for jobs, API and alerts.

    `body` is the YAML document (the exchange format); the highest `version` is current.
    `rethemed_at` is set once theme mentions of the recent window were recomputed with it.
    """

    __tablename__ = "taxonomy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    rethemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Themes this version added -> first day their mentions exist (start of the re-detected
    # window): detection warms them up from there, so a new theme is not "emerging".
    theme_since: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DetectionState(Base):
    """Per-scope evaluation watermark: the last day detection has evaluated."""

    __tablename__ = "detection_state"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)  # themes | channels
    last_day: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobRun(Base):
    """One scheduled tick of one scheduler job. (job, scheduled_for) is unique: the process that
    inserts the row owns the tick, so two schedulers on one database run each tick once."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "scheduled_for", name="uq_job_runs_job_tick"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    command: Mapped[str] = mapped_column(String(32))
    scheduled_for: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # running | ok | failed | aborted (stopped by SIGTERM between steps)
    status: Mapped[str] = mapped_column(String(20), default="running")
    lag_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # start - scheduled tick
    host: Mapped[str] = mapped_column(String(200))  # hostname:pid of the scheduler that ran it
    detail: Mapped[str | None] = mapped_column(Text)  # summary, or the error


class SourceState(Base):
    """The persisted cursor of one connector source (files seen, HTTP `since` cursor...).

    Updated in the same transaction as the rows it covers: a restart resumes exactly there."""

    __tablename__ = "source_state"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

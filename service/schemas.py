"""Pydantic v2 response/request models of the API (they document the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

Polarity = Literal["negative", "neutral", "positive"]
ChannelName = Literal["review", "social", "complaint", "survey"]


class ErrorOut(BaseModel):
    detail: str
    field: str | None = None


class Period(BaseModel):
    start: date
    end: date
    previous_start: date
    previous_end: date


class SpikeOut(BaseModel):
    alert_id: int
    kind: str
    severity: str
    first_day: date
    last_day: date


class RatingImpactOut(BaseModel):
    """Mean rating of rated verbatims mentioning the theme vs the period's other verbatims."""

    rated_with: int = Field(description="rated verbatims mentioning the theme")
    rated_without: int = Field(description="other rated verbatims of the period")
    mean_with: float | None
    mean_without: float | None
    difference: float | None = Field(description="mean_with - mean_without (stars)")
    effect_on_mean: float | None = Field(
        description="overall mean rating - mean without the theme's verbatims (stars)"
    )


class ThemeOut(BaseModel):
    id: str
    label: str
    team: str
    stage: str
    volume: int
    negatives: int
    neutrals: int
    positives: int
    negative_share: float
    net_sentiment: float
    mean_rating: float | None
    previous_volume: int
    volume_change: float | None = Field(description="relative change; null when previous is 0")
    negative_share_change: float = Field(description="difference in share points (0.1 = +10)")
    spike: SpikeOut | None = Field(description="the most severe open alert on the theme")
    keywords: list[str]
    trend: list[int] = Field(description="daily volume over the period, oldest first")
    rating_impact: RatingImpactOut | None = Field(
        default=None, description="the theme's impact on ratings over the period"
    )


class ThemesOut(BaseModel):
    period: Period
    taxonomy: str
    channel: str | None
    source: str | None
    total_volume: int
    themes: list[ThemeOut]
    # Verbatims detected as another language over the period: analysed and stored, but kept
    # out of the French figures above (language code -> count).
    other_languages: dict[str, int] = {}


class DayOut(BaseModel):
    day: date
    volume: int
    negatives: int
    neutrals: int
    positives: int
    negative_share: float
    net_sentiment: float


class ThemeDetailOut(BaseModel):
    id: str
    label: str
    description: str
    team: str
    stage: str
    aliases: list[str]
    retired: bool
    period: Period
    summary: ThemeOut
    series: list[DayOut]


class TrendPointOut(BaseModel):
    start: UtcDatetime = Field(description="start of the UTC day or hour")
    channel: str | None = Field(description="null when the trend is not split by channel")
    source: str | None = Field(description="null when the trend is not split by source")
    volume: int
    negatives: int
    neutrals: int
    positives: int
    negative_share: float
    net_sentiment: float
    mean_rating: float | None


class ThemeTrendOut(BaseModel):
    id: str
    label: str
    granularity: Literal["day", "hour"]
    split: Literal["none", "channel", "source", "channel_source"]
    period: Period
    channel: str | None
    source: str | None
    rating_impact: RatingImpactOut
    points: list[TrendPointOut]


class EvidenceOut(BaseModel):
    start: int | None
    end: int | None
    text: str | None


class VerbatimOut(BaseModel):
    feedback_id: int
    created_at: UtcDatetime
    channel: str
    source: str
    rating: float | None
    text: str = Field(description="PII-masked text")
    polarity: str
    score: float
    sentiment: str
    severity: float
    evidence: EvidenceOut | None


class VerbatimsOut(BaseModel):
    theme: str
    label: str
    items: list[VerbatimOut]
    next_cursor: str | None


class TopicDay(BaseModel):
    day: date
    count: int


class TopicOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    label: str
    keywords: list[Any]
    theme: str | None
    is_emerging: bool
    size: int
    representatives: list[Any]
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    trend: list[TopicDay] = Field(
        default_factory=list, description="verbatims assigned per day (last `trend_days` days)"
    )


class TopicsOut(BaseModel):
    items: list[TopicOut]
    total: int
    limit: int
    offset: int


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    theme: str
    kind: str
    team: str
    status: str
    first_day: date
    last_day: date
    severity: str
    observed: float
    expected: float
    p_value: float | None
    revision: int
    details: dict[str, Any]
    created_at: UtcDatetime
    updated_at: UtcDatetime


class AlertsOut(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


# --- taxonomy -------------------------------------------------------------------------------


class AddOp(BaseModel):
    op: Literal["add"]
    theme: dict[str, Any] = Field(description="a theme as in the taxonomy YAML (id, label, ...)")


class RenameOp(BaseModel):
    op: Literal["rename"]
    id: str
    new_id: str
    label: str | None = None


class MergeOp(BaseModel):
    op: Literal["merge"]
    source: str
    target: str


class RetireOp(BaseModel):
    op: Literal["retire"]
    id: str


Operation = Annotated[AddOp | RenameOp | MergeOp | RetireOp, Field(discriminator="op")]


class TaxonomyUpdate(BaseModel):
    """Either `operations` (applied in order) or a full `taxonomy` document, not both."""

    operations: list[Operation] | None = Field(default=None, max_length=200)
    taxonomy: dict[str, Any] | None = None


class TaxonomyOut(BaseModel):
    path: str | None = Field(description="file the taxonomy is saved to (null: built-in)")
    taxonomy: dict[str, Any]


# --- feedback / analyze ---------------------------------------------------------------------


class FeedbackBatch(BaseModel):
    source: str = Field(min_length=1, max_length=100, pattern=r"\S")
    channel: ChannelName = "review"
    items: list[dict[str, Any]] = Field(
        description=(
            "rows with `text` (required), optional `id`, `created_at`, `rating`, `customer`, "
            "`channel`, `title`; other keys are kept as metadata"
        ),
        json_schema_extra={"items": {"type": "object", "example": {"id": "r1", "text": "..."}}},
    )


class RowStatus(BaseModel):
    index: int
    status: Literal["stored", "duplicate", "rejected"]
    feedback_id: int | None = None
    reason: str | None = None
    field: str | None = None


class FeedbackResult(BaseModel):
    run_id: int | None
    stored: int
    duplicates: int
    rejected: int
    rows: list[RowStatus]


class AnalyzeIn(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="rows with a `text` string; other fields are echoed back"
    )


class AnalyzeOut(BaseModel):
    model_version: str
    items: list[dict[str, Any]]


class HealthOut(BaseModel):
    status: str
    database: str
    version: str

"""Pydantic v2 response/request models of the API (they document the OpenAPI schema)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _iso_day(value: object) -> object:
    """Days are YYYY-MM-DD only: pydantic would read "0" or "1700000000" as a Unix time
    (?start=0 -> 1970-01-01)."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value.strip()):
        raise ValueError("expected a day as YYYY-MM-DD")
    return value


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoDay = Annotated[date, BeforeValidator(_iso_day)]  # every day query parameter of the API

Polarity = Literal["negative", "neutral", "positive"]
ChannelName = Literal["review", "social", "complaint", "survey"]

# Request bodies refuse a key they do not know, with a 422 naming it: ignored, a misspelt key
# (`"themse"`) lost the analyst's fix while the answer said it was stored. (The rows of
# POST /feedback and /analyze keep their other keys: metadata, echoed.)
STRICT = ConfigDict(extra="forbid")


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
    negative_share_change: float | None = Field(
        description="difference in share points (0.1 = +10); null when either period has no mention"
    )
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
    language: str = "fr"
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
    incident_id: int | None = None
    incident_status: str | None = Field(
        None,
        description="status of the incident the alert feeds (open | acknowledged | resolved):"
        " an alert of an incident a person resolved is not counted as open",
    )


class AlertsOut(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


# --- taxonomy -------------------------------------------------------------------------------


class AddOp(BaseModel):
    model_config = STRICT

    op: Literal["add"]
    theme: dict[str, Any] = Field(
        description="a theme as in the taxonomy YAML (id, label, ...)",
        json_schema_extra={
            "required": ["id", "label"],
            "properties": {
                "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,40}$"},
                "label": {"type": "string", "minLength": 1},
            },
        },
    )


class RenameOp(BaseModel):
    model_config = STRICT

    op: Literal["rename"]
    id: str
    new_id: str = Field(json_schema_extra={"pattern": "^[a-z][a-z0-9_]*$"})
    label: str | None = None


class MergeOp(BaseModel):
    model_config = STRICT

    op: Literal["merge"]
    source: str
    target: str


class RetireOp(BaseModel):
    model_config = STRICT

    op: Literal["retire"]
    id: str


Operation = Annotated[AddOp | RenameOp | MergeOp | RetireOp, Field(discriminator="op")]


class TaxonomyUpdate(BaseModel):
    """Either `operations` (applied in order) or a full `taxonomy` document, not both."""

    # The schema states what the handler checks, so that clients (and fuzzers) generating
    # from the OpenAPI document send acceptable requests: exactly one of the two keys, and a
    # taxonomy with a name and themes that have an id and a label.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["operations"], "properties": {"operations": {"type": "array"}}},
                {"required": ["taxonomy"], "properties": {"taxonomy": {"type": "object"}}},
            ],
        },
    )

    operations: list[Operation] | None = Field(default=None, min_length=1, max_length=200)
    taxonomy: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={
            "required": ["name", "themes"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "themes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["id", "label"],
                        "properties": {
                            "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,40}$"},
                            "label": {"type": "string", "minLength": 1},
                            "retired": {"const": False},
                        },
                    },
                },
            },
        },
    )


class TaxonomyOut(BaseModel):
    version: int = Field(description="version in the database (the single source of truth)")
    path: str | None = Field(
        default=None, description="deprecated: always null (the taxonomy lives in the database)"
    )
    taxonomy: dict[str, Any]


class TaxonomyVersionOut(BaseModel):
    version: int
    author: str
    created_at: UtcDatetime
    summary: str = Field(description="what changed versus the previous version")
    rethemed_at: UtcDatetime | None = Field(description="when recent themes were re-detected")


class TaxonomyHistoryOut(BaseModel):
    items: list[TaxonomyVersionOut]


class IncidentOut(BaseModel):
    id: int
    theme: str
    team: str
    status: Literal["open", "acknowledged", "resolved"]
    first_day: date
    last_day: date
    severity: str
    kinds: list[str]
    signals: dict[str, Any]
    drivers: list[dict[str, Any]]
    examples: list[str]
    historical: bool
    revision: int
    link: str = Field(description="dashboard URL of the theme and period")
    acknowledged_by: str | None
    acknowledged_at: UtcDatetime | None
    ack_note: str | None
    resolved_by: str | None
    resolved_at: UtcDatetime | None
    resolve_note: str | None


class IncidentList(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None = Field(
        default=None, description="`cursor` of the next (older) page; null on the last page"
    )


class IncidentAction(BaseModel):
    model_config = STRICT

    note: str = Field(default="", max_length=2000, description="Stored PII-masked")


# --- feedback / analyze ---------------------------------------------------------------------


def _not_personal(source: str) -> str:
    """A source is shown unmasked in every answer and export (it names a channel or tool):
    an e-mail or phone number there would be the one PII left in clear."""
    from core.store import looks_personal

    if looks_personal(source):
        raise ValueError(
            "source looks like personal data (an e-mail, phone number or bank details): "
            "name the tool or channel instead, e.g. 'zendesk'"
        )
    return source


def _no_nul(source: str) -> str:
    """PostgreSQL refuses a NUL in text (a 500); SQLite stored it in every answer's source."""
    if "\x00" in source:
        raise ValueError(f"character U+0000 at {source.index(chr(0))} is not text")
    return source


class FeedbackBatch(BaseModel):
    model_config = STRICT

    source: Annotated[
        str,
        Field(min_length=1, max_length=100, pattern=r"\S"),
        AfterValidator(_no_nul),
        AfterValidator(_not_personal),
    ]
    channel: ChannelName = "review"
    items: list[dict[str, Any]] = Field(
        description=(
            "rows with `text` (required), optional `id`, `created_at`, `rating` (out of 5, "
            "or with its scale: `8/10`, `80 %`), `nps` (0-10), "
            "`csat` (1-5), `ces` (1-7), `customer`, "
            "`channel`, `title`; other keys are kept as metadata"
        ),
        json_schema_extra={
            "minItems": 1,
            "items": {"type": "object", "example": {"id": "r1", "text": "..."}},
        },
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
    model_config = STRICT

    items: list[dict[str, Any]] = Field(
        description="rows with a `text` string; other fields are echoed back",
        json_schema_extra={
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {"text": {"type": "string", "minLength": 1, "pattern": "\\S"}},
            },
        },
    )


class AnalyzeOut(BaseModel):
    model_version: str
    items: list[dict[str, Any]]


class JobRunOut(BaseModel):
    """The latest run of one `verbatim scheduler` job."""

    job: str
    command: str
    status: str  # running | ok | failed | aborted | interrupted
    scheduled_for: str
    started_at: str
    finished_at: str | None
    lag_seconds: float  # start - scheduled tick
    duration_seconds: float | None
    last_success_at: str | None
    host: str
    detail: str | None


class AnalyzerOut(BaseModel):
    """What this API process analyses with (core.analysis.analyzer_info)."""

    model_version: str = Field(description="stored with each analysis it writes")
    encoder_runtime: str | None = Field(
        description="torch, onnx-fp32, onnx-int8, openvino-int8 or openvino-bf16; "
        "null without an encoder (lexicon, tfidf)"
    )
    kernels: str | None = Field(description="the CPU kernels that runtime reaches here")
    theme_heads: str = Field(
        description="full (with the encoder's vectors), lite (encoder-free: also the "
        "fallback for another encoder than the training one) or rules"
    )


class HealthOut(BaseModel):
    status: str
    database: str
    version: str
    jobs: list[JobRunOut] = []  # scheduler jobs, latest run each (empty without a scheduler)
    # None until the analyzer is built (at start-up; at the first write with
    # api_preload_models = false): /health never builds it.
    analyzer: AnalyzerOut | None = None


class KeyScopeOut(BaseModel):
    """What the key sent may do: its name (None when none was sent and reads are open) and
    scope. Never the token nor its hash."""

    name: str | None
    scope: Literal["read", "write"]


# --- key drivers, overview, journey, corrections --------------------------------------------

ScoreName = Literal["nps", "csat", "ces", "rating"]


class DriverOut(BaseModel):
    theme: str
    label: str
    mentions: int = Field(description="verbatims with this score that name the theme")
    mean_with: float = Field(description="mean coded score of those verbatims")
    mean_without: float
    effect: float = Field(
        description="adjusted change of the coded score when the theme is named (OLS "
        "coefficient, other themes held fixed)"
    )
    ci_low: float = Field(description="95 % confidence interval (HC3 robust errors)")
    ci_high: float
    p_value: float
    impact: float = Field(description="effect x share of verbatims naming it")
    significant: bool


class DriversOut(BaseModel):
    score: ScoreName
    unit: str = Field(description="unit of the effects")
    period: Period
    answers: int = Field(
        description="analysed French verbatims of the period carrying the score (as /overview)"
    )
    coded_mean: float | None = Field(
        description="NPS (-100..100) / CSAT (% of 4-5) / mean CES or rating of the period"
    )
    drivers: list[DriverOut] = Field(description="largest negative impact first")


class ThemeFix(BaseModel):
    model_config = STRICT

    theme: str = Field(min_length=1, max_length=64, description="theme id (or a former id)")
    polarity: Polarity


class CorrectionIn(BaseModel):
    model_config = STRICT

    sentiment: Polarity | None = Field(default=None, description="null: keep the model's")
    themes: list[ThemeFix] | None = Field(
        default=None,
        max_length=50,
        description="the complete corrected theme list ([]: none); null: keep the model's",
    )
    note: str | None = Field(default=None, max_length=1000, description="Stored PII-masked")


class CorrectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    feedback_id: int
    sentiment: str | None
    themes: list[dict[str, Any]] | None
    author: str
    note: str | None
    created_at: UtcDatetime


class CorrectedVerbatimOut(BaseModel):
    """A corrected verbatim with the analysts' labels (core.corrections.CorrectedVerbatim)."""

    model_config = ConfigDict(from_attributes=True)

    feedback_id: int
    created_at: UtcDatetime
    channel: str
    source: str
    text: str = Field(description="as stored: PII-masked")
    sentiment: str | None = Field(description="the analysts' sentiment; null: not corrected")
    themes: dict[str, str] | None = Field(
        description="{theme id: polarity} the analysts gave, current ids (a theme removed or "
        "retired since is left out); {}: no theme; null: not corrected"
    )
    corrected_at: UtcDatetime
    author: str
    note: str | None
    corrections: int = Field(description="how many corrections the verbatim has had")


class CorrectionsOut(BaseModel):
    items: list[CorrectedVerbatimOut]
    next_cursor: str | None


class MentionOut(BaseModel):
    theme: str
    polarity: str
    evidence: EvidenceOut | None


class AnalysisOut(BaseModel):
    model_version: str
    sentiment: str
    severity: float
    themes: list[MentionOut]


class FeedbackOut(BaseModel):
    id: int
    created_at: UtcDatetime
    channel: str
    source: str
    language: str
    rating: float | None
    nps: float | None
    csat: float | None
    ces: float | None
    text: str
    model: AnalysisOut | None = Field(description="the latest model analysis")
    current: AnalysisOut | None = Field(description="what the figures count (a correction wins)")
    corrections: list[CorrectionOut] = Field(description="newest first")


class CorrectionResult(BaseModel):
    correction: CorrectionOut
    reaggregated_days: list[date]
    feedback: FeedbackOut


class ErasureOut(BaseModel):
    """What `DELETE /feedback/{id}` removed (core.erasure.Erased; the audit line's counts)."""

    verbatims: int = Field(description="1: the verbatim itself")
    analyses: int
    mentions: int = Field(description="theme mentions and their evidence spans")
    corrections: int = Field(description="analysts' corrections, with their notes")
    embeddings: int
    topic_assignments: int
    topic_examples: int = Field(description="quotes removed from discovered topics' examples")
    incident_examples: int = Field(description="quotes removed from incidents' examples")
    messages: int = Field(description="stored Slack messages whose quote was replaced")
    incidents: int = Field(
        description="incidents closed: their emerging topic was left without a verbatim"
    )
    reaggregated_days: list[date] = Field(description="UTC days whose figures were recomputed")


class BreakdownItem(BaseModel):
    key: str
    mentions: int
    negatives: int
    negative_share: float


class GravityDay(BaseModel):
    day: date
    mentions: int
    severe: int
    recurrent: int


class ThemeBreakdownOut(BaseModel):
    id: str
    label: str
    period: Period
    by_channel: list[BreakdownItem]
    by_source: list[BreakdownItem]
    by_language: list[BreakdownItem]
    by_severity: list[BreakdownItem] = Field(
        description="severity bands faible (<0.25), moyenne, haute, critique (>=0.75)"
    )
    severe: int = Field(description="mentions with severity >= 0.5")
    recurrent: int = Field(description="mentions by customers who had complained before")
    by_day: list[GravityDay]


class ScoreOut(BaseModel):
    score: ScoreName
    answers: int = Field(
        description="analysed French verbatims of the period carrying the score (the "
        "population of `verbatims`; other languages' answers are counted apart with them, "
        "`other_languages`)"
    )
    value: float | None = Field(
        description="NPS (-100..100), CSAT (% of 4-5 answers), CES mean, over those answers"
    )
    previous_answers: int
    previous_value: float | None


class MoverOut(BaseModel):
    id: str
    label: str
    stage: str
    volume: int
    previous_volume: int
    volume_change: float | None
    negatives: int
    negative_share: float
    negative_share_change: float | None  # null when the previous period had no mention


class OverviewOut(BaseModel):
    period: Period
    verbatims: int
    previous_verbatims: int
    negatives: int = Field(description="verbatims whose document sentiment is negative")
    negative_share: float
    previous_negative_share: float | None = Field(
        description="null when the previous period had no verbatim"
    )
    scores: list[ScoreOut] = Field(description="only the scores the feed carries")
    top_movers: list[MoverOut] = Field(description="largest rise in mentions first")
    open_alerts: int
    sources: list[str] = Field(description="every source name (for filters)")
    other_languages: dict[str, int] = Field(
        default={},
        description="verbatims of the period detected as another language (language code -> "
        "count): analysed and stored, but not in the French figures and scores above",
    )

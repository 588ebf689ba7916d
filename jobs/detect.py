"""`verbatim detect`: run the spike detector on `daily_aggregates`, persist alert episodes,
queue one outbox message per alert revision and route.

Topics flagged emerging (`topics.is_emerging`) are tested too, on their per-day sizes from
`topic_assignments` (`nlp.spikes.detect_growth`): their alerts have theme "topic:<id>",
kind "emerging", details.topic_id/topic_label, and go to the taxonomy's default team.

Idempotent: a day already applied to an episode changes nothing (episode keys carry their
first day, updates skip days <= last_day, outbox rows are unique per alert/revision/route).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import (
    ALL_THEMES,
    Alert,
    DailyAggregate,
    Feedback,
    OutboxMessage,
    ThemeMention,
    Topic,
    TopicAssignment,
)
from core.queries import latest_day, topic_trends
from core.settings import Settings
from jobs.slack_message import AlertView, build_payload
from nlp.spikes import (
    DetectorConfig,
    Episode,
    EpisodeEvent,
    Series,
    Signal,
    SpikeDetector,
    detect_growth,
    rules_from_taxonomy,
    topic_id_of,
    topic_theme,
    update_episodes,
)
from nlp.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)
LOOKBACK_DAYS = 7  # each run re-checks the last week (idempotent), see run_detect


@dataclass
class DetectResult:
    days: list[date] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    resolved: int = 0
    queued: int = 0


# --- reading --------------------------------------------------------------------------------
def first_day(session: Session) -> date | None:
    return session.execute(select(func.min(DailyAggregate.day))).scalar()


def load_series(
    session: Session, taxonomy: Taxonomy, until: date, *, span_days: int, per_channel: bool = False
) -> list[Series]:
    """Daily theme series ending at `until` (summed over sources, and channels unless
    `per_channel`); former theme ids are folded into their current theme."""
    start_all = first_day(session)
    if start_all is None:
        return []
    start = max(start_all, until - timedelta(days=span_days))
    cols = [DailyAggregate.day, DailyAggregate.theme]
    if per_channel:
        cols.append(DailyAggregate.channel)
    rows = session.execute(
        select(*cols, func.sum(DailyAggregate.volume), func.sum(DailyAggregate.negatives))
        .where(
            DailyAggregate.theme != ALL_THEMES,
            DailyAggregate.day >= start,
            DailyAggregate.day <= until,
        )
        .group_by(*cols)
    ).all()
    counts: dict[tuple[str, str | None], dict[date, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        theme = taxonomy.resolve(row[1])
        if theme is None or theme.retired:
            continue
        key = (theme.id, row[2] if per_channel else None)
        vol, neg = int(row[-2] or 0), int(row[-1] or 0)
        old = counts[key].get(row[0], (0, 0))
        counts[key][row[0]] = (old[0] + vol, old[1] + neg)
    if not per_channel:
        for theme_id in taxonomy.ids:  # absent themes still get a (zero) series: emergence
            counts.setdefault((theme_id, None), {})
    return [
        Series.from_days(theme, days, start, until, channel)
        for (theme, channel), days in sorted(counts.items(), key=lambda kv: str(kv[0]))
    ]


def load_topic_series(session: Session, until: date, *, span_days: int) -> list[Series]:
    """Per-day sizes (verbatims assigned per day) of every topic flagged emerging, ending at
    `until`, dense from the first aggregated day (or `span_days` before `until`)."""
    ids = list(session.execute(select(Topic.id).where(Topic.is_emerging.is_(True))).scalars())
    start_all = first_day(session)
    if not ids or start_all is None:
        return []
    start = max(start_all, until - timedelta(days=span_days))
    trends = topic_trends(session, ids, start=start, end=until)
    return [
        Series.from_days(
            topic_theme(tid), {d: (n, 0) for d, n in trends.get(tid, [])}, start, until
        )
        for tid in sorted(ids)
    ]


def example_texts(session: Session, taxonomy: Taxonomy, alert: Alert, limit: int = 3) -> list[str]:
    """Up to `limit` masked verbatims of the episode (negative mentions first; for a topic:
    its most probable members)."""
    from nlp.text import mask_pii

    topic_id = topic_id_of(alert.theme)
    if topic_id is not None:
        query = (
            select(Feedback.text)
            .join(TopicAssignment, TopicAssignment.feedback_id == Feedback.id)
            .where(
                TopicAssignment.topic_id == topic_id,
                TopicAssignment.day >= alert.first_day,
                TopicAssignment.day <= alert.last_day,
            )
            .order_by(TopicAssignment.probability.desc(), Feedback.id)
            .limit(limit * 3)
        )
    else:
        theme = taxonomy.resolve(alert.theme)
        ids = [alert.theme, *(theme.aliases if theme else [])]
        neg_first = case((ThemeMention.polarity == "negative", 0), else_=1)
        query = (
            select(Feedback.text)
            .join(ThemeMention, ThemeMention.feedback_id == Feedback.id)
            .where(
                ThemeMention.theme.in_(ids),
                ThemeMention.day >= alert.first_day,
                ThemeMention.day <= alert.last_day,
            )
            .order_by(neg_first, ThemeMention.score.desc(), Feedback.id)
            .limit(limit * 3)
        )
    out: list[str] = []
    for (text,) in session.execute(query):
        masked = mask_pii(text or "")  # stored masked already; masking again is harmless
        if masked and masked not in out:
            out.append(masked)
        if len(out) >= limit:
            break
    return out


# --- episodes <-> rows ----------------------------------------------------------------------
def _episode(row: Alert) -> Episode:
    details = dict(row.details or {})
    return Episode(
        key=row.alert_key,
        theme=row.theme,
        kind=row.kind,
        first_day=row.first_day,
        last_day=row.last_day,
        severity=row.severity,
        observed=row.observed,
        expected=row.expected,
        p_value=row.p_value,
        channel=details.get("channel"),
        revision=row.revision,
        status=row.status,
        peak_ratio=float(details.get("peak_ratio", 1.0)),
        details=details,
    )


def route_for(settings: Settings, taxonomy: Taxonomy, theme_id: str) -> tuple[str, str]:
    """(team, route): the theme's team, routed to "default" when it has no webhook."""
    theme = taxonomy.resolve(theme_id)
    team = theme.team if theme else "default"
    return team, team if team in settings.slack_webhooks else "default"


def _apply(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    ev: EpisodeEvent,
    now: datetime,
    result: DetectResult,
) -> None:
    ep = ev.episode
    row = session.execute(select(Alert).where(Alert.alert_key == ep.key)).scalar_one_or_none()
    details = {**ep.details, "channel": ep.channel, "peak_ratio": round(ep.peak_ratio, 4)}
    topic_id = topic_id_of(ep.theme)
    if topic_id is not None:
        topic = session.get(Topic, topic_id)
        details["topic_id"] = topic_id
        details["topic_label"] = topic.label if topic is not None else ep.theme
    team, route = route_for(settings, taxonomy, ep.theme)
    if ev.action == "new":
        if row is not None:
            return  # already raised by an earlier run of the same day
        row = Alert(
            alert_key=ep.key,
            theme=ep.theme,
            kind=ep.kind,
            team=team,
            status="open",
            first_day=ep.first_day,
            last_day=ep.last_day,
            severity=ep.severity,
            observed=ep.observed,
            expected=ep.expected,
            p_value=ep.p_value,
            revision=ep.revision,
            details=details,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        result.new += 1
    elif row is None:
        return
    elif ev.action == "update":
        row.first_day, row.last_day, row.status = ep.first_day, ep.last_day, ep.status
        row.severity, row.revision = ep.severity, ep.revision
        row.observed, row.expected, row.p_value = ep.observed, ep.expected, ep.p_value
        row.details, row.updated_at = details, now
        result.updated += 1
    else:  # resolve
        if row.status != "resolved":
            row.status, row.updated_at = "resolved", now
            result.resolved += 1
        return
    if ev.notify:
        result.queued += enqueue(session, settings, taxonomy, row, route)


def enqueue(
    session: Session, settings: Settings, taxonomy: Taxonomy, row: Alert, route: str
) -> int:
    """Queue the message of the alert's current revision for `route` (once)."""
    exists = session.execute(
        select(OutboxMessage.id).where(
            OutboxMessage.alert_id == row.id,
            OutboxMessage.revision == row.revision,
            OutboxMessage.route == route,
        )
    ).first()
    if exists:
        return 0
    theme = taxonomy.resolve(row.theme)
    label = theme.label if theme else str((row.details or {}).get("topic_label") or row.theme)
    view = AlertView(
        theme=row.theme,
        label=label,
        kind=row.kind,
        severity=row.severity,
        first_day=row.first_day,
        last_day=row.last_day,
        observed=row.observed,
        expected=row.expected,
        p_value=row.p_value,
        revision=row.revision,
        team=row.team,
    )
    payload = build_payload(
        view, example_texts(session, taxonomy, row), settings.dashboard_url, settings.alert_language
    )
    session.add(
        OutboxMessage(
            alert_id=row.id,
            revision=row.revision,
            route=route,
            payload=payload,
            status="pending",
            attempts=0,
        )
    )
    return 1


# --- the job --------------------------------------------------------------------------------
def detect_day(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    detector: SpikeDetector,
    day: date,
    *,
    per_channel: bool = False,
    topics: bool = True,
    now: datetime | None = None,
    result: DetectResult | None = None,
) -> DetectResult:
    """Detect on one day in the caller's transaction (themes, and emerging topics' growth
    unless `topics` is False)."""
    result = result or DetectResult()
    now = now or datetime.now(UTC)
    cfg = detector.config
    series = load_series(
        session,
        taxonomy,
        day,
        span_days=cfg.window_days + cfg.guard_days + 1,
        per_channel=per_channel,
    )
    signals = detector.detect(series, day)
    cooldown = {t: r.cooldown_days for t, r in detector.rules.items()}
    if topics:
        topic_series = load_topic_series(
            session, day, span_days=cfg.window_days + cfg.guard_days + 1
        )
        signals += detect_growth(detector, topic_series, day)
        cooldown.update({s.theme: cfg.cooldown_days for s in topic_series})
    reach = max([cfg.cooldown_days, *cooldown.values()]) + 2
    # Open episodes, plus resolved ones close enough to absorb a re-checked day.
    known = (
        session.execute(
            select(Alert).where(
                (Alert.status == "open") | (Alert.last_day >= day - timedelta(days=reach))
            )
        )
        .scalars()
        .all()
    )
    events = update_episodes([_episode(r) for r in known], signals, day, cooldown)
    for ev in events:
        _apply(session, settings, taxonomy, ev, now, result)
    result.days.append(day)
    result.signals.extend(signals)
    return result


def run_detect(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    day: date | None = None,
    since: date | None = None,
    taxonomy: Taxonomy | None = None,
    config: DetectorConfig | None = None,
    per_channel: bool = False,
    lookback_days: int = LOOKBACK_DAYS,
    topics: bool = True,
) -> DetectResult:
    """Detect on every day from `since` (default: `lookback_days` before) to `day` (default:
    the latest aggregated day). Re-checking recent days is free (episodes absorb them) and
    catches spikes in data that arrived late, or on a first run over an existing history."""
    taxonomy = taxonomy or load_taxonomy(settings.taxonomy_path)
    config = config or DetectorConfig()
    detector = SpikeDetector(config, rules_from_taxonomy(taxonomy, config))
    result = DetectResult()
    with session_scope(sessions) as session:
        last = day or latest_day(session)
        if last is None:
            return result
        if since is None:
            since = max(
                last - timedelta(days=max(lookback_days, 1) - 1), first_day(session) or last
            )
        since = min(since, last)
        days: Sequence[date] = [since + timedelta(days=i) for i in range((last - since).days + 1)]
    for d in days:  # one transaction per day: a failure keeps the days already done
        with session_scope(sessions) as session:
            detect_day(
                session,
                settings,
                taxonomy,
                detector,
                d,
                per_channel=per_channel,
                topics=topics,
                result=result,
            )
    log.info(
        "detect %s: %d signal(s), %d new, %d updated, %d resolved, %d queued",
        ",".join(d.isoformat() for d in result.days),
        len(result.signals),
        result.new,
        result.updated,
        result.resolved,
        result.queued,
    )
    return result

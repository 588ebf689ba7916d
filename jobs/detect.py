"""`verbatim detect`: run the spike detector on `daily_aggregates`, persist alert episodes,
group them into incidents (`jobs/incidents.py`) and queue one message per incident revision.

Every day not evaluated yet is evaluated (a per-scope watermark in `detection_state`), plus a
short look-back for late data; on a first run that is the whole history. Warm-up
(`detection_warmup_days`): no alert on a theme before it has that many days of history; a
source connected after the first source (a new form, a new connector) is held out of
the tests until its days fill the baseline window (`DetectResult.warming`), its mentions
still in the aggregates. The days of a series' own alert episodes (open, or recent enough to
be in its window) are held out of its baselines (`nlp.spikes.hold_out_episodes`, as in the
backtest replay): an ongoing incident is compared with the normal before it.
Freshness (`alert_freshness_days`): incidents raised on older days are historical, never sent.

Topics flagged emerging (`topics.is_emerging`) are tested too, on their per-day sizes from
`topic_assignments` (`nlp.spikes.detect_growth`): their alerts have theme "topic:<id>",
kind "emerging", details.topic_id/topic_label, and go to the taxonomy's default team.

Idempotent: a day already applied to an episode changes nothing (episode keys carry their
first day, updates skip days <= last_day, outbox rows are unique per alert/revision/route).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core import taxonomy_store
from core.db import detection_scope, session_scope
from core.models import (
    ALL_THEMES,
    Alert,
    DailyAggregate,
    DetectionState,
    Incident,
    ThemeMention,
    Topic,
)
from core.queries import latest_day, topic_trends
from core.settings import Settings
from jobs import incidents
from nlp.errors import VerbatimError
from nlp.spikes import (
    DetectorConfig,
    Episode,
    EpisodeEvent,
    Series,
    Signal,
    SpikeDetector,
    absorb_related,
    detect_growth,
    hold_out_episodes,
    rules_from_taxonomy,
    source_returns,
    topic_id_of,
    topic_theme,
    update_episodes,
)
from nlp.taxonomy import Taxonomy

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
    incidents: set[int] = field(default_factory=set)  # incidents opened or updated
    historical: int = 0  # of those, historical (never sent)
    taxonomy_version: int | None = None
    stopped: bool = False  # a stop was requested: days after `days` are left for the next run
    # Sources still held out of the tests on the last detected day (warm-up of a newly
    # connected source): source -> first day it is tested.
    warming: dict[str, date] = field(default_factory=dict)


# --- reading --------------------------------------------------------------------------------
def first_day(session: Session) -> date | None:
    return session.execute(select(func.min(DailyAggregate.day))).scalar()


def source_starts(
    session: Session, until: date, *, gap: int, reach: int
) -> tuple[dict[str, date], dict[str, tuple[date, ...]]]:
    """(source -> its first day with a verbatim, source -> the days it came back after `gap`
    days without one, among the `reach` days up to `until`): `Series.source_since` and
    `Series.source_returns`. Any row counts, the "*" total row included: a source starts with
    its first verbatim, whatever its themes (none yet, or a theme retired since), as the
    backtest replay counts it; a first theme mention days after held it out as new."""
    firsts = {
        str(src): first
        for src, first in session.execute(
            select(DailyAggregate.source, func.min(DailyAggregate.day))
            .where(DailyAggregate.volume > 0)
            .group_by(DailyAggregate.source)
        )
    }
    # Only a return whose warm-up may still run on `until` matters; its silence before it
    # must fit in the days read (`known_from`).
    lo = until - timedelta(days=reach + gap)
    active: dict[str, list[date]] = defaultdict(list)
    for src, day in session.execute(
        select(DailyAggregate.source, DailyAggregate.day)
        .where(DailyAggregate.volume > 0, DailyAggregate.day >= lo, DailyAggregate.day <= until)
        .group_by(DailyAggregate.source, DailyAggregate.day)
    ):
        active[str(src)].append(day)
    returns = {
        src: back
        for src, days in active.items()
        if (back := tuple(d for d in source_returns(days, gap, lo) if d > firsts[src]))
    }
    return firsts, returns


def load_series(
    session: Session,
    taxonomy: Taxonomy,
    until: date,
    *,
    span_days: int,
    per_channel: bool = False,
    since: dict[str, str] | None = None,
    source_gap: int | None = None,
    source_warmup: int | None = None,
) -> list[Series]:
    """Daily theme series ending at `until` (summed over sources, and channels unless
    `per_channel`), each with its per-source counts (`Series.sources`: the negativity test
    compares a day with its own source mix) and their first and return days (`source_starts`,
    `source_gap` / `source_warmup` defaulting to the window and guard days of `span_days`);
    former theme ids are folded into their current theme."""
    start_all = first_day(session)
    if start_all is None:
        return []
    start = max(start_all, until - timedelta(days=span_days))
    cols = [DailyAggregate.day, DailyAggregate.theme, DailyAggregate.source]
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
    by_source: dict[tuple[str, str | None], dict[str, dict[date, tuple[int, int]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for row in rows:
        theme = taxonomy.resolve(row[1])
        if theme is None or theme.retired:
            continue
        key = (theme.id, row[3] if per_channel else None)
        vol, neg = int(row[-2] or 0), int(row[-1] or 0)
        for cells in (counts[key], by_source[key][str(row[2])]):
            old = cells.get(row[0], (0, 0))
            cells[row[0]] = (old[0] + vol, old[1] + neg)
    if not per_channel:
        for theme_id in taxonomy.ids:  # absent themes still get a (zero) series: emergence
            counts.setdefault((theme_id, None), {})
    # Each source's first day with a verbatim (whole history) and its returns after an
    # outage: a source connected after the first source's first day, or back after the
    # window without it, warms up (`DetectorConfig.source_warmup_days`).
    source_since, returns = source_starts(
        session,
        until,
        gap=span_days - 1 if source_gap is None else source_gap,
        reach=span_days - 1 if source_warmup is None else source_warmup,
    )
    since = since or {}
    out = []
    for (theme, channel), days in sorted(counts.items(), key=lambda kv: str(kv[0])):
        added = since.get(theme)
        if added == "":
            continue  # a theme just added, not re-detected yet: no history at all
        history_from = max(start_all, date.fromisoformat(added)) if added else start_all
        sources = by_source.get((theme, channel), {})
        out.append(
            Series.from_days(
                theme,
                days,
                start,
                until,
                channel,
                history_from,
                sources,
                source_since,
                returns or None,
            )
        )
    return out


def co_mentions(session: Session, taxonomy: Taxonomy, day: date) -> dict[tuple[str, str], int]:
    """{(theme a, theme b), a < b: verbatims of `day` mentioning both} (current theme ids)."""
    themes_of: dict[int, set[str]] = defaultdict(set)
    for fid, theme_id in session.execute(
        select(ThemeMention.feedback_id, ThemeMention.theme).where(ThemeMention.day == day)
    ):
        theme = taxonomy.resolve(theme_id)
        if theme is not None and not theme.retired:
            themes_of[fid].add(theme.id)
    out: dict[tuple[str, str], int] = defaultdict(int)
    for ids in themes_of.values():
        ordered = sorted(ids)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                out[(a, b)] += 1
    return dict(out)


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


# --- episodes <-> rows ----------------------------------------------------------------------
def _episode(row: Alert, taxonomy: Taxonomy) -> Episode:
    details = dict(row.details or {})
    return Episode(
        key=row.alert_key,
        # Under its current id: after a rename or merge mid-episode, the renamed theme's
        # signals continue this episode instead of opening a second incident (and message).
        theme=taxonomy.current_id(row.theme),
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
    *,
    today: date,
    gap: int,
    to_notify: dict[int, Incident],
    grown: dict[int, Incident] | None = None,
) -> None:
    ep = ev.episode
    row = session.execute(select(Alert).where(Alert.alert_key == ep.key)).scalar_one_or_none()
    details = {**ep.details, "channel": ep.channel, "peak_ratio": round(ep.peak_ratio, 4)}
    topic_id = topic_id_of(ep.theme)
    if topic_id is not None:
        topic = session.get(Topic, topic_id)
        details["topic_id"] = topic_id
        details["topic_label"] = topic.label if topic is not None else ep.theme
    team, _route = route_for(settings, taxonomy, ep.theme)
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
        row.theme = ep.theme  # the current id, after a rename or merge
        row.team = team  # the theme's current team, after its team was changed
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
    inc, notify = incidents.attach(
        session,
        settings,
        taxonomy,
        row,
        gap=gap,
        now=now,
        today=today,
        taxonomy_version=result.taxonomy_version,
    )
    result.incidents.add(inc.id)
    if notify:
        # Queued once the day's every alert has joined (see detect_day).
        to_notify[inc.id] = inc
    elif grown is not None and not inc.historical:
        grown[inc.id] = inc  # its message, if still unsent, tells the incident as it is now


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
    today: date | None = None,
    result: DetectResult | None = None,
) -> DetectResult:
    """Detect on one day in the caller's transaction (themes overall, per channel too when
    `per_channel`, and emerging topics' growth unless `topics` is False)."""
    result = result or DetectResult()
    now = now or datetime.now(UTC)
    today = today or now.date()
    cfg = detector.config
    span = cfg.window_days + cfg.guard_days + 1
    cooldown = {t: r.cooldown_days for t, r in detector.rules.items()}
    topic_series = load_topic_series(session, day, span_days=span) if topics else []
    cooldown.update({s.theme: cfg.cooldown_days for s in topic_series})  # the detector's
    reach = max([cfg.cooldown_days, *cooldown.values()]) + 2
    # Episodes whose days may still be in a baseline window (each series' own are held out
    # of its baselines, as the backtest replay does): the open ones and those that ended
    # within the window + their cooldown. Read before the day's signals are applied.
    recent = [
        _episode(r, taxonomy)
        for r in session.execute(
            select(Alert).where(
                (Alert.status == "open") | (Alert.last_day >= day - timedelta(days=span + reach))
            )
        ).scalars()
    ]
    since = taxonomy_store.theme_since(session)
    gap, warmup = detector.outage_days, detector.source_warmup
    overall = load_series(
        session, taxonomy, day, span_days=span, since=since, source_gap=gap, source_warmup=warmup
    )
    series = hold_out_episodes(overall, recent, cooldown)
    signals = detector.detect(series, day)
    # This day's only (days run in order: the run reports its last day's): kept over the days,
    # a source warm on the look-back's days or a first run's history alone read "connected
    # recently: held out until" a day already past, for a week (or a year).
    result.warming = {}
    for s in series:
        for name in detector.warming_sources(s, day):
            tested_from = detector.source_tested_from(s, name, day)
            if tested_from is not None:
                result.warming[name] = tested_from
    # A theme lifted by another theme's burst (the same verbatims) joins that incident.
    active = {
        taxonomy.current_id(t)
        for t in session.execute(select(Alert.theme).where(Alert.status == "open")).scalars()
    }
    signals, joined = absorb_related(
        detector, series, signals, day, co_mentions(session, taxonomy, day), active=active
    )
    if joined:
        log.info("%s: %s", day, ", ".join(f"{b} joins {a}" for b, a in sorted(joined.items())))
    if per_channel:
        by_channel = load_series(
            session,
            taxonomy,
            day,
            span_days=span,
            per_channel=True,
            since=since,
            source_gap=gap,
            source_warmup=warmup,
        )
        signals += detector.detect(hold_out_episodes(by_channel, recent, cooldown), day)
    if topics:
        signals += detect_growth(detector, hold_out_episodes(topic_series, recent, cooldown), day)
    # Open episodes, plus resolved ones close enough to absorb a re-checked day.
    known = [e for e in recent if e.status == "open" or e.last_day >= day - timedelta(days=reach)]
    events = update_episodes(known, signals, day, cooldown)
    # An incident's message is built after all of the day's alerts joined it: built as the
    # first one joined (negativity before volume), it told one kind, at that kind's severity.
    to_notify: dict[int, Incident] = {}
    grown: dict[int, Incident] = {}
    for ev in events:
        gap = cooldown.get(ev.episode.theme, cfg.cooldown_days) + 1
        _apply(
            session,
            settings,
            taxonomy,
            ev,
            now,
            result,
            today=today,
            gap=gap,
            to_notify=to_notify,
            grown=grown,
        )
    for inc in to_notify.values():
        result.queued += incidents.enqueue(session, settings, taxonomy, inc)
    for inc_id, inc in grown.items():
        if inc_id not in to_notify:
            incidents.refresh_unsent(session, settings, taxonomy, inc)
    incidents.close_quiet(session, now)
    _set_watermark(session, "channels" if per_channel else "themes", day, now)
    result.days.append(day)
    result.signals.extend(signals)
    return result


class DetectDaysError(VerbatimError, ValueError):
    """Days to detect on that cannot be tested (after the data, or in the wrong order)."""


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
    today: date | None = None,
    stop: Callable[[], bool] | None = None,
) -> DetectResult:
    """Detect on every day not evaluated yet (after the scope's watermark; on a first run the
    whole history) and the last `lookback_days` (late data; episodes absorb re-checked days),
    up to `day` (default: the latest aggregated day). `since` forces the first day.
    `today` (default: the UTC date) decides which incidents are fresh enough to be sent.
    `stop()` is checked between days (SIGTERM): the day in progress is finished and committed
    with its watermark, the next run continues after it (`result.stopped`)."""
    result = DetectResult()
    if taxonomy is None:
        from jobs.retheme import retheme

        # A taxonomy edit not re-detected yet (PUT /taxonomy, `import --no-retheme`) when the
        # pipeline runs `enrich` + `detect` rather than `run`: re-detect its window first, else
        # a theme it added keeps `theme_since` "" and load_series skips it for good.
        retheme(settings, sessions)
    with session_scope(sessions) as session:
        if taxonomy is None:
            cur = taxonomy_store.current(session, settings)
            taxonomy, result.taxonomy_version = cur.taxonomy, cur.version
        else:
            result.taxonomy_version = taxonomy.version
    if config is None:
        config = DetectorConfig(warmup_days=settings.detection_warmup_days)
    detector = SpikeDetector(config, rules_from_taxonomy(taxonomy, config))
    if day is not None and since is not None and since > day:
        raise DetectDaysError(f"--since {since} is after --day {day}")
    with session_scope(sessions) as session:
        latest = latest_day(session)
        if day is not None and latest is not None and day > latest:
            # A day without aggregates reads as zero volume: it would resolve every live
            # incident and move the watermark past the days still to come.
            raise DetectDaysError(
                f"--day {day} is after the last aggregated day ({latest}): "
                "run `verbatim aggregate` after ingesting that day, or pick an earlier day"
            )
        last = day or latest
        if last is None:
            return result
        begin = first_day(session) or last
        if since is not None:
            since = max(since, begin)  # days before the first data hold nothing to test
        else:
            since = max(last - timedelta(days=max(lookback_days, 1) - 1), begin)
            mark = session.get(DetectionState, "channels" if per_channel else "themes")
            if mark is None:
                since = begin  # never evaluated: every day (warm-up and freshness apply)
            elif mark.last_day < since:
                since = max(mark.last_day + timedelta(days=1), begin)
        since = min(since, last)
        days: Sequence[date] = [since + timedelta(days=i) for i in range((last - since).days + 1)]
    for i, d in enumerate(days):  # one transaction per day: a failure keeps the days done
        if stop is not None and stop():
            result.stopped = True
            log.warning(
                "detect stopped on request: %d of %d day(s) done; the next run continues from %s",
                i,
                len(days),
                d,
            )
            break
        with detection_scope(sessions) as session:  # another process may detect too
            detect_day(
                session,
                settings,
                taxonomy,
                detector,
                d,
                per_channel=per_channel,
                topics=topics,
                today=today,
                result=result,
            )
    with session_scope(sessions) as session:
        result.historical = sum(
            1 for i in result.incidents if (inc := session.get(Incident, i)) and inc.historical
        )
    for name, tested_from in sorted(result.warming.items()):
        log.info(
            "source %r connected recently (or back after an outage): held out of the tests "
            "until %s",
            name,
            tested_from,
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


def _set_watermark(session: Session, scope: str, day: date, now: datetime) -> None:
    mark = session.get(DetectionState, scope)
    if mark is None:
        session.add(DetectionState(scope=scope, last_day=day, updated_at=now))
    elif day > mark.last_day:
        mark.last_day, mark.updated_at = day, now

"""Incidents: what a team is told about and acts on.

Every alert episode (a volume, negativity or emerging signal of one theme, overall or per
channel) joins the open incident of its theme whose days overlap its own (widened by the
theme's cooldown + 1), else opens one. So volume + negativity on the same days, and the
per-channel signals of `verbatim detect --per-channel`, are ONE incident: the per-channel
ones fill its `signals.channels` breakdown.

Notification rule (Slack incoming webhooks cannot edit a message): one message when the
incident opens; a further one only on a *material escalation*, i.e. its severity rises above
the severity last sent to "high" or "critical" (low/medium -> high, anything -> critical), each
level told at most once since an incident's severity never goes down: at most three messages
per incident, one thread. The rule was "two levels above the last message": the scheduler's
first tick of a day opened the incident at its partial "medium", and the day that ended "high"
(or an incident opened "high" that became "critical") was never told. Everything else (a new
day, a second kind, a channel, low -> medium) updates the incident row (API, dashboard)
silently.
An incident whose days are all older than `alert_freshness_days` when raised is
`historical`: recorded, never sent; if fresh days then join it, it becomes live and sends its
opening message.

Each message carries the incident's drivers (`drivers`): the channel / source / metadata
values over-represented among the extra mentions versus the 28 days before, 2-3 diverse
examples (near-duplicates removed), and a dashboard link to the theme and period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from scipy import stats
from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from core.models import (
    Alert,
    Feedback,
    Incident,
    OutboxMessage,
    ThemeMention,
    Topic,
    TopicAssignment,
)
from core.queries import dashboard_link
from core.settings import Settings
from nlp.spikes import SEVERITIES, topic_id_of
from nlp.taxonomy import Taxonomy

BASELINE_DAYS = 28
MAX_META_VALUES = 50  # a metadata field with more distinct values is an id, not a driver
MIN_DRIVER_COUNT = 3
MIN_SHARE_OF_EXTRA = 0.5
DRIVER_P = 0.01
NOTIFY_FROM = "high"  # a rise above the last message to this severity or above is told


def is_fresh(day: date, today: date, settings: Settings) -> bool:
    return (today - day).days <= settings.alert_freshness_days


def _theme_ids(taxonomy: Taxonomy, theme: str) -> list[str]:
    t = taxonomy.resolve(theme)
    return [theme, *(t.aliases if t else [])]


def _sev(value: str | None) -> int:
    return SEVERITIES.index(value) if value in SEVERITIES else -1


def find_open(
    session: Session, themes: Sequence[str], first: date, last: date, gap: int
) -> Incident | None:
    """The live incident of the theme (`themes`: its id and former ids, so an incident opened
    before a rename or merge is found) whose days, widened by `gap`, overlap [first, last].
    One the detector resolved counts too (an open one first): its episodes reopen on a signal
    within that gap (`nlp.spikes.update_episodes`), so the spike is back, not a new one."""
    rows = session.execute(
        select(Incident)
        .where(
            Incident.theme.in_(themes),
            Incident.status.in_(("open", "acknowledged"))
            | ((Incident.status == "resolved") & (Incident.resolved_by == "detector")),
            Incident.first_day <= last + timedelta(days=gap),
            Incident.last_day >= first - timedelta(days=gap),
        )
        .order_by(Incident.last_day.desc())
    ).scalars()
    found = list(rows)
    return next((i for i in found if i.status != "resolved"), next(iter(found), None))


def attach(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    alert: Alert,
    *,
    gap: int,
    now: datetime,
    today: date,
    taxonomy_version: int | None = None,
) -> tuple[Incident, bool]:
    """Join `alert` to its incident (opening one if needed). Returns (incident, notify)."""
    inc = None
    if alert.incident_id is not None:
        inc = session.get(Incident, alert.incident_id)
    if inc is None:
        ids = _theme_ids(taxonomy, alert.theme)
        inc = find_open(session, ids, alert.first_day, alert.last_day, gap)
    fresh = is_fresh(alert.last_day, today, settings)
    if inc is None:
        inc = Incident(
            theme=alert.theme,
            team=alert.team,
            status="open",
            first_day=alert.first_day,
            last_day=alert.last_day,
            severity=alert.severity,
            kinds=[],
            signals={},
            drivers=[],
            examples=[],
            historical=not fresh,
            revision=1,
            notified_severity=None,
            taxonomy_version=taxonomy_version,
            created_at=now,
            updated_at=now,
        )
        session.add(inc)
        session.flush()
    inc.theme = alert.theme  # the current id, when the incident predates a rename or merge
    inc.team = alert.team  # and its current team: the next message goes to the owning team
    inc.first_day = min(inc.first_day, alert.first_day)
    inc.last_day = max(inc.last_day, alert.last_day)
    if _sev(alert.severity) > _sev(inc.severity):
        inc.severity = alert.severity
    if alert.kind not in inc.kinds:
        inc.kinds = [*inc.kinds, alert.kind]
    signal = {
        "observed": round(float(alert.observed), 4),
        "expected": round(float(alert.expected), 4),
        "severity": alert.severity,
        "first_day": alert.first_day.isoformat(),
        "last_day": alert.last_day.isoformat(),
        "p_value": alert.p_value,
    }
    signals = dict(inc.signals or {})
    channel = (alert.details or {}).get("channel")
    if channel:
        per = dict(signals.get("channels", {}))
        per[channel] = {**per.get(channel, {}), alert.kind: signal}
        signals["channels"] = per
    else:
        signals[alert.kind] = signal
    inc.signals = signals
    inc.updated_at = now
    if taxonomy_version is not None:
        inc.taxonomy_version = taxonomy_version
    alert.incident_id = inc.id
    if alert.status == "open" and inc.status == "resolved" and inc.resolved_by == "detector":
        # Quiet for the cooldown at a day's first tick, the spike back at a later one (or late
        # rows): its alert reopened in an incident left "resolved" for good (never closed nor
        # reopened again, out of the digest) and the day's other signals opened a second one.
        inc.status = "acknowledged" if inc.acknowledged_by is not None else "open"
        inc.resolved_by = inc.resolved_at = None
    if inc.historical and fresh:
        inc.historical = False  # history that continues into live days: now worth telling
    if inc.historical:
        return inc, False
    notify = inc.notified_severity is None or (
        _sev(inc.severity) > _sev(inc.notified_severity) and _sev(inc.severity) >= _sev(NOTIFY_FROM)
    )
    if notify and inc.status == "resolved" and inc.resolved_by not in (None, "detector"):
        # Resolved by an analyst, then it grew enough to tell the team again: open again
        # (its alerts count as open and show on the theme; the resolution stays on record),
        # to be taken in charge again.
        inc.status = "open"
        inc.acknowledged_by = inc.acknowledged_at = inc.ack_note = None
    return inc, notify


def close_quiet(session: Session, now: datetime) -> int:
    """Incidents whose every alert the detector resolved are resolved (by "detector")."""
    n = 0
    for inc in session.execute(
        select(Incident).where(Incident.status.in_(("open", "acknowledged")))
    ).scalars():
        statuses = set(
            session.execute(select(Alert.status).where(Alert.incident_id == inc.id)).scalars()
        )
        if statuses and statuses <= {"resolved"}:
            # Only while still unresolved in the database: an analyst who resolved it since
            # this transaction read it (the session's copy stays "open") keeps their name.
            done = session.execute(
                update(Incident)
                .where(Incident.id == inc.id, Incident.status.in_(("open", "acknowledged")))
                .values(status="resolved", resolved_by="detector", resolved_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            session.refresh(inc)
            n += done.rowcount or 0
    return n


# --- drivers ------------------------------------------------------------------------------
def _dimension_counts(
    session: Session, ids: Sequence[str], start: date, end: date
) -> tuple[int, dict[str, Counter[str]]]:
    """(mentions, {field: Counter(value)}) over channel, source and metadata fields."""
    rows = session.execute(
        select(Feedback.channel, Feedback.source, Feedback.meta)
        .join(ThemeMention, ThemeMention.feedback_id == Feedback.id)
        .where(ThemeMention.theme.in_(ids), ThemeMention.day >= start, ThemeMention.day <= end)
    ).all()
    dims: dict[str, Counter[str]] = {"channel": Counter(), "source": Counter()}
    for channel, source, meta in rows:
        dims["channel"][channel] += 1
        dims["source"][source] += 1
        for key, value in (meta or {}).items():
            if isinstance(value, str | int | bool) and str(value).strip():
                dims.setdefault(str(key), Counter())[str(value)] += 1
    return len(rows), dims


def drivers(
    session: Session, taxonomy: Taxonomy, theme: str, first: date, last: date
) -> list[dict[str, Any]]:
    """Field values that carry most of the extra mentions of the period versus the
    `BASELINE_DAYS` before it: share of the extra mentions >= 50 %, at least 3 mentions, and
    an over-representation a binomial test finds significant (p < 0.01)."""
    ids = _theme_ids(taxonomy, theme)
    days = (last - first).days + 1
    n_inc, inc_dims = _dimension_counts(session, ids, first, last)
    b_start = first - timedelta(days=BASELINE_DAYS)
    n_base, base_dims = _dimension_counts(session, ids, b_start, first - timedelta(days=1))
    if n_inc == 0:
        return []
    scale = days / BASELINE_DAYS
    extra_total = n_inc - n_base * scale
    out: list[dict[str, Any]] = []
    for field, counts in inc_dims.items():
        base = base_dims.get(field, Counter())
        if len(counts) > MAX_META_VALUES or len(counts) + len(base) < 2 and field != "channel":
            continue
        for value, count in counts.most_common(3):
            if count < MIN_DRIVER_COUNT:
                continue
            base_share = (base.get(value, 0) + 0.5) / (n_base + 1.0)
            inc_share = count / n_inc
            p = float(stats.binom.sf(count - 1, n_inc, min(base_share, 1 - 1e-9)))
            extra = count - base.get(value, 0) * scale
            share_of_extra = extra / extra_total if extra_total > 0 else 0.0
            if p >= DRIVER_P or share_of_extra < MIN_SHARE_OF_EXTRA or inc_share <= base_share:
                continue
            out.append(
                {
                    "field": field,
                    "value": value,
                    "share_of_extra": round(min(share_of_extra, 1.0), 3),
                    "count": count,
                    "incident_share": round(inc_share, 3),
                    "baseline_share": round(base.get(value, 0) / n_base, 3) if n_base else 0.0,
                    "p_value": float(f"{p:.3g}"),
                }
            )
    out.sort(key=lambda d: (-d["share_of_extra"], d["p_value"]))
    return out[:3]


# --- examples -----------------------------------------------------------------------------
def diverse(texts: Sequence[str], limit: int = 3, max_similarity: float = 0.6) -> list[str]:
    """Up to `limit` texts in order, skipping any whose character n-gram TF-IDF cosine to an
    already kept one reaches `max_similarity` (near-duplicates, copy-pasted complaints)."""
    texts = [t for t in dict.fromkeys(t.strip() for t in texts) if t]
    if len(texts) <= 1:
        return texts[:limit]
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(
        texts
    )
    sims = (matrix @ matrix.T).toarray()
    kept: list[int] = []
    for i in range(len(texts)):
        if all(sims[i, j] < max_similarity for j in kept):
            kept.append(i)
        if len(kept) >= limit:
            break
    return [texts[i] for i in kept]


def examples(
    session: Session, taxonomy: Taxonomy, theme: str, first: date, last: date, limit: int = 3
) -> list[str]:
    """2-3 diverse masked verbatims of the incident, negative and confident mentions first."""
    from nlp.text import mask_pii

    neg_first = case((ThemeMention.polarity == "negative", 0), else_=1)
    rows = session.execute(
        select(Feedback.text)
        .join(ThemeMention, ThemeMention.feedback_id == Feedback.id)
        .where(
            ThemeMention.theme.in_(_theme_ids(taxonomy, theme)),
            ThemeMention.day >= first,
            ThemeMention.day <= last,
        )
        .order_by(neg_first, ThemeMention.score.desc(), Feedback.id)
        .limit(limit * 10)
    ).scalars()
    return diverse([mask_pii(t or "") for t in rows], limit)


def topic_examples(session: Session, topic_id: int, first: date, last: date) -> list[str]:
    """A discovered topic's most probable members over the period, near-duplicates removed."""
    from nlp.text import mask_pii

    rows = session.execute(
        select(Feedback.text)
        .join(TopicAssignment, TopicAssignment.feedback_id == Feedback.id)
        .where(
            TopicAssignment.topic_id == topic_id,
            TopicAssignment.day >= first,
            TopicAssignment.day <= last,
        )
        .order_by(TopicAssignment.probability.desc(), Feedback.id)
        .limit(30)
    ).scalars()
    return diverse([mask_pii(t or "") for t in rows])


def enqueue(session: Session, settings: Settings, taxonomy: Taxonomy, inc: Incident) -> int:
    """Refresh drivers/examples and queue the incident's current revision (once). The route is
    the team: its webhook is resolved when the message is delivered."""
    if inc.notified_severity is not None:
        inc.revision += 1
    inc.notified_severity = inc.severity
    exists = session.execute(
        select(OutboxMessage.id).where(
            OutboxMessage.incident_id == inc.id, OutboxMessage.revision == inc.revision
        )
    ).first()
    if exists:
        return 0
    session.add(
        OutboxMessage(
            incident_id=inc.id,
            alert_id=None,
            revision=inc.revision,
            route=inc.team,
            payload=_payload(session, settings, taxonomy, inc),
            status="pending",
            attempts=0,
        )
    )
    return 1


def refresh_unsent(session: Session, settings: Settings, taxonomy: Taxonomy, inc: Incident) -> bool:
    """Rebuild the incident's latest message while it is still `pending` (no post of it
    reached Slack: none yet, or refused with a 5xx) after the incident grew without an
    escalation. Built as it was queued, it went out later (a first run or a catch-up over
    several days, Slack down for hours) with that moment's figures, period and link: « Période
    : 04/12/2026 » on the 6th, for a spike the same run had seen go on to the 6th."""
    row = session.execute(
        select(OutboxMessage).where(
            OutboxMessage.incident_id == inc.id,
            OutboxMessage.revision == inc.revision,
            OutboxMessage.status == "pending",
        )
    ).scalar_one_or_none()
    if row is None:
        return False
    # Only while still pending when written: a sender that claimed it since (PostgreSQL lets
    # its claim commit between this read and this write) posts the payload it claimed, which
    # a plain `row.payload = ...` then overwrote in the outbox.
    done = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.status == "pending")
        .values(payload=_payload(session, settings, taxonomy, inc))
    )
    if (done.rowcount or 0) != 1:
        return False
    inc.notified_severity = inc.severity  # the grade the message now tells
    return True


def _payload(
    session: Session, settings: Settings, taxonomy: Taxonomy, inc: Incident
) -> dict[str, Any]:
    """Refresh the incident's drivers and examples, and build its current revision's message."""
    from jobs.slack_message import build_incident_payload

    topic_id = topic_id_of(inc.theme)
    if topic_id is None:
        inc.drivers = drivers(session, taxonomy, inc.theme, inc.first_day, inc.last_day)
        inc.examples = examples(session, taxonomy, inc.theme, inc.first_day, inc.last_day)
    else:
        inc.examples = topic_examples(session, topic_id, inc.first_day, inc.last_day)
    theme = taxonomy.resolve(inc.theme)
    topic = session.get(Topic, topic_id) if topic_id is not None else None
    label = theme.label if theme else topic.label if topic else inc.theme
    # The team its last message went to: a theme moved to another team since sends this
    # revision to a channel that never saw the incident open, which the message says.
    previous = session.execute(
        select(OutboxMessage.route)
        .where(OutboxMessage.incident_id == inc.id, OutboxMessage.revision < inc.revision)
        .order_by(OutboxMessage.revision.desc())
        .limit(1)
    ).scalar()
    return build_incident_payload(
        inc,
        label,
        dashboard_link(settings.dashboard_url, inc.theme, inc.first_day, inc.last_day),
        settings.alert_language,
        previous_team=previous,
    )

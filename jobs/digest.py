"""`verbatim digest`: the weekly summary posted to Slack (for the scheduler to call weekly).

Top movers (themes whose mentions rose most vs the week before), the period's volume, negative
share and NPS/CSAT when the feed has them, and the incidents still in progress (open or
acknowledged; an incident groups every alert of one theme on overlapping days, so a team reads
one line per problem, with its main driver), with dashboard deep links. The taxonomy is the
versioned one from the database, like every other job.
Posted to `slack_webhooks["digest"]` (else "default") through the alerts' outbox: one row per
period (route "digest", `revision` = `period_revision`: its last day and its length), so Slack
down (5xx, 429, timeout before sending) leaves it pending and the next `verbatim alert`
(scheduler alert tick) or `verbatim digest` posts it, with the alerts' backoff and Retry-After;
a 4xx (deleted webhook, channel_not_found) leaves it `dead` with the reason. A digest of a
given period is sent once: its outbox row, and a marker row in `data_versions`
("digest:<last day>" for 7 days, also written by versions that posted without the outbox;
"digest:<first day>..<last day>" for another length) make a second run a no-op (`--force`
resends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import DataVersion, Incident, OutboxMessage, Topic
from core.queries import (
    dashboard_link,
    latest_day,
    list_incidents,
    listed_summary,
    score_summary,
)
from core.settings import Settings
from jobs.alerts import DeliveryPolicy, deliver_one, webhook_for, webhook_problem
from jobs.slack_message import clip, escape, share_points
from nlp.taxonomy import Taxonomy

SEVERITY = {"low": "faible", "medium": "moyenne", "high": "haute", "critical": "critique"}
KIND = {"volume": "pic de volume", "negativity": "hausse de négativité", "emerging": "émergent"}
RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
STATUS = {"open": "", "acknowledged": " · pris en charge"}
MAX_LINES = 10
# Slack refuses (400 invalid_blocks: the digest is lost) a section text over 3000 characters.
SECTION_CHARS = 3000
LABEL_CHARS = 80  # a theme label or a driver value (feed metadata) in a line


def _num(n: float) -> str:
    return f"{n:,.0f}".replace(",", "\u202f")


def _day(d: date) -> str:
    return d.strftime("%d/%m/%Y")


@dataclass
class Digest:
    start: date
    end: date
    payload: dict[str, Any]
    movers: int
    incidents: int


def build_digest(
    session: Session,
    taxonomy: Taxonomy,
    *,
    dashboard_url: str,
    days: int = 7,
    end: date | None = None,
    top: int = 5,
) -> Digest:
    latest = latest_day(session)
    end = end or latest or date.today()
    start = end - timedelta(days=days - 1)
    # A resent old week, not the current one: the scheduler's digest ends the day before the
    # day in progress (jobs.scheduler.scheduled_digest_end) and lists the incidents live now.
    past = latest is not None and end < latest - timedelta(days=1)
    # Not a retired theme (its stored mentions), as `/overview`'s movers.
    rows = listed_summary(session, start=start, end=end, taxonomy=taxonomy)
    total = rows.pop()
    movers = sorted(
        (r for r in rows if r.volume > r.previous_volume),
        key=lambda r: (-(r.volume - r.previous_volume), r.theme),
    )[:top]
    # Open incidents; for an old week, only those live in it (a digest of a past week listed
    # today's incidents, some begun after it ended).
    incidents = sorted(
        (
            inc
            for status in STATUS
            for inc in list_incidents(session, status=status, include_historical=False, limit=200)
            if not past or start <= inc.last_day and inc.first_day <= end
        ),
        key=lambda i: (RANK.get(i.severity, 9), i.first_day, i.id),
    )
    link = f"{dashboard_url.rstrip('/')}/#view=overview&start={start}&end={end}"

    if total.volume:
        # No change against a week without verbatims ("+42 pts" from nothing), as `report`.
        change = (
            f" ({share_points(total.negative_share, total.previous_negative_share):+d} pts)"
            if total.previous_volume
            else ""
        )
        headline = (
            f"{_num(total.volume)} verbatim{'s' if total.volume > 1 else ''}, "
            f"{round(total.negative_share * 100)} % négatifs{change}"
        )
    else:  # not "0 % négatifs (-62 pts)": an empty week is an ingestion to check
        before = (
            "la semaine précédente"
            if days == 7
            else "la veille"
            if days == 1
            else f"les {days} jours précédents"
        )
        headline = (
            f"Aucun verbatim sur la période ({_num(total.previous_volume)} {before}) : "
            "vérifier l'ingestion des sources"
        )
    for score in ("nps", "csat"):
        s = score_summary(session, score, start=start, end=end)
        if s.value is not None:
            headline += f" · NPS {s.value:+.0f}" if score == "nps" else f" · CSAT {s.value:.0f} %"
    mover_lines = _fit(
        "*Thèmes en hausse*\n",
        [
            f"• *{_label(r.label)}* : {_num(r.previous_volume)} → {_num(r.volume)} "
            f"mention{'s' if r.volume > 1 else ''} "
            f"({'nouveau' if r.volume_change is None else f'{r.volume_change * 100:+.0f} %'}), "
            f"{r.negative_share * 100:.0f} % négatives"
            for r in movers
        ],
        len(movers),
    ) or ["Aucun thème en hausse."]
    incident_lines = _fit(
        f"*Incidents en cours ({len(incidents)})*\n",
        [
            _incident_line(inc, _incident_label(session, taxonomy, inc.theme), dashboard_url)
            for inc in incidents[:MAX_LINES]
        ],
        len(incidents),
    ) or ["Aucun incident en cours."]
    title = f"Verbatim — synthèse du {_day(start)} au {_day(end)}"
    text = "\n".join(
        [
            title,
            headline,
            "Thèmes en hausse :",
            *mover_lines,
            f"Incidents en cours ({len(incidents)}) :",
            *incident_lines,
            link,
        ]
    )
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Thèmes en hausse*\n" + "\n".join(mover_lines)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*Incidents en cours ({len(incidents)})*\n" + "\n".join(incident_lines),
            },
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Ouvrir le tableau de bord>"}],
        },
    ]
    return Digest(start, end, {"text": text, "blocks": blocks}, len(movers), len(incidents))


def _label(text: str) -> str:
    """A label or metadata value as one short, escaped piece of a line."""
    return escape(clip(text, LABEL_CHARS))


def _fit(heading: str, lines: list[str], total: int) -> list[str]:
    """`lines` (the first of `total` items), cut so that the section (heading + lines +
    "… et N autres") stays within Slack's 3000 characters."""
    kept: list[str] = []
    size = len(heading)
    for i, line in enumerate(lines):
        more = _others(total - i - 1) if total > i + 1 else ""
        rest = _others(total - i)
        if size + len(line) + 1 + len(more) + 1 > SECTION_CHARS:
            return [*kept, rest]
        kept.append(line)
        size += len(line) + 1
    if total > len(lines):
        kept.append(_others(total - len(lines)))
    return kept


def _others(n: int) -> str:
    """The line that counts the items left out: « … et 1 autre » (not « 1 autres »)."""
    return f"… et {n} autre{'s' if n > 1 else ''}"


def _incident_label(session: Session, taxonomy: Taxonomy, theme: str) -> tuple[str, str]:
    """(label, current theme id) of an incident: after a rename its stored former id reads as
    the new theme; a topic's incident ("topic:12") as the topic's label."""
    current = taxonomy.resolve(theme)
    if current is not None:
        return current.label, current.id
    if theme.startswith("topic:") and theme[6:].isdigit():
        topic = session.get(Topic, int(theme[6:]))
        if topic is not None and topic.label:
            return f"sujet émergent « {topic.label} »", theme
    return theme, theme


def _incident_line(inc: Incident, label: tuple[str, str], dashboard_url: str) -> str:
    """One line a team can act on: severity, theme, what moved, since when, the main driver."""
    kinds = ", ".join(KIND.get(k, k) for k in inc.kinds or []) or "signal"
    name, theme = label
    line = (
        f"• {SEVERITY.get(inc.severity, inc.severity)} — *{_label(name)}* "
        f"({kinds}) depuis le {_day(inc.first_day)}{STATUS.get(inc.status, '')}"
    )
    driver = next(iter(inc.drivers or []), None)
    if isinstance(driver, dict) and driver.get("field") and driver.get("value"):
        field, value = _label(str(driver["field"])), _label(str(driver["value"]))
        line += f", surtout {field} = {value}"
    link = dashboard_link(dashboard_url, theme, inc.first_day, inc.last_day)
    return f"{line} (<{link}|voir>)"


@dataclass
class DigestResult:
    digest: Digest
    # sent | already_sent | dry_run | retry (kept pending: the next `verbatim alert` or
    # `verbatim digest` posts it) | dead (refused for good, reason in `error`) | unknown
    # (posted, no answer: maybe in the channel; `verbatim alert --retry-unknown` re-queues it)
    outcome: str
    error: str | None = None
    # Digests of earlier periods still pending, delivered by this run first: (last day, outcome)
    earlier: list[tuple[date, str]] = field(default_factory=list)


DIGEST_ROUTE = "digest"
WEEK = 7
MAX_DAYS = 366
# Above every day's ordinal (9999-12-31: 3 652 059); MAX_DAYS times it fits the int32 column.
PERIOD_BASE = 4_000_000


def period_revision(start: date, end: date) -> int:
    """The `revision` of a period's digest row: the ordinal of its last day for the weekly
    digest (rows stored before lengths were told apart all read as weekly), else length *
    PERIOD_BASE + that ordinal. Keyed by the last day alone, `digest --days 30` ending on the
    weekly digest's last day was "already sent", and `--force` overwrote the weekly row."""
    days = (end - start).days + 1
    return end.toordinal() if days == WEEK else days * PERIOD_BASE + end.toordinal()


def period_of(revision: int) -> tuple[date, date]:
    """The period (first day, last day) a digest row's `revision` stands for
    (`period_revision` read back)."""
    days, ordinal = divmod(revision, PERIOD_BASE)
    end = date.fromordinal(ordinal)
    return end - timedelta(days=(days or WEEK) - 1), end


def period_marker(start: date, end: date) -> str:
    """The `data_versions` name that marks a period's digest as queued (see `_queue`)."""
    if (end - start).days + 1 == WEEK:
        return f"digest:{end.isoformat()}"  # as written before lengths were told apart
    return f"digest:{start.isoformat()}..{end.isoformat()}"


def _digest_rows() -> Select[OutboxMessage]:
    """The outbox rows of digests: route "digest", no alert nor incident; `revision` holds
    `period_revision` (one row per period)."""
    return select(OutboxMessage).where(
        OutboxMessage.route == DIGEST_ROUTE,
        OutboxMessage.alert_id.is_(None),
        OutboxMessage.incident_id.is_(None),
    )


def _queue(
    sessions: sessionmaker[Session], digest: Digest, marker: str, *, force: bool
) -> tuple[int | None, str | None]:
    """(outbox row id, None) of the period's digest, queued now when it is not yet; or
    (None, status) when there is nothing to post: "sent" (or sent by a version without the
    outbox: the marker alone), "dead" or "unknown" (the row's status).
    `force` puts the row back to pending with the digest just built. The marker row (primary
    key) makes two concurrent runs queue one digest, not two."""
    revision = period_revision(digest.start, digest.end)
    with session_scope(sessions) as session:
        row = session.execute(
            _digest_rows().where(OutboxMessage.revision == revision)
        ).scalar_one_or_none()
        if row is None:
            if session.get(DataVersion, marker) is not None and not force:
                return None, "sent"  # sent before digests went through the outbox
            row = OutboxMessage(
                alert_id=None,
                incident_id=None,
                revision=revision,
                route=DIGEST_ROUTE,
                payload=digest.payload,
                status="pending",
                attempts=0,
            )
            session.add(row)
            if session.get(DataVersion, marker) is None:
                session.add(DataVersion(name=marker, version=1))
            try:
                session.flush()
            except IntegrityError:  # another run queued it first: deliver_one sorts it out
                session.rollback()
                row = session.execute(
                    _digest_rows().where(OutboxMessage.revision == revision)
                ).scalar_one_or_none()
                return (row.id, None) if row is not None else (None, "sent")
            return row.id, None
        if force and row.status not in ("sending", "posting"):
            row.status, row.payload, row.attempts = "pending", digest.payload, 0
            row.next_attempt_at = row.sent_at = row.last_error = None
            return row.id, None
        if row.status in ("pending", "sending", "posting"):
            return row.id, None
        return None, row.status


def send_digest(
    settings: Settings,
    sessions: sessionmaker[Session],
    taxonomy: Taxonomy,
    *,
    days: int = 7,
    end: date | None = None,
    dry_run: bool = False,
    force: bool = False,
    client: httpx.Client | None = None,
    policy: DeliveryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DigestResult:
    """Build, queue and post the digest. Raises ValueError when no webhook is configured.

    The digest is an outbox row (jobs/alerts.py): Slack down (5xx, 429, no connection) keeps
    it pending and the next `verbatim alert` or `verbatim digest` posts it, with the alerts'
    backoff and Retry-After; a 4xx leaves it `dead` with the reason. Digests of earlier
    periods still pending are posted first."""
    if not 1 <= days <= MAX_DAYS:  # the period's key (`period_revision`) holds up to MAX_DAYS
        raise ValueError(f"the digest covers 1 to {MAX_DAYS} days, not {days}")
    with session_scope(sessions) as session:
        digest = build_digest(
            session, taxonomy, dashboard_url=settings.dashboard_url, days=days, end=end
        )
    marker = period_marker(digest.start, digest.end)
    revision = period_revision(digest.start, digest.end)
    if dry_run:
        return DigestResult(digest, "dry_run")
    url = webhook_for(settings, DIGEST_ROUTE)
    if not url:
        raise ValueError("no Slack webhook for the digest: set slack_webhooks.digest (or .default)")
    problem = webhook_problem(url)
    if problem is not None:
        raise ValueError(f"Slack webhook for the digest: {problem}")
    row_id, status = _queue(sessions, digest, marker, force=force)
    own = client is None
    client = client or httpx.Client()
    kwargs: dict[str, Any] = {"policy": policy, "client": client, "stop": stop}
    if sleep is not None:
        kwargs["sleep"] = sleep
    try:
        earlier = []
        with session_scope(sessions) as session:
            # Periods that ended before this one, of any length, oldest first.
            waiting = sorted(
                (last, r.id)
                for r in session.execute(
                    _digest_rows().where(
                        OutboxMessage.status == "pending", OutboxMessage.revision != revision
                    )
                ).scalars()
                if (last := period_of(r.revision)[1]) < digest.end
            )
        for last, old_id in waiting:
            outcome, _ = deliver_one(settings, sessions, old_id, **kwargs)
            earlier.append((last, outcome))
        if row_id is None:
            if status == "sent":
                return DigestResult(digest, "already_sent", earlier=earlier)
            with session_scope(sessions) as session:
                row = session.execute(
                    _digest_rows().where(OutboxMessage.revision == revision)
                ).scalar_one()
                return DigestResult(digest, row.status, row.last_error, earlier)
        outcome, error = deliver_one(settings, sessions, row_id, **kwargs)
    finally:
        if own:
            client.close()
    if outcome in ("deferred", "waiting", "skipped"):
        outcome = "retry"
    return DigestResult(digest, outcome, error, earlier)

"""`verbatim digest`: the weekly summary posted to Slack (for the scheduler to call weekly).

Top movers (themes whose mentions rose most vs the week before), the period's volume, negative
share and NPS/CSAT when the feed has them, and the incidents still in progress (open or
acknowledged; an incident groups every alert of one theme on overlapping days, so a team reads
one line per problem, with its main driver), with dashboard deep links. The taxonomy is the
versioned one from the database, like every other job.
Posted to `slack_webhooks["digest"]` (else "default") with the alerts' retry policy
(Retry-After on 429, backoff on 5xx). A digest of a given period is sent once: a marker row
in `data_versions` ("digest:<last day>") makes a second run a no-op (`--force` resends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import DataVersion, Incident
from core.queries import (
    dashboard_link,
    latest_day,
    list_incidents,
    score_summary,
    theme_summary,
)
from core.settings import Settings
from jobs.alerts import DeliveryPolicy, post_with_retries, webhook_for, webhook_problem
from jobs.slack_message import escape
from nlp.taxonomy import Taxonomy

SEVERITY = {"low": "faible", "medium": "moyenne", "high": "haute", "critical": "critique"}
KIND = {"volume": "pic de volume", "negativity": "hausse de négativité", "emerging": "émergent"}
RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
STATUS = {"open": "", "acknowledged": " · pris en charge"}
MAX_LINES = 10


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
    end = end or latest_day(session) or date.today()
    start = end - timedelta(days=days - 1)
    rows = theme_summary(session, start=start, end=end, taxonomy=taxonomy, include_total=True)
    total = rows.pop()
    movers = sorted(
        (r for r in rows if r.volume > r.previous_volume),
        key=lambda r: (-(r.volume - r.previous_volume), r.theme),
    )[:top]
    incidents = sorted(
        (
            inc
            for status in STATUS
            for inc in list_incidents(session, status=status, include_historical=False, limit=200)
        ),
        key=lambda i: (RANK.get(i.severity, 9), i.first_day, i.id),
    )
    link = f"{dashboard_url.rstrip('/')}/#view=overview&start={start}&end={end}"

    headline = (
        f"{_num(total.volume)} verbatims, {total.negative_share * 100:.0f} % négatifs "
        f"({(total.negative_share - total.previous_negative_share) * 100:+.0f} pts)"
    )
    for score in ("nps", "csat"):
        s = score_summary(session, score, start=start, end=end)
        if s.value is not None:
            headline += f" · NPS {s.value:+.0f}" if score == "nps" else f" · CSAT {s.value:.0f} %"
    mover_lines = [
        f"• *{r.label}* : {_num(r.previous_volume)} → {_num(r.volume)} mentions "
        f"({'nouveau' if r.volume_change is None else f'{r.volume_change * 100:+.0f} %'}), "
        f"{r.negative_share * 100:.0f} % négatives"
        for r in movers
    ] or ["Aucun thème en hausse."]
    labels = {t.id: t.label for t in taxonomy.themes}
    incident_lines = [
        _incident_line(inc, labels, dashboard_url) for inc in incidents[:MAX_LINES]
    ] or ["Aucun incident en cours."]
    if len(incidents) > MAX_LINES:
        incident_lines.append(f"… et {len(incidents) - MAX_LINES} autres")
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


def _incident_line(inc: Incident, labels: dict[str, str], dashboard_url: str) -> str:
    """One line a team can act on: severity, theme, what moved, since when, the main driver."""
    kinds = ", ".join(KIND.get(k, k) for k in inc.kinds or []) or "signal"
    line = (
        f"• {SEVERITY.get(inc.severity, inc.severity)} — *{labels.get(inc.theme, inc.theme)}* "
        f"({kinds}) depuis le {_day(inc.first_day)}{STATUS.get(inc.status, '')}"
    )
    driver = next(iter(inc.drivers or []), None)
    if isinstance(driver, dict) and driver.get("field") and driver.get("value"):
        field, value = escape(str(driver["field"])), escape(str(driver["value"]))
        line += f", surtout {field} = {value}"
    link = dashboard_link(dashboard_url, inc.theme, inc.first_day, inc.last_day)
    return f"{line} (<{link}|voir>)"


@dataclass
class DigestResult:
    digest: Digest
    outcome: str  # sent | already_sent | dry_run | retry | dead
    error: str | None = None


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
) -> DigestResult:
    """Build and post the digest. Raises ValueError when no webhook is configured."""
    with session_scope(sessions) as session:
        digest = build_digest(
            session, taxonomy, dashboard_url=settings.dashboard_url, days=days, end=end
        )
        marker = f"digest:{digest.end.isoformat()}"
        sent_before = session.get(DataVersion, marker) is not None
    if dry_run:
        return DigestResult(digest, "dry_run")
    if sent_before and not force:
        return DigestResult(digest, "already_sent")
    url = webhook_for(settings, "digest")
    if not url:
        raise ValueError("no Slack webhook for the digest: set slack_webhooks.digest (or .default)")
    problem = webhook_problem(url)
    if problem is not None:
        raise ValueError(f"Slack webhook for the digest: {problem}")
    own = client is None
    client = client or httpx.Client()
    try:
        kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        outcome, error, _, _ = post_with_retries(
            client, url, digest.payload, policy or DeliveryPolicy(), **kwargs
        )
    finally:
        if own:
            client.close()
    if outcome == "sent":
        with session_scope(sessions) as session:
            if session.get(DataVersion, marker) is None:
                session.add(DataVersion(name=marker, version=1))
    return DigestResult(digest, outcome, error)

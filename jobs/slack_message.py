"""Slack Block Kit payload of one alert revision (French by default, English available).

The payload is built when the alert is queued (examples are a snapshot of that moment) and
carries a plain `text` fallback for notifications and clients without Block Kit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

SEVERITY_EMOJI = {
    "low": ":large_blue_circle:",
    "medium": ":large_yellow_circle:",
    "high": ":large_orange_circle:",
    "critical": ":red_circle:",
}

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "title_new": "Alerte {severity} : {label}",
        "title_update": "Mise à jour (rév. {revision}) — alerte {severity} : {label}",
        "volume": "Hausse des mentions « {label} » : {observed:.0f} contre {expected:.1f} "
        "attendues ({change})",
        "emerging": "Sujet émergent « {label} » : {observed:.0f} mentions contre "
        "{expected:.1f} habituellement",
        "negativity": "Hausse des avis négatifs sur « {label} » : {observed:.0%} de négatifs "
        "contre {expected:.0%} d'habitude ({change})",
        "period_one": "Période : {first}",
        "period": "Période : du {first} au {last}",
        "severity": "Gravité",
        "kind": "Type",
        "team": "Équipe",
        "pvalue": "p-valeur",
        "examples": "Exemples de verbatims (masqués) :",
        "no_examples": "Aucun exemple disponible.",
        "link": "Ouvrir le tableau de bord",
        "kinds_volume": "volume",
        "kinds_negativity": "négativité",
        "kinds_emerging": "émergent",
        "sev_low": "faible",
        "sev_medium": "moyenne",
        "sev_high": "élevée",
        "sev_critical": "critique",
    },
    "en": {
        "title_new": "{severity} alert: {label}",
        "title_update": "Update (rev. {revision}) — {severity} alert: {label}",
        "volume": "Mentions of “{label}” rose: {observed:.0f} vs {expected:.1f} expected "
        "({change})",
        "emerging": "Emerging topic “{label}”: {observed:.0f} mentions vs {expected:.1f} usually",
        "negativity": "Negative feedback on “{label}” rose: {observed:.0%} negative vs "
        "{expected:.0%} usually ({change})",
        "period_one": "Period: {first}",
        "period": "Period: {first} to {last}",
        "severity": "Severity",
        "kind": "Kind",
        "team": "Team",
        "pvalue": "p-value",
        "examples": "Example verbatims (masked):",
        "no_examples": "No example available.",
        "link": "Open the dashboard",
        "kinds_volume": "volume",
        "kinds_negativity": "negativity",
        "kinds_emerging": "emerging",
        "sev_low": "low",
        "sev_medium": "medium",
        "sev_high": "high",
        "sev_critical": "critical",
    },
}


@dataclass(frozen=True)
class AlertView:
    """What the message needs to know about an alert (decoupled from the ORM row)."""

    theme: str
    label: str
    kind: str
    severity: str
    first_day: date
    last_day: date
    observed: float
    expected: float
    p_value: float | None
    revision: int = 1
    team: str = "default"


def _change(observed: float, expected: float, kind: str, lang: str) -> str:
    if kind == "negativity":
        pts = (observed - expected) * 100
        return f"+{pts:.0f} points" if lang == "fr" else f"+{pts:.0f} pts"
    if expected <= 0:
        return "nouveau" if lang == "fr" else "new"
    pct = (observed / expected - 1) * 100
    sep = "\u202f" if lang == "fr" else ""
    return f"{pct:+.0f}{sep}%"


def _fmt_day(day: date, lang: str) -> str:
    return day.strftime("%d/%m/%Y") if lang == "fr" else day.isoformat()


def _clip(text: str, limit: int = 280) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_payload(
    alert: AlertView, examples: Sequence[str], dashboard_url: str, language: str = "fr"
) -> dict[str, Any]:
    """Slack incoming-webhook body: Block Kit `blocks` plus a `text` fallback."""
    t = TEXTS.get(language, TEXTS["fr"])
    sev = t.get(f"sev_{alert.severity}", alert.severity)
    title_key = "title_new" if alert.revision <= 1 else "title_update"
    title = t[title_key].format(severity=sev, label=alert.label, revision=alert.revision)
    what = t.get(alert.kind, t["volume"]).format(
        label=alert.label,
        observed=alert.observed,
        expected=alert.expected,
        change=_change(alert.observed, alert.expected, alert.kind, language),
    )
    first, last = _fmt_day(alert.first_day, language), _fmt_day(alert.last_day, language)
    period = (
        t["period_one"].format(first=first)
        if alert.first_day == alert.last_day
        else t["period"].format(first=first, last=last)
    )
    link = f"{dashboard_url.rstrip('/')}/#theme={alert.theme}"
    emoji = SEVERITY_EMOJI.get(alert.severity, ":warning:")
    kind_label = t.get(f"kinds_{alert.kind}", alert.kind)
    pval = f"{alert.p_value:.1e}" if alert.p_value is not None else "—"
    clipped = [_clip(e) for e in examples[:3] if e and e.strip()]

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(title, 150), "emoji": True},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} *{what}*\n{period}"}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"{t['severity']} : *{sev}* · {t['kind']} : {kind_label} · "
                        f"{t['team']} : {alert.team} · {t['pvalue']} : {pval}"
                    ),
                }
            ],
        },
    ]
    if clipped:
        quotes = "\n".join(f"> {e}" for e in clipped)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{t['examples']}\n{quotes}"}}
        )
    else:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": t["no_examples"]}]}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": t["link"]}, "url": link}
            ],
        }
    )
    text = f"{title} — {what}. {period}. {link}"
    return {"text": text, "blocks": blocks}

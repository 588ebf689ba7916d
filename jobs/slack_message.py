"""Slack Block Kit payload of one alert revision (French by default, English available).

The payload is built when the alert is queued (examples are a snapshot of that moment) and
carries a plain `text` fallback for notifications and clients without Block Kit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.mrkdwn import escape

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
        "inc_new": "Incident de gravité {severity} : {label}",
        "inc_update": "Incident aggravé (rév. {revision}) — gravité {severity} : {label}",
        "drivers": "Ce qui tire la hausse :",
        "driver": "{pct} % des mentions supplémentaires : {field} « {value} »",
        "channels": "Par canal :",
        "channel": "• {channel} : {figures}",
        "channel_count": "{kind} {observed:.0f} contre {expected:.1f}",
        "channel_share": "{kind} {observed:.0%} contre {expected:.0%}",
        "incident": "Incident n° {id}",
        "team_changed": "Équipe : {team} (auparavant {previous}, jusqu'à la modification de "
        "la taxonomie ; les messages précédents de cet incident sont dans son canal)",
        "field_channel": "canal",
        "field_source": "source",
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
        "inc_new": "{severity} incident: {label}",
        "inc_update": "Incident escalated (rev. {revision}) — {severity}: {label}",
        "drivers": "What drives the rise:",
        "driver": "{pct}% of the extra mentions: {field} “{value}”",
        "channels": "By channel:",
        "channel": "• {channel}: {figures}",
        "channel_count": "{kind} {observed:.0f} vs {expected:.1f}",
        "channel_share": "{kind} {observed:.0%} vs {expected:.0%}",
        "incident": "Incident #{id}",
        "team_changed": "Team: {team} (previously {previous}, until the taxonomy was edited; "
        "this incident's earlier messages are in its channel)",
        "field_channel": "channel",
        "field_source": "source",
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


class _FrenchNumber(float):
    """A number formatted the French way in the templates: "3,4", "89 %" and, with the "_"
    grouping of a format spec, "1 234" (as the digest and the dashboard write them), not
    "3.4", "89%" and "1234"."""

    def __format__(self, spec: str) -> str:
        text = float(self).__format__(spec) if "d" not in spec else int(self).__format__(spec)
        return text.replace(".", ",").replace("%", "\u202f%").replace("_", "\u202f")


def _number(value: float, lang: str) -> float:
    return _FrenchNumber(value) if lang == "fr" else value


def french_number(value: float, spec: str = "_d") -> str:
    """`value` as a French reader writes it (`verbatim report`'s table): `spec` as for
    `format`, "_" grouping thousands with a narrow no-break space: 1234 "1 234", -0.71
    "-0,71" ("+.2f": "+0,71"), 0.5 "50 %" (".0%")."""
    return format(_FrenchNumber(value), spec)


def share_points(share: float, previous: float) -> int:
    """The change between two shares in points, as the difference of the whole percentages
    shown beside it: « 92 % contre 28 % (+64 points) », not the +63 of the unrounded shares
    (0.9236 - 0.2849). `round` rounds the same double as the `:.0%` / `:.0f` formats do."""
    return round(share * 100) - round(previous * 100)


def _change(observed: float, expected: float, kind: str, lang: str) -> str:
    if kind == "negativity":
        pts = share_points(observed, expected)
        return f"{pts:+d} points" if lang == "fr" else f"{pts:+d} pts"
    if expected <= 0:
        return "nouveau" if lang == "fr" else "new"
    pct = (observed / expected - 1) * 100
    sep = "\u202f" if lang == "fr" else ""
    return f"{pct:+.0f}{sep}%"


def _fmt_day(day: date, lang: str) -> str:
    return day.strftime("%d/%m/%Y") if lang == "fr" else day.isoformat()


# Slack refuses the whole message (400 invalid_blocks: the row goes `dead`, the alert is lost)
# when a section's text is over 3000 characters.
SECTION_CHARS = 3000
VALUE_CHARS = 80  # a driver's field or value (feed metadata, up to 1000 characters) in a line
# Marks that belong to the character before them: a cut just after one kept an emoji's
# joiner or variation selector dangling (shown as a broken glyph).
_JOINERS = "\u200d\ufe0e\ufe0f"


def clip(text: str, limit: int = 280) -> str:
    """`text` on one line, at most `limit` characters: cut at the last word boundary (not
    « … c'est inadmis… »), unless that loses more than a third of it, then « … »."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= (limit * 2) // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:" + _JOINERS) + "…"


def _section(text: str) -> dict[str, Any]:
    """A mrkdwn section, cut to Slack's SECTION_CHARS (last resort: the pieces are clipped
    first), never inside an entity such as `&amp;`."""
    if len(text) > SECTION_CHARS:
        text = text[: SECTION_CHARS - 1]
        amp = text.rfind("&")
        if amp > text.rfind(";"):
            text = text[:amp]
        text += "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def build_payload(
    alert: AlertView, examples: Sequence[str], dashboard_url: str, language: str = "fr"
) -> dict[str, Any]:
    """Slack incoming-webhook body: Block Kit `blocks` plus a `text` fallback."""
    t = TEXTS.get(language, TEXTS["fr"])
    sev = t.get(f"sev_{alert.severity}", alert.severity)
    title_key = "title_new" if alert.revision <= 1 else "title_update"
    # The header is plain_text (shown as written); every other text is mrkdwn, where a label
    # « Colis & <emballage> » lost its `<emballage>` and `&` broke the entity parsing.
    label, team = escape(alert.label), escape(alert.team)
    header = t[title_key].format(severity=sev, label=alert.label, revision=alert.revision)
    title = t[title_key].format(severity=sev, label=label, revision=alert.revision)
    what = t.get(alert.kind, t["volume"]).format(
        label=label,
        observed=_number(alert.observed, language),
        expected=_number(alert.expected, language),
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
    clipped = [clip(e) for e in examples[:3] if e and e.strip()]

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(header, 150), "emoji": True},
        },
        _section(f"{emoji} *{what}*\n{period}"),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"{t['severity']} : *{sev}* · {t['kind']} : {kind_label} · "
                        f"{t['team']} : {team} · {t['pvalue']} : {pval}"
                    ),
                }
            ],
        },
    ]
    blocks.extend(_examples_and_link(clipped, link, t))
    text = f"{title} — {what}. {period}. {link}"
    return {"text": text, "blocks": blocks}


def _kind_line(t: dict[str, str], kind: str, label: str, sig: dict[str, Any], lang: str) -> str:
    obs, exp = float(sig.get("observed", 0.0)), float(sig.get("expected", 0.0))
    return t.get(kind, t["volume"]).format(
        label=label,
        observed=_number(obs, lang),
        expected=_number(exp, lang),
        change=_change(obs, exp, kind, lang),
    )


def build_incident_payload(
    incident: Any, label: str, link: str, language: str = "fr", previous_team: str | None = None
) -> dict[str, Any]:
    """Slack body of one incident revision: what rose (each kind), the per-channel breakdown,
    the drivers, 2-3 diverse examples and the dashboard link to the theme and period.
    `previous_team`: the team its earlier messages went to, when the theme changed teams
    since (this revision goes to a channel that never saw the incident open)."""
    t = TEXTS.get(language, TEXTS["fr"])
    sev = t.get(f"sev_{incident.severity}", incident.severity)
    key = "inc_new" if incident.revision <= 1 else "inc_update"
    # As in build_payload: the plain_text header as written, the mrkdwn texts escaped once.
    header = t[key].format(severity=sev, label=label, revision=incident.revision)
    label, team = escape(label), escape(incident.team)
    title = t[key].format(severity=sev, label=label, revision=incident.revision)
    signals = dict(incident.signals or {})
    lines = [
        _kind_line(t, k, label, signals[k], language)
        for k in ("volume", "negativity", "emerging")
        if k in signals
    ]
    channels = signals.get("channels") or {}
    if not lines:  # only per-channel signals: lead with the strongest one
        for ch, kinds in sorted(channels.items()):
            for k, sig in kinds.items():
                lines.append(f"{_kind_line(t, k, label, sig, language)} [{escape(ch)}]")
    first, last = _fmt_day(incident.first_day, language), _fmt_day(incident.last_day, language)
    period = (
        t["period_one"].format(first=first)
        if incident.first_day == incident.last_day
        else t["period"].format(first=first, last=last)
    )
    emoji = SEVERITY_EMOJI.get(incident.severity, ":warning:")
    what = "\n".join(f"*{line}*" for line in lines)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(header, 150), "emoji": True},
        },
        _section(f"{emoji} {what}\n{period}"),
    ]
    moved = ""
    if previous_team is not None and previous_team != incident.team:
        moved = t["team_changed"].format(team=team, previous=escape(previous_team))
        blocks.append(_section(f"*{moved}*"))
        moved = f" {moved}."
    if channels:
        parts = []
        for ch, kinds in sorted(channels.items()):
            # As the lines above it: a negative share in %, counts the French way in French
            # (not « négativité 0.786 vs 0.338 » under « 79 % de négatifs contre 34 % »).
            desc = ", ".join(
                t["channel_share" if k == "negativity" else "channel_count"].format(
                    kind=t.get(f"kinds_{k}", k),
                    observed=_number(float(s.get("observed", 0)), language),
                    expected=_number(float(s.get("expected", 0)), language),
                )
                for k, s in sorted(kinds.items())
            )
            parts.append(t["channel"].format(channel=escape(ch), figures=desc))
        blocks.append(_section(t["channels"] + "\n" + "\n".join(parts)))
    driver_lines = []
    for d in incident.drivers or []:
        # A metadata value is up to 1000 characters: three of them made the section too long
        # for Slack, which refused the whole message (as the digest, one short piece each).
        field = t.get(f"field_{d['field']}", escape(clip(str(d["field"]), VALUE_CHARS)))
        pct = f"{round(float(d['share_of_extra']) * 100):d}"
        value = escape(clip(str(d["value"]), VALUE_CHARS))
        driver_lines.append("• " + t["driver"].format(pct=pct, field=field, value=value))
    if driver_lines:
        blocks.append(_section(t["drivers"] + "\n" + "\n".join(driver_lines)))
    kinds = " + ".join(t.get(f"kinds_{k}", k) for k in incident.kinds)
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"{t['incident'].format(id=incident.id)} · {t['severity']} : *{sev}* · "
                        f"{t['kind']} : {kinds} · {t['team']} : {team}"
                    ),
                }
            ],
        }
    )
    clipped = [clip(e) for e in (incident.examples or [])[:3] if e and e.strip()]
    blocks.extend(_examples_and_link(clipped, link, t))
    summary = "; ".join(lines)
    drivers_text = (" " + " ".join(driver_lines)) if driver_lines else ""
    text = f"{title} — {summary}. {period}.{moved}{drivers_text} {link}"
    return {"text": text, "blocks": blocks}


def _examples_and_link(clipped: list[str], link: str, t: dict[str, str]) -> list[dict[str, Any]]:
    """The closing blocks of every message: quoted examples (or why there are none), the link."""
    if clipped:
        quotes = "\n".join(f"> {escape(e)}" for e in clipped)
        examples = _section(f"{t['examples']}\n{quotes}")
    else:
        examples = {"type": "context", "elements": [{"type": "mrkdwn", "text": t["no_examples"]}]}
    button = {"type": "button", "text": {"type": "plain_text", "text": t["link"]}, "url": link}
    return [examples, {"type": "actions", "elements": [button]}]

"""The taxonomy's single source of truth: versioned rows of `taxonomy_versions`.

Every job, the API (all its replicas), the dashboard and Slack messages read the highest
version. The first reader seeds version 1 from `settings.taxonomy_path` (a file or a built-in
name), else from a `data_dir/taxonomy.yaml` left by older releases, else the packaged
e-commerce taxonomy. YAML stays the exchange format (`body`, import/export).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import Alert, Incident, OutboxMessage, TaxonomyVersion, Topic
from core.mrkdwn import escape
from core.settings import Settings
from core.taxonomy_default import seed_taxonomy
from nlp.errors import VerbatimError
from nlp.taxonomy import (
    Taxonomy,
    TaxonomyError,
    parse_taxonomy,
)

log = logging.getLogger(__name__)

SEED_AUTHOR = "seed"


@dataclass(frozen=True)
class Current:
    taxonomy: Taxonomy
    version: int
    changed: bool = True  # from `save`/`import_yaml`: False when nothing was stored


class TaxonomyConflict(VerbatimError):
    """The taxonomy changed since the version an edit was based on (a lost update refused)."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


def changes_since(session: Session, version: int) -> str:
    """`v3 (author): summary; v4 ...`: what the versions after `version` changed."""
    rows = session.execute(
        select(TaxonomyVersion)
        .where(TaxonomyVersion.version > version)
        .order_by(TaxonomyVersion.version)
    ).scalars()
    return "; ".join(f"v{r.version} by {r.author}: {r.summary}" for r in rows)


def check_base(session: Session, base: int, current_version: int, what: str) -> None:
    """Raise TaxonomyConflict when an edit based on version `base` would overwrite later ones."""
    if base != current_version:
        later = changes_since(session, base) if base < current_version else ""
        raise TaxonomyConflict(
            f"{what} is based on taxonomy version {base}, but the current version is "
            f"{current_version}"
            + (f" ({later[:500]})" if later else "")
            + ": storing it would undo those changes. Export the current version and redo "
            "your edit",
            current_version,
        )


def for_job(sessions: sessionmaker[Session], settings: Settings) -> Current:
    """The current taxonomy for a job (its own short transaction; seeds on first use)."""
    with session_scope(sessions) as session:
        return current(session, settings)


def latest_version(session: Session) -> int | None:
    """The current version number (one indexed MAX: cheap enough to ask on every request)."""
    return session.execute(select(func.max(TaxonomyVersion.version))).scalar()


def parse_version(row: TaxonomyVersion) -> Taxonomy:
    tax = parse_taxonomy(row.body, origin=f"taxonomy version {row.version}", stored=True)
    return tax if tax.version == row.version else tax.model_copy(update={"version": row.version})


def current(session: Session, settings: Settings) -> Current:
    """The current taxonomy, seeding version 1 on first use (safe against a concurrent seed)."""
    row = session.execute(
        select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        seed, origin = seed_taxonomy(settings)
        seed = seed.model_copy(update={"version": 1})
        try:
            with session.begin_nested():
                session.add(_row(seed, 1, SEED_AUTHOR, origin))
        except IntegrityError:  # another process seeded first: read theirs
            pass
        return current(session, settings)
    return Current(parse_version(row), row.version)


def _row(tax: Taxonomy, version: int, author: str, summary: str) -> TaxonomyVersion:
    return TaxonomyVersion(
        version=version,
        name=tax.name,
        author=author[:100],
        created_at=datetime.now(UTC),
        summary=summary,
        body=tax.to_yaml(),
        # The seed describes data already analysed with it: nothing to re-detect.
        rethemed_at=datetime.now(UTC) if author == SEED_AUTHOR else None,
        theme_since={},
    )


def save(
    session: Session,
    settings: Settings,
    new: Taxonomy,
    author: str,
    summary: str | None = None,
    *,
    base: int | None = None,
) -> Current:
    """Store `new` as the next version (raises IntegrityError if another writer got there
    first: callers retry on the new current). Returns the stored version.

    `base`: the version `new` was made from; TaxonomyConflict when it is no longer the
    current one (else an edit of a copy read just before another writer's commit would be
    stored over that writer's version, undoing it)."""
    old: Taxonomy | None
    try:
        cur = current(session, settings)
        old, version = cur.taxonomy, cur.version + 1
        if base is not None:
            check_base(session, base, cur.version, "the edit")
    except TaxonomyError as exc:
        # Stored by a release that checked less (an alert threshold out of range, an id too
        # long for its column): it cannot be read, so it is replaced, never a dead end.
        log.warning("replacing a current taxonomy that no longer validates: %s", exc)
        old, version = None, (latest_version(session) or 0) + 1
    if old is not None and old.same_content(new):
        # The same document again (an import run twice, a retire of a retired theme): a new
        # version would only say "no change" and ask for a re-detection.
        return Current(old, version - 1, changed=False)
    new = new.model_copy(update={"version": version})
    text = summary or diff_summary(old, new)
    row = _row(new, version, author, text)
    # New themes have no stored mentions before the re-detection: their day is set by it. A
    # renamed theme is not new: its mentions under its former id are its history.
    row.theme_since = {
        t.id: ""
        for t in new.active
        if old is None or all(old.resolve(i) is None for i in (t.id, *t.aliases))
    }
    session.add(row)
    session.flush()
    follow_teams(session, new)
    regrade(session, old, new)
    close_removed(session, settings, old, new, author)
    return Current(new, version)


def regrade(session: Session, old: Taxonomy | None, new: Taxonomy) -> int:
    """Grade again, with its new `severity_weight`, what is live of a theme whose weight was
    edited: its open alerts and those of its open or acknowledged incidents, from their
    stored figures (the peak ratio, the smallest p-value), and those incidents. They kept the
    old weight's grade until a later signal (only ever up): a weight lowered because a theme
    over-alerted still showed « critique » on /alerts, /incidents and the /themes badge, one
    raised left a spike that had stopped growing « faible ». Returns how many alerts changed."""
    from nlp.spikes import SEVERITIES, DetectorConfig, severity_of

    if old is None:
        return 0
    weights = {
        t.id: t.severity_weight
        for t in new.active
        if (before := old.resolve(t.id)) is not None and before.severity_weight != t.severity_weight
    }
    if not weights:
        return 0
    live = select(Incident.id).where(Incident.status.in_(("open", "acknowledged")))
    alerts = session.execute(
        select(Alert).where((Alert.status == "open") | Alert.incident_id.in_(live))
    ).scalars()
    floor = DetectorConfig().emerging_min_volume / 2
    now = datetime.now(UTC)
    changed, incidents = 0, set()
    for alert in alerts:
        theme = new.resolve(alert.theme)
        if theme is None or theme.id not in weights:
            continue
        expected = float(alert.expected)
        if alert.kind == "emerging":  # graded as the detector grades it (nlp.spikes)
            ratio = float(alert.observed) / max(floor, expected, 0.5)
        else:
            ratio = float(
                (alert.details or {}).get("peak_ratio", alert.observed / max(expected, 1e-9))
            )
        # Not `p_value or 1.0`: a spike far beyond its baseline stores 0.0 (the NB tail
        # underflows), the strongest evidence, which read as none lowered its grade.
        p_value = 1.0 if alert.p_value is None else alert.p_value
        grade = severity_of(ratio, p_value, weights[theme.id])
        if grade != alert.severity:
            alert.severity, alert.updated_at = grade, now
            changed += 1
            if alert.incident_id is not None:
                incidents.add(alert.incident_id)
    session.flush()
    for inc in session.execute(
        select(Incident).where(Incident.id.in_(incidents), Incident.id.in_(live))
    ).scalars():
        grades = session.execute(select(Alert.severity).where(Alert.incident_id == inc.id))
        inc.severity = max(grades.scalars(), key=SEVERITIES.index)
        inc.updated_at = now
    return changed


REMOVED_NOTE = "thème retiré de la taxonomie"
REMOVED_TEXTS = {
    "fr": "Incident n° {id} clos : le thème « {label} » a été retiré de la taxonomie "
    "(version {version}), il n'est plus suivi.",
    "en": "Incident #{id} closed: theme “{label}” was removed from the taxonomy "
    "(version {version}); it is no longer tracked.",
}
# A message in one of these states may be in the channel: the team is told of the closing.
POSTED = ("sending", "posting", "sent", "unknown")


def close_removed(
    session: Session, settings: Settings, old: Taxonomy | None, new: Taxonomy, author: str
) -> int:
    """Close at once the open alerts and the open or acknowledged incidents of a theme that
    `new` removes or retires (the detector no longer tests it): they stayed open, on /alerts,
    /incidents and the digest, until their cooldown ran out, and a channel told of the
    incident never heard of its end. A renamed or merged theme resolves through its aliases:
    kept. Returns how many incidents were closed (see `close_gone`)."""
    from nlp.spikes import TOPIC_PREFIX

    def gone(theme_id: str) -> bool:
        theme = new.resolve(theme_id)
        return not theme_id.startswith(TOPIC_PREFIX) and (theme is None or theme.retired)

    def label(theme_id: str) -> str:
        theme = (old.resolve(theme_id) if old is not None else None) or new.resolve(theme_id)
        return theme.label if theme is not None else theme_id

    texts = REMOVED_TEXTS.get(settings.alert_language, REMOVED_TEXTS["fr"])
    return close_gone(
        session,
        gone,
        author=author,
        note=f"{REMOVED_NOTE} (version {new.version})",
        message=lambda inc: texts.format(
            id=inc.id, label=escape(label(inc.theme)), version=new.version
        ),
    )


RETIRED_NOTE = "sujet retiré : plus aucun verbatim à la découverte des sujets"
RETIRED_TEXTS = {
    "fr": "Incident n° {id} clos : le sujet émergent « {label} » n'a plus aucun verbatim à la "
    "découverte des sujets du {day}, il n'est plus suivi.",
    "en": "Incident #{id} closed: emerging topic “{label}” has no feedback left after the "
    "topic discovery of {day}; it is no longer tracked.",
}
# The same closing after `verbatim forget`, `DELETE /feedback/{id}` or `verbatim purge`
# (core.erasure): a count and a label, never the erased texts.
ERASED_NOTE = "sujet retiré : plus aucun verbatim après un effacement"
ERASED_TEXTS = {
    "fr": "Incident n° {id} clos : le sujet émergent « {label} » n'a plus aucun verbatim après "
    "l'effacement du {day}, il n'est plus suivi.",
    "en": "Incident #{id} closed: emerging topic “{label}” has no feedback left after the "
    "erasure of {day}; it is no longer tracked.",
}


def close_retired(
    session: Session,
    now: datetime,
    language: str = "fr",
    *,
    author: str = "topics",
    note: str = RETIRED_NOTE,
    texts: dict[str, str] = RETIRED_TEXTS,
    topics: Collection[int] | None = None,
) -> int:
    """Close the open alerts and incidents of the topics left without a verbatim (size 0,
    retired): the detector no longer sees them grow, and they stayed open on /alerts,
    /incidents and the digest until their cooldown ran out, the channel never told. As a
    theme removed from the taxonomy (`close_removed`). `language`: of the Slack follow-up
    (`alert_language`). `topics`: only these (the ones an erasure emptied; a topic empty
    before it keeps its incident). Returns how many incidents were closed."""
    from nlp.spikes import topic_theme

    empty = select(Topic.id, Topic.label).where(Topic.size == 0)
    if topics is not None:
        if not topics:
            return 0
        empty = empty.where(Topic.id.in_(topics))
    labels = {topic_theme(tid): label for tid, label in session.execute(empty)}
    if not labels:
        return 0
    text = texts.get(language, texts["fr"])
    day = now.date().strftime("%d/%m/%Y") if language == "fr" else now.date().isoformat()
    return close_gone(
        session,
        lambda theme: theme in labels,
        author=author,
        note=note,
        message=lambda inc: text.format(
            id=inc.id, label=escape(labels[inc.theme] or inc.theme), day=day
        ),
    )


def close_gone(
    session: Session,
    gone: Callable[[str], bool],
    *,
    author: str,
    note: str,
    message: Callable[[Incident], str],
) -> int:
    """Close the open alerts and the open or acknowledged incidents of every theme (or topic,
    "topic:<id>") for which `gone(id)` is true: the incident is resolved by `author` with
    `note`; its messages not posted yet are dropped, and one that may be in Slack is followed
    by a last one, `message(incident)` (mrkdwn, escaped by the caller), saying so. Returns how
    many incidents were closed."""
    now = datetime.now(UTC)
    for alert in session.execute(select(Alert).where(Alert.status == "open")).scalars():
        if gone(alert.theme):
            alert.status, alert.updated_at = "resolved", now
    closed = 0
    live = select(Incident).where(Incident.status.in_(("open", "acknowledged")))
    for inc in session.execute(live).scalars():
        if not gone(inc.theme):
            continue
        inc.status, inc.resolved_by, inc.resolved_at = "resolved", author[:100], now
        inc.resolve_note, inc.updated_at = note, now
        closed += 1
        # Its openings or escalations not posted yet go, in one statement that takes only the
        # rows still pending: one read pending here and claimed by a sender before the delete
        # (PostgreSQL) was deleted though it may be in Slack, and the channel never heard of
        # the closing. Kept now, it counts as posted below.
        session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.incident_id == inc.id, OutboxMessage.status == "pending")
            .execution_options(synchronize_session="fetch")
        )
        statuses = session.scalars(
            select(OutboxMessage.status).where(OutboxMessage.incident_id == inc.id)
        )
        if not any(status in POSTED for status in statuses):
            continue
        inc.revision += 1
        text = message(inc)
        section = {"type": "mrkdwn", "text": f":white_check_mark: {text}"}
        session.add(
            OutboxMessage(
                incident_id=inc.id,
                alert_id=None,
                revision=inc.revision,
                route=inc.team,
                payload={"text": text, "blocks": [{"type": "section", "text": section}]},
                status="pending",
                attempts=0,
            )
        )
    session.flush()
    return closed


def follow_teams(session: Session, taxonomy: Taxonomy) -> int:
    """Open alerts and incidents move with their theme to its team in `taxonomy`: only an
    alert updated by a later detection did, so after a team change /alerts and /incidents
    showed the old team (an incident the new team, its quiet volume alert the old one).
    Closed ones keep the team that handled them. An incident none of whose messages may be
    in Slack yet takes its queued ones along: they kept the old team's route, so the new team
    never heard of it (and one held for want of the old team's webhook stayed queued for
    good). Once the old team was told, the next message says where it went. Returns how many
    rows moved."""
    moved = 0
    now = datetime.now(UTC)
    for model, live in ((Alert, ("open",)), (Incident, ("open", "acknowledged"))):
        rows = session.execute(
            select(model.id, model.theme, model.team).where(model.status.in_(live))
        ).all()
        for row_id, theme_id, team in rows:
            theme = taxonomy.resolve(theme_id)  # None: a topic, or a theme no longer known
            if theme is not None and theme.team != team:
                session.execute(
                    update(model).where(model.id == row_id).values(team=theme.team, updated_at=now)
                )
                moved += 1
                if model is Incident and not _told(session, row_id):
                    queued = session.execute(
                        select(OutboxMessage.id, OutboxMessage.payload).where(
                            OutboxMessage.incident_id == row_id,
                            OutboxMessage.status == "pending",
                        )
                    ).all()
                    for msg_id, payload in queued:
                        # Still pending when written: one a sender claimed since keeps the
                        # route and text it is being posted with.
                        session.execute(
                            update(OutboxMessage)
                            .where(OutboxMessage.id == msg_id, OutboxMessage.status == "pending")
                            .values(route=theme.team, payload=_with_team(payload, team, theme.team))
                        )
    return moved


def _with_team(payload: Any, old: str, new: str) -> Any:
    """An incident message (jobs.slack_message.build_incident_payload) that follows its theme
    to team `new`: its context line ends with « Équipe : <team> » (« Team : <team> » in English),
    which read the old team in the new team's channel until a detection rebuilt it. Core
    cannot build the message (jobs does); only that line's end changes, the rest (the label
    of that moment included) is rebuilt by the next detection that updates the incident."""
    if not isinstance(payload, dict) or not isinstance(payload.get("blocks"), list):
        return payload
    suffix = f" : {escape(old)}"
    blocks = []
    for block in payload["blocks"]:
        if isinstance(block, dict) and block.get("type") == "context":
            elements = [
                {**el, "text": el["text"][: -len(suffix)] + f" : {escape(new)}"}
                if isinstance(el, dict)
                and isinstance(el.get("text"), str)
                and el["text"].endswith(suffix)
                else el
                for el in block.get("elements") or []
            ]
            block = {**block, "elements": elements}
        blocks.append(block)
    return {**payload, "blocks": blocks}


def _told(session: Session, incident_id: int) -> bool:
    """Whether a message of the incident may be in Slack (see POSTED)."""
    return (
        session.execute(
            select(OutboxMessage.id)
            .where(OutboxMessage.incident_id == incident_id, OutboxMessage.status.in_(POSTED))
            .limit(1)
        ).first()
        is not None
    )


def import_yaml(
    session: Session,
    settings: Settings,
    text: str,
    author: str,
    origin: str = "<import>",
    *,
    force: bool = False,
) -> Current:
    """Validate a YAML document and store it as the next version (TaxonomyError if invalid).

    The same taxonomy as the current one stores nothing (`changed` False). A document that
    states the `version` it was exported from, older than the current one, would silently
    undo the changes made since: TaxonomyConflict, unless `force` (last writer wins)."""
    doc = parse_taxonomy(text, origin=origin)
    try:
        cur: Current | None = current(session, settings)
    except TaxonomyError:
        cur = None  # unreadable current version: `save` replaces it
    if cur is None:
        return save(session, settings, doc, author)
    if cur.taxonomy.same_content(doc):
        return Current(cur.taxonomy, cur.version, changed=False)
    if not force and "version" in doc.model_fields_set and doc.version < cur.version:
        check_base(session, doc.version, cur.version, origin)
    return save(session, settings, cur.taxonomy.replaced_by(doc), author)


def history(session: Session) -> list[TaxonomyVersion]:
    return list(
        session.execute(select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc())).scalars()
    )


def pending_retheme(session: Session) -> TaxonomyVersion | None:
    """The current version when its re-detection of recent themes has not run yet."""
    row = session.execute(
        select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc()).limit(1)
    ).scalar_one_or_none()
    return row if row is not None and row.rethemed_at is None else None


def theme_since(session: Session) -> dict[str, str]:
    """Theme id -> first day its mentions exist ("" while not re-detected yet), for themes
    added after the seed; the latest version that added a theme wins."""
    out: dict[str, str] = {}
    rows = session.execute(
        select(TaxonomyVersion.theme_since).order_by(TaxonomyVersion.version)
    ).scalars()
    for since in rows:
        out.update(since or {})
    return out


def diff_summary(old: Taxonomy | None, new: Taxonomy) -> str:
    """One line saying what changed: added / renamed / merged / retired / edited themes."""
    if old is None:
        return f"{len(new.active)} themes"
    before = {t.id: t for t in old.themes}
    after = {t.id: t for t in new.themes}
    parts: list[str] = []
    renamed_from: dict[str, str] = {}
    for tid, theme in after.items():
        if tid in before:
            continue
        gone = [a for a in theme.aliases if a in before and a not in after]
        # Merged then renamed in one edit, the theme has two former ids: its rename entry
        # says which one it was ("renamed prix -> achat; merged commande_paiement into achat"
        # for commande_paiement renamed achat, prix merged into it).
        named = [h.theme for h in new.history if h.action == "rename" and h.target == tid]
        gone.sort(key=lambda a: a not in named[-1:])
        if gone:  # a rename keeps the old theme under a new id
            renamed_from[tid] = gone[0]
            parts.append(f"renamed {gone[0]} -> {tid}")
        else:
            parts.append(f"added {tid}")
    for tid in before:
        if tid in after:
            continue
        target = next((t.id for t in new.themes if tid in t.aliases), None)
        if target is None:
            parts.append(f"removed {tid}")
        elif renamed_from.get(target) != tid:
            parts.append(f"merged {tid} into {target}")
    # Former ids a rename, merge or un-merge above already explains; any other alias change
    # (a former id moved to another theme) re-routes stored mentions and alerts: it was
    # summarised "no change".
    moved = {
        a
        for tax, ids in ((old, before.keys() - after.keys()), (new, after.keys() - before.keys()))
        for t in tax.themes
        if t.id in ids
        for a in (t.id, *t.aliases)
    }
    for tid, theme in after.items():
        prev = before.get(tid)
        if prev is None:
            continue
        added = [a for a in theme.aliases if a not in prev.aliases and a not in moved]
        dropped = [a for a in prev.aliases if a not in theme.aliases and a not in moved]
        if added or dropped:
            change = [*(f"+{a}" for a in added), *(f"-{a}" for a in dropped)]
            parts.append(f"edited {tid} (aliases {' '.join(change)})")
        if theme.retired and not prev.retired:
            parts.append(f"retired {tid}")
            continue
        if prev.retired and not theme.retired:
            parts.append(f"added {tid} again")
            continue
        fields = [
            name
            for name in type(theme).model_fields
            if name != "aliases" and getattr(theme, name) != getattr(prev, name)
        ]
        if fields:
            parts.append(f"edited {tid} ({', '.join(fields)})")
    for name in ("alarm_terms", "positive_cues", "negative_cues", "name", "language"):
        if getattr(old, name) != getattr(new, name):
            parts.append(f"edited {name}")
    kept = [tid for tid in after if tid in before]
    if kept != [tid for tid in before if tid in after]:
        parts.append("reordered themes")  # the order breaks ties between themes
    return "; ".join(parts) or "no change"


class TaxonomyCache:
    """Process-local copy of the current taxonomy, refreshed when the DB version moves (so
    several API replicas agree within one request)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._current: Current | None = None

    def get(self, session: Session, version: int | None = None) -> Current:
        """The current taxonomy (`version`: the caller's fresh `latest_version`, if it has one)."""
        version = latest_version(session) if version is None else version
        cached = self._current
        if cached is not None and version == cached.version:
            return cached
        with self._lock:
            # Checked again under the lock: concurrent cold requests load it once and share
            # one object (view cache keys include its identity).
            cached = self._current
            if cached is None or version is None or version != cached.version:
                cached = self._current = current(session, self.settings)
            return cached

    def put(self, value: Current) -> None:
        with self._lock:
            self._current = value

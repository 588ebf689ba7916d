"""Personal data: erase a person's verbatims (`verbatim forget`) and
delete verbatims past `retention_days` (`verbatim purge`, the scheduler's daily housekeeping).

A verbatim goes with everything that can carry its words: analyses, theme mentions and their
evidence spans, corrections and their notes, its embedding, its topic assignment, its quote
in a topic's examples, in an incident's examples and in the Slack messages stored in the
outbox (a message already delivered stays in Slack: only the stored copy is scrubbed).
Erased days are re-aggregated in the same transaction, so every figure counts the rows left.
Purged days keep their anonymous counts (trends, spike baselines) but lose their keywords;
`core.aggregate.retention_horizon` keeps any later rebuild away from them.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.aggregate import (
    _record_change,
    _utc_midnight,
    aggregate,
    bump_version,
    feedback_day,
    retention_horizon,
    set_retention_horizon,
)
from core.db import lock_aggregates
from core.models import (
    Analysis,
    Correction,
    DailyKeyword,
    Embedding,
    Feedback,
    Incident,
    OutboxMessage,
    Quarantine,
    ThemeMention,
    Topic,
    TopicAssignment,
)
from nlp.errors import VerbatimError

log = logging.getLogger(__name__)

AUDIT_FILE = "erasure-audit.jsonl"  # in data_dir: anonymous lines per erasure or purge
ERASED_QUOTE = "[verbatim effacé]"  # what a stored Slack message quotes instead
_CHUNK = 500  # ids per IN list


class ErasureError(VerbatimError, ValueError):
    """What to erase is missing or ambiguous."""


@dataclass(frozen=True)
class Target:
    """Whose verbatims: feedback ids, a source's key (the id it gave the row, or the stored
    dedup key), a customer / order reference (stored hashed), or a piece of text. Several
    criteria narrow each other (`--source` with `--contains`: that text in that source)."""

    ids: Sequence[int] = ()
    source: str | None = None
    key: str | None = None
    customer: str | None = None
    contains: str | None = None

    def criteria(self) -> list[str]:
        """The kinds of criteria given (the audit names them, never their values)."""
        named = {
            "id": bool(self.ids),
            "source": self.source is not None,
            "key": self.key is not None,
            "customer": self.customer is not None,
            "contains": self.contains is not None,
        }
        return [k for k, given in named.items() if given]


@dataclass
class Erased:
    """What an erasure or a purge removed (counts only: this is what the audit line says)."""

    verbatims: int = 0
    analyses: int = 0
    mentions: int = 0
    corrections: int = 0
    embeddings: int = 0
    topic_assignments: int = 0
    quarantine: int = 0
    topic_examples: int = 0
    incident_examples: int = 0
    messages: int = 0  # stored Slack messages whose quote was replaced
    incidents: int = 0  # closed: their topic was left without a verbatim
    days: list[date] = field(default_factory=list)  # re-aggregated (erasure) or frozen (purge)


def check_target(target: Target) -> None:
    """Refuse a request that names nobody, or a whole source."""
    if not target.criteria():
        raise ErasureError(
            "say which verbatims: --id, --source with --key, --customer or --contains"
        )
    if target.key is not None and target.source is None:
        raise ErasureError("--key needs --source: a key is unique within its source only")
    if target.criteria() == ["source"]:
        raise ErasureError(
            "--source alone would erase a whole source: add --key, --customer or --contains"
        )
    # An empty value (an unset shell variable) matches nobody: "nothing matches" would tell
    # the person's request was served.
    for flag, value in (("--key", target.key), ("--customer", target.customer)):
        if value is not None and not value.strip():
            raise ErasureError(f"{flag} is empty: give the value as the feed has it")
    if target.contains is not None and len(target.contains.strip()) < 3:
        raise ErasureError("--contains needs at least 3 characters")


def matching(session: Session, target: Target) -> Select[int, str, date, str]:
    """The verbatims `target` names (id, source, UTC day, stored text), by id."""
    check_target(target)
    where: list[Any] = []
    if target.ids:
        where.append(Feedback.id.in_(list(target.ids)))
    if target.source is not None:
        where.append(Feedback.source == target.source)
    if target.key is not None:
        from core.masking import storable_text
        from core.store import float_keyed, id_key

        key = storable_text(target.key).strip()
        stored_id, dedup_key = id_key(key)
        # The id as the source gave it, or the stored key itself ("id:..." / "h:..."); an
        # integer id also as a row stored before whole floats were integers has it (`id:77.0`,
        # as ingest finds its duplicates).
        keys = float_keyed({dedup_key, key})
        ids = {stored_id} | {k[3:] for k, v in keys.items() if k != v}
        where.append(Feedback.dedup_key.in_(keys) | Feedback.external_id.in_(ids))
    if target.customer is not None:
        from core.store import customer_key

        where.append(Feedback.customer_key == customer_key(target.customer))
    if target.contains is not None:
        # Case-insensitive (SQLite: ASCII letters only); the stored text is PII-masked.
        where.append(Feedback.text.ilike(f"%{_like(target.contains.strip())}%", escape="\\"))
    return (
        select(Feedback.id, Feedback.source, feedback_day(session), Feedback.text)
        .where(*where)
        .order_by(Feedback.id)
    )


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def quarantine_matching(session: Session, target: Target) -> list[int]:
    """Rejected rows that quote what `target` names: its text, its key (within its source)
    or its customer reference; a bare id names no rejected row."""
    needles = [n.strip() for n in (target.contains, target.key, target.customer) if n]
    needles = [n for n in needles if len(n) >= 3]
    if not needles:
        return []
    where: list[Any] = [Quarantine.raw.ilike(f"%{_like(n)}%", escape="\\") for n in needles]
    query = select(Quarantine.id, Quarantine.raw).where(*where).order_by(Quarantine.id)
    if target.source is not None:
        query = query.where(Quarantine.source == target.source)
    # A key or a customer reference is a whole value, not a piece of one: `--key AV-7` must
    # not erase the rejected rows of AV-71 or AV-700 (other people's, lost for good).
    whole = [_whole(n) for n in (target.key, target.customer) if n and len(n.strip()) >= 3]
    return [qid for qid, raw in session.execute(query) if all(w.search(raw) for w in whole)]


def _whole(value: str) -> re.Pattern[str]:
    """`value` not glued to a letter, a digit or a dash (any case)."""
    return re.compile(rf"(?<![\w-]){re.escape(value.strip())}(?![\w-])", re.IGNORECASE)


def erase(session: Session, target: Target, language: str = "fr") -> Erased:
    """Delete the verbatims `target` names with everything derived from them and re-aggregate
    their days, in the caller's transaction (commit it). `language`: of the Slack message
    closing the incident of a topic left without a verbatim (`alert_language`)."""
    lock_aggregates(session)  # a rebuild of their days must not run beside the deletion
    rows = session.execute(matching(session, target)).all()
    ids = [r[0] for r in rows]
    out = Erased()
    rejected = quarantine_matching(session, target)
    for i in range(0, len(rejected), _CHUNK):
        chunk = rejected[i : i + _CHUNK]
        out.quarantine += _rowcount(
            session.execute(delete(Quarantine).where(Quarantine.id.in_(chunk)))
        )
    if not ids:
        return out
    days = {r[2] for r in rows}
    texts = [r[3] for r in rows]
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        _delete_rows(session, select(Feedback.id).where(Feedback.id.in_(chunk)), out)
    _scrub(session, texts, out, language)
    # Every API process drops its kept views at once: a stale answer would show the text.
    bump_version(session, "erasures")
    _truncate_wal_on_commit(session)
    out.days = sorted(days)
    aggregate(session, days=out.days)  # purged days (before the horizon) are left as they are
    return out


def purge(
    session: Session, *, before: date, now: datetime | None = None, language: str = "fr"
) -> Erased:
    """Delete every verbatim of a UTC day before `before` (and its derived rows), and the
    rejected rows quarantined before it; keep those days' counts and freeze them (see
    `core.aggregate.retention_horizon`). In the caller's transaction. `language`: as
    `erase`."""
    now = now or datetime.now(UTC)
    lock_aggregates(session)
    horizon = retention_horizon(session)
    fday = feedback_day(session)
    # A day starts at 00:00 UTC; the created_at bound keeps to the index.
    old = [fday < before, Feedback.created_at < _utc_midnight(before) + timedelta(days=1)]
    out = Erased()
    out.quarantine = _rowcount(
        session.execute(delete(Quarantine).where(Quarantine.created_at < _utc_midnight(before)))
    )
    # Quotes to scrub: only verbatims of days an incident covers (examples come from there).
    windows: set[date] = set()
    for first, last in session.execute(
        select(Incident.first_day, Incident.last_day).where(Incident.first_day < before)
    ):
        start = first if horizon is None else max(first, horizon)
        stop = min(last, before - timedelta(days=1))
        windows.update(start + timedelta(days=n) for n in range((stop - start).days + 1))
    texts: list[str] = []
    window_days = sorted(windows)
    for i in range(0, len(window_days), _CHUNK):
        texts.extend(
            session.scalars(
                select(Feedback.text).where(*old, fday.in_(window_days[i : i + _CHUNK]))
            )
        )
    _delete_rows(session, select(Feedback.id).where(*old), out)
    _scrub(session, texts, out, language)
    if out.verbatims:  # as erase: a kept view would still answer the purged texts
        bump_version(session, "erasures")
        _truncate_wal_on_commit(session)
    last = before - timedelta(days=1)
    if horizon is None or last >= horizon:
        # Keywords are words of the texts: they go; the counts stay, frozen from now on.
        session.execute(delete(DailyKeyword).where(DailyKeyword.day <= last))
        _record_change(session, None, None, last)
        set_retention_horizon(session, last)
        out.days = [last]
    return out


def _truncate_wal_on_commit(session: Session) -> None:
    """SQLite: once the erasure commits, copy the WAL into the database and empty it.
    `secure_delete` overwrites the file's pages, but the WAL keeps the pages written before
    (the texts) while any connection is open (a running API), checkpoint or not."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return
    engine = bind.engine

    def truncate(_session: Session) -> None:
        # The erasure is committed: a busy database (a job writing) leaves the WAL to the
        # next checkpoint rather than fail the command or the request, or hold it 10 s.
        try:
            with engine.connect() as conn:
                wait = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                conn.exec_driver_sql("PRAGMA busy_timeout=1000")
                try:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait or 0)}")
        except SQLAlchemyError as exc:
            log.warning("the WAL was not emptied after the erasure (%s)", exc)

    event.listen(session, "after_commit", truncate, once=True)


def _delete_rows(session: Session, ids: Select[int], out: Erased) -> None:
    """Delete the verbatims `ids` selects and every row keyed on them (explicitly: SQLite's
    cascades depend on a pragma, and the counts go to the audit)."""
    sub = ids.scalar_subquery()
    out.mentions += _rowcount(
        session.execute(delete(ThemeMention).where(ThemeMention.feedback_id.in_(sub)))
    )
    out.analyses += _rowcount(
        session.execute(delete(Analysis).where(Analysis.feedback_id.in_(sub)))
    )
    out.corrections += _rowcount(
        session.execute(delete(Correction).where(Correction.feedback_id.in_(sub)))
    )
    out.embeddings += _rowcount(
        session.execute(delete(Embedding).where(Embedding.feedback_id.in_(sub)))
    )
    out.topic_assignments += _rowcount(
        session.execute(delete(TopicAssignment).where(TopicAssignment.feedback_id.in_(sub)))
    )
    out.verbatims += _rowcount(session.execute(delete(Feedback).where(Feedback.id.in_(sub))))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _norm(text: str) -> str:
    return " ".join(text.split())


def _scrub(session: Session, texts: Iterable[str], out: Erased, language: str = "fr") -> None:
    """Remove the deleted verbatims' quotes: topic examples (by id; topic sizes counted
    again, the incidents of a topic left with none closed), incident examples and stored
    Slack messages (by text: they were copied as masked when written). A quote that another
    stored verbatim still has word for word ("Très bien") stays."""
    topics_changed = False
    emptied: list[int] = []  # by this erasure: only their incidents are closed
    # A topic's size is its stored assignments (as `verbatim topics` leaves it): the erased
    # ones no longer count, and a topic left with none drops off /topics.
    sizes = {
        tid: n
        for tid, n in session.execute(
            select(TopicAssignment.topic_id, func.count()).group_by(TopicAssignment.topic_id)
        )
    }
    for topic in session.scalars(select(Topic)):
        size = int(sizes.get(topic.id, 0))
        if topic.size != size:
            if size == 0:
                # Emptied by this erasure: its label and keywords are words of the erased
                # texts (one person's, in a small topic), and the follow-up names it.
                topic.label, topic.keywords = f"Sujet n°{topic.id}", []
                emptied.append(topic.id)
            topic.size = size
            topics_changed = True
        reps = list(topic.representatives or [])
        ids = [r.get("feedback_id") for r in reps if isinstance(r, dict)]
        alive = (
            set(session.scalars(select(Feedback.id).where(Feedback.id.in_(ids)))) if ids else set()
        )
        kept = [r for r in reps if isinstance(r, dict) and r.get("feedback_id") in alive]
        if len(kept) != len(reps):
            out.topic_examples += len(reps) - len(kept)
            topic.representatives = kept
            topics_changed = True
    if topics_changed:
        bump_version(session, "topics")  # the API's cached /topics pages
        # A topic left without a verbatim kept its open alert and incident until the next
        # `verbatim topics` closed them: closed here as that run does, before the quotes of
        # the stored messages are scrubbed (the follow-up names the topic, quotes nothing).
        from core.taxonomy_store import ERASED_NOTE, ERASED_TEXTS, close_retired

        out.incidents += close_retired(
            session,
            datetime.now(UTC),
            language,
            author="erasure",
            note=ERASED_NOTE,
            texts=ERASED_TEXTS,
            topics=emptied,  # a topic empty before (and its incident) is none of its doing
        )
    gone = _gone(texts)
    if not gone:
        return
    now = datetime.now(UTC)
    for inc in session.scalars(select(Incident).where(Incident.examples.is_not(None))):
        examples = [e for e in (inc.examples or []) if isinstance(e, str)]
        drop = [e for e in examples if _norm(e) in gone]
        if drop:
            drop = [e for e in drop if not _still_stored(session, e)]
        if drop:
            inc.examples = [e for e in examples if e not in drop]
            inc.updated_at = now  # the incidents' views are rebuilt without the quote
            out.incident_examples += len(drop)
    for msg in session.scalars(select(OutboxMessage)):
        payload, changed = _scrub_value(msg.payload, gone)
        if changed:
            msg.payload = payload
            out.messages += 1


def _gone(texts: Iterable[str]) -> set[str]:
    """The deleted texts as stored and as the examples quote them (masked again)."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return set()
    from nlp.text import mask_pii

    return {_norm(t) for t in texts} | {_norm(mask_pii(t)) for t in texts}


def _still_stored(session: Session, example: str) -> bool:
    found = session.scalar(
        select(func.count())
        .select_from(Feedback)
        .where(Feedback.text.in_({example, example.strip()}))
    )
    return bool(found)


def _quoted(line: str, gone: set[str]) -> bool:
    """A `> quote` line of a Slack message (escaped, clipped with "…") quoting a gone text."""
    body = _norm(html.unescape(line[1:]))
    if not body or body == ERASED_QUOTE:
        return False
    if body.endswith("…"):
        head = body[:-1].rstrip()
        return len(head) >= 20 and any(g.startswith(head) for g in gone)
    return body in gone


def _scrub_value(value: Any, gone: set[str]) -> tuple[Any, bool]:
    if isinstance(value, str):
        lines = value.split("\n")
        new = [
            f"> {ERASED_QUOTE}" if ln.startswith(">") and _quoted(ln, gone) else ln for ln in lines
        ]
        return "\n".join(new), new != lines
    if isinstance(value, list):
        items = [_scrub_value(v, gone) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    if isinstance(value, dict):
        pairs = {k: _scrub_value(v, gone) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())
    return value, False


def audit(
    session: Session,
    data_dir: Path,
    action: str,
    who: str,
    erased: Erased,
    criteria: Sequence[str] = (),
) -> None:
    """Anonymous lines in `<data_dir>/erasure-audit.jsonl` and in the log, at the boundary of
    `session`'s transaction (call it before the commit): when, who, what kind of request and
    how many rows; never a text, an id or a searched value.

    A line written after the commit left no trace of an erasure when the process died in
    between (killed, out of memory). Now a `started` line is written at once, then, with the
    same `ref`, `done` with the counts once the transaction commits or `rolled back` if it
    does not: a `started` line alone means the process stopped at the commit (check with
    `verbatim forget --dry-run`; erasing again is harmless)."""
    head = {
        "ref": uuid.uuid4().hex[:12],
        "action": action,
        "by": who,
        "criteria": list(criteria),
    }
    _audit_line(data_dir, {**head, "status": "started"})
    settled = False

    def committed(_session: Session) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        counts = {k: v for k, v in asdict(erased).items() if k != "days"}
        _audit_line(data_dir, {**head, "status": "done", **counts, "days": len(erased.days)})
        log.info("%s by %s: %d verbatim(s) deleted", action, who, erased.verbatims)

    def rolled_back(_session: Session) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        _audit_line(data_dir, {**head, "status": "rolled back"})
        log.warning("%s by %s: rolled back, nothing deleted", action, who)

    event.listen(session, "after_commit", committed, once=True)
    event.listen(session, "after_rollback", rolled_back, once=True)


def _audit_line(data_dir: Path, line: dict[str, Any]) -> None:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / AUDIT_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"at": at, **line}, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the commit it vouches for

"""`verbatim alert`: deliver pending outbox messages to Slack incoming webhooks.

Each message is claimed (pending -> sending) before it is posted and marked `sent` right after
a 2xx, so two runs never post the same (alert, revision, route) twice. 429 honours
Retry-After (bounded), 5xx and network errors back off exponentially for a few attempts;
then the row stays pending with `next_attempt_at` so a later run delivers it. 4xx other than
429 (bad webhook) are permanent: the row becomes `dead` with the error kept.

Ambiguous outcomes (policy: at most once). Slack incoming webhooks take no idempotency key, so
a post whose body was sent but whose answer never came (read timeout, connection dropped
after the request) may or may not be in the channel. Such a message becomes `unknown` and is
NOT re-posted automatically (a duplicate alert is worse than asking a human); `verbatim alert
--retry-unknown` re-queues them after checking Slack. Failures before the body left (refused
connection, connect timeout, DNS) are safe to retry and are. The attempt state is recorded:
`sending` (claimed, nothing in flight) and `posting` (a request in flight), each with a lease
in `next_attempt_at`; after a crash an expired `sending` row is reclaimed at once (lease of
about a minute, not 10), an expired `posting` row becomes `unknown`.

Stopping (SIGTERM / SIGINT through `stop`): the message being posted is finished (its answer
recorded), a retry wait is cut short (the message stays pending), the messages not reached stay
pending for the next run; one warning line says so. The weekly digest (jobs/digest.py) is an
outbox row too (route "digest", no alert nor incident): a digest Slack refused for a while is
delivered by the next run, under the same rules.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import OutboxMessage
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts_per_run: int = 4  # posts of one message within one run
    max_retry_after_s: float = 30.0  # longest Retry-After we wait for inside a run
    backoff_base_s: float = 1.0  # 1, 2, 4 ... seconds between 5xx retries within a run
    backoff_max_s: float = 30.0
    later_base_s: float = 300.0  # next run: 5 min, 10, 20 ... (capped at 6 h)
    max_total_attempts: int = 30  # then the message is `dead`
    timeout_s: float = 10.0
    claim_lease_s: float = 60.0  # a `sending` row whose lease ran out was left by a crash


@dataclass
class DeliveryResult:
    sent: int = 0
    deferred: int = 0
    dead: int = 0
    unknown: int = 0  # body sent, no answer: maybe delivered, not re-posted (see above)
    skipped: int = 0  # not due yet
    left: int = 0  # due but not reached: a stop was requested (they stay pending)
    waiting: int = 0  # pending, due later (a retry's backoff, a digest held to its hour)
    next_due: datetime | None = None  # the earliest of those
    # Deferred for want of a usable webhook (none for the route nor "default", or not a URL):
    # why -> how many. Said by a warning: "deferred (retried later)" alone hid that no run
    # will deliver them before the setting is fixed.
    unrouted: dict[str, int] = field(default_factory=dict)
    # Refused for good (a deleted webhook's 404 `no_service`, a revoked one's 403): (route,
    # error) -> how many. Said by a warning: "1 failed permanently" alone named neither the
    # team whose channel hears nothing more nor Slack's answer (only the outbox row had it).
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    stopped: bool = False
    printed: list[dict[str, Any]] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def team_webhook(settings: Settings, route: str) -> str | None:
    """The team's own webhook (None without one), its name compared without case:
    pydantic-settings lowercases the keys of VERBATIM_SLACK_WEBHOOKS__<TEAM> (the README's
    way), so team "SAV" or "Logistique" found no webhook."""
    hooks = settings.slack_webhooks
    if route in hooks:
        return hooks[route] or None
    return {k.casefold(): v for k, v in hooks.items()}.get(route.casefold()) or None


def webhook_for(settings: Settings, route: str) -> str | None:
    """The team's webhook, else the `default` one."""
    return team_webhook(settings, route) or team_webhook(settings, "default")


def webhook_problem(url: str) -> str | None:
    """Why a configured webhook cannot be posted to (a typo, a stray newline), or None.
    Checked before claiming: httpx raises InvalidURL outside its HTTPError family, which
    used to end the run and leave the message `unknown` though nothing was sent."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"not a valid URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "not a valid URL (expected https://...)"
    return None


def _route_problem(route: str, url: str | None) -> str | None:
    """Why a message of `route` must wait for its webhook `url` to be set or fixed, or None."""
    if url is None:
        return f"no webhook configured for route {route!r} nor 'default'"
    problem = webhook_problem(url)
    return None if problem is None else f"webhook for route {route!r}: {problem}"


def _local_only(url: str) -> bool:
    """Whether `url` names this machine (the default `http://127.0.0.1:8000`, `localhost`):
    in a Slack message its link opened the reader's own computer."""
    host = (httpx.URL(url).host or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


def _retry_after(resp: httpx.Response) -> float:
    value = resp.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


# The request may have reached Slack: re-posting could show the message twice.
AMBIGUOUS = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def post_with_retries(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    policy: DeliveryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    before_post: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[str, str | None, int, float]:
    """Post once with bounded retries. Returns (outcome, error, posts, retry_after) where
    outcome is "sent", "retry" (try again in a later run), "dead" (permanent failure) or
    "unknown" (the body was sent and no answer came: never retried blindly), and
    retry_after the Retry-After of a last 429 (seconds; 0 otherwise), for the later run.
    `stop()` true after a failed post: no more retries in this run ("retry")."""
    error: str | None = None
    posts = 0
    retry_after = 0.0
    if stop is not None:
        sleep = _sleep_unless(stop, sleep)
    for attempt in range(policy.attempts_per_run):
        if attempt and stop is not None and stop():
            return "retry", f"{error} (stop requested before the next retry)", posts, retry_after
        posts += 1
        retry_after = 0.0  # only a last 429 carries over to the next run
        if before_post is not None:
            before_post()
        try:
            resp = client.post(url, json=payload, timeout=policy.timeout_s)
        except AMBIGUOUS as exc:
            return "unknown", f"no answer after sending: {type(exc).__name__}: {exc}", posts, 0.0
        except httpx.HTTPError as exc:
            error = f"network error: {type(exc).__name__}: {exc}"
            wait = min(policy.backoff_base_s * 2**attempt, policy.backoff_max_s)
        else:
            if 200 <= resp.status_code < 300:
                return "sent", None, posts, 0.0
            body = resp.text[:200]
            error = f"HTTP {resp.status_code}: {body}"
            if resp.status_code == 429:
                wait = retry_after = _retry_after(resp)
                if wait > policy.max_retry_after_s:
                    error += f" (Retry-After {wait:.0f}s: later run)"
                    return "retry", error, posts, wait
            elif resp.status_code >= 500:
                wait = min(policy.backoff_base_s * 2**attempt, policy.backoff_max_s)
            else:  # 4xx: bad URL / token / payload: retrying won't help
                return "dead", error, posts, 0.0
        if attempt + 1 < policy.attempts_per_run:
            sleep(wait)
    return "retry", error, posts, retry_after


def _sleep_unless(
    stop: Callable[[], bool], sleep: Callable[[float], None]
) -> Callable[[float], None]:
    """`sleep`, cut short (checked every 0.2 s) once `stop()` turns true."""

    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while not stop() and (left := end - time.monotonic()) > 0:
            sleep(min(left, 0.2))

    return wait


def _due(
    session: Session, now: datetime, policy: DeliveryPolicy, ids: list[int] | None = None
) -> list[OutboxMessage]:
    """Pending rows that are due, and `sending` rows whose lease ran out (a crashed run).
    `posting` rows whose lease ran out crashed with a request in flight: marked `unknown`.
    `ids`: only these rows."""
    query = select(OutboxMessage).where(OutboxMessage.status.in_(("pending", "sending", "posting")))
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    rows = session.execute(query.order_by(OutboxMessage.id)).scalars().all()
    due = []
    for row in rows:
        nxt = _aware(row.next_attempt_at)
        if row.status in ("sending", "posting") and nxt is not None and nxt > now:
            continue  # leased by a run still in progress
        if row.status == "posting":
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status == "posting")
                .values(
                    status="unknown",
                    next_attempt_at=None,
                    last_error="a run stopped while posting: Slack may have the message "
                    "(verbatim alert --retry-unknown re-queues it)",
                )
            )
            continue
        if row.status == "pending" and nxt is not None and nxt > now:
            continue
        due.append(row)
    return due


def _set_posting(sessions: sessionmaker[Session], row_id: int, policy: DeliveryPolicy) -> None:
    """Record that a request is about to leave (lease: the request timeout + a margin)."""
    lease = _now() + timedelta(seconds=policy.timeout_s + 30)
    with session_scope(sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(status="posting", next_attempt_at=lease)
        )


def retry_unknown(sessions: sessionmaker[Session]) -> int:
    """Re-queue `unknown` messages (after a human checked Slack). Returns how many."""
    with session_scope(sessions) as session:
        res = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "unknown")
            .values(status="pending", next_attempt_at=None)
        )
        return res.rowcount or 0


def retry_dead(sessions: sessionmaker[Session]) -> int:
    """Re-queue `dead` messages with a fresh attempt budget (a revoked or mistyped webhook was
    fixed: they were given up for good). Returns how many."""
    with session_scope(sessions) as session:
        res = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "dead")
            .values(status="pending", next_attempt_at=None, attempts=0)
        )
        return res.rowcount or 0


def _claim(
    sessions: sessionmaker[Session],
    row_id: int,
    expected_status: str,
    now: datetime,
    lease_s: float = 60.0,
) -> dict[str, Any] | None:
    """Atomically move a row to `sending` and return its payload as claimed; None when
    another run got it first. The payload read before the claim may be stale: `verbatim
    detect` rebuilds a pending message (jobs.incidents.refresh_unsent), and the outbox then
    kept a message Slack never got."""
    with session_scope(sessions) as session:
        res = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.status == expected_status)
            .values(status="sending", next_attempt_at=now + timedelta(seconds=lease_s))
        )
        if (res.rowcount or 0) != 1:
            return None
        # Same transaction as the claim: no rebuild (pending rows only) comes after it.
        return session.execute(
            select(OutboxMessage.payload).where(OutboxMessage.id == row_id)
        ).scalar_one()


def deliver_pending(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    dry_run: bool = False,
    policy: DeliveryPolicy | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DeliveryResult:
    """Send every due outbox message; `dry_run` prints the payloads and changes nothing.
    `stop()` is checked between messages: once true, the rest stay pending (`result.stopped`)."""
    policy = policy or DeliveryPolicy()
    result = DeliveryResult()
    now = _now()
    with session_scope(sessions) as session:
        due = [
            (r.id, r.route, r.status, r.payload, r.attempts, r.alert_id, r.revision, r.incident_id)
            for r in _due(session, now, policy)
        ]
        # Said by `verbatim alert`: "0 sent" alone read as "nothing is queued".
        later = [
            at
            for at in map(
                _aware,
                session.scalars(
                    select(OutboxMessage.next_attempt_at).where(
                        OutboxMessage.status == "pending",
                        OutboxMessage.next_attempt_at.is_not(None),
                    )
                ),
            )
            if at is not None and at > now
        ]
        result.waiting, result.next_due = len(later), min(later, default=None)
        # An incident's revisions go to its channel in order: one whose earlier revision is
        # still undelivered (in its backoff after a 5xx: Slack down) waits for it. Else the
        # escalation queued meanwhile went first, and the opening message hours after it.
        earliest: dict[tuple[int, str], int] = {
            (inc, route): rev
            for inc, route, rev in session.execute(
                select(
                    OutboxMessage.incident_id, OutboxMessage.route, func.min(OutboxMessage.revision)
                )
                .where(
                    OutboxMessage.incident_id.is_not(None),
                    OutboxMessage.status.in_(("pending", "sending", "posting")),
                )
                .group_by(OutboxMessage.incident_id, OutboxMessage.route)
            )
            if inc is not None
        }
    if dry_run:
        from jobs.digest import DIGEST_ROUTE, period_of  # digest imports this module

        for row_id, route, _status, payload, _a, alert_id, revision, incident_id in due:
            out: dict[str, Any] = {
                "outbox_id": row_id,
                "alert_id": alert_id,
                "revision": revision,
                "route": route,
                "webhook_configured": webhook_for(settings, route) is not None,
                "payload": payload,
            }
            if route == DIGEST_ROUTE and alert_id is None and incident_id is None:
                # A digest's revision encodes its period (28739393 told an operator nothing).
                # A digest row as `digest._digest_rows` reads it: an incident of a team named
                # "digest" has that route too, and its revision 1 is no period.
                start, end = period_of(revision)
                out["period"] = f"{start.isoformat()}..{end.isoformat()}"
            result.printed.append(out)
            if echo:
                echo(json.dumps(out, ensure_ascii=False))
        return result
    if due and _local_only(settings.dashboard_url):
        log.warning(
            "dashboard_url is %s: the messages' dashboard links open only on this machine, "
            "not for the teams reading Slack (set dashboard_url to the address they open)",
            settings.dashboard_url,
        )
    own_client = client is None
    client = client or httpx.Client()
    due_keys = {(inc, route, rev) for _i, route, _s, _p, _a, _al, rev, inc in due}
    # Incidents (and routes) whose first undelivered revision is not posted in this run.
    held = {key for key, rev in earliest.items() if (*key, rev) not in due_keys}
    try:
        for done, (row_id, route, status, payload, attempts, _alert, _rev, inc) in enumerate(due):
            if stop is not None and stop():
                result.stopped, result.left = True, len(due) - done
                break
            if inc is not None and (inc, route) in held:
                result.deferred += 1  # pending, untouched: after the earlier revision
                continue
            outcome, error = _deliver_row(
                settings,
                sessions,
                client,
                policy,
                sleep,
                stop,
                row_id,
                route,
                status,
                payload,
                attempts,
            )
            setattr(result, outcome, getattr(result, outcome) + 1)
            problem = _route_problem(route, webhook_for(settings, route))
            if outcome == "deferred" and problem is not None:
                result.unrouted[problem] = result.unrouted.get(problem, 0) + 1
            if outcome == "dead":
                key = (route, error or "no reason recorded")
                result.refused[key] = result.refused.get(key, 0) + 1
            if inc is not None and outcome in ("deferred", "skipped"):
                held.add((inc, route))
    finally:
        if own_client:
            client.close()
    for problem, n in sorted(result.unrouted.items()):
        log.warning(
            "%d message(s) not sent, kept pending until the setting is fixed: %s "
            "(slack_webhooks.<team>, or .default)",
            n,
            problem,
        )
    for (route, error), n in sorted(result.refused.items()):
        log.warning(
            "%d message(s) for route %r refused for good, kept as dead: %s (check "
            "slack_webhooks.%s, then verbatim alert --retry-dead re-queues them)",
            n,
            route,
            error,
            route,
        )
    if result.stopped:
        log.warning(
            "alert delivery stopped on request: %d sent, %d left pending for the next run",
            result.sent,
            result.left + result.deferred,
        )
    log.info(
        "alert delivery: %d sent, %d deferred, %d dead, %d unknown",
        result.sent,
        result.deferred,
        result.dead,
        result.unknown,
    )
    return result


def _deliver_row(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: httpx.Client,
    policy: DeliveryPolicy,
    sleep: Callable[[float], None],
    stop: Callable[[], bool] | None,
    row_id: int,
    route: str,
    status: str,
    payload: dict[str, Any],
    attempts: int,
) -> tuple[str, str | None]:
    """Claim, post and record one due row. Returns (outcome, error), outcome one of the
    DeliveryResult counters: sent | deferred | dead | unknown | skipped (another run has it)."""
    url = webhook_for(settings, route)
    problem = _route_problem(route, url)
    if url is None or problem is not None:  # waits, unposted, until the setting is fixed
        _finish(sessions, row_id, "pending", attempts, 0, problem, None, policy)
        return "deferred", problem
    claimed = _claim(sessions, row_id, status, _now(), policy.claim_lease_s)
    if claimed is None:
        return "skipped", None
    payload = claimed
    try:
        outcome, error, posts, retry_after = post_with_retries(
            client,
            url,
            payload,
            policy,
            sleep,
            before_post=lambda: _set_posting(sessions, row_id, policy),
            stop=stop,
        )
    except BaseException:
        # Interrupted (Ctrl-C) with a request maybe in flight: same rule, unknown.
        _finish(sessions, row_id, "unknown", attempts, 1, "interrupted", None, policy)
        raise
    if outcome == "unknown":
        _finish(sessions, row_id, "unknown", attempts, posts, error, None, policy)
        log.warning("outbox %d: %s; not re-posted (maybe delivered)", row_id, error)
        return "unknown", error
    if outcome == "sent":
        _finish(sessions, row_id, "sent", attempts, posts, None, _now(), policy)
        return "sent", None
    if outcome == "dead":
        _finish(sessions, row_id, "dead", attempts, posts, error, None, policy)
        return "dead", error
    status_after = _finish(
        sessions, row_id, "pending", attempts, posts, error, None, policy, retry_after
    )
    return ("dead" if status_after == "dead" else "deferred"), error


def deliver_one(
    settings: Settings,
    sessions: sessionmaker[Session],
    row_id: int,
    *,
    policy: DeliveryPolicy | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] | None = None,
) -> tuple[str, str | None]:
    """Deliver one outbox row now, under the rules of `deliver_pending` (not before its
    `next_attempt_at`, never a row another run holds). Returns (outcome, error): sent |
    deferred | dead | unknown | skipped, or `waiting` (not due yet) / the row's status when
    there is nothing to post (sent, dead, unknown), with the last error kept."""
    policy = policy or DeliveryPolicy()
    with session_scope(sessions) as session:
        due = [
            (r.id, r.route, r.status, r.payload, r.attempts)
            for r in _due(session, _now(), policy, ids=[row_id])
        ]
    if not due:
        with session_scope(sessions) as session:
            row = session.get(OutboxMessage, row_id)
            if row is None:
                return "missing", None
            if row.status == "pending":
                nxt = _aware(row.next_attempt_at)
                when = f"next attempt after {nxt:%Y-%m-%d %H:%M} UTC" if nxt else "pending"
                return "waiting", f"{row.last_error} ({when})" if row.last_error else when
            if row.status in ("sending", "posting"):
                return "skipped", "another run is posting it"
            return row.status, row.last_error
    own_client = client is None
    client = client or httpx.Client()
    try:
        return _deliver_row(settings, sessions, client, policy, sleep, stop, *due[0])
    finally:
        if own_client:
            client.close()


def _finish(
    sessions: sessionmaker[Session],
    row_id: int,
    status: str,
    attempts: int,
    posts: int,
    error: str | None,
    sent_at: datetime | None,
    policy: DeliveryPolicy,
    retry_after: float = 0.0,
) -> str:
    total = attempts + posts
    nxt: datetime | None = None
    if status == "pending":
        if total >= policy.max_total_attempts:
            status = "dead"
        else:
            delay = min(
                policy.later_base_s * 2 ** max(total // max(policy.attempts_per_run, 1) - 1, 0),
                6 * 3600,
            )
            # Slack said when to come back: a run before that would only be refused again.
            delay = max(delay, min(retry_after, 6 * 3600))
            nxt = _now() + timedelta(seconds=delay) if posts else None
    with session_scope(sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(
                status=status,
                attempts=total,
                last_error=error,
                sent_at=sent_at,
                next_attempt_at=nxt,
            )
        )
    return status

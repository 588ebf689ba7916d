"""HTTP JSON pull source: GET a JSON API page by page, from a persisted `since` cursor.

The auth header's value comes from an environment variable (never from verbatim.toml). A
`429` or `5xx` waits for its `Retry-After` (over a minute: the pull stops, the next one asks
again), `5xx` and network errors back off exponentially, up to `max_retries`; then the pull stops
with a clear error and the cursor stays where the last complete pull left it. The cursor
only moves when every page of a pull is stored: the pages of an interrupted pull are fetched
again next time and their records deduplicated on their id, so nothing is lost if the API
does not sort by the cursor field.

With `page_param` (offsets) a record updated during a pull moves to the end of the sort and
shifts one not read yet onto a page already read: each pull asks from the cursor the pull
before started from, so the next pull reads it (see `read`). An exclusive `since` (`>`) misses
records stamped with the cursor's own time after the pull: documented in the README.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from core.settings import Settings, SourceConfig
from jobs.connectors.base import Batch, ConnectorError, SourceConfigError, record, register

log = logging.getLogger(__name__)

MAX_PAGES = 100_000  # a next link that loops forever is an API bug, not an endless feed
MAX_RETRY_AFTER_S = 60.0
MAX_PAGE_BYTES = 64 * 1024 * 1024  # one page of JSON held in memory; a runaway export is refused
PAGE_DEADLINE_TIMEOUTS = 10  # a page must arrive within this many `timeout`s, however it trickles


_ABSENT = object()


def _dig(body: Any, path: str, absent: Any = None) -> Any:
    """`a.b.c` in nested dicts ("" = the body itself); None where a level is null, `absent`
    where a key is missing."""
    if not path:
        return body
    for part in path.split("."):
        if body is None:
            return None
        if not isinstance(body, dict) or part not in body:
            return absent
        body = body[part]
    return body


# Keys of an answer that reports a failure instead of records (a quota, an expired token
# answered 200, a proxy's page).
_ERROR_KEYS = ("error", "errors", "fault", "message", "detail")


def _error_answer(body: Any) -> str | None:
    """What a 200 answer without records says of its failure, or None when it says none (an
    API that leaves an empty list out, as proto3 JSON does: an empty page). Key names and a
    short masked reason only: the body may echo customer text."""
    if not isinstance(body, dict):
        return None
    found = [k for k in _ERROR_KEYS if body.get(k)]
    if not found:
        return None
    from nlp.text import mask_pii

    reason = body[found[0]]
    if isinstance(reason, dict):
        reason = reason.get("message") or reason.get("code")
    said = f" ({mask_pii(str(reason))[:120]})" if isinstance(reason, str | int | float) else ""
    keys = ", ".join(list(body)[:10])
    return f"{found[0]}{said}; keys of the answer: {keys}"


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def _excerpt(content: bytes, content_type: str = "") -> str:
    """What an error answer says, for a message that goes to the log, `job_runs` and
    `/health`: masked (a 400 may quote the request's or a customer's e-mail, phone...), an
    HTML page by its title or its text (it was 200 characters of `<!DOCTYPE html><head>`),
    whitespace collapsed, 200 characters at most."""
    from nlp.text import mask_pii

    text = content[:4096].decode("utf-8", "replace")
    if "html" in content_type.lower() or text.lstrip()[:1] == "<":
        title = _TITLE.search(text)
        text = html.unescape(title.group(1) if title else _TAG.sub(" ", text))
    return mask_pii(" ".join(text.split()))[:200]


def _other_records(body: Any) -> str | None:
    """A key of the answer that holds what looks like the records (a non-empty list of
    objects) when `records_path` found none: the path is likely wrong."""
    if not isinstance(body, dict):
        return None
    for key, value in body.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value[:5]):
            return f"{key!r} holds {len(value)} records"
    return None


def _retry_after_s(value: str) -> float:
    """A Retry-After in seconds: a number, or an HTTP date (RFC 9110), which was read as 0: an
    API asking to come back in an hour was asked again `max_retries` times within seconds.
    0 when absent or unreadable."""
    with contextlib.suppress(ValueError):
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _page_key(url: str, params: Mapping[str, Any]) -> str:
    """The page a request asks for (its URL with the query it is sent with)."""
    return str(httpx.URL(url).copy_merge_params(dict(params)) if params else httpx.URL(url))


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def _as_number(value: Any) -> int | float | None:
    """A number, or a whole number sent as a string ("9", "10": 64-bit ids often are)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return None


def _later(a: Any, b: Any) -> Any:
    """The larger cursor value (numbers numerically, numeric strings too, anything else as
    text, e.g. ISO dates). As text "9" > "12": the cursor stuck and each pull re-read it all."""
    if a is None:
        return b
    if b is None:
        return a
    na, nb = _as_number(a), _as_number(b)
    if na is not None and nb is not None:
        return a if na >= nb else b
    return max(str(a), str(b))


class HttpConnector:
    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        auth_env: str | None = None,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        since_param: str = "since",
        cursor_field: str | None = None,
        records_path: str = "data",
        next_path: str | None = "next",
        page_param: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.params = dict(params or {})
        self.auth_env = auth_env
        self.auth_header = auth_header
        self.auth_scheme = auth_scheme
        self.since_param = since_param
        self.cursor_field = cursor_field
        self.records_path = records_path
        self.next_path = next_path
        self.page_param = page_param
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.transport = transport
        # Set by `pull` (SIGTERM / SIGINT): cuts a retry wait short, see `_wait`.
        self.stop: Callable[[], bool] | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "verbatim-connector"}
        if self.auth_env:
            token = os.environ.get(self.auth_env)
            if not token:
                raise SourceConfigError(
                    f"{self.url}: environment variable {self.auth_env} (auth token) is not set"
                )
            headers[self.auth_header] = f"{self.auth_scheme} {token}".strip()
        return headers

    def _get(self, client: httpx.Client, url: str, params: Mapping[str, Any]) -> Any:
        attempt = 0
        while True:
            wait = self.backoff_base * 2**attempt
            try:
                status, headers, content = self._fetch(client, url, params)
            # A body that does not decode as its Content-Encoding says (a proxy's gzip header
            # on a plain body): a traceback out of `verbatim pull`; retried as a bad answer.
            except (httpx.TransportError, httpx.DecodingError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if status < 300:
                    if status == 204 or not content.strip():
                        # "Nothing new" as 204 No Content: an empty page, not an error at
                        # every pull ("the response is not JSON").
                        return None
                    try:
                        return json.loads(content)
                    except ValueError:
                        kind = headers.get("Content-Type", "").split(";")[0].strip()
                        said = _excerpt(content, kind)
                        raise ConnectorError(
                            f"{url}: the response is not JSON"
                            + (f" ({kind or 'no Content-Type'}: {said})" if said else "")
                        ) from None
                problem = f"HTTP {status}"
                if status == 429 or status >= 500:
                    # A 503 says when to come back too (RFC 9110): a maintenance page's
                    # `Retry-After: 120` was retried after 1, 2, 4, 8 and 16 s, then given up.
                    asked = _retry_after_s(headers.get("Retry-After", ""))
                    if asked > MAX_RETRY_AFTER_S:
                        # Asked to come back in an hour, the pull came back every minute (the
                        # log said "retry in 3600s"), max_retries times, holding the tick.
                        raise ConnectorError(
                            f"{url}: {problem}, Retry-After {asked:.0f} s: the next pull retries"
                        )
                    wait = max(wait, asked)
                elif 300 <= status < 400:  # not followed: the token would go along
                    moved = headers.get("Location", "")[:300]
                    with contextlib.suppress(ValueError):  # a Location that is no URL: as is
                        moved = urljoin(url, moved)
                    where = f" to {moved}: set `url` to it" if moved else ""
                    raise ConnectorError(f"{url}: {problem}, redirected{where}")
                else:  # 4xx: our request is wrong, retrying won't help
                    said = _excerpt(content, headers.get("Content-Type", ""))
                    raise ConnectorError(
                        f"{url}: {problem}: {said}" if said else f"{url}: {problem}"
                    )
            if attempt >= self.max_retries:
                raise ConnectorError(f"{url}: {problem} after {attempt + 1} attempts")
            log.warning("%s: %s, retry in %.1fs", url, problem, wait)
            self._wait(min(wait, MAX_RETRY_AFTER_S), url, problem)
            attempt += 1

    def _wait(self, seconds: float, url: str, problem: str) -> None:
        """The pause before a retry, cut short (checked every 0.2 s) once `stop()` turns true:
        a plain sleep held a SIGTERM for the whole backoff (a Retry-After of 60 s, max_retries
        times), and `docker stop` killed the process after 10 s. The pages stored stay
        stored; the cursor has not moved, the next pull asks again."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stop is not None and self.stop():
                raise ConnectorError(
                    f"{url}: {problem}; stop requested during the wait before the next try: "
                    "the next pull retries"
                )
            time.sleep(min(left, 0.2))

    def _fetch(
        self, client: httpx.Client, url: str, params: Mapping[str, Any]
    ) -> tuple[int, httpx.Headers, bytes]:
        """One GET, its body read in chunks: httpx's timeout is per read, so a server that
        trickles a byte every few seconds held the pull for ever, and a runaway export was
        read whole into memory. Both end the page now (a TransportError: retried)."""
        deadline = time.monotonic() + self.timeout * PAGE_DEADLINE_TIMEOUTS
        # httpx replaces the URL's own query with `params`: a next link goes as it is.
        with client.stream("GET", url, params=params or None) as resp:
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_PAGE_BYTES:
                raise ConnectorError(
                    f"{url}: a page of {int(declared):,} bytes (at most {MAX_PAGE_BYTES:,})"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_PAGE_BYTES:
                    raise ConnectorError(f"{url}: a page of more than {MAX_PAGE_BYTES:,} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        f"the page took more than {self.timeout * PAGE_DEADLINE_TIMEOUTS:g} s"
                    )
                chunks.append(chunk)
            return resp.status_code, resp.headers, b"".join(chunks)

    def _follow(self, url: str, link: str) -> str:
        """The next page's URL. One on another host would get the auth token: refused. One
        that is no http(s) URL (`http://[::1/x`, `ftp://…`) ends the pull with its reason: it
        crashed `verbatim pull` with `ValueError: Invalid IPv6 URL`, or was retried as if the
        API were down."""
        try:
            target = urljoin(url, link)
            scheme, host, port = _origin(target)
        except (ValueError, httpx.InvalidURL) as exc:
            raise ConnectorError(
                f"{url}: the next link {link[:200]!r} is not a URL ({exc})"
            ) from None
        if scheme not in ("http", "https") or not host:
            raise ConnectorError(f"{url}: the next link {link[:200]!r} is not an http(s) URL")
        if self.auth_env and (scheme, host, port) != _origin(self.url):
            raise ConnectorError(
                f"{self.url}: the next link goes to another host ({scheme}://{host}"
                f"{f':{port}' if port else ''}); not followed, it would be sent the "
                f"{self.auth_env} token"
            )
        return target

    def read(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        cursor = state.get("cursor")
        params: dict[str, Any] = dict(self.params)
        # Offset pages: a record updated during a pull moves to the end of the sort, shifting
        # one not read yet onto a page already read, and the cursor moved past that one: lost.
        # Each pull starts where the one before started (`from`: records read again are
        # duplicates), so a record skipped by one pull is read by the next.
        overlap = bool(self.page_param and self.cursor_field)
        since = state.get("from", cursor) if overlap else cursor
        if since is not None:
            params[self.since_param] = since
        newest = cursor

        def moved(to: Any) -> dict[str, Any]:
            return {"cursor": to, "from": cursor} if overlap else {"cursor": to}

        url: str | None = self.url
        page, pages, number = 1, 0, 0
        visited: set[str] = set()
        previous: list[Any] | None = None  # the records of the page before (page_param)
        carried = False  # a record of this pull had a `cursor_field` value
        sample: dict[str, Any] | None = None  # a record without one
        if self.page_param:
            params[self.page_param] = page
        with httpx.Client(
            headers=self._headers(), timeout=self.timeout, transport=self.transport
        ) as client:
            while url is not None:
                pages += 1
                if pages > MAX_PAGES:
                    raise ConnectorError(f"{self.url}: more than {MAX_PAGES} pages")
                visited.add(_page_key(url, params))
                body = self._get(client, url, params)
                items = _dig(body, self.records_path, _ABSENT) if isinstance(body, dict) else body
                if items is None or items is _ABSENT:
                    # A 200 that carries an error ({"error": "quota"}, GraphQL's {"data":
                    # null, "errors": [...]}) is not an empty page: read as the end, it moved
                    # the cursor past every page not fetched yet (newest-first APIs: lost
                    # rows). Records under another key mean a wrong `records_path`. Else the
                    # list is empty (null, or left out as proto3 JSON does).
                    failure = _error_answer(body)
                    if failure is None and items is _ABSENT:
                        other = _other_records(body)
                        failure = f"{other} (records_path?)" if other else None
                    if failure is not None:
                        raise ConnectorError(
                            f"{url}: no {self.records_path!r} in the answer but {failure}"
                        )
                    items = []
                if not isinstance(items, list):
                    raise ConnectorError(f"{url}: {self.records_path!r} is not a list of records")
                if self.page_param and page > 1 and items and items == previous:
                    # Some APIs answer their last page again for any page past the end
                    # (Django's Paginator.get_page): that is the end, not 100,000 more pages.
                    log.info("%s: page %d repeats page %d: end", self.url, page, page - 1)
                    yield Batch([], moved(newest), url, self._stuck(carried, sample))
                    return
                previous = items
                records = []
                for obj in items:
                    number += 1
                    records.append(record(number, obj))
                    if self.cursor_field and isinstance(obj, dict):
                        value = obj.get(self.cursor_field)
                        if value is not None:
                            carried = True
                            newest = _later(newest, value)
                        elif sample is None:
                            sample = obj
                link = _dig(body, self.next_path) if self.next_path else None
                location = url
                if isinstance(link, str) and link:
                    url, params = self._follow(url, link), {}  # it carries its own query
                    if _page_key(url, params) in visited:
                        # Some APIs keep a next link on their last page, back to a page
                        # already read (the end is flagged elsewhere in the body): the end.
                        log.info("%s: next link back to a page already read: end", self.url)
                        url = None
                elif self.page_param and items:
                    page += 1
                    params[self.page_param] = page
                elif link and not isinstance(link, str) and not self.page_param:
                    # HAL's {"next": {"href": "…"}}, a page number: read as no link, the pull
                    # ended after page 1 and its cursor moved past the pages not fetched.
                    shape = f"an object (keys: {', '.join(list(link)[:5])})"
                    raise ConnectorError(
                        f"{url}: next_path {self.next_path!r} holds "
                        f"{shape if isinstance(link, dict) else repr(link)[:100]}, not a link "
                        "(set next_path to the link's own path, such as 'next.href')"
                    )
                else:
                    url = None
                # The cursor moves only with the last page (see the module docstring).
                if url is None:
                    errors = self._stuck(carried, sample)
                    yield Batch(records, moved(newest), location, errors)
                else:
                    kept = {"from": state["from"]} if overlap and "from" in state else {}
                    yield Batch(records, {"cursor": cursor, **kept}, location)

    def _stuck(self, carried: bool, sample: Mapping[str, Any] | None) -> list[str]:
        """The error of a pull whose records carry no `cursor_field` (misspelt, or nested):
        the cursor never moved and every pull read every page again, reported `ok`."""
        if carried or sample is None:
            return []
        keys = ", ".join(list(sample)[:10])
        return [
            f"{self.url}: no record has cursor_field {self.cursor_field!r} (a record's keys: "
            f"{keys}): the cursor does not move, every pull reads every page again"
        ]


@register("http")
def _from_config(cfg: SourceConfig, settings: Settings) -> HttpConnector:
    assert cfg.url is not None  # checked by SourceConfig
    try:
        parsed = httpx.URL(cfg.url)
    except httpx.InvalidURL as exc:
        raise SourceConfigError(f"url {cfg.url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        # `127.0.0.1:8080/api` (no scheme) was sent and retried with backoff, `max_retries`
        # times at every tick (31 s by default), as if the API were down: exit 1, not 2.
        raise SourceConfigError(
            f"url {cfg.url!r}: expected an http:// or https:// URL with a host, such as "
            "'https://reviews.example.fr/api/v1/reviews'"
        )
    if parsed.userinfo:
        # `https://user:password@host/…` authenticates (httpx sends it as Basic), and the
        # password was in every error, retry line, `ingestion_runs.location` and `/health`.
        shown = str(parsed.copy_with(userinfo=b""))
        raise SourceConfigError(
            f"url {shown!r}: a user or password in the URL would be shown in the log, "
            "errors and /health: set auth_env to an environment variable holding base64 of "
            'user:password, with auth_scheme = "Basic"'
        )
    if cfg.auth_env and not os.environ.get(cfg.auth_env):
        # Checked when the connector is built, so `verbatim scheduler` refuses to start
        # (jobs.connectors.check_source), as `read` would refuse at every tick.
        raise SourceConfigError(
            f"{cfg.url}: environment variable {cfg.auth_env} (auth token) is not set"
        )
    return HttpConnector(
        cfg.url,
        params=cfg.params,
        auth_env=cfg.auth_env,
        auth_header=cfg.auth_header,
        auth_scheme=cfg.auth_scheme,
        since_param=cfg.since_param,
        cursor_field=cfg.cursor_field,
        records_path=cfg.records_path,
        next_path=cfg.next_path,
        page_param=cfg.page_param,
        timeout=cfg.timeout_seconds,
        max_retries=cfg.max_retries,
    )

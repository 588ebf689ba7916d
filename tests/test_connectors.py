"""Connectors on real parts: a real HTTP server on 127.0.0.1, real files, real SQLite and
PostgreSQL, and `verbatim` run as a subprocess for the restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, migrate, session_factory
from core.models import Feedback, IngestionRun, Quarantine, SourceState
from core.settings import Settings, SourceConfig
from jobs.connectors import ConnectorError, SourceConfigError, build_connector, pull, pull_source
from jobs.connectors.folder import FolderConnector
from jobs.connectors.http import HttpConnector
from tests.pg_schema import pg_schema_url

OLD = time.time() - 3600  # mtime of files that are complete


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conn.db'}"
    else:
        with pg_schema_url() as url:
            yield url


@pytest.fixture
def db(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _count(sessions: sessionmaker[Session], source: str | None = None) -> int:
    with sessions() as s:
        stmt = select(func.count()).select_from(Feedback)
        if source:
            stmt = stmt.where(Feedback.source == source)
        return int(s.scalar(stmt) or 0)


def _ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as s:
        return sorted(s.scalars(select(Feedback.external_id)))


# --- HTTP ------------------------------------------------------------------------------------


class FakeApi:
    """A paginated JSON API: `?since=` filters on `updated_at`, pages of `page_size` linked by
    `next`, bearer token required; `fail` maps a page number to statuses served before it
    answers (e.g. [503, 429]); `down_pages` always fail with 500."""

    def __init__(self, page_size: int = 4) -> None:
        self.records: list[dict[str, Any]] = []
        self.page_size = page_size
        self.fail: dict[int, list[int]] = {}
        self.down_pages: set[int] = set()
        self.retry_after = "0"  # the Retry-After of the `fail` answers
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                api.requests.append({"query": query, "auth": self.headers.get("Authorization")})
                if self.headers.get("Authorization") != "Bearer s3cret":
                    return self._send(401, {"error": "unauthorized"})
                page = int(query.get("page", "1"))
                if page in api.down_pages:
                    return self._send(500, {"error": "down"})
                if api.fail.get(page):
                    status = api.fail[page].pop(0)
                    return self._send(status, {"error": "busy"}, {"Retry-After": api.retry_after})
                since = query.get("since")
                rows = sorted(api.records, key=lambda r: r["updated_at"])
                if since:
                    rows = [r for r in rows if r["updated_at"] >= since]  # inclusive, on purpose
                chunk = rows[(page - 1) * api.page_size : page * api.page_size]
                body: dict[str, Any] = {"data": chunk}
                if page * api.page_size < len(rows):
                    nxt = f"/reviews?page={page + 1}" + (f"&since={since}" if since else "")
                    body["next"] = nxt
                self._send(200, body)

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/reviews"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            self.records.append(
                {
                    "review_id": f"r{i:03d}",
                    "body": f"Avis numéro {i} : livraison en retard, colis abîmé",
                    "updated_at": f"2026-11-{1 + i // 10:02d}T10:{i % 60:02d}:00Z",
                    "stars": 1 + i % 5,
                }
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.setenv("REVIEWS_TOKEN", "s3cret")
    server = FakeApi()
    yield server
    server.close()


def _http(api: FakeApi, **kw: Any) -> HttpConnector:
    return HttpConnector(
        api.url,
        auth_env="REVIEWS_TOKEN",
        cursor_field="updated_at",
        max_retries=kw.pop("max_retries", 3),
        backoff_base=0.01,
        **kw,
    )


MAPPING = {"text": "body", "id": "review_id", "created_at": "updated_at", "rating": "stars"}


def test_http_pull_each_record_exactly_once_across_restarts(
    api: FakeApi, db: sessionmaker[Session], settings: Settings
) -> None:
    api.add(10)
    api.down_pages = {2}  # page 2 keeps failing: the pull stops after page 1 was stored
    with pytest.raises(ConnectorError, match="HTTP 500 after 2 attempts"):
        pull(db, settings, _http(api, max_retries=1), source="api", mapping=MAPPING)
    assert _count(db) == 4
    assert api.requests[0]["query"] == {}  # first pull: no cursor yet

    # "Restart": a fresh engine on the same database, the API is back, with a 503 and a 429
    # on the way (retried with backoff / Retry-After).
    api.down_pages = set()
    api.fail = {2: [503, 429]}
    result = pull(db, settings, _http(api), source="api", mapping=MAPPING)
    assert result.stored == 6 and result.duplicates == 4  # the cursor had not moved yet
    assert _ids(db) == [f"r{i:03d}" for i in range(10)]

    # New records: only the newer ones are asked for (since=cursor) and stored.
    api.add(3, start=10)
    api.requests.clear()
    result = pull(db, settings, _http(api), source="api", mapping=MAPPING)
    assert api.requests[0]["query"]["since"] == "2026-11-01T10:09:00Z"
    assert result.stored == 3
    assert _count(db) == 13
    assert pull(db, settings, _http(api), source="api", mapping=MAPPING).stored == 0
    assert len(set(_ids(db))) == 13


def test_http_page_param_pagination_and_bad_records(
    api: FakeApi, db: sessionmaker[Session], settings: Settings
) -> None:
    api.add(6)
    api.records.append({"review_id": "empty", "body": "", "updated_at": "2026-11-01T11:00:00Z"})
    # A record without a mapped optional field (no "stars") is stored without a rating; it was
    # rejected whole ("column(s) not in the file: rating=stars"). Its "note" is not taken for
    # the rating either: the user mapped the rating to "stars".
    api.records.append(
        {"review_id": "nostars", "body": "Colis jamais reçu", "note": 5, "updated_at": "2026-11-01"}
    )
    # page-number pagination: ignore the `next` links, ask page=1, 2, ... until a page is empty
    conn = _http(api, next_path=None, page_param="page")
    result = pull(db, settings, conn, source="api", mapping=MAPPING)
    assert result.stored == 7 and result.rejected == 1
    with db() as s:
        stored = s.scalars(select(Feedback).where(Feedback.external_id == "nostars")).one()
        assert stored.rating is None and stored.text == "Colis jamais reçu"
    pages = [r["query"].get("page") for r in api.requests]
    assert pages == ["1", "2", "3"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Quarantine)) == 1


def test_http_page_param_record_updated_mid_pull_is_not_lost(
    api: FakeApi, db: sessionmaker[Session], settings: Settings
) -> None:
    """Offset paging sorted by the cursor field: a record updated while the pull reads moves to
    the end, shifting one not read yet onto the page already read. It was skipped, and the
    cursor moved past it: lost for good. The next pull reads again from where the one before
    started (its records duplicates), so the skipped record is stored then."""
    api.page_size = 2
    api.add(6)

    def update_r001() -> bool:  # between page 1 and page 2, as a customer edits a review
        for rec in api.records:
            if rec["review_id"] == "r001" and rec["updated_at"] < "2026-12":
                rec["updated_at"], rec["body"] = "2026-12-01T09:00:00Z", "Avis modifié : déçu"
        return False

    conn = _http(api, next_path=None, page_param="page")
    first = pull(db, settings, conn, source="api", mapping=MAPPING, stop=update_r001)
    assert first.stored == 5 and "r002" not in _ids(db)  # shifted onto page 1, already read
    api.add(1, start=6)
    api.requests.clear()
    second = pull(db, settings, conn, source="api", mapping=MAPPING)
    assert "since" not in api.requests[0]["query"]  # from where the first pull started
    assert (second.stored, second.duplicates) == (2, 5)
    assert _ids(db) == [f"r{i:03d}" for i in range(7)]
    api.requests.clear()
    pull(db, settings, conn, source="api", mapping=MAPPING)
    assert api.requests[0]["query"]["since"] == "2026-12-01T09:00:00Z"  # the cursor moves on


def test_http_errors_are_clear(api: FakeApi, db: sessionmaker[Session], settings: Settings) -> None:
    os.environ.pop("REVIEWS_TOKEN")
    with pytest.raises(SourceConfigError, match="REVIEWS_TOKEN"):
        pull(db, settings, _http(api), source="api", mapping=MAPPING)
    os.environ["REVIEWS_TOKEN"] = "wrong"
    with pytest.raises(ConnectorError, match="HTTP 401"):  # 4xx: no retry
        pull(db, settings, _http(api), source="api", mapping=MAPPING)
    assert len(api.requests) == 1
    cfg = SourceConfig(source="x", kind="zendesk")
    with pytest.raises(SourceConfigError, match="unknown kind 'zendesk'"):
        build_connector(cfg, settings)


def test_http_429_with_a_long_retry_after_ends_the_pull_at_once(
    api: FakeApi, db: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked to come back in an hour (`Retry-After: 3600`), the pull came back after 60 s,
    `max_retries` times (5 minutes of a tick, 6 requests); it stops now, cursor unmoved."""
    import jobs.connectors.http as http_module

    slept: list[float] = []
    monkeypatch.setattr(http_module.time, "sleep", slept.append)
    api.add(3)
    api.fail = {1: [429]}
    api.retry_after = "3600"
    with pytest.raises(ConnectorError, match="HTTP 429, Retry-After 3600 s"):
        pull(db, settings, _http(api), source="api", mapping=MAPPING)
    assert (len(api.requests), slept, _count(db)) == (1, [], 0)
    assert pull(db, settings, _http(api), source="api", mapping=MAPPING).stored == 3


def test_http_429_with_a_retry_after_date_an_hour_ahead_ends_the_pull_at_once(
    api: FakeApi, db: sessionmaker[Session], settings: Settings
) -> None:
    """`Retry-After` may be an HTTP date (RFC 9110): read as 0 s, the API asking to come back
    in an hour was asked again at once, `max_retries` times. It is read as the seconds left."""
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    api.add(3)
    api.fail = {1: [429, 429, 429, 429]}
    api.retry_after = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    with pytest.raises(ConnectorError, match=r"HTTP 429, Retry-After 3[56]\d\d s"):
        pull(db, settings, _http(api), source="api", mapping=MAPPING)
    assert (len(api.requests), _count(db)) == (1, 0)


@pytest.mark.parametrize("url", ["127.0.0.1:8080/api", "localhost:8080/api", "ftp://x.fr/a"])
def test_http_url_without_an_http_scheme_is_a_config_error(url: str, settings: Settings) -> None:
    """`url = "127.0.0.1:8080/api"` was sent and retried with backoff `max_retries` times at
    every tick (31 s by default), as if the API were down (exit 1): a configuration error."""
    cfg = SourceConfig(source="api", kind="http", url=url)
    with pytest.raises(SourceConfigError, match="expected an http:// or https:// URL"):
        build_connector(cfg, settings)


@pytest.mark.parametrize(
    "url", ["https://bob:s3cret@avis.example.fr/api", "https://s3cret@avis.example.fr/api"]
)
def test_http_url_with_a_password_is_refused_without_showing_it(
    url: str, settings: Settings
) -> None:
    """`url = "https://bob:s3cret@…"` worked (httpx sends it as Basic auth), and the password
    was in every retry line, error, `ingestion_runs.location` and `/health`. Refused now,
    the URL shown without it, naming the way that keeps it out of the file."""
    cfg = SourceConfig(source="api", kind="http", url=url)
    with pytest.raises(SourceConfigError, match='auth_scheme = "Basic"') as caught:
        build_connector(cfg, settings)
    assert "s3cret" not in str(caught.value)
    assert "'https://avis.example.fr/api'" in str(caught.value)


def test_http_cursor_field_no_record_has_is_an_error(
    api: FakeApi, db: sessionmaker[Session], settings: Settings
) -> None:
    """`cursor_field = "updatedAt"` for an API that says `updated_at`: the cursor never moved,
    every pull read every page again (every 5 minutes) and said `stored 0`, job `ok`. The
    records are stored and the pull reports why the cursor does not move."""
    api.add(6)
    conn = HttpConnector(api.url, auth_env="REVIEWS_TOKEN", cursor_field="updatedAt")
    result = pull(db, settings, conn, source="api", mapping=MAPPING)
    assert result.stored == 6
    assert len(result.errors) == 1
    assert "no record has cursor_field 'updatedAt'" in result.errors[0]
    assert "updated_at" in result.errors[0]
    good = pull(db, settings, _http(api), source="api", mapping=MAPPING)
    assert (good.duplicates, good.errors) == (6, [])
    assert pull(db, settings, _http(api), source="api", mapping=MAPPING).errors == []


@pytest.mark.parametrize(
    ("table", "ignored"),
    [
        ({"kind": "folder", "path": "/srv/x", "url": "https://x.fr/api"}, "url"),
        ({"path": "avis.csv", "pattern": "*.csv", "settle_seconds": 5}, "pattern"),
        ({"kind": "http", "url": "https://x.fr/api", "encoding": "cp1252"}, "encoding"),
        ({"kind": "folder", "path": "/srv/x", "options": {"a": 1}}, "options"),
    ],
)
def test_source_option_of_another_kind_is_refused(table: dict[str, Any], ignored: str) -> None:
    """A valid option under the wrong kind (`url` on a folder, `pattern` on a file) was
    accepted and never read: the pull silently did something else than the file said."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=f"does not read {ignored} "):
        SourceConfig(source="s", **table)
    # Third-party connectors get the whole table; their own options are theirs to read.
    SourceConfig(source="z", kind="zendesk", url="https://x.fr", options={"subdomain": "m"})


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("timeout_seconds", 0, "greater than 0"),
        ("timeout_seconds", -1, "greater than 0"),
        ("max_retries", -1, "greater than or equal to 0"),
    ],
)
def test_http_timeout_and_retries_out_of_range_are_refused(
    option: str, value: int, said: str
) -> None:
    """`timeout_seconds = 0` failed every request as `ConnectError: [Errno 115] Operation now
    in progress`, retried for 31 s as if the API were down; `-1` crashed `verbatim pull` with
    a traceback (`ValueError: Timeout value out of range`). Both are refused with the rest of
    the configuration, one line naming the option."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=f"{option}\n.*{said}"):
        SourceConfig(source="api", kind="http", url="https://x.fr/api", **{option: value})
    SourceConfig(source="api", kind="http", url="https://x.fr/api", timeout_seconds=0.5)


class JsonApi:
    """A JSON API on 127.0.0.1 whose answer to each GET is `answer(query)`; `requests` holds
    the paths asked, in order."""

    def __init__(self, answer: Any, path: str = "/feed") -> None:
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(self.path)
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                data = json.dumps(answer(query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LinkApi(JsonApi):
    """An API whose `next` link is computed by `link(page)` from the page asked (`?p=N`):
    None ends the feed. Each page holds one record `r<N>`."""

    def __init__(self, link: Any) -> None:
        def answer(query: dict[str, str]) -> dict[str, Any]:
            page = int(query.get("p", "1"))
            body: dict[str, Any] = {
                "data": [{"id": f"r{page}", "text": f"Colis {page} perdu, très déçu"}]
            }
            nxt = link(page)
            if nxt is not None and len(self.requests) < 20:  # the test's own safety stop
                body["next"] = nxt
            return body

        super().__init__(answer)


def test_http_next_link_back_to_a_read_page_ends_the_pull(
    db: sessionmaker[Session], settings: Settings
) -> None:
    """An API whose last page links to itself (end of stream). The pull used to request
    it forever (MAX_PAGES only counted `page_param` pages); it now ends there."""
    api = LinkApi(lambda page: "/feed?p=2")  # page 1 -> page 2 -> page 2 -> ...
    try:
        result = pull(db, settings, HttpConnector(api.url), source="api")
    finally:
        api.close()
    assert (result.read, result.stored, result.duplicates) == (2, 2, 0)
    assert api.requests == ["/feed", "/feed?p=2"]
    assert _ids(db) == ["r1", "r2"]


def test_http_next_links_are_bounded_by_max_pages(
    db: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.connectors import http

    monkeypatch.setattr(http, "MAX_PAGES", 5)
    api = LinkApi(lambda page: f"/feed?p={page + 1}" if page < 50 else None)
    try:
        with pytest.raises(ConnectorError, match="more than 5 pages"):
            pull(db, settings, HttpConnector(api.url), source="api")
    finally:
        api.close()
    assert len(api.requests) == 5 and _count(db) == 5


# --- folder ----------------------------------------------------------------------------------


def _write(path: Path, rows: list[dict[str, Any]], mtime: float = OLD) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    os.utime(path, (mtime, mtime))
    return path


def _rows(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "text": f"Commande {prefix}{i} reçue, très déçu du service client"}
        for i in range(n)
    ]


def test_folder_reads_new_complete_files_once(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(inbox / "a.jsonl", _rows("a", 5))
    (inbox / "b.csv").write_text("id;commentaire\nb0;Remboursement jamais reçu\n", "utf-8")
    os.utime(inbox / "b.csv", (OLD, OLD))
    _write(inbox / "c.jsonl.part", _rows("c", 3))  # still downloading
    _write(inbox / "d.jsonl", _rows("d", 2), mtime=time.time())  # being written right now
    conn = FolderConnector(inbox, "*", settle_seconds=60, batch_size=2)

    # Stop after the first batch: a crash between two batches of a file.
    first = pull(db, settings, conn, source="inbox", stop=lambda: True)
    assert first.stored == 2
    result = pull(db, settings, conn, source="inbox")
    assert result.stored == 4  # the rest of a.jsonl (resumed after row 2) and b.csv
    assert _count(db) == 6

    # Renamed / touched copies of a file already read are not read again; a file that became
    # complete (renamed from .part, older than the settle time) is.
    (inbox / "a.jsonl").rename(inbox / "a-renamed.jsonl")
    (inbox / "c.jsonl.part").rename(inbox / "c.jsonl")
    os.utime(inbox / "d.jsonl", (OLD, OLD))
    result = pull(db, settings, conn, source="inbox")
    assert result.stored == 5 and result.duplicates == 0
    assert pull(db, settings, conn, source="inbox").read == 0  # nothing new: nothing read
    assert _count(db) == 11


def _folder_state(sessions: sessionmaker[Session], source: str) -> dict[str, Any]:
    with sessions() as s:
        row = s.get(SourceState, source)
        return dict(row.state["files"]) if row is not None else {}


def test_folder_state_forgets_files_gone_from_the_folder(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    """The state kept one entry per file ever read, and the whole of it was written again with
    each batch: a folder whose files are archived after reading wrote megabytes per batch (2,000
    files: 466 MB for one pull). Files gone from the folder leave the state; a renamed one
    keeps its entry, under its new name, and is not read again."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, name in enumerate("abcd"):
        _write(inbox / f"{name}.jsonl", _rows(name, 2), mtime=OLD + i)
    conn = FolderConnector(inbox, "*.jsonl", settle_seconds=0)
    assert pull(db, settings, conn, source="inbox").stored == 8
    assert len(_folder_state(db, "inbox")) == 4

    (inbox / "a.jsonl").unlink()  # archived by another tool
    (inbox / "b.jsonl").rename(tmp_path / "b.jsonl")
    (inbox / "c.jsonl").rename(inbox / "c-renamed.jsonl")
    (inbox / "notes.txt").write_text("pas un export", "utf-8")  # not matched: no entry
    result = pull(db, settings, conn, source="inbox")
    assert (result.read, result.errors) == (0, [])
    state = _folder_state(db, "inbox")
    assert sorted(Path(v["path"]).name for v in state.values()) == ["c-renamed.jsonl", "d.jsonl"]
    assert all(v["done"] for v in state.values())

    # A forgotten file dropped in again is read again: its rows are duplicates, not new rows.
    (tmp_path / "b.jsonl").rename(inbox / "b.jsonl")
    again = pull(db, settings, conn, source="inbox")
    assert (again.stored, again.duplicates) == (0, 2) and _count(db) == 8

    # A folder that matches nothing at all (a share not mounted) forgets nothing.
    for path in inbox.glob("*.jsonl"):
        path.rename(tmp_path / path.name)
    assert pull(db, settings, conn, source="inbox").read == 0
    assert len(_folder_state(db, "inbox")) == 3


def test_folder_small_files_share_a_batch_and_resume_exactly(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    """Each file was its own batch, so its own transaction writing the whole state: 20,000
    small files, 20,000 writes of a growing state. Small files now share a batch (the batch's
    rows and the state that marks their files read in one transaction), and a pull stopped
    between two batches resumes exactly: no row lost, none stored twice."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(7):
        _write(inbox / f"f{i}.jsonl", _rows(f"f{i}-", 1 + i % 2), mtime=OLD + i)  # 10 rows
    conn = FolderConnector(inbox, "*", settle_seconds=0, batch_size=4)
    first = pull(db, settings, conn, source="inbox", stop=lambda: True)
    assert (first.stored, first.batches) == (4, 1)
    rest = pull(db, settings, conn, source="inbox")
    assert (rest.stored, rest.duplicates, rest.batches) == (6, 0, 2)
    assert _count(db) == 10 and len(set(_ids(db))) == 10
    assert pull(db, settings, conn, source="inbox").read == 0


def test_folder_file_moved_away_mid_poll_does_not_stop_the_others(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    """Another tool archives b.jsonl while a.jsonl is being stored: the pull used to die on
    FileNotFoundError and leave c.jsonl (and any later file) for a later poll."""
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    archive.mkdir()
    for i, name in enumerate("abc"):
        _write(inbox / f"{name}.jsonl", _rows(name, 3), mtime=OLD + i)

    def archive_b() -> bool:  # runs between two stored batches, as another process would
        if (inbox / "b.jsonl").exists():
            (inbox / "b.jsonl").rename(archive / "b.jsonl")
        return False

    conn = FolderConnector(inbox, "*", settle_seconds=0, batch_size=2)
    result = pull(db, settings, conn, source="inbox", stop=archive_b)
    assert (result.stored, result.errors) == (6, [])
    assert _ids(db) == ["a0", "a1", "a2", "c0", "c1", "c2"]
    (archive / "b.jsonl").rename(inbox / "b.jsonl")  # put back: never read, so read now
    assert pull(db, settings, conn, source="inbox").stored == 3


def test_connector_rows_are_masked_with_ner_like_file_rows(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    """A name has no pattern for the rules to see: connectors mask with spaCy's NER as file
    ingestion does (they once ran the rules alone), stored rows and quarantined raw alike."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(
        inbox / "a.jsonl",
        [
            {"id": "n1", "text": "Merci beaucoup à Sophie Lambert pour son aide"},
            {"id": "n2", "text": "Colis parfait", "date": "Sophie Lambert"},  # bad date
        ],
    )
    with_ner = settings.model_copy(update={"pii_ner": True})
    result = pull(db, with_ner, FolderConnector(inbox, "*", settle_seconds=0), source="inbox")
    assert (result.stored, result.rejected) == (1, 1)
    with db() as s:
        stored = s.scalars(select(Feedback.text)).all()
        raw = s.scalars(select(Quarantine.raw)).all()
    assert len(stored) == 1 and "<PERSON>" in stored[0]
    for text in [*stored, *raw]:
        assert "Sophie" not in text and "Lambert" not in text


def test_folder_unreadable_file_is_reported_and_the_rest_lands(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "array.json").write_text('[{"text": "x"}]', "utf-8")
    os.utime(inbox / "array.json", (OLD, OLD))
    _write(inbox / "ok.jsonl", _rows("k", 3))
    result = pull(db, settings, FolderConnector(inbox, "*", settle_seconds=0), source="in")
    assert result.stored == 3
    assert len(result.errors) == 1 and "JSON array" in result.errors[0]


def test_folder_binary_file_is_one_clear_error(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    os.utime(inbox / "photo.csv", (OLD, OLD))
    _write(inbox / "ok.jsonl", _rows("b", 2))
    result = pull(db, settings, FolderConnector(inbox, "*", settle_seconds=0), source="in")
    assert (result.stored, result.rejected) == (2, 0)  # no garbage rows from the image
    assert len(result.errors) == 1 and "PNG image" in result.errors[0]


@pytest.mark.parametrize(
    ("piped", "message"),
    [
        (b'[{"id": "x1", "text": "Bien"}]', "stdin: a JSON array is not supported"),
        (b'[\n  {"id": "x1", "text": "Bien"}\n]\n', "stdin: a JSON array is not supported"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "stdin: this is a PNG image"),
        (b"a,b,c\n1,2,3\n", "no text column found"),
    ],
)
def test_stdin_refuses_what_a_file_would_refuse(
    db: sessionmaker[Session], settings: Settings, piped: bytes, message: str
) -> None:
    """Piped input gets a file's checks up front: before, a JSON array on one line was read
    as an empty CSV (nothing stored, nothing said) and a PNG became quarantined rows."""
    import io

    from jobs.connectors.stdin import StdinConnector
    from nlp.errors import VerbatimError

    with pytest.raises(VerbatimError, match=message):
        pull(db, settings, StdinConnector(io.BytesIO(piped)), source="pipe")
    assert _count(db) == 0
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Quarantine)) == 0


def test_a_pull_counts_the_rejected_rows_already_in_quarantine(
    db: sessionmaker[Session], settings: Settings
) -> None:
    """A source read again (stdin piped twice, an HTTP page asked again) does not store its
    bad rows twice; the pull now counts them, as `ingest FILE` does, so the CLI can say so."""
    import io

    from jobs.connectors.stdin import StdinConnector

    piped = b'{"id": "a", "text": ""}\n{"id": "b", "text": "Colis perdu"}\n'
    first = pull(db, settings, StdinConnector(io.BytesIO(piped)), source="pipe")
    again = pull(db, settings, StdinConnector(io.BytesIO(piped)), source="pipe")
    assert (first.rejected, first.requarantined) == (1, 0)
    assert (again.rejected, again.requarantined, again.duplicates) == (1, 1, 1)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Quarantine)) == 1


# --- restarts as real processes (verbatim pull / verbatim ingest -) ---------------------------


def _cli(args: list[str], env: dict[str, str], cwd: Path, stdin: bytes | None = None):  # noqa: ANN202
    return subprocess.run(
        [sys.executable, "-m", "verbatim_cli", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def _env(tmp_path: Path, db_url: str, config: str) -> dict[str, str]:
    (tmp_path / "verbatim.toml").write_text(config, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_CONFIG=str(tmp_path / "verbatim.toml"),
        VERBATIM_DATABASE_URL=db_url,
        VERBATIM_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


@pytest.mark.slow
def test_verbatim_pull_folder_and_http_across_process_restarts(
    tmp_path: Path, db_url: str, api: FakeApi
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(inbox / "one.jsonl", _rows("f", 4))
    api.add(5)
    config = f"""
[[sources]]
source = "inbox"
kind = "folder"
path = "{inbox}"
pattern = "*.jsonl"
settle_seconds = 5

[[sources]]
source = "reviews"
kind = "http"
url = "{api.url}"
auth_env = "REVIEWS_TOKEN"
cursor_field = "updated_at"
mapping = {{ text = "body", id = "review_id", created_at = "updated_at", rating = "stars" }}
"""
    env = _env(tmp_path, db_url, config)
    out = _cli(["pull"], env, tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    assert "inbox: read 4, stored 4" in out.stdout.decode()
    assert "reviews: read 5, stored 5" in out.stdout.decode()
    _write(inbox / "two.jsonl", _rows("g", 2))
    api.add(1, start=5)
    out = _cli(["pull"], env, tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "inbox: read 2, stored 2" in text and "stored 1" in text
    out = _cli(["pull"], env, tmp_path)
    assert "inbox: nothing new" in out.stdout.decode()
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    assert _count(sessions, "inbox") == 6 and _count(sessions, "reviews") == 6
    engine.dispose()


@pytest.mark.slow
def test_ingest_from_stdin(tmp_path: Path, db_url: str) -> None:
    env = _env(tmp_path, db_url, "")
    feed = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows("s", 3)) + "{oops\n"
    out = _cli(["ingest", "-", "--source", "pipe"], env, tmp_path, stdin=feed.encode())
    assert out.returncode == 0, out.stderr.decode()
    assert "read 4, stored 3" in out.stdout.decode() and "invalid_json" in out.stdout.decode()
    out = _cli(["ingest", "-", "--source", "pipe"], env, tmp_path, stdin=feed.encode())
    assert "stored 0, duplicates 3" in out.stdout.decode()
    # The bad row is not quarantined twice, and `ingest -` says so, as `ingest FILE` does
    # (README: "the ingest says how many of its rejected rows were already there").
    text = " ".join(out.stdout.decode().split())
    assert "kept in quarantine (1 of them already there from an earlier read)" in text, text


def test_verbatim_pull_goes_on_after_a_source_that_fails(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API that is down (first in the list) ended `verbatim pull` with its error: the
    folder after it was never read by a cron'd `verbatim pull`. The scheduler's `ingest`
    job and `verbatim run` already went on; `pull` now does too, and still exits 1."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(inbox / "one.jsonl", _rows("f", 2))
    config = f"""
[[sources]]
source = "api"
kind = "http"
url = "http://127.0.0.1:9/reviews"
max_retries = 0

[[sources]]
source = "inbox"
kind = "folder"
path = "{inbox}"
"""
    (tmp_path / "verbatim.toml").write_text(config, "utf-8")
    monkeypatch.setenv("VERBATIM_CONFIG", str(tmp_path / "verbatim.toml"))
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    out = CliRunner().invoke(app, ["pull"])
    assert out.exit_code == 1, out.output
    assert "inbox: read 2, stored 2" in out.stdout
    assert "error: api: http://127.0.0.1:9/reviews: ConnectError" in out.stderr
    engine = make_engine(settings.resolved_database_url)
    assert _count(session_factory(engine), "inbox") == 2
    engine.dispose()


def test_a_folder_with_an_unknown_encoding_is_one_clear_error(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`encoding = "ansi"` on a folder ended `verbatim pull` (and `verbatim run`) with a
    LookupError traceback at its first file: the sources after it were not pulled."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    for name in ("ansi", "inbox"):
        (tmp_path / name).mkdir()
        _write(tmp_path / name / "one.jsonl", _rows(name, 2))
    config = f"""
[[sources]]
source = "ansi"
kind = "folder"
path = "{tmp_path / "ansi"}"
encoding = "ansi"

[[sources]]
source = "inbox"
kind = "folder"
path = "{tmp_path / "inbox"}"
"""
    (tmp_path / "verbatim.toml").write_text(config, "utf-8")
    monkeypatch.setenv("VERBATIM_CONFIG", str(tmp_path / "verbatim.toml"))
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    out = CliRunner().invoke(app, ["pull"])
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert out.exit_code == 2, out.output
    assert "error: ansi: unknown encoding 'ansi'" in out.stderr
    assert "inbox: read 2, stored 2" in out.stdout


def test_run_pulls_configured_sources(tmp_path: Path, settings: Settings) -> None:
    """`pull_source` keeps the plain file source and adds the connectors."""
    feed = _write(tmp_path / "feed.jsonl", _rows("p", 3))
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    plain = pull_source(sessions, settings, SourceConfig(source="file", path=feed))
    assert plain.stored == 3
    folder = SourceConfig(source="dir", kind="folder", path=tmp_path, pattern="*.jsonl")
    assert pull_source(sessions, settings, folder).stored == 3  # same rows, another source
    engine.dispose()


def test_file_source_reads_its_configured_encoding(tmp_path: Path, settings: Settings) -> None:
    """`encoding = "cp1252"` on a plain file source was accepted and then ignored: the file
    was read as UTF-8 and every accented row went to the quarantine as `encoding_error`."""
    feed = tmp_path / "caisse.csv"
    feed.write_bytes("id;avis\n1;Café froid, service très lent\n".encode("cp1252"))
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    cfg = SourceConfig(source="caisse", path=feed, encoding="cp1252")
    result = pull_source(sessions, settings, cfg)
    assert (result.stored, result.rejected) == (1, 0)
    with sessions() as s:
        assert s.scalar(select(Feedback.text)) == "Café froid, service très lent"
    engine.dispose()


def test_http_next_link_to_another_host_is_not_sent_the_token(
    db: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auth header went with every request of the client, a next link on another host
    included: an API (or a tampered page) could have the token sent anywhere. The pull now
    stops there with the reason; the other host gets no request. Without a token a next
    link may go anywhere, as before."""
    monkeypatch.setenv("REVIEWS_TOKEN", "s3cret")
    other = LinkApi(lambda page: None)
    elsewhere = f"http://localhost:{other.server.server_port}/feed?p=2"
    api = LinkApi(lambda page: elsewhere if page == 1 else None)
    try:
        conn = HttpConnector(api.url, auth_env="REVIEWS_TOKEN")
        with pytest.raises(ConnectorError, match="another host.*REVIEWS_TOKEN"):
            pull(db, settings, conn, source="api")
        assert other.requests == [] and api.requests == ["/feed"]
        result = pull(db, settings, HttpConnector(api.url), source="open")
    finally:
        other.close()
        api.close()
    assert other.requests == ["/feed?p=2"] and result.read == 2


def test_http_page_too_large_or_trickling_ends_with_a_reason(
    db: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page was read whole into memory whatever its size, and httpx's timeout is per read:
    a server sending a byte every few seconds held the pull for ever."""
    from jobs.connectors import http

    api = LinkApi(lambda page: None)
    try:
        monkeypatch.setattr(http, "MAX_PAGE_BYTES", 40)
        with pytest.raises(ConnectorError, match="a page of .* bytes"):
            pull(db, settings, HttpConnector(api.url, max_retries=0), source="api")
    finally:
        api.close()
    assert _count(db) == 0

    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(http, "PAGE_DEADLINE_TIMEOUTS", 2)
    started = time.monotonic()
    try:
        conn = HttpConnector(
            f"http://127.0.0.1:{server.server_port}/slow", timeout=0.25, max_retries=0
        )
        with pytest.raises(ConnectorError, match="took more than 0.5 s"):
            pull(db, settings, conn, source="slow")
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 5  # 10 s of trickle otherwise


class ShapedApi(JsonApi):
    """An API whose answer for page N is `pages[N - 1]` (the last one again past the end, as
    Django's Paginator.get_page does), any JSON body; `asked` holds the pages asked."""

    def __init__(self, pages: list[Any]) -> None:
        self.asked: list[int] = []

        def answer(query: dict[str, str]) -> Any:
            page = int(query.get("page", "1"))
            self.asked.append(page)
            return pages[min(page, len(pages)) - 1]

        super().__init__(answer, path="/reviews")


def _records(ids: range) -> list[dict[str, Any]]:
    return [{"id": str(i), "text": f"Avis {i} : colis en retard", "seq": str(i)} for i in ids]


def test_http_answers_that_are_not_pages(db: sessionmaker[Session], settings: Settings) -> None:
    """A 200 without the records key ({"error": "quota"}) was read as an empty last page: the
    cursor jumped past the pages not fetched yet. A page past the end answered with the last
    page again made the pull ask 100,000 pages. A cursor of whole numbers sent as text stuck
    at "9" ("9" > "12" as text) and every pull read it all again."""
    mapping = {"text": "text", "id": "id"}
    quota = ShapedApi(
        [{"data": _records(range(1, 5))}, {"error": "quota exceeded for jean.dupont@mail.fr"}]
    )
    try:
        conn = HttpConnector(quota.url, page_param="page", cursor_field="seq", backoff_base=0.01)
        with pytest.raises(ConnectorError, match="no 'data' in the answer.*quota exceeded") as e:
            pull(db, settings, conn, source="quota", mapping=mapping)
        assert "jean.dupont" not in str(e.value)  # the answer may echo customer text: masked
        with db() as s:
            state = s.get(SourceState, "quota")
            assert state is None or not (state.state or {}).get("cursor")
    finally:
        quota.close()
    clamped = ShapedApi([{"data": _records(range(1, 10))}, {"data": _records(range(10, 13))}])
    try:
        conn = HttpConnector(clamped.url, page_param="page", cursor_field="seq")
        result = pull(db, settings, conn, source="clamped", mapping=mapping)
        assert result.stored == 12 and clamped.asked == [1, 2, 3]
        with db() as s:
            assert s.get(SourceState, "clamped").state["cursor"] == "12"
    finally:
        clamped.close()
    # An error value that is a number, GraphQL's null data with errors, records under
    # another key (a wrong records_path): errors, not empty pages.
    for n, (path, answer, reason) in enumerate(
        [
            ("data", {"error": 429}, "error \\(429\\)"),
            ("data.items", {"data": None, "errors": [{"message": "x"}]}, "errors"),
            ("data", {"results": _records(range(1, 3)), "count": 2}, "'results' holds 2"),
        ]
    ):
        bad = ShapedApi([answer])
        try:
            conn = HttpConnector(bad.url, page_param="page", cursor_field="seq", records_path=path)
            with pytest.raises(ConnectorError, match=reason):
                pull(db, settings, conn, source=f"bad{n}", mapping=mapping)
        finally:
            bad.close()
    # `"data": null`, a null parent of the records, or no key at all (proto3 JSON leaves an
    # empty list out, as Google's APIs do): an empty page, not an error.
    for n, (path, last) in enumerate(
        [("data", {"data": None}), ("data.items", {"data": None}), ("data", {"total": 4})]
    ):
        first = {"data": _records(range(1, 5))}
        if path == "data.items":
            first = {"data": {"items": _records(range(1, 5))}}
        empty = ShapedApi([first, last])
        try:
            conn = HttpConnector(
                empty.url, page_param="page", cursor_field="seq", records_path=path
            )
            assert pull(db, settings, conn, source=f"empty{n}", mapping=mapping).stored == 4
        finally:
            empty.close()


class RawApi:
    """An API on 127.0.0.1 that gives the answers `(status, headers, body)` in turn (the last
    one again after that); `asked` counts the requests."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.asked = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                status, headers, body = answers[min(api.asked, len(answers) - 1)]
                api.asked += 1
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/reviews"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pull_raw(
    db: sessionmaker[Session], settings: Settings, answers: list[Any], **kw: Any
) -> tuple[Any, RawApi]:
    """Pull source `raw` from a RawApi; returns (the PullResult or the error, the API)."""
    api = RawApi(answers)
    try:
        conn = HttpConnector(api.url, cursor_field="seq", backoff_base=0.01, **kw)
        try:
            return pull(db, settings, conn, source="raw", mapping={"text": "text"}), api
        except ConnectorError as exc:
            return exc, api
    finally:
        api.close()


def test_http_503_with_retry_after_is_waited_for(
    db: sessionmaker[Session], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 says when to come back (RFC 9110) as a 429 does: a maintenance page's
    `Retry-After: 120` was asked again after the backoff's 1, 2, 4, 8 and 16 s, six requests,
    then given up. Now a short one is waited for, a long one ends the pull at once."""
    json_type = {"Content-Type": "application/json"}
    page = json.dumps({"data": [{"id": "1", "text": "Colis abîmé", "seq": 1}]}).encode()
    busy = (503, {"Retry-After": "1", **json_type}, b'{"error": "maintenance"}')
    with caplog.at_level("WARNING", logger="jobs.connectors.http"):
        result, api = _pull_raw(db, settings, [busy, (200, json_type, page)], max_retries=3)
    assert getattr(result, "stored", None) == 1, result
    assert "HTTP 503, retry in 1.0s" in caplog.text, caplog.text
    long = (503, {"Retry-After": "120"}, b"<html><title>Maintenance</title></html>")
    error, api = _pull_raw(db, settings, [long, (200, json_type, page)], max_retries=3)
    assert isinstance(error, ConnectorError) and api.asked == 1
    assert "HTTP 503, Retry-After 120 s: the next pull retries" in str(error)


def test_http_error_answers_say_why_masked_and_readable(
    db: sessionmaker[Session], settings: Settings
) -> None:
    """A 4xx error quoted the first 200 bytes of its body as they were, into the log,
    `job_runs` and `/health`: a customer's e-mail echoed by a 400, an HTML page's head
    (`<!DOCTYPE html><html><head><title>…<style>…`); a redirect said `HTTP 301: ` and no
    more; a login page answered 200 said only "the response is not JSON"; a 204 No Content
    ("nothing new") was that same error at every pull."""
    html_type = {"Content-Type": "text/html; charset=utf-8"}
    echo = b'{"error": "filtre invalide: client jean.dupont@gmail.com, tel 06 12 34 56 78"}'
    error, _api = _pull_raw(db, settings, [(400, {"Content-Type": "application/json"}, echo)])
    said = str(error)
    assert "HTTP 400: " in said and "filtre invalide" in said, said
    assert "jean.dupont" not in said and "06 12 34 56 78" not in said, said
    head = "<style>body { font-family: sans-serif }</style>" * 5
    page = f"<!DOCTYPE html><html><head><title>Accès refusé</title>{head}</head><body>"
    error, _api = _pull_raw(db, settings, [(403, html_type, page.encode())])
    assert str(error).endswith("HTTP 403: Accès refusé"), str(error)
    error, _api = _pull_raw(db, settings, [(401, html_type, b"<h1>Jeton &eacute;chu</h1>")])
    assert str(error).endswith("HTTP 401: Jeton échu"), str(error)
    moved = (301, {"Location": "https://avis.example.fr/reviews"}, b"")
    error, api = _pull_raw(db, settings, [moved])
    assert str(error).endswith(
        "HTTP 301, redirected to https://avis.example.fr/reviews: set `url` to it"
    ), str(error)
    assert api.asked == 1
    login = b"<html><head><title>Connexion SSO</title></head><body>...</body></html>"
    error, _api = _pull_raw(db, settings, [(200, html_type, login)])
    assert str(error).endswith("the response is not JSON (text/html: Connexion SSO)"), error
    result, api = _pull_raw(db, settings, [(204, {}, b"")])
    assert getattr(result, "errors", None) == [] and result.stored == 0, result
    assert api.asked == 1


def test_http_next_links_that_are_not_links_and_bodies_that_do_not_decode(
    db: sessionmaker[Session], settings: Settings
) -> None:
    """HAL's `"next": {"href": …}` was read as no link: the pull ended after page 1, its
    cursor moved past the pages not fetched (lost for good with a newest-first API). A next
    link that is no URL (`http://[::1/x`) crashed `verbatim pull` (`ValueError: Invalid IPv6
    URL`), an `ftp://` one was retried as if the API were down, and a body that does not
    decode as its `Content-Encoding` says crashed it too (`httpx.DecodingError`)."""
    json_type = {"Content-Type": "application/json"}

    def page(nxt: Any) -> tuple[int, dict[str, str], bytes]:
        body = {"data": [{"id": "1", "text": "Colis abîmé", "seq": 5}], "next": nxt}
        return 200, json_type, json.dumps(body).encode()

    error, api = _pull_raw(db, settings, [page({"href": "/reviews?p=2"})])
    assert isinstance(error, ConnectorError), error
    assert "next_path 'next' holds an object (keys: href), not a link" in str(error)
    assert "such as 'next.href'" in str(error)
    with db() as s:
        state = s.get(SourceState, "raw")
        assert state is None or not (state.state or {}).get("cursor")
    error, api = _pull_raw(db, settings, [page("http://[::1/p2")])
    assert isinstance(error, ConnectorError), error
    assert "the next link 'http://[::1/p2' is not a URL" in str(error)
    error, api = _pull_raw(db, settings, [page("ftp://127.0.0.1/p2")], max_retries=3)
    assert isinstance(error, ConnectorError) and api.asked == 1, (error, api.asked)
    assert "the next link 'ftp://127.0.0.1/p2' is not an http(s) URL" in str(error)
    gzip = (200, {"Content-Encoding": "gzip", **json_type}, b'{"data": []}')
    error, api = _pull_raw(db, settings, [gzip], max_retries=1)
    assert isinstance(error, ConnectorError), error
    assert "DecodingError" in str(error) and api.asked == 2
    # A falsy next (null, "", false) is the end, as before; with page_param, pages go on.
    result, api = _pull_raw(db, settings, [page(False)])
    assert getattr(result, "stored", None) == 1, result


def test_folder_file_names_that_are_not_utf8_or_not_readable(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Latin-1 file name (a Windows share) could not be stored as the run's location: the
    pull, and `verbatim run`, died at every poll. A file another user wrote 0600 stopped every
    file after it. Both are reported; the rest lands, and the unreadable one is read later."""
    import jobs.connectors.folder as folder

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    latin1 = os.fsdecode(b"avis_\xe9t\xe9.jsonl")  # not UTF-8: surrogates in Python's str
    _write(inbox / latin1, _rows("e", 2), mtime=OLD)
    locked_name = os.fsdecode(b"verrouill\xe9.jsonl")  # unreadable, and not UTF-8 either
    _write(inbox / locked_name, _rows("l", 2), mtime=OLD + 1)
    _write(inbox / "z.jsonl", _rows("z", 2), mtime=OLD + 2)
    real = folder.fingerprint

    def locked(path: Path) -> str:
        if path.name == locked_name:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(folder, "fingerprint", locked)
    conn = FolderConnector(inbox, "*", settle_seconds=0)
    result = pull(db, settings, conn, source="inbox")
    assert result.stored == 4 and sorted(_ids(db)) == ["e0", "e1", "z0", "z1"]
    assert len(result.errors) == 1 and "verrouill\\xe9.jsonl" in result.errors[0]
    with db() as s:
        runs = s.scalar(select(func.count()).select_from(IngestionRun))
    nothing = pull(db, settings, conn, source="inbox")  # only the unreadable file: no new run
    assert nothing.stored == 0 and len(nothing.errors) == 1
    with db() as s:
        assert s.scalar(select(func.count()).select_from(IngestionRun)) == runs
    monkeypatch.setattr(folder, "fingerprint", real)  # readable now: read at the next poll
    assert pull(db, settings, conn, source="inbox").stored == 2
    with db() as s:
        locations = s.scalars(select(IngestionRun.location)).all()
    assert any("\\xe9t\\xe9" in loc for loc in locations)


def _cp1252_feed(path: Path) -> None:
    rows = [f"r{i};Livraison très en retard, colis abîmé n°{i};{1 + i % 5}" for i in range(1, 7)]
    text = "\r\n".join(["id;avis;note", *rows, "r7;Plain ASCII review;4"]) + "\r\n"
    path.write_bytes(text.encode("cp1252"))


def test_a_configured_file_read_with_the_wrong_encoding_is_recovered(
    tmp_path: Path, db_url: str
) -> None:
    """The hint named `verbatim ingest` options (--force, --encoding) that `pull` does not
    have; and once `encoding` was fixed in the config, the unchanged file was skipped as
    already read: its rows quarantined as encoding errors were never stored."""
    feed = tmp_path / "caisse.csv"
    _cp1252_feed(feed)
    source = f'[[sources]]\nsource = "caisse"\npath = "{feed}"\n'
    env = _env(tmp_path, db_url, source)
    first = _cli(["pull"], env, tmp_path)
    out = " ".join(first.stdout.decode().split())
    assert first.returncode == 0, first.stderr
    assert "read 7, stored 1" in out and "rejected 6" in out
    assert "set encoding = \"cp1252\" (for example) on source 'caisse'" in out, out
    assert "--force" not in out and "--encoding" not in out
    env = _env(tmp_path, db_url, source + 'encoding = "cp1252"\n')
    fixed = _cli(["pull"], env, tmp_path)
    out = " ".join(fixed.stdout.decode().split())
    assert fixed.returncode == 0, fixed.stderr
    assert "read 7, stored 6, duplicates 1, rejected 0" in out, out
    assert "the 6 rows an earlier read could not decode left the quarantine" in out
    again = _cli(["pull"], env, tmp_path)
    out = " ".join(again.stdout.decode().split())
    assert "already ingested" in out and "an unchanged file is read once" in out, out
    assert "--force" not in out
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        texts = set(s.scalars(select(Feedback.text)))
        assert "Livraison très en retard, colis abîmé n°3" in texts and len(texts) == 7
        assert s.scalars(select(Quarantine.reason)).all() == []
    engine.dispose()


def test_an_encoding_change_rereads_only_files_it_could_not_decode(
    tmp_path: Path, settings: Settings
) -> None:
    """Folder sources too; a file that decoded cleanly is not read again (without an id
    column its rows, read in another encoding, would be new garbled rows)."""
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _cp1252_feed(inbox / "a.csv")
    old = time.time() - 120
    os.utime(inbox / "a.csv", (old, old))
    utf8 = SourceConfig(source="inbox", kind="folder", path=inbox)
    assert pull_source(sessions, settings, utf8).stored == 1
    assert pull_source(sessions, settings, utf8).run_id is None  # read once
    cp1252 = utf8.model_copy(update={"encoding": "cp1252"})
    result = pull_source(sessions, settings, cp1252)
    assert (result.read, result.stored, result.rejected) == (7, 6, 0)
    assert pull_source(sessions, settings, cp1252).run_id is None  # and then once

    clean = tmp_path / "clean.csv"
    clean.write_text("avis\nLivraison rapide, très bien\n", "utf-8")
    file_utf8 = SourceConfig(source="clean", path=clean)
    assert pull_source(sessions, settings, file_utf8).stored == 1
    other = file_utf8.model_copy(update={"encoding": "latin-1"})
    assert pull_source(sessions, settings, other).skipped
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Feedback.source == "clean")) == 1
    engine.dispose()


def test_an_encoding_reread_of_many_undecodable_rows(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    """The earlier encoding errors of a file read again were removed in one statement with a
    bound parameter each: over 65,535 rows (a year of a Windows till export) PostgreSQL's
    protocol refused it and the re-read failed at every pull."""
    from sqlalchemy import insert

    from jobs.ingest import ingest_file

    feed = tmp_path / "caisse.csv"
    _cp1252_feed(feed)
    first = ingest_file(db, settings, feed, source="caisse")
    assert first.encoding_errors == 6
    with db.begin() as s:  # as many rows as a large export leaves, without reading one
        row = s.scalars(select(Quarantine)).first()
        assert row is not None
        s.execute(
            insert(Quarantine),
            [
                {
                    "run_id": row.run_id,
                    "source": row.source,
                    "row_number": 100 + i,
                    "reason": row.reason,
                    "field": row.field,
                    "raw": f"ligne {i}",
                    "digest": f"{i:032x}",
                    "created_at": row.created_at,
                }
                for i in range(66_000)
            ],
        )
    fixed = ingest_file(db, settings, feed, source="caisse", encoding="cp1252")
    assert (fixed.stored, fixed.reread_undecodable) == (6, 66_006)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Quarantine)) == 0


def test_a_utf8_file_with_its_bom_in_a_cp1252_folder_is_read_as_utf8(
    tmp_path: Path, db: sessionmaker[Session], settings: Settings
) -> None:
    """A folder set to cp1252 for its old till exports read a new Excel "CSV UTF-8" export
    (its byte order mark says UTF-8) as cp1252: every accent stored garbled ("arrÃªt"),
    nothing quarantined, nothing said. The mark wins; a file without one keeps `encoding`."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "new.csv").write_bytes(b"\xef\xbb\xbf" + "id;avis\n1;Appli arrêtée, déçu\n".encode())
    (inbox / "old.csv").write_bytes("id;avis\n2;Café très froid\n".encode("cp1252"))
    (inbox / "new.jsonl").write_bytes(
        b"\xef\xbb\xbf" + '{"id": "3", "text": "Reçu abîmé"}\n'.encode()
    )
    for name in ("new.csv", "old.csv", "new.jsonl"):
        os.utime(inbox / name, (OLD, OLD))
    cfg = SourceConfig(source="caisse", kind="folder", path=inbox, encoding="cp1252")
    result = pull_source(db, settings, cfg)
    assert (result.stored, result.rejected) == (3, 0)
    with db() as s:
        texts = set(s.scalars(select(Feedback.text)))
    assert texts == {"Appli arrêtée, déçu", "Café très froid", "Reçu abîmé"}


def test_a_file_source_waits_while_its_last_line_is_being_written(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A pull that met a CSV export while it was being written stored its last row cut short
    (« Colis arrivé cass »); the complete row, read later, was dropped as a duplicate of that
    id: the text truncated for good. A file whose last line is unfinished and that was written
    to less than `settle_seconds` ago waits for the next pull."""
    path = tmp_path / "export.csv"
    path.write_text("id,text,date\n1,Livraison rapide,2026-11-01\n2,Colis arrivé cass", "utf-8")
    cfg = SourceConfig(source="shop", path=path)
    assert pull_source(sessions, settings, cfg).stored == 0
    with path.open("a", encoding="utf-8") as f:
        f.write("é et remboursement refusé,2026-11-02\n")
    assert pull_source(sessions, settings, cfg).stored == 2
    with sessions() as s:
        texts = sorted(s.execute(select(Feedback.text)).scalars())
    assert texts == ["Colis arrivé cassé et remboursement refusé", "Livraison rapide"]
    # A finished export without a final newline is read once it has not changed for a while.
    done = tmp_path / "done.csv"
    done.write_text("id,text,date\n3,Très bon produit,2026-11-03", "utf-8")
    old = time.time() - 120
    os.utime(done, (old, old))
    assert pull_source(sessions, settings, SourceConfig(source="old", path=done)).stored == 1

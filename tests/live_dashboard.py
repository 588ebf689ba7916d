"""A seeded database served by a real uvicorn on 127.0.0.1, and headless Chromium to look at
it: shared by tests/test_dashboard.py and benchmarks/screenshots.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from api_seed import LAST_DAY, Seeded, seed
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.aggregate import aggregate_all
from core.db import session_scope
from core.models import Analysis, Feedback, Topic
from core.settings import Settings
from service.app import create_app
from service.auth import create_key

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UNTHEMED_TEXT = "Rien à signaler, tout s'est bien passé."
UNTHEMED_PER_DAY = 2
PROMOTABLE_TOPIC = "paiement refusé carte bancaire"


def seed_dashboard(sessions: sessionmaker[Session]) -> Seeded:
    """tests/api_seed.py, plus verbatims naming no theme (satisfied promoters: they make the
    NPS key drivers estimable) and an emerging topic that matches no theme."""
    seeded = seed(sessions)
    with session_scope(sessions) as session:
        n = 10_000
        for offset in range(28):
            day = LAST_DAY - timedelta(days=offset)
            for _ in range(UNTHEMED_PER_DAY):
                n += 1
                created = datetime.combine(day, dtime(15, 0), tzinfo=UTC) + timedelta(
                    minutes=n % 50
                )
                fb = Feedback(
                    source="appli",
                    channel="survey",
                    external_id=f"u{n}",
                    dedup_key=f"id:u{n}",
                    created_at=created,
                    ingested_at=created,
                    rating=5.0,
                    nps=9.0 + n % 2,
                    csat=5.0,
                    text=UNTHEMED_TEXT,
                    language="fr",
                    is_french=True,
                    content_hash=f"u{n:063d}",
                    meta={},
                    analyzed=True,
                )
                session.add(fb)
                session.flush()
                session.add(
                    Analysis(
                        feedback_id=fb.id,
                        model_version="seed",
                        sentiment="positive",
                        sentiment_score=0.9,
                        severity=0.0,
                        analyzed_at=created,
                    )
                )
        now = datetime.combine(LAST_DAY, dtime(12), tzinfo=UTC)
        session.add(
            Topic(
                label=PROMOTABLE_TOPIC,
                keywords=["paiement", "refusé", "carte"],
                representatives=[
                    {"feedback_id": 3, "text": "Paiement refusé deux fois par carte."}
                ],
                theme=None,
                is_emerging=True,
                size=25,
                centroid=[],
                first_seen=now - timedelta(days=3),
                last_seen=now,
            )
        )
        session.flush()
        aggregate_all(session)
    return seeded


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(settings: Settings, engine: Engine) -> Iterator[str]:
    """uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    app = create_app(settings, engine=engine, build_analyzer_at_startup=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def keys(sessions: sessionmaker[Session]) -> dict[str, str]:
    with session_scope(sessions) as session:
        _, read = create_key(session, "navigateur", "read")
        _, write = create_key(session, "analyste", "write")
    return {"read": read, "write": write}


def launch(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def open_with_key(browser: Any, url: str, token: str, width: int = 1400, height: int = 1000) -> Any:
    """A page whose localStorage already holds the key (no dialog)."""
    page = browser.new_page(viewport={"width": width, "height": height}, locale="fr-FR")
    page.goto(url + "/static/style.css")  # same origin, to set localStorage before the app runs
    page.evaluate("k => localStorage.setItem('verbatim.apiKey', k)", token)
    return page

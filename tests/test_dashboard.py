"""Dashboard: static page served open; end-to-end drill-down in headless Chromium."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_seed import KNOWN_EVIDENCE, KNOWN_TEXT, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.settings import Settings
from service.app import create_app
from service.auth import create_key

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path("/tmp/verbatim_dashboard.png")


def test_dashboard_page_and_assets(settings: Settings, engine: Engine) -> None:
    client = TestClient(create_app(settings, engine=engine))
    page = client.get("/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    for text in ("Thèmes", "Alertes", "Tendance", "Clé API"):
        assert text in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        res = client.get(asset)
        assert res.status_code == 200 and len(res.content) > 500
    js = client.get("/static/app.js").text
    assert "X-API-Key" in js and "localStorage" in js
    assert "http://" not in page.text.replace('xmlns="http://www.w3.org', "")  # no CDN


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session]
) -> Iterator[tuple[str, str]]:
    import uvicorn

    seed(sessions)
    with session_scope(sessions) as session:
        _, token = create_key(session, "navigateur", "read")
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
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_drill_down_in_browser(live_server: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, token = live_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            # No key yet: the dashboard asks for one; it is then kept in localStorage.
            page.goto(url + "/")
            expect(page.locator("#key-dialog")).to_be_visible()
            page.fill("#key-input", token)
            page.click("#key-dialog button[value=save]")
            row = page.locator("#themes tbody tr[data-theme=livraison]")
            expect(row).to_be_visible()
            expect(row.locator(".badge")).to_contain_text("Pic")
            expect(row.locator("svg polyline")).to_have_count(1)
            assert page.evaluate("localStorage.getItem('verbatim.apiKey')") == token

            row.locator("button.theme-link").click()
            expect(page.locator("#detail-title")).to_have_text("Livraison")
            first = page.locator("#verbatims li.verbatim").first
            expect(first.locator(".verbatim-text")).to_have_text(KNOWN_TEXT)
            expect(first.locator("mark")).to_have_text(KNOWN_EVIDENCE)
            expect(page.locator("#chart svg rect").last).to_be_visible()
            assert page.locator("#chart svg rect").count() == 2 * 30
            expect(page.locator("#alerts li").first).to_contain_text("Livraison")

            page.click("#polarity button[data-polarity=positive]")
            expect(page.locator("#verbatims li.verbatim .pol").first).to_have_text("positif")
            expect(page.locator("#verbatims .pol.negative")).to_have_count(0)
            page.click("#polarity button[data-polarity=negative]")
            expect(page.locator("#verbatims li.verbatim mark").first).to_have_text(KNOWN_EVIDENCE)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # The key survives a reload: no dialog, data shown directly.
            page.reload()
            expect(page.locator("#themes tbody tr[data-theme=livraison]")).to_be_visible()
            expect(page.locator("#key-dialog")).not_to_be_visible()
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_api_docs_render_offline(live_server: tuple[str, str]) -> None:
    """/docs and /redoc load their assets from this server: with every other host blocked,
    Swagger UI still lists the operations and ReDoc renders."""
    from playwright.sync_api import expect, sync_playwright

    url, _token = live_server
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()

            def only_loopback(route) -> None:  # type: ignore[no-untyped-def]
                if route.request.url.startswith(url):
                    route.continue_()
                else:
                    # ReDoc's footer links a Redocly logo image: cosmetic, not needed.
                    if route.request.resource_type != "image":
                        outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.goto(url + "/docs")
            expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
            assert page.locator(".opblock").count() > 5
            page.goto(url + "/redoc")
            expect(page.get_by_text("Verbatim API").first).to_be_visible(timeout=20_000)
        finally:
            browser.close()
    assert not outside, outside

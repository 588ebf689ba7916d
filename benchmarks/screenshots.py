"""Screenshots of the dashboard (overview, theme page, journey, topics) at 1400x1000.

    python benchmarks/screenshots.py --out DIR

Builds a throwaway SQLite database with the seeded data of the dashboard tests
(tests/api_seed.py + tests/live_dashboard.py: written for the tests, no dataset rows), serves
it on 127.0.0.1 with uvicorn and drives headless Chromium (/usr/bin/chromium, or --chromium).
With --database-url it photographs an existing database instead (a read key is created in it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

VIEWS = {
    "overview": "#view=overview",
    "theme": "#theme={theme}",
    "journey": "#view=journey",
    "topics": "#view=topics",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--database-url", help="photograph this database (default: seeded)")
    parser.add_argument("--theme", default="livraison", help="theme of the theme page")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--chromium", type=Path, default=None)
    args = parser.parse_args()

    import live_dashboard
    from playwright.sync_api import sync_playwright

    from core.db import make_engine, migrate, session_factory
    from core.settings import Settings

    if args.chromium is not None:
        live_dashboard.CHROMIUM = args.chromium
    if not live_dashboard.CHROMIUM.exists():
        print(f"error: no Chromium at {live_dashboard.CHROMIUM} (use --chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'verbatim.db'}"
        settings = Settings(data_dir=Path(tmp), database_url=url, sentiment_backend="lexicon")
        engine = make_engine(url)
        migrate(engine)
        sessions = session_factory(engine)
        if args.database_url is None:
            live_dashboard.seed_dashboard(sessions)
        token = live_dashboard.keys(sessions)["read"]
        with live_dashboard.serve(settings, engine) as base, sync_playwright() as pw:
            browser = live_dashboard.launch(pw)
            try:
                page = live_dashboard.open_with_key(
                    browser, base, token, width=args.width, height=args.height
                )
                for name, fragment in VIEWS.items():
                    view = "theme" if name == "theme" else name
                    page.goto(base + "/" + fragment.format(theme=args.theme))
                    page.wait_for_selector(f"body[data-ready={view}]", timeout=20_000)
                    page.evaluate("() => document.body.removeAttribute('data-ready')")
                    path = args.out / f"{name}.png"
                    page.screenshot(path=str(path))
                    print(f"{path} ({args.width}x{args.height})")
            finally:
                browser.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

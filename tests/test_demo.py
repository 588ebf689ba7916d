"""The generated demo feed: deterministic, realistic mix, and an injected packaging spike."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Feedback
from core.settings import Settings
from jobs.demo import CALIBRATION_SPEC, DemoSpec, calibration_texts, iter_demo, write_demo
from jobs.ingest import ingest_file

END = date(2026, 11, 22)
SPEC = DemoSpec(days=60, seed=7, end=END)
PACKAGING = re.compile(r"carton|emball|boîte|protection|fui|scotch|box arrived|packed", re.I)


def _day(row: dict) -> date:
    return datetime.fromisoformat(row["created_at"]).date()


def test_deterministic_with_the_seed() -> None:
    first = list(iter_demo(SPEC))
    assert first == list(iter_demo(SPEC))
    assert first != list(iter_demo(DemoSpec(days=60, seed=8, end=END)))


def test_calibration_texts_are_fixed_and_review_length() -> None:
    """The encoder's static int8 scales (verbatim setup) come from these: the same texts on
    every day and machine, 1 to 4 demo verbatims joined like real reviews."""
    texts = calibration_texts(40)
    assert texts == calibration_texts(40) and len(texts) == 40
    rows = [r["text"] for r in iter_demo(CALIBRATION_SPEC)]
    assert texts[:4] == [rows[0], " ".join(rows[1:3]), " ".join(rows[3:6]), " ".join(rows[6:10])]
    assert CALIBRATION_SPEC.end is not None  # not today's feed


def test_shape_of_the_feed() -> None:
    rows = list(iter_demo(SPEC))
    days = {_day(r) for r in rows}
    assert len(days) == 60 and max(days) == END
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["channel"] for r in rows} == {"review", "social", "complaint"}
    assert all(("rating" in r) == (r["channel"] == "review") for r in rows)
    assert {r["rating"] for r in rows if "rating" in r} <= {1, 2, 3, 4, 5}
    per_customer = Counter(r["customer"] for r in rows)
    assert sum(1 for n in per_customer.values() if n > 1) > 100  # repeat customers
    # Weekday seasonality: Mondays busier than Sundays (spike days excluded).
    by_day = Counter(_day(r) for r in rows if (END - _day(r)).days >= 3)
    mondays = [n for d, n in by_day.items() if d.weekday() == 0]
    sundays = [n for d, n in by_day.items() if d.weekday() == 6]
    assert sum(mondays) / len(mondays) > 1.3 * sum(sundays) / len(sundays)
    texts = " ".join(r["text"] for r in rows)
    for marker in ("@gmail.com", "Commande n°", "tjrs", "pb", "👎", "😍", "parcel", "jamais"):
        assert marker in texts, marker


def test_packaging_spike_in_the_last_days() -> None:
    rows = list(iter_demo(SPEC))
    pack = Counter(_day(r) for r in rows if PACKAGING.search(r["text"]))
    recent = [pack[d] for d in pack if (END - d).days < 3]
    before = [pack[d] for d in pack if 3 <= (END - d).days < 60]
    assert min(recent) > 3 * (sum(before) / len(before))


def test_csv_output_ingests_and_pii_is_masked(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, session: Session
) -> None:
    small = DemoSpec(days=5, seed=3, end=END, per_day=40)
    count = write_demo(tmp_path / "demo.csv", small)
    jsonl = write_demo(tmp_path / "demo.jsonl", small)
    assert count == jsonl == sum(1 for _ in (tmp_path / "demo.jsonl").open())
    raw = [json.loads(line) for line in (tmp_path / "demo.jsonl").open()]
    assert any("@" in r["text"] for r in raw)
    result = ingest_file(
        sessions, settings, tmp_path / "demo.csv", source="demo", mapping={"channel": "channel"}
    )
    assert (result.stored, result.rejected) == (count, 0)
    stored = session.scalars(select(Feedback)).all()
    assert {f.channel for f in stored} == {"review", "social", "complaint"}
    assert not any(re.search(r"\w+\.\w+\d*@\w+", f.text) for f in stored)
    assert not any(re.search(r"0[67]( \d\d){4}", f.text) for f in stored)


def test_cli_demo_to_stdout_or_a_link_keeps_them(tmp_path: Path) -> None:
    """`verbatim demo -o /dev/fd/1`: the feed went to a "/dev/fd/1.part" file renamed over the
    path (refused; as root, `-o /dev/stdout` replaced the /dev/stdout link itself), and a link
    to the feed was replaced by a file. Written through stdout, the "wrote" line on stderr;
    the file a link names gets the feed."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "verbatim_cli", "demo", "--days", "1", "--per-day", "3"]
    run = subprocess.run(
        [*command, "-o", "/dev/fd/1"], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert all(json.loads(line)["text"] for line in run.stdout.splitlines())
    assert "wrote" in run.stderr
    target, link = tmp_path / "feed.jsonl", tmp_path / "link.jsonl"
    link.symlink_to(target)
    run = subprocess.run([*command, "-o", str(link)], capture_output=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert link.is_symlink() and json.loads(target.read_text(encoding="utf-8").split("\n")[0])

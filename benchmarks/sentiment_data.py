"""The sentiment training corpus and dev/test splits, read at run time from ../shared/data.

Research-only data: nothing here is copied into the repository; every run reads the files.
Trustpilot has no official split: 20% of its rows (by a stable hash of the id) are held out
as its test split and never used for training; it is scored as it comes (97% positive) and on
its stratified subset (as many rows per class as it has neutral ones), like the hidden test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from jobs.train_sentiment import stable_bucket

# ../shared/data beside the checkout; VERBATIM_SHARED_DATA points elsewhere (e.g. from a worktree).
SHARED = Path(
    os.environ.get("VERBATIM_SHARED_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
TRUSTPILOT_TEST_PERCENT = 20
TRUSTPILOT_POSITIVES = 8000  # the set is 97% positive: keep every negative/neutral row
TWEET_REPEATS = 2  # the only social-media set is small: seen twice per epoch


def rows(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def trustpilot_is_test(row: dict) -> bool:
    return stable_bucket("tp-split:" + str(row["id"])) < TRUSTPILOT_TEST_PERCENT


def training_rows(shared: Path = SHARED) -> list[dict]:
    out = list(rows(shared / "marc_fr" / "train.jsonl"))
    out += list(rows(shared / "deft2017_tweets" / "train.jsonl")) * TWEET_REPEATS
    out += list(rows(shared / "tripadvisor_fr" / "train.jsonl"))
    tp = [r for r in rows(shared / "trustpilot_fr" / "reviews.jsonl") if not trustpilot_is_test(r)]
    positives = sorted(
        (r for r in tp if r.get("sentiment") == "positive"),
        key=lambda r: stable_bucket("tp-pos:" + str(r["id"]), 1_000_000),
    )
    out += [r for r in tp if r.get("sentiment") != "positive"] + positives[:TRUSTPILOT_POSITIVES]
    return [
        {k: r[k] for k in ("id", "text", "stars", "sentiment", "source") if k in r} for r in out
    ]


def stratified(data: list[dict], salt: str = "strat:") -> list[dict]:
    """As many rows of each class as the rarest class has (picked by id hash): a test set
    stratified by class, like the hidden Trustpilot test."""
    by: dict[str, list[dict]] = {}
    for r in data:
        by.setdefault(str(r.get("sentiment")), []).append(r)
    n = min(len(v) for v in by.values())
    out = []
    for label in sorted(by):
        out += sorted(by[label], key=lambda r: stable_bucket(salt + str(r["id"]), 1_000_000))[:n]
    return out


def eval_sets(shared: Path = SHARED) -> dict[str, list[dict]]:
    tp_test = [r for r in rows(shared / "trustpilot_fr" / "reviews.jsonl") if trustpilot_is_test(r)]
    return {
        "marc_fr/dev": list(rows(shared / "marc_fr" / "dev.jsonl")),
        "trustpilot_fr/test20": tp_test,
        "trustpilot_fr/test20-strat": stratified(tp_test),
        "deft2017_tweets/dev": list(rows(shared / "deft2017_tweets" / "dev.jsonl")),
        "tripadvisor_fr/dev": list(rows(shared / "tripadvisor_fr" / "dev.jsonl")),
    }

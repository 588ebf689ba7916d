"""TF-IDF + logistic regression baseline: train on MARC-fr train (+ Trustpilot-fr minus the
themes_fr/dev ids), report 3-class macro-F1 on MARC-fr dev (and the other dev sets).

    nice -n 10 python benchmarks/eval_tfidf.py [--data ../shared/data] [--no-trustpilot]
        [--save DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jobs.evaluate import gold_sentiment, sentiment_metrics
from nlp.sentiment.baseline import TfidfSentiment

ROOT = Path(__file__).resolve().parents[1]


def rows(path: Path, exclude: set[str] | None = None) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for line in path.open(encoding="utf-8"):
        r = json.loads(line)
        label = gold_sentiment(r)
        if label and isinstance(r.get("text"), str) and not (exclude and r.get("id") in exclude):
            texts.append(r["text"])
            labels.append(label)
    return texts, labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--no-trustpilot", action="store_true")
    ap.add_argument("--save", type=Path, default=None)
    ap.add_argument("--C", type=float, default=4.0)
    args = ap.parse_args()
    d = args.data
    texts, labels = rows(d / "marc_fr/train.jsonl")
    if not args.no_trustpilot:
        dev_ids = {json.loads(line)["id"] for line in (d / "themes_fr/dev.jsonl").open()}
        t2, l2 = rows(d / "trustpilot_fr/reviews.jsonl", exclude=dev_ids)
        texts, labels = texts + t2, labels + l2
    t0 = time.perf_counter()
    model = TfidfSentiment(C=args.C).fit(texts, labels)
    print(f"trained on {len(texts)} rows in {time.perf_counter() - t0:.0f}s")
    for rel in ("marc_fr/dev.jsonl", "deft2017_tweets/dev.jsonl", "tripadvisor_fr/dev.jsonl"):
        x, y = rows(d / rel)
        pred = [r.label for r in model.predict(x)]
        m = sentiment_metrics(y, pred)
        print(
            f"{rel:<28} n={m['n']:>5}  accuracy={m['accuracy']:.4f}  macro-F1={m['macro_f1']:.4f}"
        )
    if args.save:
        model.save(args.save)
        print("saved to", args.save)


if __name__ == "__main__":
    main()

"""Fit the lexicon's tiny calibration (multinomial logistic regression over ~12 lexicon
features) and write nlp/resources/lexicon_calibration.json.

Training rows come from the TRAIN splits only (MARC-fr train, DEFT-2017 train, TripAdvisor-fr
train, a Trustpilot-fr sample without the ids of themes_fr/dev); each dataset gets the same
total weight and classes are balanced inside each dataset. Research-only data: the output is
36 numbers, documented in nlp/resources/LEXICON_CALIBRATION.md.

    nice -n 10 python benchmarks/calibrate_lexicon.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from jobs.evaluate import gold_sentiment
from nlp.sentiment.lexicon import FEATURES, LexiconSentiment
from nlp.types import POLARITIES

ROOT = Path(__file__).resolve().parents[1]


def load(
    path: Path, limit: int | None = None, exclude: set[str] | None = None, seed: int = 0
) -> list[tuple[str, str]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if exclude and row.get("id") in exclude:
                continue
            label = gold_sentiment(row)
            if label and isinstance(row.get("text"), str):
                rows.append((row["text"], label))
    if limit and len(rows) > limit:
        # Stratified: up to limit/3 rows per class, so rare classes keep all their rows.
        rng = random.Random(seed)
        out = []
        for label in POLARITIES:
            part = [r for r in rows if r[1] == label]
            out.extend(rng.sample(part, min(len(part), limit // 3)))
        rows = out
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "nlp" / "resources" / "lexicon_calibration.json"
    )
    ap.add_argument("--per-set", type=int, default=6000)
    ap.add_argument("--C", type=float, default=1.0)
    args = ap.parse_args()
    d = args.data
    themes_dev = {json.loads(line)["id"] for line in (d / "themes_fr/dev.jsonl").open()}
    sets = {
        "marc": load(d / "marc_fr/train.jsonl", args.per_set),
        "deft": load(d / "deft2017_tweets/train.jsonl", args.per_set),
        "tripadvisor": load(d / "tripadvisor_fr/train.jsonl", args.per_set),
        "trustpilot": load(d / "trustpilot_fr/reviews.jsonl", args.per_set, themes_dev),
    }
    model = LexiconSentiment(calibration=Path("/nonexistent"))  # raw features, no calibration
    X, y, w = [], [], []
    for name, rows in sets.items():
        counts = Counter(label for _, label in rows)
        print(name, len(rows), dict(counts))
        for text, label in rows:
            feats = model.features(text)
            X.append([feats[f] for f in FEATURES])
            y.append(label)
            # Equal weight per dataset, balanced classes inside it.
            w.append(1.0 / (len(counts) * counts[label]))
    X_arr, w_arr = np.array(X), np.array(w) * len(X) / 4
    clf = LogisticRegression(C=args.C, max_iter=2000, fit_intercept=False)
    clf.fit(X_arr, y, sample_weight=w_arr)
    weights = {
        str(lab): [round(float(v), 5) for v in clf.coef_[list(clf.classes_).index(lab)]]
        for lab in POLARITIES
    }
    args.out.write_text(
        json.dumps(
            {
                "features": list(FEATURES),
                "weights": weights,
                "trained_on": {k: len(v) for k, v in sets.items()},
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print("wrote", args.out)


if __name__ == "__main__":
    main()

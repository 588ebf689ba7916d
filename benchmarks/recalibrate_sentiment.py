"""Re-fit the temperature and class biases of a trained sentiment delta (no retraining).

    python benchmarks/make_sentiment_corpus.py /tmp/sentiment_train.jsonl
    python benchmarks/recalibrate_sentiment.py --data /tmp/sentiment_train.jsonl \\
        --model nlp/resources/sentiment [--balance skewed]

The validation split is the one `verbatim train sentiment` held out (same hash, same percent),
so the encoder never trained on it. Only meta.json changes: the encoder weights stay as they are.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from core.settings import load_settings
from jobs.train_sentiment import read_labelled, split_rows
from nlp.sentiment.embedded import META_FILE
from nlp.sentiment.training import CALIBRATIONS, recalibrate


def main() -> None:
    from nlp.sentiment import build_sentiment

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, action="append")
    ap.add_argument("--model", type=Path, required=True, help="delta directory (rewritten)")
    ap.add_argument("--val-percent", type=int, default=8)
    ap.add_argument("--balance", choices=CALIBRATIONS, default="skewed")
    ap.add_argument("--no-stars", action="store_true", help="sentiment head alone")
    args = ap.parse_args()
    _, val = split_rows(read_labelled(args.data), args.val_percent)
    model = build_sentiment(
        "embedded", path=args.model, model_dir=load_settings().resolved_model_dir
    )
    before = (model.config.temperature, list(model.config.class_bias))
    recalibrate(model, val, args.balance, use_stars=not args.no_stars)
    meta_file = args.model / META_FILE
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["config"] = asdict(model.config)
    meta_file.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in model.config.training.items() if "val_" in k}))
    print(
        f"star weight {model.config.star_weight}, star temperature "
        f"{model.config.star_temperature:.2f}; temperature {before[0]:.2f} -> "
        f"{model.config.temperature:.2f}, biases {before[1]} -> {model.config.class_bias}; "
        f"wrote {meta_file}"
    )


if __name__ == "__main__":
    main()

"""Encoder runtimes side by side, in one run: speed and dev macro-F1 of the embedded model.

    nice -n 10 python benchmarks/bench_runtime.py [--limit 1500] [--sets marc_fr/dev]

Builds (or reuses) the ONNX exports of the encoder + packaged delta under the model dir, as
`verbatim setup` does, then scores the same dev texts (read at run time from ../shared/data)
with torch (bf16 where the CPU has it, the training path), ONNX Runtime fp32 and ONNX Runtime
int8, and prints docs/s of the sentiment pass, macro-F1, label agreement with torch and the
CPU model + kernel path. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import load_settings  # noqa: E402
from jobs.evaluate import gold_sentiment  # noqa: E402
from nlp.encoder.runtime import RUNTIMES, cpu_description, kernel_path  # noqa: E402
from nlp.sentiment import build_runtimes, build_sentiment  # noqa: E402
from nlp.types import POLARITIES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sets", nargs="+", default=["marc_fr/dev"])
    ap.add_argument("--limit", type=int, default=1500)
    args = ap.parse_args()
    from sklearn.metrics import f1_score

    settings = load_settings()
    record = build_runtimes(settings.resolved_model_dir)
    print(
        json.dumps(
            {
                "cpu": cpu_description(),
                "kernels": kernel_path(),
                "setup_choice": record["chosen"],
                "setup_probe": record["measured"],
            },
            indent=1,
        )
    )
    for name in args.sets:
        rows = [
            json.loads(line)
            for line in (args.data / name).with_suffix(".jsonl").open(encoding="utf-8")
        ][: args.limit]
        texts = [r["text"] for r in rows]
        gold = [gold_sentiment(r) for r in rows]
        ref = None
        print(f"{'set':<14} {'runtime':<10} {'n':>5} {'docs/s':>7} {'macro-F1':>9} {'agree':>6}")
        for rt in RUNTIMES:
            model = build_sentiment("embedded", model_dir=settings.resolved_model_dir, runtime=rt)
            model.predict(texts[:16])  # warm-up
            t0 = time.perf_counter()
            pred = [r.label for r in model.predict(texts)]
            dt = time.perf_counter() - t0
            ref = ref or pred
            f1 = f1_score(gold, pred, labels=list(POLARITIES), average="macro")
            agree = sum(a == b for a, b in zip(ref, pred, strict=True)) / len(pred)
            print(
                f"{name:<14} {rt:<10} {len(texts):>5} {len(texts) / dt:>7.1f} {f1:>9.3f} "
                f"{agree:>6.3f}",
                flush=True,
            )
            del model


if __name__ == "__main__":
    main()

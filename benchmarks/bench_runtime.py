"""Encoder runtimes side by side, in one run: speed and dev macro-F1 of the embedded model.

    nice -n 10 python benchmarks/bench_runtime.py [--limit 1500] [--sets marc_fr/dev]
    python benchmarks/bench_runtime.py --sets marc_fr/dev deft2017_tweets/dev tripadvisor_fr/dev \
        --compare-int8 ~/.cache/verbatim/models/runtime/<key>-r3/encoder-int8.onnx

Builds (or reuses) the ONNX exports of the encoder + packaged delta under the model dir, as
`verbatim setup` does, then scores the same dev texts (read at run time from ../shared/data)
with torch (bf16 where the CPU has it, the training path), ONNX Runtime fp32, ONNX Runtime
int8, OpenVINO static int8 and OpenVINO bf16, and prints docs/s of the sentiment pass,
macro-F1, label agreement with torch and with ONNX fp32 (what int8 quantisation changed), and
the CPU model + kernel path. `--compare-int8`
also scores another int8 file of the same weights in the same run (e.g. the build of a former
format, which `verbatim setup` leaves beside the current one). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sentiment_data import eval_sets  # noqa: E402

from core.settings import load_settings  # noqa: E402
from jobs.evaluate import gold_sentiment  # noqa: E402
from nlp.encoder.runtime import (  # noqa: E402
    RUNTIMES,
    EncoderRuntime,
    cpu_description,
    kernel_path,
    onnx_session,
)
from nlp.sentiment import build_runtimes, build_sentiment  # noqa: E402
from nlp.types import POLARITIES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sets", nargs="+", default=["marc_fr/dev"])
    ap.add_argument("--limit", type=int, default=1500)
    ap.add_argument("--compare-int8", type=Path, default=None, help="another int8 ONNX file")
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
    held_out = eval_sets(args.data)  # also the Trustpilot splits no file holds
    for name in args.sets:
        rows = (
            held_out[name]
            if name in held_out
            else [
                json.loads(line)
                for line in (args.data / name).with_suffix(".jsonl").open(encoding="utf-8")
            ]
        )[: args.limit]
        texts = [r["text"] for r in rows]
        gold = [gold_sentiment(r) for r in rows]
        print(
            f"{'set':<14} {'runtime':<13} {'n':>5} {'docs/s':>7} {'macro-F1':>9} "
            f"{'=torch':>7} {'=fp32':>7}"
        )
        preds: dict[str, list[str]] = {}
        built = [rt for rt in RUNTIMES if rt in record["measured"]]  # OpenVINO: if installed
        for rt in [*built, *(["compared"] if args.compare_int8 else [])]:
            model = build_sentiment(
                "embedded",
                model_dir=settings.resolved_model_dir,
                runtime="onnx-int8" if rt == "compared" else rt,
            )
            if rt == "compared":
                session = onnx_session(args.compare_int8)
                model.runtime = EncoderRuntime("onnx-int8", model.encoder, session)
            model.predict(texts[:16])  # warm-up
            t0 = time.perf_counter()
            pred = preds[rt] = [r.label for r in model.predict(texts)]
            dt = time.perf_counter() - t0
            f1 = f1_score(gold, pred, labels=list(POLARITIES), average="macro")
            agree = {
                ref: sum(a == b for a, b in zip(preds[ref], pred, strict=True)) / len(pred)
                for ref in ("torch", "onnx-fp32")
                if ref in preds
            }
            print(
                f"{name:<14} {rt:<13} {len(texts):>5} {len(texts) / dt:>7.1f} {f1:>9.3f} "
                f"{agree.get('torch', float('nan')):>7.3f} "
                f"{agree.get('onnx-fp32', float('nan')):>7.3f}",
                flush=True,
            )
            del model


if __name__ == "__main__":
    main()

"""Sentiment dev figures for every backend, beside the TF-IDF baseline, in one run.

    python benchmarks/eval_sentiment.py                       # embedded (shipped) + lexicon + tfidf
    python benchmarks/eval_sentiment.py --backends embedded --model-path DIR

Eval sets (read at run time from ../shared/data, or VERBATIM_SHARED_DATA): marc_fr/dev,
trustpilot_fr test split (20% by id hash, never trained on) as it comes and stratified by class
(like the hidden test), deft2017_tweets/dev, tripadvisor_fr/dev. The CPU model is printed with
the speed column (docs/s of `predict`, shared machines give pessimistic figures). The TF-IDF
baseline is trained on the same corpus as the embedded model
(benchmarks/sentiment_data.training_rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentiment_data import eval_sets, training_rows  # noqa: E402

from core.settings import load_settings  # noqa: E402
from jobs.evaluate import gold_sentiment  # noqa: E402
from nlp.sentiment import build_sentiment  # noqa: E402
from nlp.types import POLARITIES  # noqa: E402


def scores(gold: list[str], pred: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "macro_f1": f1_score(gold, pred, labels=list(POLARITIES), average="macro"),
        "accuracy": accuracy_score(gold, pred),
    }


def cpu_model() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build(name: str, model_path: str | None, runtime: str | None = None):  # noqa: ANN201
    if name == "tfidf":
        from nlp.sentiment.baseline import TfidfSentiment

        train = training_rows()
        return TfidfSentiment().fit([r["text"] for r in train], [gold_sentiment(r) for r in train])
    settings = load_settings()
    return build_sentiment(
        name,
        path=model_path,
        model_dir=settings.resolved_model_dir,
        runtime=runtime or settings.encoder_runtime,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="embedded,lexicon,tfidf")
    ap.add_argument("--sets", default=None, help="comma-separated subset of the eval sets")
    ap.add_argument("--model-path", default=None, help="delta dir for the embedded backend")
    ap.add_argument(
        "--runtime",
        default=None,
        help="encoder runtime of the embedded backend: auto (default: settings.encoder_runtime, "
        "what `verbatim analyze` uses), torch, onnx-int8, onnx-fp32, openvino-int8, openvino-bf16",
    )
    ap.add_argument("--confusion", action="store_true")
    args = ap.parse_args()
    sets = eval_sets()
    if args.sets:
        sets = {k: v for k, v in sets.items() if k in args.sets.split(",")}
    print(f"CPU: {cpu_model()}")
    print(f"{'backend':<10} {'set':<28} {'n':>5} {'macro-F1':>9} {'acc':>6} {'docs/s':>8}")
    for name in args.backends.split(","):
        model = build(name, args.model_path, args.runtime)
        runtime = getattr(getattr(model, "runtime", None), "name", None)
        if runtime:
            print(f"{name}: encoder runtime {runtime}", flush=True)
        for set_name, rows in sets.items():
            gold = [gold_sentiment(r) for r in rows]
            t0 = time.perf_counter()
            pred = [r.label for r in model.predict([r["text"] for r in rows])]
            rate = len(rows) / (time.perf_counter() - t0)
            s = scores(gold, pred)
            print(
                f"{name:<10} {set_name:<28} {len(rows):>5} {s['macro_f1']:>9.4f} "
                f"{s['accuracy']:>6.3f} {rate:>8.1f}",
                flush=True,
            )
            if args.confusion:
                from sklearn.metrics import confusion_matrix

                print(confusion_matrix(gold, pred, labels=list(POLARITIES)))


if __name__ == "__main__":
    main()

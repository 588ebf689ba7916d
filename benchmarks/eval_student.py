"""A smaller student for the embedded sentiment model (issue 12): is it worth shipping?

    python benchmarks/make_sentiment_corpus.py /tmp/sentiment_train.jsonl
    python benchmarks/eval_student.py --data /tmp/sentiment_train.jsonl \\
        [--layers 0,2,4,7,9,11] [--trainable 5] [--epochs 2] [--work /tmp/verbatim-student]
    # or a student already trained (verbatim train sentiment --teacher ... --out DIR):
    VERBATIM_SENTIMENT_MODEL_PATH=DIR verbatim setup
    python benchmarks/eval_student.py --student DIR [--rounds 3]

The student keeps `--layers` of the shipped model (the encoder with the packaged delta
applied), starts from its heads, and is fine-tuned by the project's trainer
(`nlp.sentiment.training.fit_sentiment`, same corpus, split and calibration as the shipped
delta). Then, in one process: its ONNX int8 build (`verbatim setup`'s builder) against the
teacher's recorded runtime, `predict` docs/s on marc_fr/dev (alternated, `--rounds` times),
and 3-class macro-F1 of both on the dev sets of `eval_sentiment.py`. Prints figures; ships nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_sentiment import scores  # noqa: E402
from sentiment_data import eval_sets  # noqa: E402

from core.settings import load_settings  # noqa: E402
from jobs.evaluate import gold_sentiment  # noqa: E402
from jobs.train_sentiment import read_labelled, split_rows  # noqa: E402
from nlp.encoder import EncoderConfig, load_encoder  # noqa: E402
from nlp.encoder.runtime import (  # noqa: E402
    ONNX_INT8,
    EncoderRuntime,
    build_runtime_dir,
    cpu_description,
    onnx_session,
)
from nlp.sentiment import build_sentiment  # noqa: E402
from nlp.sentiment.embedded import (  # noqa: E402
    apply_delta,
    keep_layers,
    make_heads,
    packaged_model_dir,
    read_config,
)
from nlp.sentiment.training import TrainConfig, fit_sentiment  # noqa: E402


def trained_student(args: argparse.Namespace, model_dir: Path) -> tuple[Any, str]:
    """The 6-layer student of 2026-12-02, fine-tuned here on the labels alone."""
    import torch

    keep = [int(x) for x in args.layers.split(",")]
    delta = packaged_model_dir()
    encoder = load_encoder("embedded", cache_dir=model_dir, config=EncoderConfig())
    config = read_config(delta)
    head_state = apply_delta(encoder.model, delta, "float32", name=encoder.name)
    heads = make_heads(encoder.hidden_size, config.dropout)
    heads.load_state_dict({k: torch.from_numpy(v) for k, v in head_state.items()})
    keep_layers(encoder.model, keep)

    train, val = split_rows(read_labelled([args.data]), 8)
    config.trainable_layers = args.trainable
    t0 = time.perf_counter()
    student = fit_sentiment(
        encoder,
        train,
        val,
        config,
        TrainConfig(epochs=args.epochs),
        report=lambda m: print(m, flush=True),
        init_heads=heads,
    )
    print(f"trained in {time.perf_counter() - t0:.0f}s: {student.config.training}", flush=True)

    encoder.model.float().eval()
    build_runtime_dir(encoder, args.work, fingerprint="student")
    student.runtime = EncoderRuntime("onnx-int8", encoder, onnx_session(args.work / ONNX_INT8))
    return student, f"onnx-int8, {len(keep)} layers"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="make_sentiment_corpus.py output (to train one)")
    ap.add_argument(
        "--student",
        type=Path,
        help="a trained student delta (verbatim train sentiment --teacher ...) instead: "
        "its runtime is the one `VERBATIM_SENTIMENT_MODEL_PATH=DIR verbatim setup` built",
    )
    ap.add_argument("--layers", default="0,2,4,7,9,11", help="teacher layers the student keeps")
    ap.add_argument("--trainable", type=int, default=5, help="top student layers trained")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/verbatim-student"))
    ap.add_argument("--rounds", type=int, default=2, help="alternated timing rounds")
    args = ap.parse_args()
    if (args.data is None) == (args.student is None):
        ap.error("give --data (train a student here) or --student DIR (a trained one)")
    model_dir = load_settings().resolved_model_dir
    print(f"CPU: {cpu_description()}", flush=True)
    if args.student is not None:
        student = build_sentiment(
            "embedded", model_dir=model_dir, runtime="auto", path=args.student
        )
        what = f"{student.runtime.name}, {student.encoder.num_layers} layers"
    else:
        student, what = trained_student(args, model_dir)
    teacher = build_sentiment("embedded", model_dir=model_dir, runtime="auto")
    print(f"teacher runtime {teacher.runtime.name}; student {what}")
    sets = {k: v for k, v in eval_sets().items() if k != "trustpilot_fr/test20"}
    marc = [r["text"] for r in sets["marc_fr/dev"]]
    for rnd in range(args.rounds):
        for name, model in (("teacher", teacher), ("student", student)):
            t = time.perf_counter()
            model.predict(marc)
            rate = len(marc) / (time.perf_counter() - t)
            print(f"round {rnd} {name}: {rate:.1f} docs/s (predict, marc_fr/dev)", flush=True)
    for set_name, rows in sets.items():
        gold = [gold_sentiment(r) for r in rows]
        for name, model in (("teacher", teacher), ("student", student)):
            pred = [r.label for r in model.predict([r["text"] for r in rows])]
            f1 = scores(gold, pred)["macro_f1"]
            print(f"{name} {set_name:<28} {len(rows):>5} macro-F1 {f1:.4f}", flush=True)


if __name__ == "__main__":
    main()

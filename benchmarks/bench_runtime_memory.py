"""Memory of the int8 encoder build: today's format vs the former one (fp32 embedding table).

    nice -n 10 python benchmarks/bench_runtime_memory.py [--n 300] [--work /tmp/verbatim-rtmem]

Takes the ONNX build `verbatim setup` made under the model dir (built here if missing), makes
the former int8 file from its fp32 export (MatMul weights int8, the 250k x 384 word-embedding
table left fp32) under --work, then prints for each: file size, RSS of a fresh process after
loading the ONNX Runtime session and after running it over the first --n marc_fr/dev texts
(read at run time from ../shared/data), CPU seconds of the encoder pass (alternated A/B in one
process), and the agreement of document vectors and sentiment probabilities. Prints figures
with the CPU model; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.encoder.runtime import (  # noqa: E402
    ONNX_FP32,
    ONNX_INT8,
    EncoderRuntime,
    cpu_description,
    onnx_session,
)


def rss_mb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def child(onnx_file: str, batches_file: str) -> None:
    """Fresh process: session RSS after load and after the batches."""
    before = rss_mb()
    session = onnx_session(Path(onnx_file))
    loaded = rss_mb()
    with np.load(batches_file) as data:
        for k in range(int(data["n"])):
            session.run(["hidden"], {"input_ids": data[f"i{k}"], "attention_mask": data[f"m{k}"]})
    print(json.dumps({"before": before, "loaded": loaded, "ran": rss_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--work", type=Path, default=Path("/tmp/verbatim-rtmem"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from core.settings import load_settings
    from nlp.sentiment import build_runtimes, build_sentiment
    from nlp.sentiment.embedded import EmbeddedSentiment, packaged_model_dir, read_heads

    settings = load_settings()
    build = Path(build_runtimes(settings.resolved_model_dir)["path"])
    args.work.mkdir(parents=True, exist_ok=True)
    former = args.work / "encoder-int8-fp32-embeddings.onnx"
    if not former.is_file():
        quantize_dynamic(
            str(build / ONNX_FP32),
            str(former),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    files = {"former (fp32 table)": former, "current (fp16 table)": build / ONNX_INT8}
    current = build_sentiment(
        "embedded", model_dir=settings.resolved_model_dir, runtime="onnx-int8"
    )
    assert isinstance(current, EmbeddedSentiment)
    enc = current.encoder
    old = EmbeddedSentiment(
        enc,
        None,
        current.config,
        EncoderRuntime("onnx-int8", enc, onnx_session(former)),
        head_weights=read_heads(packaged_model_dir()),
    )
    models = {"former (fp32 table)": old, "current (fp16 table)": current}
    rows = (args.data / "marc_fr" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in rows[: args.n]]
    batches = list(enc.np_batches(enc.token_ids(texts, current.config.max_length)))
    batches_file = args.work / "batches.npz"
    arrays: dict[str, np.ndarray] = {"n": np.array(len(batches))}
    for k, (_, ids, mask) in enumerate(batches):
        arrays[f"i{k}"], arrays[f"m{k}"] = ids, mask
    np.savez(batches_file, **arrays)

    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['features'])})")
    print(f"{len(texts)} marc_fr/dev texts, {len(batches)} length-bucketed batches")
    print(f"{'build':<22} {'file MB':>8} {'RSS load':>9} {'RSS run':>8} {'peak':>6}")
    for name, file in files.items():
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(file), str(batches_file)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{name:<22} {file.stat().st_size / 1e6:>8.0f} {r['loaded']['VmRSS']:>9} "
            f"{r['ran']['VmRSS']:>8} {r['ran']['VmHWM']:>6}  (MB; RSS of a bare process "
            f"{r['before']['VmRSS']})"
        )
    docs = {name: m.encode_docs(texts) for name, m in models.items()}
    a, b = docs.values()
    cos = (a.vectors * b.vectors).sum(1)
    pa = np.array([[r.probs[c] for c in sorted(r.probs)] for r in a.results()])
    pb = np.array([[r.probs[c] for c in sorted(r.probs)] for r in b.results()])
    diff = np.abs(pa - pb).max(1)
    states = max(float(np.abs(x - y).max()) for x, y in zip(a.states, b.states, strict=True))
    print(
        f"current vs former: document-vector cosine min {cos.min():.5f}, mean {cos.mean():.6f}; "
        f"sentiment probability max |diff| {diff.max():.5f}; labels changed "
        f"{int((pa.argmax(1) != pb.argmax(1)).sum())}/{len(texts)}; token states max |diff| "
        f"{states:.5f}"
    )
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):  # alternated: the machine's load hits both alike
        for name, m in models.items():
            t0 = time.process_time()
            for _, ids, mask in batches:
                m.runtime.hidden(ids, mask)
            seconds[name].append(time.process_time() - t0)
    for name, s in seconds.items():
        print(
            f"CPU-s per encoder pass, {name}: {' / '.join(f'{x:.2f}' for x in s)} "
            f"(best {min(s) / len(texts) * 1000:.1f} ms per text)"
        )


if __name__ == "__main__":
    main()

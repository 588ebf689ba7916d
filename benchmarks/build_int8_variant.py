"""Other quantisations of the embedded encoder, to measure against the one `verbatim setup` builds.

    nice -n 10 python benchmarks/build_int8_variant.py OUT.onnx --int8-ffn-layers 7-11
    nice -n 10 python benchmarks/build_int8_variant.py OUT.onnx --all-int8
    nice -n 10 python benchmarks/build_int8_variant.py OUT.onnx --nbits 8
    python benchmarks/bench_runtime.py --sets marc_fr/dev deft2017_tweets/dev \
        --compare-int8 OUT.onnx

The default build (runtime format 4) keeps each layer's two output projections fp32: their
inputs carry outlier channels that per-tensor dynamic int8 clips. Variants:

- `--int8-ffn-layers A-B` / `--int8-attention-output`: quantise those output projections too
  (FFN down projections of layers A..B; the attention output projections of all layers), with
  the same SmoothQuant migration as the default build.
- `--all-int8`: every MatMul int8 (smoothed).
- `--nbits 8|4`: every MatMul as ONNX Runtime's MatMulNBits (block-wise weights, 32 per block,
  `accuracy_level` 4: activations quantised to int8 per token and block, so no text's scores
  depend on its batch neighbours), from the fp32 export.

Builds from the fp32 export `verbatim setup` left under the model dir. Prints what it built
and, with `--rounds N`, the encoder's probe reviews/s of the default int8 build and the
variant, alternated N times in this run (`measure`, as `verbatim setup` times runtimes);
bench_runtime.py --compare-int8 scores it (macro-F1, labels that differ from fp32).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import load_settings  # noqa: E402
from nlp.encoder.runtime import (  # noqa: E402
    ONNX_FP32,
    ONNX_INT8,
    EncoderRuntime,
    cpu_description,
    input_uses,
    kernel_path,
    measure,
    onnx_session,
    probe_feeds,
    quantize_int8,
)
from nlp.sentiment import build_runtimes, build_sentiment  # noqa: E402

NBITS_BLOCK = 32


def layer_range(text: str) -> set[int]:
    """Layers from "7-11" or "7,9,11"."""
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def keep_fp32(ffn_layers: set[int], attention_output: bool):  # noqa: ANN201
    """Which output projections stay fp32 (by name: .../layer.7/output/dense/MatMul)."""

    def keep(name: str) -> bool:
        if "/attention/" in name:
            return not attention_output
        found = re.search(r"layer\.(\d+)/", name)
        return not (found and int(found.group(1)) in ffn_layers)

    return keep


def to_nbits(src: Path, dst: Path, bits: int) -> int:
    """Every MatMul with a constant weight -> com.microsoft MatMulNBits (symmetric blocks)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    uses = input_uses(graph)
    nodes, done = list(graph.node), 0
    for i, node in enumerate(nodes):
        if node.op_type != "MatMul" or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        k, n = w.shape
        k_blocks = -(-k // NBITS_BLOCK)
        rows = np.zeros((n, k_blocks * NBITS_BLOCK), np.float32)
        rows[:, :k] = w.T
        blocks = rows.reshape(n, k_blocks, NBITS_BLOCK)
        top = 2 ** (bits - 1) - 1
        scale = np.maximum(np.abs(blocks).max(-1), 1e-12) / top
        q = (np.clip(np.rint(blocks / scale[..., None]), -top, top) + 2 ** (bits - 1)).astype(
            np.uint8
        )
        packed = q if bits == 8 else q[..., 0::2] | (q[..., 1::2] << 4)
        b_name, s_name = node.input[1] + "_nbits", node.input[1] + "_nbits_scales"
        graph.initializer.extend(
            [
                numpy_helper.from_array(packed, b_name),
                numpy_helper.from_array(scale.astype(np.float32).reshape(-1), s_name),
            ]
        )
        nodes[i] = helper.make_node(
            "MatMulNBits",
            [node.input[0], b_name, s_name],
            list(node.output),
            name=node.name + "_nbits",
            domain="com.microsoft",
            K=k,
            N=n,
            bits=bits,
            block_size=NBITS_BLOCK,
            accuracy_level=4,
        )
        done += 1
        if uses[node.input[1]] == 1:
            graph.initializer.remove(weights[node.input[1]])
    graph.ClearField("node")
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--int8-ffn-layers", type=layer_range, default=set())
    ap.add_argument("--int8-attention-output", action="store_true")
    ap.add_argument("--all-int8", action="store_true")
    ap.add_argument("--nbits", type=int, choices=(4, 8), default=None)
    ap.add_argument("--rounds", type=int, default=0, help="then time it against the default")
    args = ap.parse_args()
    settings = load_settings()
    record = build_runtimes(settings.resolved_model_dir)  # the fp32 export, as setup builds it
    built = Path(record["path"])
    encoder = build_sentiment(
        "embedded", model_dir=settings.resolved_model_dir, runtime="onnx-int8"
    ).encoder  # type: ignore[attr-defined]
    if args.nbits:
        done = to_nbits(built / ONNX_FP32, args.out, args.nbits)
        print(f"{args.out}: {done} MatMuls as {args.nbits}-bit")
    else:
        ffn = set(range(64)) if args.all_int8 else args.int8_ffn_layers
        keep = keep_fp32(ffn, args.all_int8 or args.int8_attention_output)
        done = quantize_int8(built / ONNX_FP32, args.out, probe_feeds(encoder), keep_fp32=keep)
        print(f"{args.out}: smoothing {done}")
    if args.rounds:
        print(f"cpu {cpu_description()}, kernels {kernel_path()}")
        runtimes = {
            name: EncoderRuntime("onnx-int8", encoder, onnx_session(path))
            for name, path in (("default int8", built / ONNX_INT8), ("variant", args.out))
        }
        speeds: dict[str, list[float]] = {name: [] for name in runtimes}
        for _ in range(args.rounds):
            for name, rt in runtimes.items():
                speeds[name].append(measure(rt, encoder, repeats=1, n=256))
        for name, values in speeds.items():
            print(f"{name:>13}: probe reviews/s " + " ".join(f"{v:.1f}" for v in values))
        ratio = np.median(speeds["variant"]) / np.median(speeds["default int8"])
        print(f"variant / default (medians): x{ratio:.2f}")


if __name__ == "__main__":
    main()

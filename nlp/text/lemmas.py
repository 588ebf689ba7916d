"""French lemmas from a surface-form lookup table, without running a tagger (nor spaCy).

spaCy's French pipeline lemmatises with rules over the part of speech its tagger predicts;
on the analysis hot path that tagger dominates the rules' cost (≈5 ms a review on 2 cores).
The rule detector only needs lemmas to meet taxonomy seeds ("livrés" -> "livrer",
"remboursements" -> "remboursement"), which the pipeline's own `lemma_lookup` table answers
in one hash lookup per word. The table is the one shipped inside the installed spaCy model
(no download). Loading that pipeline costs seconds (spaCy, thinc, torch, the French tokenizer
exceptions), so `LemmaTable` keeps the table's own content — spaCy's 64-bit string hashes and
their lemmas — in a small file built once (`verbatim setup`, or the first use) and hashes
words with the very function spaCy uses (MurmurHash64A of the UTF-8 bytes, seed 1, from the
`murmurhash` package spaCy depends on). Lookups are memoised per word.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

TABLE_FORMAT = 1
SPACY_MODEL = "fr_core_news_sm"


def spacy_hash64() -> Callable[[bytes, int, int], int]:
    """murmurhash's C `hash64(key, length, seed)`, the function behind spaCy's string ids
    (spacy/strings.pyx: hash_utf8 = hash64(bytes, len, 1)), called through its C-API capsule."""
    from murmurhash import mrmr

    capsule = mrmr.__pyx_capi__["hash64"]
    # Fresh function objects (item access): never retype ctypes.pythonapi's shared ones.
    get_name = ctypes.pythonapi["PyCapsule_GetName"]
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi["PyCapsule_GetPointer"]
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    pointer = get_pointer(capsule, get_name(capsule))
    proto = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint64)
    return proto(pointer)


class LemmaTable:
    """spaCy's `lemma_lookup` table without spaCy: `get(word) -> lemma | None`, as
    `spacy.lookups.Table.get` answers it (symbol names such as "ADJ" are spaCy ids, not
    hashes: their answers are stored as they are)."""

    def __init__(self, keys: np.ndarray, lemmas: list[str], symbols: dict[str, str | None]):
        order = np.argsort(keys, kind="stable")
        self._keys = np.ascontiguousarray(keys[order], dtype=np.uint64)
        self._lemmas = [lemmas[i] for i in order]
        self._symbols = symbols
        self._hash = spacy_hash64()

    def __len__(self) -> int:
        return len(self._lemmas)

    def key(self, word: str) -> int:
        data = word.encode("utf8")
        return int(self._hash(data, len(data), 1))

    def get(self, word: str) -> str | None:
        if not word:
            return None
        if word in self._symbols:
            return self._symbols[word]
        try:
            key = np.uint64(self.key(word))
        except UnicodeEncodeError:  # lone surrogates: spaCy cannot hash them either
            return None
        i = int(np.searchsorted(self._keys, key))
        if i < len(self._keys) and self._keys[i] == key:
            return self._lemmas[i]
        return None

    # --- building and persistence ----------------------------------------------------------
    @classmethod
    def from_spacy(cls, nlp: Any) -> LemmaTable | None:
        """The lookup table of a loaded spaCy pipeline's lemmatizer (None if it has none)."""
        try:
            lookups = nlp.get_pipe("lemmatizer").lookups
            if "lemma_lookup" not in lookups.tables:
                return None
            table = lookups.get_table("lemma_lookup")
        except (AttributeError, KeyError):
            return None
        from spacy.symbols import IDS

        items = [(int(k), _first(v)) for k, v in table.items()]
        if any(not isinstance(v, str) or not v or "\n" in v for _, v in items):
            return None  # a table this format cannot hold as it is: keep spaCy's own
        keys = np.fromiter((k for k, _ in items), dtype=np.uint64, count=len(items))
        # Symbol names ("ADJ", "possessive"...) are looked up by their spaCy id, not a hash.
        symbols = {s: _first(table.get(s)) for s in IDS if s}
        return cls(keys, [v for _, v in items], symbols)  # type: ignore[misc]

    def save(self, path: Path) -> None:
        """One .npz (keys, lemmas, symbols); written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                format=np.array(TABLE_FORMAT),
                keys=self._keys,
                lemmas=np.array("\n".join(self._lemmas)),
                symbols=np.array(json.dumps(self._symbols, ensure_ascii=False)),
            )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> LemmaTable | None:
        """A saved table, or None when it is missing or of another format."""
        try:
            with np.load(Path(path)) as data:
                if int(data["format"]) != TABLE_FORMAT:
                    return None
                keys = data["keys"]
                lemmas = str(data["lemmas"]).split("\n")
                symbols = json.loads(str(data["symbols"]))
        except (OSError, ValueError, KeyError):
            return None
        if len(lemmas) != len(keys):
            return None
        return cls(keys, lemmas, symbols)


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def table_path(cache_dir: Path, model: str = SPACY_MODEL) -> Path | None:
    """Where the table of the installed spaCy model is kept (None: model not installed)."""
    try:
        version = metadata.version(model.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None
    return Path(cache_dir) / "lemmas" / f"{model}-{version}.npz"


class LookupLemmatizer:
    """`lemma(word) -> str | None` from a lookup table (a LemmaTable, a spaCy lookups Table or
    any mapping word -> lemma or [lemma, ...])."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._memo: dict[str, str | None] = {}

    @classmethod
    def from_spacy(cls, nlp: Any) -> LookupLemmatizer | None:
        """The lookup table of a loaded spaCy pipeline's lemmatizer (None if it has none)."""
        try:
            lookups = nlp.get_pipe("lemmatizer").lookups
            if "lemma_lookup" not in lookups.tables:
                return None
            return cls(lookups.get_table("lemma_lookup"))
        except (AttributeError, KeyError):
            return None

    def lemma(self, word: str) -> str | None:
        try:
            return self._memo[word]
        except KeyError:
            pass
        value = self._table.get(word)
        if value is None and word != word.lower():
            value = self._table.get(word.lower())
        value = _first(value)
        self._memo[word] = value
        return value

"""PII masking of free-form fields (metadata keys and values) with no database layer:
`verbatim analyze`, a file-to-file command, masks with it without importing SQLAlchemy."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings
    from nlp.text import PiiMasker

MAX_META_VALUE = 1_000

_KEY_CACHE: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
_KEY_CACHE_SIZE = 10_000


def storable_text(text: str) -> str:
    """Drop NUL (PostgreSQL refuses it in text) and lone surrogates (JSON "\\ud800" escapes,
    which no database driver can encode)."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def masked_key(key: str, mask: Callable[[str], str]) -> str:
    """A metadata key, PII-masked and bounded like a value ({"jean@x.fr": "ok"} kept the
    address). Remembered per masker: a CSV repeats its extra column names on every row, and
    a masker with NER costs a spaCy call per string."""
    try:
        cache = _KEY_CACHE.setdefault(mask, {})
    except TypeError:  # not weakly referenceable: mask every time
        cache = {}
    masked = cache.get(key)
    if masked is None:
        masked = mask(storable_text(key[:MAX_META_VALUE]))
        if len(cache) < _KEY_CACHE_SIZE:
            cache[key] = masked
    return masked


def build_masker(settings: Settings) -> PiiMasker:
    """The PII masker of ingest, `POST /analyze` and `verbatim analyze`: rules + spaCy NER for
    names (when `pii_ner` is on and the model loads)."""
    from nlp.text import PiiMasker, load_ner

    return PiiMasker(nlp=load_ner() if settings.pii_ner else None)

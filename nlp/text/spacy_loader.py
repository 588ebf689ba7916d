"""Load a spaCy pipeline without dragging PyTorch into the process.

spaCy imports thinc, and thinc imports torch whenever it is installed (`thinc.compat`), even
for CNN pipelines such as fr_core_news_sm that never touch it: ~180 MB of resident memory in
the API and ingest processes, where the encoder runs on ONNX Runtime. While spaCy is first
imported, torch is made unimportable (a `None` entry in `sys.modules`, Python's documented way
to block an import), so thinc records "no torch"; the entry is removed right after, so code
that really needs torch later imports it normally. When torch is already loaded nothing is
hidden (thinc then uses it as usual).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def import_spacy() -> Any:
    """`import spacy`, keeping torch out when it is not loaded yet."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


def load_pipeline(name: str, *, exclude: Iterable[str] = (), disable: Iterable[str] = ()) -> Any:
    """`spacy.load(name, exclude=..., disable=...)` with spaCy imported by `import_spacy`."""
    return import_spacy().load(name, exclude=list(exclude), disable=list(disable))

"""French text preparation: normalisation, PII masking, language id, tokens and clauses."""

from nlp.text.language import detect_language, is_french
from nlp.text.normalize import fold_accents, normalize_text
from nlp.text.pii import PiiConfig, PiiMasker, load_ner, mask_nested, mask_pii

__all__ = [
    "PiiConfig",
    "PiiMasker",
    "detect_language",
    "fold_accents",
    "is_french",
    "load_ner",
    "mask_nested",
    "mask_pii",
    "normalize_text",
]

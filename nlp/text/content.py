"""Whether a verbatim holds anything to judge.

After PII masking some verbatims are only placeholders (« <EMAIL> », « <PHONE> »), and some
were never more than punctuation (« ... », « ?? »), a link, a mention (« @SNCF ») or a number
(« 12345 »). The encoder reads such a text as a very short review, and short reviews were
praise where it learnt (Trustpilot's): « <EMAIL> » came out positive at 0.94. Nothing in them
is an opinion, so the analyzer gives them a neutral verdict (see nlp/analyzer.py).

An emoji (« 😡😡 », « 👍 », « ★★★★★ »), an emoticon (« :) », « :-( », « <3 »), a mark out
of a scale (« 5/5 », « 0/10 ») or pluses (« +++ ») is an opinion: those texts have content
and are scored.
"""

from __future__ import annotations

import re
import unicodedata

# What holds no word of the writer's: PII placeholders, links, @mentions.
# Placeholders are upper case as the masker writes them: « <merci> » is a word.
_NOT_WORDS = re.compile(r"<[A-Z]+>|(?i:https?://|www\.)\S+|@\w+")
_LETTER = re.compile(r"[^\W\d_]")
# A mark out of a scale: « 5/5 », « 10 / 10 », « 4,5/5 »; not a date (« 10/12/2026 »).
_MARK = re.compile(r"(?<![\d/])\d+(?:[.,]\d+)?\s*/\s*\d+(?![\d/])")
# Emoticons without a letter (« :D », « xD » have one): eyes, a nose or a tear, a mouth;
# the mouth first (« (: »); hearts and the few faces typed without eyes.
_EMOTICON = re.compile(
    r"[:;=][-'^o]?[()\[\]/\\|*]|[()\[\]][-']?[:;=]|<3|\^_*\^|-_-",
)
# Emoji and pictographs (category So) start at the general punctuation block; the Latin-1
# symbols below it (« ° », « © ») say nothing.
_FIRST_PICTOGRAPH = 0x2000


def has_content(text: str) -> bool:
    """True when `text` holds a word, an emoji or emoticon, or a mark out of a scale, once
    PII placeholders, links and @mentions are set aside; False for a text with nothing to
    judge (placeholders, punctuation, numbers, a link or a mention only)."""
    rest = _NOT_WORDS.sub(" ", text or "")
    if _LETTER.search(rest) or _MARK.search(rest) or _EMOTICON.search(rest):
        return True
    if "++" in rest:  # « +++ », French shorthand for approval; one « + » is « +33 », « 45+41 »
        return True
    return any(ord(ch) >= _FIRST_PICTOGRAPH and unicodedata.category(ch) == "So" for ch in rest)

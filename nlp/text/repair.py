"""Repairs of what exports do to a text before it reaches us: HTML typed into it by a web form
(« tr&egrave;s rapide&nbsp;!<br>Merci ») and UTF-8 read as Windows-1252 (« trÃ¨s », « dÃ©Ã§u »).

Both repair only what cannot be prose: an entity needs its « ; » and a tag is one of a closed
list, so « prix < 20 € » and « Dupont & fils » stay; a garbled accent is a sequence that no
French text contains and that decodes as UTF-8 (« Ã© » → « é »), so correct text never changes.
"""

from __future__ import annotations

import contextlib
import html
import re
import unicodedata

# An entity with its ";" only: html.unescape alone also reads "&not" in "&notamment" as "¬".
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Attributes as HTML writes them, each with its value (name="value"): "<a bientôt>" and
# "<a plus tard>" are prose, not links (a bare name, HTML's boolean attribute, read words).
_ATTRS = r"""(?:\s+[A-Za-z-]+\s*=\s*(?:"[^"<>]*"|'[^'<>]*'|[^\s"'<>]+))*"""
_BREAK = re.compile(r"(?i)<(?:br|/?p|/?div|/?li)" + _ATTRS + r"\s*/?>")
_INLINE = re.compile(r"(?i)</?(?:b|i|u|em|strong|span|font|a|ul|ol)" + _ATTRS + r"\s*/?>")

# What a UTF-8 continuation byte (0x80-0xBF) reads as in cp1252, and in latin-1 (0x80-0x9F
# as control characters, the bytes cp1252 leaves undefined included).
_CONT_BYTES: dict[str, int] = {chr(b): b for b in range(0x80, 0xC0)}
for _b in range(0x80, 0xA0):
    with contextlib.suppress(UnicodeDecodeError):  # 0x81, 0x8D…: no cp1252 character
        _CONT_BYTES[bytes([_b]).decode("cp1252")] = _b
_CONT = "[" + re.escape("".join(_CONT_BYTES)) + "]"
# The lead bytes of French mojibake only: Â (C2: « Â« » Â°), Ã (C3: é è à ç ê ô É…), Å (C5:
# œ Œ), â (E2: ’ “ ” … – € •), ï (EF: the BOM « ï»¿ », « ï¿½ ») and ð (F0: emojis). Others
# would catch correct text: « CAFÉ\u00a0» » (É, then a no-break space) decodes as UTF-8 too.
_MOJIBAKE = re.compile(f"[\u00c2\u00c3\u00c5]{_CONT}|[\u00e2\u00ef]{_CONT}{{2}}|\u00f0{_CONT}{{3}}")
# « à » is C3 A0: « Ã » and a no-break space, which some tools turned into a plain space. Read
# as « à » only in a text that had unambiguous mojibake (« SÃO PAULO » is no mojibake).
_A_GRAVE = re.compile("\u00c3(?= |$)")
_TRIGGERS = re.compile("[&<\u00c2\u00c3\u00c5\u00e2\u00ef\u00f0]")


def _from_cp1252(match: re.Match[str]) -> str:
    seq = match.group()
    try:
        char = bytes(ord(seq[0]) if i == 0 else _CONT_BYTES[ch] for i, ch in enumerate(seq)).decode(
            "utf-8"
        )
    except UnicodeDecodeError:
        return seq
    # No text garbles into a private-use or unassigned character: that is correct text,
    # « Dubaï\u00a0» » (ï, a no-break space, ») read as U+F83B lost its « ï » and its « ».
    return seq if unicodedata.category(char) in ("Co", "Cn") else char


def fix_mojibake(text: str) -> str:
    """UTF-8 that was read as cp1252 (or latin-1) read back: « trÃ¨s dÃ©Ã§u » → « très
    déçu », « lâ€™appli » → « l'appli ». Twice at most: a text garbled twice (« ÃƒÂ© »)."""
    for _ in range(2):
        fixed = _MOJIBAKE.sub(_from_cp1252, text)
        if fixed == text:
            break
        text = _A_GRAVE.sub("à", fixed)
    return text


def strip_html(text: str) -> str:
    """Entities decoded, line-break tags (<br>, <p>, <div>, <li>) as line breaks, inline tags
    (<b>, <span>, <a href=…>…) dropped; anything else, a lone < or & included, kept."""
    if "<" in text:
        text = _BREAK.sub("\n", text)
        text = _INLINE.sub("", text)
    if "&" in text:
        text = _ENTITY.sub(lambda m: html.unescape(m.group()), text)
    return text


def repair_text(text: str) -> str:
    """`fix_mojibake` then `strip_html` (the one search below when there is nothing to do)."""
    if not _TRIGGERS.search(text):
        return text
    return strip_html(fix_mojibake(text))

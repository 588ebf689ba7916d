"""Unicode clean-up that keeps what matters for French feedback (accents, emojis)."""

from __future__ import annotations

import re
import unicodedata

from nlp.text.informal import (
    lower_shouting,
    spell_out,
    spell_out_with_offsets,
    unstretch,
    unstretch_with_offsets,
)

# Typographic variants mapped to plain ASCII: customers type both, lexicons use one.
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "\u0060": "'",
        "\u02bc": "'",
        "\uff07": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
    }
)
_QUOTED = re.compile("[" + re.escape("".join(chr(c) for c in _QUOTES)) + "]")
# Zero-width joiners (U+200D) are kept: they glue multi-codepoint emojis together.
_INVISIBLE = {"\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad"}
# What `_keep` drops, as one character class (a C-level `sub` instead of a Python call per
# character): control characters but tab and newline (Cc), surrogates (Cs), private use (Co) and
# the invisible characters above. These categories are closed by Unicode's stability policy.
_DROPPED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u200c\u2060\ufeff"
    "\ud800-\udfff\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]"
)
_SPACES = re.compile(r"[ \t\u00a0\u202f\u2000-\u200a\u3000]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# A character that a step of normalize_text would change or drop (besides NFC): quotes, dropped
# characters, CR, any space but " ". One character class: `search` scans it in C without
# trying an alternation at each position (×3–4 faster than one pattern for everything).
_TO_CHANGE = re.compile(
    _QUOTED.pattern[:-1] + _DROPPED.pattern[1:-1] + "\r\t\u00a0\u202f\u2000-\u200a\u3000]"
)
_SPACED_NEWLINE = re.compile(r"\s\n|\n\s")


def _unchanged(text: str) -> bool:
    """True when normalize_text would return `text` as it is (a non-empty text)."""
    return (
        unicodedata.is_normalized("NFC", text)
        and not _TO_CHANGE.search(text)
        and "  " not in text
        and not text[0].isspace()
        and not text[-1].isspace()
        and ("\n" not in text or not _SPACED_NEWLINE.search(text))
    )


def _keep(ch: str) -> bool:
    if ch in "\n\t ":
        return True
    if ch in _INVISIBLE:
        return False
    cat = unicodedata.category(ch)
    # Cc = control characters, Cs = lone surrogates, Co = private use; drop them all.
    return cat not in ("Cc", "Cs", "Co")


def normalize_text(text: str) -> str:
    """NFC, ASCII quotes/apostrophes/dashes, no control characters, collapsed whitespace.

    Line breaks collapse to a single newline (they often separate title and body);
    accents, case and emojis are kept.
    """
    if not text:
        return ""
    if _unchanged(text):
        return text  # already normalised (most texts, and every text normalised before)
    return _normalize(text)


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    if _QUOTED.search(text):  # translate costs a failed dict lookup per non-ASCII character
        text = text.translate(_QUOTES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DROPPED.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip()


class _FoldTable(dict[int, str]):
    """str.translate table filled on demand: each character maps to its base letter when its
    decomposition is one base + combining marks (1:1, so offsets stay valid)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        decomposed = unicodedata.normalize("NFD", ch)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        # Keep a 1:1 character mapping so offsets stay valid (œ, æ keep their own char).
        value = base if len(base) == 1 else ch
        self[code] = value
        return value


_FOLD = _FoldTable()


def fold_accents(text: str) -> str:
    """Lower-case and strip diacritics ("Reçu" -> "recu"); same length for Latin text."""
    # One C-level translate with a per-character memo: this runs on every token of every text.
    return text.lower().translate(_FOLD)


def _sub_mapped(
    pattern: re.Pattern[str], repl: str, text: str, index: list[int]
) -> tuple[str, list[int]]:
    """re.sub that also carries each output character's source index (repl: one char)."""
    out, idx, pos = [], [], 0
    for m in pattern.finditer(text):
        out.append(text[pos : m.start()])
        idx.extend(index[pos : m.start()])
        out.append(repl)
        idx.append(index[m.start()])
        pos = m.end()
    out.append(text[pos:])
    idx.extend(index[pos:])
    return "".join(out), idx


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """normalize_text(text) and, for each of its characters, the index in `text` it came from
    (so spans found in the original text can be located in what the encoder reads). `text`
    should already be NFC (the analyzer's input is); otherwise indices refer to its NFC form."""
    if not text:
        return "", []
    text = unicodedata.normalize("NFC", text)
    chars: list[str] = []
    index: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\r":
            ch = "\n"
            if i + 1 < n and text[i + 1] == "\n":
                i += 1
        rep = ch.translate(_QUOTES)
        for c in rep:
            if _keep(c):
                chars.append(c)
                index.append(i)
        i += 1
    out, index = _sub_mapped(_SPACES, " ", "".join(chars), index)
    out, index = _sub_mapped(_NEWLINES, "\n", out, index)
    start = len(out) - len(out.lstrip())
    end = len(out.rstrip())
    return out[start:end], index[start:end]


def encoder_text(text: str) -> str:
    """What an encoder reads for `text`: `normalize_text`, then informal writing as plain
    French (`nlp/text/informal.py`: "biiiien" -> "bien", "tjrs" -> "toujours", "NUL" -> "nul")."""
    return lower_shouting(spell_out(unstretch(normalize_text(text))))


def encoder_text_with_offsets(text: str) -> tuple[str, list[int]]:
    """`encoder_text(text)` and, for each of its characters, the index in `text` it stands for
    (see `normalize_with_offsets`)."""
    out, index = spell_out_with_offsets(*unstretch_with_offsets(*normalize_with_offsets(text)))
    return lower_shouting(out), index  # same length

"""Informal writing read as plain French by the encoder: chat spellings written out ("tjrs" ->
"toujours", "pb" -> "problème"), letters repeated for emphasis typed once ("biiiien" -> "bien")
and shouted words in lower case ("NUL, A FUIR").

The fast tier reads them through `french.SMS_MAP` (token norms). The encoder reads the text
itself, and short informal posts flip with a spelling: with the default model "le sav ne répond
jamais" is negative (0.90) and "le sav répond jms" positive (0.55); "pb de livraison" is
positive (0.93). Only spellings that are not also a word, a unit or a product name are
written out ("ds" is a console, "mm" millimetres, "c" and "g" too short to tell).

Stretched words too: "Trop biiiien" is neutral (0.49) where "Trop bien" is positive (0.98),
"Je suis déçuuuue de la livraison" positive, "Livraison trooop lente" barely negative.

Shouting misleads it the same way: "NUL, A FUIR" is positive (0.89), "nul, à fuir" negative
(0.87); "GROS PROBLÈME avec la commande" positive (0.94). Words in capitals are rare in its
training text and split into other pieces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SPELLED_OUT: Mapping[str, str] = {
    "tjrs": "toujours",
    "tjs": "toujours",
    "tjr": "toujours",
    "toujour": "toujours",
    "pb": "problème",
    "pbm": "problème",
    "pbs": "problèmes",
    "bcp": "beaucoup",
    "bcq": "beaucoup",
    "jms": "jamais",
    "jamai": "jamais",
    "pr": "pour",
    "tt": "tout",
    "tte": "toute",
    "tts": "tous",
    "ns": "nous",
    "qd": "quand",
    "kan": "quand",
    "qqs": "quelques",
    "qqch": "quelque chose",
    "qqn": "quelqu'un",
    "cmd": "commande",
    "cde": "commande",
    "cmde": "commande",
    "rmb": "remboursement",
    "rembourst": "remboursement",
    "chui": "je suis",
    "jsuis": "je suis",
    "jsui": "je suis",
    "jsp": "je sais pas",
    "j'suis": "je suis",
    "j'sais": "je sais",
    "jador": "j'adore",
    "jadore": "j'adore",
    "jpp": "j'en peux plus",
    "pk": "pourquoi",
    "pcq": "parce que",
    "pck": "parce que",
    "dsl": "désolé",
    "bjr": "bonjour",
    "slt": "salut",
    "mtn": "maintenant",
    "vrmt": "vraiment",
    "tlm": "tout le monde",
    "tro": "trop",
    "jamé": "jamais",
    "jamè": "jamais",
    "tps": "temps",
    "jai": "j'ai",
    "cest": "c'est",
    "ct": "c'était",
    "koi": "quoi",
    "ke": "que",
    "ki": "qui",
    "dc": "donc",
    "msg": "message",
    "rdv": "rendez-vous",
    "bi1": "bien",
    "rien2": "rien",
}
# Whole words only: not inside a word, an elision ("l'pb"), a hyphenated or dotted name.
_SPELLING = re.compile(
    r"(?<![\w'’.-])("
    + "|".join(re.escape(w) for w in sorted(SPELLED_OUT, key=len, reverse=True))
    + r")(?![\w'’-]|\.\w)",
    re.IGNORECASE,
)


def _written_out(word: str) -> str:
    full = SPELLED_OUT[word.lower()]
    if len(word) > 1 and word.isupper():
        return full.upper()  # "GROS PB" -> "GROS PROBLÈME"
    if word[0].isupper():
        return full[0].upper() + full[1:]
    return full


def spell_out(text: str) -> str:
    """`text` with its chat spellings written out."""
    if not _SPELLING.search(text):
        return text
    return _SPELLING.sub(lambda m: _written_out(m.group(1)), text)


def spell_out_with_offsets(text: str, index: list[int]) -> tuple[str, list[int]]:
    """`spell_out(text)` and, for each of its characters, `index` of the character of `text`
    it stands for (a written-out word's characters point into the short spelling: the first
    ones to its characters in order, the rest to its last character)."""
    if not _SPELLING.search(text):
        return text, index
    out: list[str] = []
    idx: list[int] = []
    pos = 0
    for m in _SPELLING.finditer(text):
        start, end = m.span()
        out.append(text[pos:start])
        idx.extend(index[pos:start])
        full = _written_out(m.group(1))
        out.append(full)
        idx.extend(index[min(start + k, end - 1)] for k in range(len(full)))
        pos = end
    out.append(text[pos:])
    idx.extend(index[pos:])
    return "".join(out), idx


# A letter typed three times or more in a row ("biiiien", "NUUUL", "contenttt"), in a word.
_STRETCH = re.compile(r"([^\W\d_])\1{2,}")
_LETTERS = re.compile(r"[^\W\d_]+")
_LETTER_RUN = re.compile(r"([^\W\d_])\1*")
# Words whose double vowel a stretch keeps ("coooool" is "cool", not "col").
_DOUBLED = frozenset({"cool", "good", "zoom", "alcool", "free", "feel", "speed", "sorry"})
_VOWELS = frozenset("aeiouyàâäéèêëîïôöùûüÿœæ")
_ROMAN = frozenset("IVXLCDM")  # "XXXL", "Louis XIII": sizes and numerals, not a stretch


def _unstretched(word: str) -> list[int]:
    """Indices (into `word`) of the letters its unstretched form keeps. A run of three or more
    of one letter counts once, twice for a consonant between letters ("bellllle" -> "belle",
    "contenttt" -> "content") or where that spells a word of _DOUBLED. A word of one letter
    ("www", "zzz") or of Roman numerals in capitals ("XXXL") stays."""
    runs = [(m.start(), m.end()) for m in _LETTER_RUN.finditer(word)]
    if len(runs) == 1 or (word.isupper() and _ROMAN.issuperset(word)):
        return list(range(len(word)))
    twice = [i for a, b in runs for i in range(a, min(b, a + 2))]
    if "".join(word[i] for i in twice).lower() in _DOUBLED:
        return twice
    keep: list[int] = []
    for a, b in runs:
        if b - a < 3:
            keep.extend(range(a, b))
        elif a > 0 and b < len(word) and word[a].lower() not in _VOWELS:
            keep.extend((a, a + 1))
        else:
            keep.append(a)
    return keep


def _stretched_words(text: str) -> list[tuple[int, int]]:
    """Spans of the words of `text` with a stretched letter (two linear scans: a pattern of a
    word around a run backtracks quadratically on a long string of letters)."""
    if not _STRETCH.search(text):
        return []
    return [m.span() for m in _LETTERS.finditer(text) if _STRETCH.search(m.group())]


def unstretch(text: str) -> str:
    """`text` with letters repeated for emphasis typed once ("Trop biiiien" -> "Trop bien",
    "NUUUL" -> "NUL"), as the tokens' norms read them (nlp/text/french.py)."""
    spans = _stretched_words(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        word = text[start:end]
        out.append(text[pos:start])
        out.append("".join(word[i] for i in _unstretched(word)))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def unstretch_with_offsets(text: str, index: list[int]) -> tuple[str, list[int]]:
    """`unstretch(text)` and, for each of its characters, `index` of the character it is."""
    spans = _stretched_words(text)
    if not spans:
        return text, index
    keep: list[int] = []
    pos = 0
    for start, end in spans:
        keep.extend(range(pos, start))
        keep.extend(start + i for i in _unstretched(text[start:end]))
        pos = end
    keep.extend(range(pos, len(text)))
    return "".join(text[i] for i in keep), [index[i] for i in keep]


# A word of two letters or more ("A" stays: it is often "à" without its accent).
_WORD = re.compile(r"\b[^\W\d_]{2,}\b")


def _lower_same_length(word: str) -> str:
    low = word.lower()
    if len(low) == len(word):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in word)  # "İ" -> "i̇"


def lower_shouting(text: str) -> str:
    """Words written in capitals, in lower case ("NUL, A FUIR" -> "nul, A fuir"; acronyms
    too: "SAV" -> "sav"). One character for one: offsets stay valid."""
    if text == text.lower():
        return text
    return _WORD.sub(lambda m: _lower_same_length(w) if (w := m.group()).isupper() else w, text)

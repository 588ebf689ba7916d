"""Emojis an encoder's vocabulary lacks, read as the nearest one it has.

Multilingual encoders trained on web text up to 2019 (e5, XLM-R) have no piece for most emojis
of Unicode 10 and later: "🤬", "🤮", "🥺" become the unknown token, so "le colis est arrivé
ouvert 🤬" reads as "le colis est arrivé ouvert <unk>" (positive, 0.84, with the default
model; with "😡" it is negative, 0.79). Each of these is mapped to an older emoji of the same
feeling, one character for one, so the character offsets of the text stay valid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# Newer emoji -> an emoji of the same feeling from Unicode 6-9. Only emojis that carry an
# opinion or a feeling; objects and animals are left as they are.
NEWER_EMOJI: Mapping[str, str] = {
    "🤬": "😡",  # cursing face
    "😾": "😡",  # pouting cat
    "🙎": "😡",  # person pouting
    "🤮": "😖",  # vomiting: disgust
    "🤢": "😖",  # nauseated
    "💩": "👎",
    "🥺": "😢",  # pleading
    "🥲": "😢",  # smiling with a tear
    "😿": "😢",  # crying cat
    "🙍": "😞",  # person frowning
    "😧": "😦",  # anguished
    "🤯": "😱",  # exploding head: shocked
    "🥴": "😵",  # woozy
    "🥱": "😴",  # yawning: bored
    "🤥": "😒",  # lying face
    "🤐": "😶",  # zipper mouth: no answer
    "🤫": "😶",
    "🫥": "😶",
    "🫤": "😕",  # diagonal mouth
    "🫠": "😅",  # melting
    "🫢": "😮",
    "🫣": "🙈",
    "🧐": "🤔",  # monocle
    "🤒": "😷",
    "🤕": "😷",
    "🤧": "😷",
    "🥳": "🎉",  # party face
    "😸": "😄",
    "😺": "😃",
    "😼": "😏",
    "😽": "😚",
    "🫂": "🤗",  # people hugging
    "🤍": "❤",
    "🤎": "❤",
    "🫶": "❤",  # heart hands
}


def emoji_table(known: Callable[[str], bool]) -> dict[int, str]:
    """A `str.translate` table for one tokenizer: each newer emoji it lacks (`known` is
    False) whose stand-in it has. Empty for a tokenizer that knows them all."""
    return {ord(new): old for new, old in NEWER_EMOJI.items() if not known(new) and known(old)}

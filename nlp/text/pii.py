"""Mask personal data in feedback before it is stored or shown (emails, phones, IBAN, cards,
order numbers, URLs). Dates, prices and short numbers are left alone."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# Card candidates: 13-19 digits, optionally grouped by spaces or dashes; kept only if Luhn-valid.
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# French phones: +33 / 0033 / 0 then 9 digits, grouped by spaces, dots or dashes.
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)33[ .-]?(?:\(0\)[ .-]?)?[1-9]|0[1-9])(?:[ .-]?\d{2}){4}(?!\d)"
)
_INTL_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\d{2,4}){3,5}(?!\d)")
# Order references: after an order keyword ("commande n° 123456", "n° de commande : AB123"),
# "#A12345678"-style ids, and any bare run of 7+ digits (tracking, client or order numbers).
_ORDER_KEYWORD = re.compile(
    r"(?i)\b((?:commande|cde|cmd|order|facture|colis|suivi|dossier|ticket|réf(?:érence)?|ref)"
    r"(?:\s+(?:n°|no|num(?:éro)?|nº|#)\s*|\s*(?:n°|nº|#)\s*|\s*:\s*|\s+))"
    r"(?=[A-Z0-9-]*\d)([A-Z0-9][A-Z0-9-]{4,})\b"
)
_HASH_ID = re.compile(r"(?<!\w)#\s?(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{5,}\b")
_LONG_DIGITS = re.compile(r"(?<![\d,.])\d{7,}(?![\d,]|\.\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "<CARD>" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def _iban(match: re.Match[str]) -> str:
    compact = match.group(0).replace(" ", "")
    return "<IBAN>" if 15 <= len(compact) <= 34 else match.group(0)


def mask_pii(text: str) -> str:
    """Replace PII with placeholders: <EMAIL>, <URL>, <IBAN>, <CARD>, <PHONE>, <ORDER>."""
    if not text:
        return text
    text = _EMAIL.sub("<EMAIL>", text)
    text = _URL.sub("<URL>", text)
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    text = _PHONE.sub("<PHONE>", text)
    text = _INTL_PHONE.sub("<PHONE>", text)
    text = _HASH_ID.sub("<ORDER>", text)
    text = _ORDER_KEYWORD.sub(lambda m: m.group(1) + "<ORDER>", text)
    text = _LONG_DIGITS.sub("<ORDER>", text)
    return text

"""Offline language identification from stop-word profiles (fr, en, es, de, it, nl, pt).

Good enough to route feedback: French first; short or emoji-only text defaults to French with a
low confidence (most of our traffic is French), text without letters returns "und".
"""

from __future__ import annotations

import re

from nlp.text.normalize import fold_accents

_STOPWORDS: dict[str, frozenset[str]] = {
    "fr": frozenset([
        "le", "la", "les", "un", "une", "des", "du", "de", "et", "est", "je", "j", "tu", "il",
        "elle", "nous", "vous", "ils", "elles", "ne", "pas", "plus", "que", "qui", "quoi", "dans",
        "pour", "par", "sur", "avec", "sans", "mais", "ou", "donc", "car", "ce", "cet", "cette",
        "ces", "mon", "ma", "mes", "ton", "ta", "son", "sa", "ses", "notre", "votre", "leur",
        "leurs", "au", "aux", "y", "en", "c", "d", "l", "n", "qu", "s", "m", "t", "tres", "bien",
        "tout", "tous", "toujours", "jamais", "rien", "ai", "as", "a", "avons", "avez", "ont",
        "suis", "es", "sommes", "etes", "sont", "etait", "ete", "fait", "faire", "ca", "cela",
        "ceci", "aussi", "comme", "si", "merci", "bonjour", "commande", "livraison", "produit",
        "recu", "colis", "avoir", "etre", "mais", "deja", "encore", "apres", "avant", "chez",
        "moi", "toi", "lui", "eux"
    ]),
    "en": frozenset([
        "the", "a", "an", "and", "is", "are", "was", "were", "be", "been", "i", "you", "he",
        "she", "we", "they", "it", "not", "no", "but", "or", "so", "for", "with", "without", "of",
        "to", "in", "on", "at", "by", "from", "this", "that", "these", "those", "my", "your",
        "his", "her", "our", "their", "have", "has", "had", "do", "does", "did", "will", "would",
        "can", "could", "should", "very", "good", "great", "bad", "delivery", "order", "product",
        "received", "late", "thanks", "what", "which", "who", "when", "where", "just"
    ]),
    "es": frozenset([
        "el", "la", "los", "las", "un", "una", "unos", "unas", "y", "es", "son", "fue", "ser",
        "estar", "esta", "estoy", "yo", "tu", "el", "ella", "nosotros", "ellos", "no", "pero",
        "o", "para", "con", "sin", "de", "del", "al", "en", "por", "que", "muy", "bien", "mal",
        "todo", "pedido", "producto", "gracias", "hola", "entrega", "lo", "le", "se", "mi", "su",
        "como", "mas"
    ]),
    "de": frozenset([
        "der", "die", "das", "ein", "eine", "einen", "und", "ist", "sind", "war", "waren", "sein",
        "ich", "du", "er", "sie", "wir", "ihr", "es", "nicht", "kein", "keine", "aber", "oder",
        "fur", "mit", "ohne", "von", "zu", "im", "in", "auf", "an", "bei", "aus", "dass", "sehr",
        "gut", "schlecht", "bestellung", "lieferung", "produkt", "danke", "auch", "noch", "schon",
        "wie", "wenn"
    ]),
    "it": frozenset([
        "il", "lo", "la", "gli", "le", "un", "una", "uno", "e", "sono", "era", "essere", "io",
        "tu", "lui", "lei", "noi", "voi", "loro", "non", "ma", "o", "per", "con", "senza", "di",
        "del", "della", "da", "in", "su", "che", "molto", "bene", "male", "tutto", "ordine",
        "prodotto", "grazie", "consegna", "ho", "hai", "abbiamo", "mi", "ti", "si", "come",
        "anche", "piu"
    ]),
    "nl": frozenset([
        "de", "het", "een", "en", "is", "zijn", "was", "waren", "ik", "jij", "hij", "zij", "wij",
        "jullie", "niet", "geen", "maar", "of", "voor", "met", "zonder", "van", "naar", "in",
        "op", "aan", "bij", "uit", "dat", "dit", "zeer", "goed", "slecht", "bestelling",
        "levering", "product", "bedankt", "ook", "nog", "al", "hoe", "als", "heb", "heeft"
    ]),
    "pt": frozenset([
        "o", "a", "os", "as", "um", "uma", "uns", "umas", "e", "sao", "foi", "ser", "estar", "eu",
        "tu", "ele", "ela", "nos", "eles", "nao", "mas", "ou", "para", "com", "sem", "de", "do",
        "da", "dos", "das", "em", "no", "na", "por", "que", "muito", "bem", "mal", "tudo",
        "pedido", "produto", "obrigado", "entrega", "entregue", "meu", "minha", "seu", "sua",
        "como", "mais"
    ]),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Orthographic hints that split close languages (fr vs others) on short texts.
_HINTS: dict[str, re.Pattern[str]] = {
    "fr": re.compile(r"[çœèêëàâîôû]|\b[jlcdnmtsq]'", re.IGNORECASE),
    "es": re.compile(r"[ñ¿¡]", re.IGNORECASE),
    "de": re.compile(r"[ßäöü]", re.IGNORECASE),
    "pt": re.compile(r"[ãõ]|ção\b", re.IGNORECASE),
}


def detect_language(text: str) -> tuple[str, float]:
    """Return (ISO 639-1 code, confidence 0-1). No letters at all -> ("und", 0.0)."""
    words = [fold_accents(w) for w in _WORD.findall(text or "")]
    if not words:
        # Emoji-only feedback ("😡😡") is still feedback: French by default, barely confident.
        has_symbols = any(not ch.isspace() and not ch.isdigit() and ord(ch) > 0x2000
                          for ch in text or "")
        return ("fr", 0.1) if has_symbols else ("und", 0.0)
    scores = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORDS.items()}
    for lang, pattern in _HINTS.items():
        scores[lang] += 0.5 * min(3, len(pattern.findall(text)))
    best = max(scores, key=lambda k: (scores[k], k == "fr"))
    total = sum(scores.values())
    if scores[best] == 0:
        # Unknown words only (names, emojis, "top!!"): assume French, low confidence.
        return ("fr", 0.2)
    share = scores[best] / total
    # Confidence grows with evidence: 1 stop word is weak, 6+ is solid.
    evidence = min(1.0, scores[best] / 6.0)
    confidence = round(share * (0.4 + 0.6 * evidence), 3)
    if len(words) <= 2 and best != "fr" and scores[best] - scores["fr"] < 1:
        return ("fr", 0.3)
    return (best, confidence)

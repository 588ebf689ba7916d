"""Irony markers both sentiment backends read: the words of a complaint dressed as praise.

"Super, encore un colis perdu, bravo la Poste 🙄" is a complaint whatever its words say. The
models barely saw such texts in training, so the markers move a fixed prior of logit from
positive to negative (`nlp.sentiment.embedded.irony_shift`; the lexicon backend likewise).
"""

from __future__ import annotations

import re

# Eye-roll, upside-down, unamused, expressionless, facepalm (any skin tone / gender variant).
IRONY_MARKERS = ("\U0001f644", "\U0001f643", "\U0001f612", "\U0001f611", "\U0001f926")
# Praise around a mishap that happened again, within one sentence: "Super, encore un colis
# perdu, bravo la Poste". Not one of the ~100k labelled texts of the shared sources has this
# shape, so the pattern is narrow: "encore" + a mishap, never "Super produit, encore une fois
# satisfait" nor "bravo, colis reçu en avance".
_PRAISE = (
    r"(?:super|g[ée]nial|bravo|merci|top|parfait|chapeau|formidable|magnifique|excellent"
    r"|trop\s+bien|bien\s+jou[ée]|quelle\s+efficacit[ée]|quel\s+professionnalisme)"
)
_MISHAP_WORD = (
    r"(?:perdue?s?|cass[ée]e?s?|ab[îi]m[ée]e?s?|annul[ée]e?s?|bloqu[ée]e?s?|[ée]gar[ée]e?s?"
    r"|vol[ée]e?s?|endommag[ée]e?s?|[ée]cras[ée]e?s?|en\s+retard"
    r"|(?:jamais|pas)\s+(?:re[çc]ue?s?|arriv[ée]e?s?|livr[ée]e?s?))"
)
_MISHAP = (
    rf"encore\s+(?:(?:un|une|des|le|la|les|mon|ma|mes)\s+[\w'’-]+(?:\s+[\w'’-]+)?\s+{_MISHAP_WORD}"
    rf"|(?:un|une)\s+(?:retard|panne|bug|annulation|erreur|grève|greve)\b|{_MISHAP_WORD})"
)
IRONY_PATTERN = re.compile(
    rf"(?i)\b{_PRAISE}\b[^.!?\n]{{0,80}}\b{_MISHAP}|\b{_MISHAP}[^.!?\n]{{0,80}}\b{_PRAISE}\b"
)
# Thanks for the mishap itself: "Bravo pour le retard", "Merci pour les 3 semaines d'attente",
# "Merci La Poste pour le colis écrasé". The mishap is what the praise is for (its object),
# not a clause beside it: "merci pour la livraison rapide malgré le retard" stays praise.
_THANKED_DET = r"(?:le|la|les|l['’]|ce|cet|cette|ces)\s*"  # not "votre attente": a reply's thanks
_THANKED_MISHAP = re.compile(
    r"(?i)\b(?:bravo|merci|chapeau|f[ée]licitations)\b[^.!?\n,]{0,30}?\bpour\s+"
    + _THANKED_DET
    + r"(?:(?:(?:\d+|deux|trois|quatre|cinq|six|dix|quinze)\s+"
    r"(?:h|heures?|jours?|semaines?|mois)\s+d['’]\s*)?(?:retards?|attente)\b"
    rf"|[\w-]+(?:\s+(?!(?:pas|plus|non|sans|peu)\b)[\w-]+)?\s+{_MISHAP_WORD})"
)


def stated_irony(text: str) -> bool:
    """Praise around a mishap that happened again, in one sentence, or thanks for a mishap."""
    low = text.lower()
    if "encore" in low and IRONY_PATTERN.search(text) is not None:
        return True
    return "pour" in low and _THANKED_MISHAP.search(text) is not None


def irony_weight(text: str) -> float:
    """How many irony margins `text` gets: 2 for praise around a stated mishap (the words say
    what went wrong), 1 for an exasperation emoji alone, else 0."""
    if stated_irony(text):
        return 2.0
    return 1.0 if any(m in text for m in IRONY_MARKERS) else 0.0

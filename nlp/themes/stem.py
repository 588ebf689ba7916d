"""A light French stemmer used to match taxonomy seeds on lemmas or surface forms.

Deliberately conservative (plural, feminine, participle and -er/-ement endings only) so that
"livré", "livrée", "livrer" meet but "livraison" and "livreur" stay distinct words.
"""

from __future__ import annotations

from nlp.text.normalize import fold_accents


def light_stem(word: str) -> str:
    w = fold_accents(word)
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ements") and len(w) > 9:
        return w[:-6]
    if w.endswith("ement") and len(w) > 8:
        return w[:-5]
    if w.endswith("aux") and len(w) > 5:
        w = w[:-3] + "al"
    elif w[-1] in "sx" and len(w) > 4:
        w = w[:-1]
    if w.endswith("ee") and len(w) > 5:
        return w[:-2]
    if w.endswith("er") and len(w) > 5:
        return w[:-2]
    if w.endswith("e") and len(w) > 4:
        return w[:-1]
    return w

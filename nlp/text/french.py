"""French tokens with offsets: elisions, SMS spellings, negation scope, clause splitting.

Everything here works on the text as given (offsets index into it), so evidence spans can be
shown to users. Call `normalize_text` first for typographic apostrophes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from nlp.text.informal import unstretch
from nlp.text.normalize import fold_accents

# SMS / informal spellings -> standard (accent-folded) French, applied to token norms only.
SMS_MAP: dict[str, str] = {
    "tjrs": "toujours",
    "tjs": "toujours",
    "tjr": "toujours",
    "toujour": "toujours",
    "pb": "probleme",
    "pbs": "problemes",
    "pbm": "probleme",
    "prob": "probleme",
    "svp": "svp",
    "stp": "svp",
    "bcp": "beaucoup",
    "bcq": "beaucoup",
    "jms": "jamais",
    "jamai": "jamais",
    "pr": "pour",
    "ds": "dans",
    "ms": "mais",
    "mm": "meme",
    "tt": "tout",
    "tte": "toute",
    "tts": "tous",
    "vs": "vous",
    "ns": "nous",
    "qd": "quand",
    "qq": "quelque",
    "qqs": "quelques",
    "qqch": "quelque chose",
    "rdv": "rendez-vous",
    "cmd": "commande",
    "cde": "commande",
    "cmde": "commande",
    "liv": "livraison",
    "rmb": "remboursement",
    "rembourst": "remboursement",
    "sav": "sav",
    "c": "c",
    "ct": "c'etait",
    "chui": "je suis",
    "jsuis": "je suis",
    "jador": "adore",
    "jadore": "adore",
    "jpp": "j'en peux plus",
    "mdr": "mdr",
    "ptdr": "mdr",
    "lol": "lol",
    "nul": "nul",
    "nulle": "nul",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "pcq": "parce que",
    "pck": "parce que",
    "koi": "quoi",
    "kan": "quand",
    "ke": "que",
    "ki": "qui",
    "bi1": "bien",
    "bien1": "bien",
    "rien2": "rien",
    "dsl": "desole",
    "slt": "salut",
    "bjr": "bonjour",
    "mrc": "merci",
    "mci": "merci",
    "tkt": "t'inquiete",
    "grave": "grave",
    "trop": "trop",
    "tres": "tres",
    "tr": "tres",
    "vrmt": "vraiment",
    "vrm": "vraiment",
    "vraimen": "vraiment",
    "rapid": "rapide",
    "recu": "recu",
    "recus": "recu",
    "nn": "non",
    "ouai": "oui",
    "ouais": "oui",
    "bof": "bof",
    "dja": "deja",
    "dj": "deja",
    "mauvai": "mauvais",
    "arnak": "arnaque",
    "arnac": "arnaque",
    "pa": "pas",
    "pô": "pas",
    "tro": "trop",
    "jame": "jamais",  # "jamé", "jamè" (accents folded first)
    "tps": "temps",
}

# Negators; "plus"/"rien"/"personne"/"que" only negate when "ne" precedes them.
_STRONG_NEGATORS = {
    "pas",
    "jamais",
    "aucun",
    "aucune",
    "sans",
    "guere",
    "nullement",
    "ni",
    "non",
}
# "point" negates after "ne" only ("je ne suis point satisfait"): alone it is the noun of
# "point relais", "point positif", whose next words were read negated.
_NE_ONLY_NEGATORS = {"plus", "rien", "personne", "point"}
_NE_FORMS = {"ne", "n"}
_NEGATORS = _STRONG_NEGATORS | _NE_ONLY_NEGATORS
NEGATION_WORDS = frozenset(_NEGATORS | _NE_FORMS)  # token norms that negate (with "ne" or not)
NE_FORMS = frozenset(_NE_FORMS)
NE_ONLY_NEGATORS = frozenset(_NE_ONLY_NEGATORS)  # negators only after a "ne" ("ne ... plus")
_NEGATORS_OR_QUE = _NEGATORS | {"que"}
# "aurait pu / dû / fallu": the past conditional of a modal states what did not happen ("aurait
# pu être mieux emballé" = not well packed), so it scopes like a negation.
_COUNTERFACTUAL = {"aurait", "aurais", "auraient", "aurions", "auriez"}
_SCOPE_OPENERS = _NE_FORMS | _STRONG_NEGATORS | _COUNTERFACTUAL | {"loin", "plus"}
# Verbs that a bare "pas" right after them negates, "ne" dropped as in speech ("je recommande
# pas", "j'aime pas", "ça marche pas"): "pas" only scoped forward, the verb read as praise.
_EVENT_VERBS = {
    *("marche", "marchent", "fonctionne", "fonctionnent", "tient", "tiennent"),
    *("charge", "allume", "demarre"),
}
_POST_NEGATED = _EVENT_VERBS | {
    *("recommande", "recommandons", "conseille", "aime", "adore", "apprecie", "plait"),
    *("convient", "conviennent", "regrette", "correspond", "correspondent", "repond"),
    *("repondent", "rembourse", "remboursent"),
}
# After which a bare "plus" ends the clause or a duration follows: "ça marche plus", "ne
# fonctionne plus depuis hier" without its "ne" ("tient plus longtemps" is a comparison).
_PLUS_ENDS = {"du", "depuis", "apres", "au"}
NEGATION_WINDOW = 3  # content tokens after the negator that it still scopes over

# Contrast connectors: what follows them usually carries the customer's verdict.
CONTRAST_MARKERS = (
    "mais",
    "par contre",
    "cependant",
    "toutefois",
    "neanmoins",
    "en revanche",
    "sauf que",
    "pourtant",
    "malgre",
    "hormis",
    "alors que",
    "bien que",
    "meme si",
    "seul bemol",
    "seul hic",
    "dommage que",
    "dommage",
    "but",
    "however",
)


def _by_first_word(markers: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """First word -> the markers' words, in list order ("dommage que" before "dommage")."""
    out: dict[str, tuple[tuple[str, ...], ...]] = {}
    for marker in markers:
        parts = tuple(marker.split())
        out[parts[0]] = (*out.get(parts[0], ()), parts)
    return out


_CONTRAST_BY_FIRST = _by_first_word(CONTRAST_MARKERS)
_APOS = "'\u2019\u02bc\u2018`\u00b4"
_ELISION = re.compile(
    r"^(?P<pre>[ljcdnmtsq]|qu|jusqu|lorsqu|puisqu|quoiqu)['\u2019\u02bc](?=\w)", re.IGNORECASE
)
_TOKEN = re.compile(
    r"<[A-Z]+>"  # PII placeholders stay one token
    r"|\d+(?:[.,]\d+)?"  # numbers, prices
    r"|(?:[ljcdnmtsq]|qu|jusqu|lorsqu|puisqu|quoiqu)['\u2019\u02bc]"  # elided article/pronoun
    r"|[^\W\d_]+(?:[-'\u2019\u02bc][^\W\d_]+)*"  # words, hyphenated ("peut-être")
    r"|[!?]+|\.{2,}|[.,;:()/\"+*=&%€$]"  # punctuation we use for clauses and emphasis
    r"|[^\s\w]",  # anything else (emojis, symbols) one char at a time
    re.IGNORECASE,
)
_SENT_PUNCT = re.compile(r"^(?:[.!?;\u2026\u2014\u2013]+|\.{2,}|\n)$")
_EMOJI_RANGES = ((0x1F300, 0x1FAFF), (0x2600, 0x27BF), (0x1F000, 0x1F2FF))


class Token(NamedTuple):
    """One token (immutable). A named tuple: the tokenizer builds millions of them, and a
    tuple is created at C speed where a frozen dataclass runs a Python __init__."""

    text: str
    start: int
    end: int
    norm: str  # lower-case, accent-folded, SMS-expanded, elision apostrophe dropped
    kind: str  # "word", "num", "punct", "emoji", "pii"

    @property
    def is_word(self) -> bool:
        return self.kind == "word"


_new_tuple = tuple.__new__  # fields in order, without NamedTuple's Python __new__


class Clause(NamedTuple):
    """A clause of a text (immutable; a named tuple for the same reason as Token)."""

    start: int
    end: int
    text: str
    tokens: tuple[Token, ...]
    sentence: int  # index of the sentence it belongs to
    after_contrast: bool  # opened by "mais", "par contre", ...


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _EMOJI_RANGES)


# One match of _TOKEN -> its tokens: (text, start, end, norm, kind), offsets in the match.
Piece = tuple[str, int, int, str, str]


def _pieces(raw: str) -> tuple[Piece, ...]:
    """The tokens of one match of _TOKEN (a pure function of it: Tokenizer memoises it)."""
    end = len(raw)
    if raw.startswith("<") and raw.endswith(">") and end > 2:
        return ((raw, 0, end, raw, "pii"),)
    if raw[0].isdigit():
        return ((raw, 0, end, raw.replace(",", "."), "num"),)
    if raw[0].isalpha():
        out: list[Piece] = []
        start = 0
        el = _ELISION.match(raw)
        if el and el.end() < len(raw):  # "l'emballage" matched as one hyphen/apostrophe word
            pre = el.group(0)
            out.append((pre, 0, len(pre), fold_accents(pre[:-1]), "word"))
            raw, start = raw[len(pre) :], len(pre)
        if raw[-1] in _APOS:
            out.append((raw, start, end, fold_accents(raw[:-1]), "word"))
            return tuple(out)
        # Letters repeated for emphasis ("nuuuul", "bellllle", "trooo"; "XXXL" stays), then
        # chat spellings.
        norm = fold_accents(unstretch(raw)).replace("\u2019", "'").replace("\u02bc", "'")
        norm = SMS_MAP.get(norm, norm)
        out.append((raw, start, end, norm, "word"))
        return tuple(out)
    if len(raw) == 1 and _is_emoji(raw):
        return ((raw, 0, end, raw, "emoji"),)
    return ((raw, 0, end, raw, "punct"),)


def _tokens(text: str, pieces: Callable[[str], tuple[Piece, ...]]) -> list[Token]:
    tokens: list[Token] = []
    append = tokens.append
    for m in _TOKEN.finditer(text):
        at = m.start()
        for raw, start, end, norm, kind in pieces(m.group()):
            append(_new_tuple(Token, (raw, at + start, at + end, norm, kind)))
    return tokens


def tokenize(text: str) -> list[Token]:
    """Tokens with offsets into `text`; elisions split ("l'emballage" -> l', emballage)."""
    return _tokens(text, _pieces)


class Tokenizer:
    """`tokenize` with the work on each distinct word done once: the pieces of every match
    (norm, elision split, kind) are memoised on this object, up to `max_words` of them (then
    the memo starts over). Build one and keep it (the lexicon scorer holds one)."""

    def __init__(self, max_words: int = 200_000) -> None:
        self.max_words = max_words
        self._memo: dict[str, tuple[Piece, ...]] = {}

    def _cached(self, raw: str) -> tuple[Piece, ...]:
        try:
            return self._memo[raw]
        except KeyError:
            pass
        if len(self._memo) >= self.max_words:
            self._memo = {}  # words seen once are most of a full memo: starting over is cheap
        value = self._memo[raw] = _pieces(raw)
        return value

    def __call__(self, text: str) -> list[Token]:
        return _tokens(text, self._cached)


def negation_flags(tokens: list[Token]) -> list[bool]:
    """True for tokens inside a negation scope.

    "ne ... pas/jamais/plus/rien": everything between "ne" and the negator, plus up to
    NEGATION_WINDOW words after it; bare "pas", "jamais", "aucun", "sans" (SMS style, "pas
    rapide", "jamais reçu") and the counterfactual "aurait pu / dû / fallu" ("aurait pu être
    mieux") scope forward only. Punctuation and contrast words end a scope.
    """
    flags = [False] * len(tokens)
    if _SCOPE_OPENERS.isdisjoint([t.norm for t in tokens]):
        return flags  # most clauses: no word that can open a negation scope
    n = len(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        if tok.kind != "word":
            i += 1
            continue
        if tok.norm in _NE_FORMS:
            # Look ahead for the second half of the negation within the clause.
            j = i + 1
            while j < n and j - i <= 6 and tokens[j].kind in ("word", "num"):
                if tokens[j].norm in _NEGATORS_OR_QUE:
                    break
                j += 1
            if j < n and tokens[j].norm == "jamais" and _jamais_aussi(tokens, j):
                i = j + 1  # "n'a jamais été aussi rapide": praise, no negation
                continue
            if j < n and j - i <= 6 and tokens[j].kind == "word" and tokens[j].norm in _NEGATORS:
                for k in range(i + 1, j):
                    flags[k] = True
                _scope_forward(tokens, flags, j)
                i = j + 1
                continue
            if j < n and tokens[j].norm == "que":  # "ne ... que" = only, not a negation
                i = j + 1
                continue
            # "n'" without a partner (SMS): negate the next few words.
            _scope_forward(tokens, flags, i)
            i += 1
            continue
        if (
            tok.norm == "loin"
            and i + 2 < n
            and tokens[i + 1].norm in ("d", "de")
            and tokens[i + 2].norm in ("etre", "avoir")
        ):
            _scope_forward(tokens, flags, i + 2)  # "loin d'être sympa" = "pas sympa"
            i += 3
            continue
        if tok.norm in _COUNTERFACTUAL and i + 1 < n and _is_modal_participle(tokens, i + 1):
            _scope_forward(tokens, flags, i + 1)
            i += 2
            continue
        if tok.norm in _STRONG_NEGATORS:
            if tok.norm == "jamais" and _jamais_aussi(tokens, i):
                i += 1
                continue
            if tok.norm == "pas" and i + 1 < n and tokens[i + 1].norm == "mal":
                i += 1  # "pas mal" is praise
                continue
            # "pas trop cher", "pas trop bien" scope as "pas très ..." does ("trop" softens).
            if tok.norm == "pas" and i and tokens[i - 1].norm in _POST_NEGATED:
                flags[i - 1] = True  # "je recommande pas": "ne" dropped
            _scope_forward(tokens, flags, i)
        elif (
            tok.norm == "plus"
            and i
            and tokens[i - 1].norm in _EVENT_VERBS
            and (i + 1 == n or tokens[i + 1].kind != "word" or tokens[i + 1].norm in _PLUS_ENDS)
        ):
            flags[i - 1] = True  # "ça marche plus", "fonctionne plus depuis hier"
        i += 1
    return flags


def _jamais_aussi(tokens: list[Token], i: int) -> bool:
    """ "jamais" (at i) followed by "aussi"/"autant" within 4 words: "jamais vu un SAV aussi
    réactif", "n'a jamais été aussi rapide" say the adjective more, not its opposite ("jamais
    mangé un couscous aussi mauvais" is a complaint)."""
    for tok in tokens[i + 1 : i + 5]:
        if tok.kind != "word" or tok.norm in ("et", "mais", "ou", "car", "donc"):
            return False
        if tok.norm in ("aussi", "autant"):
            return True
    return False


def _is_modal_participle(tokens: list[Token], i: int) -> bool:
    """ "pu", "fallu", "dû" ("du" unaccented only before "être": "aurait du retard")."""
    norm = tokens[i].norm
    if norm in ("pu", "fallu"):
        return True
    if norm != "du":
        return False
    return tokens[i].text.lower() == "dû" or (i + 1 < len(tokens) and tokens[i + 1].norm == "etre")


# "Quand vais-je être remboursé ?", "Où est mon colis ?": asking when or where an expected
# outcome happens says it has not happened yet (the same complaint as "pas encore remboursé").
_PENDING_ASKERS = {"quand", "où"}  # as written: "ou" without its accent is mostly "or"
# ... about the writer's own order: "quand est-ce que la nouvelle collection arrive ?" asks
# about something nobody is owed. First person, or the order's own nouns (folded norms).
_PENDING_OWN = {
    *("je", "j", "me", "m", "moi", "mon", "ma", "mes", "nous", "notre", "nos"),
    *("colis", "commande", "commandes", "livraison", "remboursement", "paquet", "reponse"),
}


def pending_question(tokens: list[Token]) -> bool:
    """True for a clause that asks when or where the writer's own order or refund is
    ("quand ... ?", "où est mon colis ?")."""
    last = next((t for t in reversed(tokens) if t.kind != "emoji"), None)
    if last is None or last.kind != "punct" or "?" not in last.text:
        return False
    words = [t for t in tokens if t.kind == "word"]
    return any(t.text.lower() in _PENDING_ASKERS for t in words) and any(
        t.norm in _PENDING_OWN or t.norm.endswith(("-je", "-nous")) for t in words
    )


# Degree words do not use up a negation's scope ("pas de très bonne qualité").
_SCOPE_TRANSPARENT = {
    "tres",
    "vraiment",
    "trop",
    "assez",
    "aussi",
    "super",
    "hyper",
    "si",
    "tellement",
    "bien",
    "forcement",
    "toujours",
    "encore",
    "tout",
    "du",
}
# Negators that scope over one noun phrase only ("aucune livraison, 4 jours de retard").
_SHORT_SCOPE = {"aucun", "aucune", "sans", "non", "ni"}


def _scope_forward(tokens: list[Token], flags: list[bool], idx: int) -> None:
    count = 0
    limit = NEGATION_WINDOW
    if tokens[idx].norm in _SHORT_SCOPE or (
        idx + 1 < len(tokens) and tokens[idx + 1].norm in ("de", "d")
    ):
        limit = 1  # "pas de réponse", "sans problème": just the next content word
    for k in range(idx + 1, len(tokens)):
        tok = tokens[k]
        if tok.kind == "punct" and tok.text not in ("'", "-", "/"):
            break
        if tok.norm in ("mais", "et", "car", "donc", "ou"):
            break
        flags[k] = True
        if tok.is_word and len(tok.norm) > 2 and tok.norm not in _SCOPE_TRANSPARENT:
            count += 1
        if count >= limit:
            break


# Verbs after which "bien que" is "good that" ("ce serait bien que", "j'aimerais bien que").
_BIEN_QUE_PREDICATE = {
    "est",
    "etait",
    "serait",
    "sera",
    "soit",
    "serais",
    "seraient",
    "aimerais",
    "aimerait",
    "aimerions",
    "voudrais",
    "voudrait",
    "voudrions",
    "faudrait",
    "faut",
}


# Words after which "bien que" is a comparison or a consequence, not "although": "moins bien
# que la version précédente", "aussi bien qu'en magasin", "si bien que", "tant bien que mal".
_BIEN_QUE_COMPARED = {"moins", "aussi", "plus", "autant", "si", "tant"}


def _contrast_starts(tokens: list[Token]) -> dict[int, int]:
    """Token index -> number of tokens of a contrast marker starting there."""
    out: dict[int, int] = {}
    words = tuple(t.norm for t in tokens)
    for i, word in enumerate(words):
        # Only the markers that start with this word can start here (one dict lookup a token).
        for parts in _CONTRAST_BY_FIRST.get(word, ()):
            if words[i : i + len(parts)] == parts:
                if word == "bien" and i and words[i - 1] in _BIEN_QUE_PREDICATE:
                    break  # "ce serait bien que ...": a wish, not "although"
                if word == "bien" and i and words[i - 1] in _BIEN_QUE_COMPARED:
                    break  # "moins bien que ...": a comparison
                out[i] = len(parts)
                break
    return out


def split_clauses(
    text: str, tokens: list[Token] | None = None, split_commas: bool = True
) -> list[Clause]:
    """Clauses of `text`: split at sentence punctuation, line breaks, contrast connectors and
    (optionally) commas. Each clause keeps its offsets and tokens."""
    tokens = tokenize(text) if tokens is None else tokens
    clauses: list[Clause] = []
    contrast = _contrast_starts(tokens)
    current: list[Token] = []
    sentence = 0
    opened_by_contrast = False

    def flush(next_contrast: bool) -> None:
        nonlocal current, opened_by_contrast
        if any(t.kind != "punct" for t in current):
            start, end = current[0].start, current[-1].end
            clauses.append(
                _new_tuple(
                    Clause,
                    (start, end, text[start:end], tuple(current), sentence, opened_by_contrast),
                )
            )
        current = []
        opened_by_contrast = next_contrast

    prev_end = 0
    for i, tok in enumerate(tokens):
        if "\n" in text[prev_end : tok.start] and current:
            flush(False)
            sentence += 1
        prev_end = tok.end
        if i in contrast and current:
            flush(True)
        elif i in contrast:
            opened_by_contrast = True
        if tok.kind == "punct" and _SENT_PUNCT.match(tok.text):
            current.append(tok)
            flush(False)
            sentence += 1
            continue
        if split_commas and tok.text in (",", ":", "(", ")") and current:
            current.append(tok)
            flush(False)
            continue
        current.append(tok)
    flush(False)
    return clauses


def sentences(text: str) -> list[tuple[int, int, str]]:
    """Sentence spans (start, end, text), without the comma and contrast splits."""
    out: list[tuple[int, int, str]] = []
    by_sentence: dict[int, list[Clause]] = {}
    for clause in split_clauses(text, split_commas=False):
        by_sentence.setdefault(clause.sentence, []).append(clause)
    for parts in by_sentence.values():
        start, end = parts[0].start, parts[-1].end
        out.append((start, end, text[start:end]))
    return out

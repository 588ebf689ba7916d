"""Offline language identification from stop-word profiles (fr, en, es, de, it, nl, pt).

Good enough to route feedback: French first; short or emoji-only text defaults to French with a
low confidence (most of our traffic is French), text without letters returns "und". Where the
word lists only weakly say French (a short review with few listed words), py3langid's bundled
character n-gram model (BSD, shipped in its wheel: no download) gives a second opinion.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from nlp.text.normalize import fold_accents

_STOPWORDS: dict[str, frozenset[str]] = {
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "un",
            "une",
            "des",
            "du",
            "de",
            "et",
            "est",
            "je",
            "j",
            "tu",
            "il",
            "elle",
            "nous",
            "vous",
            "ils",
            "elles",
            "ne",
            "pas",
            "plus",
            "que",
            "qui",
            "quoi",
            "dans",
            "pour",
            "par",
            "sur",
            "avec",
            "sans",
            "mais",
            "ou",
            "donc",
            "car",
            "ce",
            "cet",
            "cette",
            "ces",
            "mon",
            "ma",
            "mes",
            "ton",
            "ta",
            "son",
            "sa",
            "ses",
            "notre",
            "votre",
            "leur",
            "leurs",
            "au",
            "aux",
            "y",
            "en",
            "c",
            "d",
            "l",
            "n",
            "qu",
            "s",
            "m",
            "t",
            "tres",
            "bien",
            "tout",
            "tous",
            "toujours",
            "jamais",
            "rien",
            "ai",
            "as",
            "a",
            "avons",
            "avez",
            "ont",
            "suis",
            "es",
            "sommes",
            "etes",
            "sont",
            "etait",
            "ete",
            "fait",
            "faire",
            "ca",
            "cela",
            "ceci",
            "aussi",
            "comme",
            "si",
            "merci",
            "bonjour",
            "commande",
            "livraison",
            "produit",
            "recu",
            "colis",
            "avoir",
            "etre",
            "mais",
            "deja",
            "encore",
            "apres",
            "avant",
            "chez",
            "moi",
            "toi",
            "lui",
            "eux",
        ]
    ),
    "en": frozenset(
        [
            "the",
            "a",
            "an",
            "and",
            "is",
            "are",
            "was",
            "were",
            "be",
            "been",
            "i",
            "you",
            "he",
            "she",
            "we",
            "they",
            "it",
            "not",
            "no",
            "but",
            "or",
            "so",
            "for",
            "with",
            "without",
            "of",
            "to",
            "in",
            "on",
            "at",
            "by",
            "from",
            "this",
            "that",
            "these",
            "those",
            "my",
            "your",
            "his",
            "her",
            "our",
            "their",
            "have",
            "has",
            "had",
            "do",
            "does",
            "did",
            "will",
            "would",
            "can",
            "could",
            "should",
            "very",
            "good",
            "great",
            "bad",
            "delivery",
            "order",
            "product",
            "received",
            "late",
            "thanks",
            "what",
            "which",
            "who",
            "when",
            "where",
            "just",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "un",
            "una",
            "unos",
            "unas",
            "y",
            "es",
            "son",
            "fue",
            "ser",
            "estar",
            "esta",
            "estoy",
            "yo",
            "tu",
            "el",
            "ella",
            "nosotros",
            "ellos",
            "no",
            "pero",
            "o",
            "para",
            "con",
            "sin",
            "de",
            "del",
            "al",
            "en",
            "por",
            "que",
            "muy",
            "bien",
            "mal",
            "todo",
            "pedido",
            "producto",
            "gracias",
            "hola",
            "entrega",
            "lo",
            "le",
            "se",
            "mi",
            "su",
            "como",
            "mas",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "ein",
            "eine",
            "einen",
            "und",
            "ist",
            "sind",
            "war",
            "waren",
            "sein",
            "ich",
            "du",
            "er",
            "sie",
            "wir",
            "ihr",
            "es",
            "nicht",
            "kein",
            "keine",
            "aber",
            "oder",
            "fur",
            "mit",
            "ohne",
            "von",
            "zu",
            "im",
            "in",
            "auf",
            "an",
            "bei",
            "aus",
            "dass",
            "sehr",
            "gut",
            "schlecht",
            "bestellung",
            "lieferung",
            "produkt",
            "danke",
            "auch",
            "noch",
            "schon",
            "wie",
            "wenn",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "un",
            "una",
            "uno",
            "e",
            "sono",
            "era",
            "essere",
            "io",
            "tu",
            "lui",
            "lei",
            "noi",
            "voi",
            "loro",
            "non",
            "ma",
            "o",
            "per",
            "con",
            "senza",
            "di",
            "del",
            "della",
            "da",
            "in",
            "su",
            "che",
            "molto",
            "bene",
            "male",
            "tutto",
            "ordine",
            "prodotto",
            "grazie",
            "consegna",
            "ho",
            "hai",
            "abbiamo",
            "mi",
            "ti",
            "si",
            "come",
            "anche",
            "piu",
        ]
    ),
    "nl": frozenset(
        [
            "de",
            "het",
            "een",
            "en",
            "is",
            "zijn",
            "was",
            "waren",
            "ik",
            "jij",
            "hij",
            "zij",
            "wij",
            "jullie",
            "niet",
            "geen",
            "maar",
            "of",
            "voor",
            "met",
            "zonder",
            "van",
            "naar",
            "in",
            "op",
            "aan",
            "bij",
            "uit",
            "dat",
            "dit",
            "zeer",
            "goed",
            "slecht",
            "bestelling",
            "levering",
            "product",
            "bedankt",
            "ook",
            "nog",
            "al",
            "hoe",
            "als",
            "heb",
            "heeft",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "um",
            "uma",
            "uns",
            "umas",
            "e",
            "sao",
            "foi",
            "ser",
            "estar",
            "eu",
            "tu",
            "ele",
            "ela",
            "nos",
            "eles",
            "nao",
            "mas",
            "ou",
            "para",
            "com",
            "sem",
            "de",
            "do",
            "da",
            "dos",
            "das",
            "em",
            "no",
            "na",
            "por",
            "que",
            "muito",
            "bem",
            "mal",
            "tudo",
            "pedido",
            "produto",
            "obrigado",
            "entrega",
            "entregue",
            "meu",
            "minha",
            "seu",
            "sua",
            "como",
            "mais",
        ]
    ),
}


# Frequent review words and the function words the lists above lacked ("on", "se", "non" made
# short French reviews look English, Spanish or Italian). A short foreign review ("Leider defekt
# angekommen.") often has no stop word at all and defaulted to French, mixed into the French
# figures. Foreign words common in French reviews once accents are folded ("experience", "me",
# "des") are left out. Accent-folded, as the text's words are.
_REVIEW_WORDS: dict[str, str] = {
    "fr": (
        "se on non oui trop peu ni dont quand meme vos nos avait sera va vais peut fois "
        "ici parfait rapide conforme recommande vendeur article qualite prix envoi delai "
        "client probleme jour jours decu nul vraiment chose pendant depuis "
        # Franglais ("My order est arrivé cassé", "Livreur very rude") was English: the French
        # half had no listed word. Moves none of the 45,921 research texts (eval_language.py).
        "remboursement rembourse casse abime arnaque livreur retard"
    ),
    "en": (
        "all after again about more if there here them than then out up too only really well "
        "time quality price money fast quick slow shipping item items arrived broken damaged "
        "refund customer staff friendly helpful recommend recommended highly never ever worst "
        "best love happy disappointed waiting still works working easy avoid perfect value "
        "thank you awful amazing"
    ),
    "es": (
        "pero mucho calidad precio envio rapido llego roto tarde dinero compra recomiendo "
        "recomendable bueno buena malo mala nunca nadie servicio atencion esperando semanas "
        "dias correcto excelente pesimo talla tambien esto este eso ya hay porque cuando "
        "donde"
    ),
    "de": (
        "leider schnell schnelle ware versand alles bestens zufrieden gerne wieder kaputt "
        "defekt paket geld zuruck preis qualitat empfehlen empfehlenswert kundenservice "
        "freundlich funktioniert immer nur dem den mein meine hat habe wurde wird kann nach "
        "seit bin ganz toll vielen dank einfach angekommen geliefert bestellt"
    ),
    "it": (
        "ottimo ottima pessimo pessima spedizione arrivato arrivata rotto qualita prezzo "
        "consiglio consigliato servizio clienti gentile veloce soddisfatto soddisfatta "
        "perfetto ancora rimborso giorni settimana mese pacco ritardo nessuno sempre questo "
        "questa ha hanno stato stata dopo troppo funziona niente nel nella alla dei delle "
        "degli cosa tutti"
    ),
    "pt": (
        "chegou rapida recomendo qualidade preco otimo otima pessimo atendimento ninguem "
        "reembolso esperando tamanho defeito quebrou prazo certo encomenda obrigada nunca "
        "ainda voce isso esse essa este foto cor bom boa ruim horrivel adorei gostei comprar "
        "compra dias semanas tambem aqui sempre estou esta tem"
    ),
    "nl": (
        "snel snelle goede prima kwaliteit prijs klantenservice niemand pakket beschadigd "
        "kapot aanrader tevreden heel erg werkt wacht weken geld terug duurde lang veel "
        "vriendelijk personeel kopen gekocht geleverd bezorgd netjes tijd dank wel nooit meer "
        "winkel mijn om zo alles helaas dus toch wordt werd kan"
    ),
}
_PROFILES: dict[str, frozenset[str]] = {
    lang: stops | frozenset(_REVIEW_WORDS[lang].split()) for lang, stops in _STOPWORDS.items()
}


def _languages_of(stopwords: dict[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    """Stop word -> the languages listing it (in the lists' order)."""
    out: dict[str, tuple[str, ...]] = {}
    for lang, stops in stopwords.items():
        for stop in stops:
            out[stop] = (*out.get(stop, ()), lang)
    return out


_LANGUAGES_OF = _languages_of(_PROFILES)
# The accented letters each language writes. The lists are accent-folded, so a folded word
# only counts for the languages whose spelling has its accents: "thé" folds to English "the",
# "où" to Portuguese "ou", "là" to Spanish "la", but English writes no accent, Portuguese no
# "ù", Spanish no "à" ("Excellent thé" was English). Letters the folding keeps (œ, ß) never
# meet a listed word anyway.
_ACCENTED: dict[str, frozenset[str]] = {
    "fr": frozenset("àâäçéèêëîïôöùûüÿœæ"),
    "en": frozenset(),
    "es": frozenset("áéíóúüñ"),
    "de": frozenset("äöüß"),
    "it": frozenset("àèéìíîòóùú"),
    "nl": frozenset("áàäéèëêíïóöúü"),
    "pt": frozenset("áàâãçéêíóôõúü"),
}


@functools.lru_cache(maxsize=1 << 16)
def _languages_of_accented(word: str) -> tuple[str, ...]:
    """The languages listing a lower-case word with accents, among those that write them."""
    langs = _LANGUAGES_OF.get(fold_accents(word), ())
    if not langs:
        return langs
    accents = {ch for ch in word if not ch.isascii()}
    return tuple(lang for lang in langs if accents <= _ACCENTED[lang])


_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Orthographic hints that split close languages (fr vs others) on short texts.
_HINTS: dict[str, re.Pattern[str]] = {
    "fr": re.compile(r"[çœèêëàâîôû]|\b[jlcdnmtsq]['’]", re.IGNORECASE),
    "es": re.compile(r"[ñ¿¡]", re.IGNORECASE),
    "de": re.compile(r"[ßäöü]", re.IGNORECASE),
    "pt": re.compile(r"[ãõ]|ção\b", re.IGNORECASE),
}


# The word lists' French is trusted from this confidence up; below, a short review with few
# listed words ("El repartidor dejó la caja bajo la lluvia.", no Spanish stop word but "la")
# is asked of py3langid, whose non-French answer counts from SECOND_OPINION_MIN_P. Measured
# (benchmarks/eval_language.py): held-out short foreign reviews kept out of French 63 -> 90 %,
# no French text of the research sets lost (2 Trustpilot reviews newly found German and
# Spanish are), py3langid asked for 18 % of them.
SECOND_OPINION_BELOW = 0.5
SECOND_OPINION_MIN_P = 0.9


@functools.cache
def _identifier() -> Any:
    """py3langid's model restricted to the profiled languages, loaded at first use. Its wheel
    ships it xz-compressed (0.4 s to decompress its 68 MB at every start: the lexicon tier's
    20k-row run lost 5 %), so an uncompressed copy is kept in the user's cache (0.2 s)."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    source = MODEL_DIR / MODEL_FILE
    cached = _cache_dir() / f"py3langid-{source.stat().st_size}.npz"
    identifier = _from_uncompressed(cached, LanguageIdentifier) if cached.is_file() else None
    if identifier is None:
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        _keep_uncompressed(source, cached)
    return _restricted(identifier, LanguageIdentifier, set(_STOPWORDS))


def _restricted(identifier: Any, cls: Any, languages: set[str]) -> Any:
    """A new identifier holding only `languages`' columns, as `set_languages` would restrict
    it, without keeping the 97-language tables beside (py3langid keeps them to reset: 27 MB
    in every process that meets a short review)."""
    keep = [i for i, c in enumerate(identifier.nb_classes) if c in languages]
    return cls(
        identifier.nb_ptc[:, keep],
        identifier.nb_pc[keep],
        [identifier.nb_classes[i] for i in keep],
        identifier.tk_nextmove,
        identifier.tk_output,
        norm_probs=True,
        tk_row=identifier.tk_row,
    )


def load_language_model() -> None:
    """Load the second-opinion model now (and keep its uncompressed copy): `verbatim setup`."""
    _identifier()


def _cache_dir() -> Path:
    """Beside the built encoder when `VERBATIM_MODEL_DIR` names its directory, else the user's
    cache. The Docker image runs `verbatim setup` as root: its copy went to /root/.cache, which
    the runtime user never reads, and every container decompressed the model again and wrote
    68 MB into its data volume (the user's home, /data)."""
    model_dir = os.environ.get("VERBATIM_MODEL_DIR")
    if model_dir:
        return Path(model_dir)  # as settings.resolved_model_dir reads it
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "verbatim"


def _from_uncompressed(path: Path, cls: Any) -> Any:
    """The identifier from an uncompressed copy, as py3langid's own loader builds it; None when
    the copy cannot be read (the compressed model is then used)."""
    import numpy as np
    from py3langid.modelio import _to_array

    try:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                np.asarray(data["ptc"]),
                np.asarray(data["pc"]),
                data["classes"].tolist(),
                _to_array(data["nextmove"]),
                data["out_feat"].tolist(),
                norm_probs=True,
                tk_row=_to_array(data["nextmove_row"]),
            )
    except (OSError, ValueError, KeyError):
        return None


def _keep_uncompressed(source: Path, target: Path) -> None:
    """Best effort: a read-only home only costs the next start its 0.4 s. On a read-only
    mount removing the temporary file fails too (EROFS, not "no such file"): ignored as well."""
    import contextlib
    import lzma
    import shutil

    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with lzma.open(source) as src, tmp.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


# Quoted passages: a French complaint quoting the seller's English reply ("Le vendeur m'a
# répondu "We are sorry, the item is out of stock..." Inadmissible.") was scored English.
# A quote ends at its closing mark or gives way to the next opening one: "[^»]*" let every
# "«" of a text without "»" scan to its end (quadratic: 20,000 "„" took 4 s per text).
_QUOTED = re.compile(r'"[^"]*"|“[^“”]*”|«[^«»]*»|„[^„“”]*[“”]')
QUOTING_MIN_WORDS = 3  # fewer words around the quote ("Inadmissible : « … »"): all of it


def detect_language(text: str) -> tuple[str, float]:
    """Return (ISO 639-1 code, confidence 0-1). No letters at all -> ("und", 0.0)."""
    outside = _QUOTED.sub(" ", text or "")
    if outside != (text or "") and len(_WORD.findall(outside)) >= QUOTING_MIN_WORDS:
        own = _detect(outside)
        # Only to keep French, and on French words (not the unknown-words default): a French
        # headline shared with "good read" stays French, "Juicy tasty burgers "the best in
        # town"" English.
        if own[0] == "fr" and own[1] >= FRENCH_MIN_CONFIDENCE:
            return own  # the writer's own words are French, whatever they quote
    return _detect(text)


# Letters of the scripts the word lists cannot read: a review in Arabic, Russian or Japanese
# had no profiled word, so it was "French, barely confident" and scored by the French heads.
# Cyrillic is Russian unless it has letters Russian lacks (і ї є ґ: Ukrainian).
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ar", re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
)
_ANY_SCRIPT = re.compile("|".join(pattern.pattern for _, pattern in _SCRIPTS))
_UKRAINIAN = re.compile(r"[іїєґІЇЄҐ]")
# Every code `detect_language` names ("und": undetermined): the API's `language` filter.
LANGUAGES: frozenset[str] = frozenset({*_STOPWORDS, *(lang for lang, _ in _SCRIPTS), "uk", "und"})
_LETTER = re.compile(r"[^\W\d_]")
SCRIPT_MIN_LETTERS = 3  # fewer (a name in a French sentence, one symbol): the words decide


def _script_language(text: str) -> tuple[str, float] | None:
    """(language, share of the letters) when most letters are of a script the word lists do
    not cover; None for Latin-script text. Only letters count: Arabic-Indic digits, Arabic
    punctuation, a zero-width no-break space (U+FEFF, in the Arabic presentation block) or a
    katakana middle dot made "Très bien ١٢٣ ، ؟" Arabic."""
    if not _ANY_SCRIPT.search(text):  # Latin-script text: one pass, no counting
        return None
    letters = "".join(_LETTER.findall(text))
    if len(letters) < SCRIPT_MIN_LETTERS:
        return None
    counts = {lang: len(pattern.findall(letters)) for lang, pattern in _SCRIPTS}
    if counts["ja"]:  # kana with kanji: Japanese
        counts["ja"] += counts.pop("zh")
    lang = max(counts, key=counts.__getitem__)
    count = counts[lang]
    if count < SCRIPT_MIN_LETTERS or count * 2 <= len(letters):
        return None
    if lang == "ru" and _UKRAINIAN.search(text):
        lang = "uk"
    return (lang, round(min(1.0, count / len(letters)), 3))


def _latin_part_is_french(rest: str) -> bool:
    """Whether the Latin-script words of a text are French on their own: a French review
    thanking "Дмитрий Иванович Петров" or "Αλέξανδρος Παπαδόπουλος" has more letters of that
    script than French ones, and was Russian or Greek (not counted, not analysed)."""
    words = [w.lower() for w in _WORD.findall(rest)]
    if len(words) < QUOTING_MIN_WORDS:
        return False
    language, confidence = _from_word_lists(rest, words)
    return language == "fr" and confidence >= FRENCH_MIN_CONFIDENCE


def _detect(text: str) -> tuple[str, float]:
    script = _script_language(text or "")
    if script is not None:
        rest = _ANY_SCRIPT.sub(" ", text)
        if not _latin_part_is_french(rest):
            return script
        text = rest  # the French words decide, as for a text with a short name in it
    # Lower case, accents kept: the word lists are looked up folded, in the languages whose
    # spelling has the word's accents (see _languages_of_accented).
    words = [w.lower() for w in _WORD.findall(text or "")]
    language, confidence = _from_word_lists(text, words)
    trusted = language == "fr" and confidence >= SECOND_OPINION_BELOW
    if len(words) >= 2 and is_french(language, confidence) and not trusted:
        other, p = _identifier().classify(text)
        if other != "fr" and p >= SECOND_OPINION_MIN_P:
            return (other, round(float(p), 3))
    if language != "und" and is_french(language, confidence):
        # A foreign guess too weak to trust is French (is_french). The stored language is what
        # the aggregates, `other_languages` and the report read, the flag what topics read:
        # "Impeccable ! No souci !" stored as "en" was French in topics, English elsewhere.
        return ("fr", confidence)
    return (language, confidence)


def _from_word_lists(text: str, words: list[str]) -> tuple[str, float]:
    """(language, confidence) from the profiled words of `text` (lower-cased, accents kept)
    and orthographic hints."""
    if not words:
        # Emoji-only feedback ("😡😡") is still feedback: French by default, barely confident.
        has_symbols = any(
            not ch.isspace() and not ch.isdigit() and ord(ch) > 0x2000 for ch in text or ""
        )
        return ("fr", 0.1) if has_symbols else ("und", 0.0)
    scores: dict[str, float] = dict.fromkeys(_PROFILES, 0)
    for w in words:  # one lookup a word instead of one per language
        langs = _LANGUAGES_OF.get(w, ()) if w.isascii() else _languages_of_accented(w)
        for lang in langs:
            scores[lang] += 1
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


# Below this confidence a non-French guess is not trusted (short texts, names, emojis).
FRENCH_MIN_CONFIDENCE = 0.35


def is_french(language: str, confidence: float) -> bool:
    """The one "is this verbatim French?" rule (storage and analysis): French, or a non-French
    guess too weak to trust."""
    return language == "fr" or confidence < FRENCH_MIN_CONFIDENCE

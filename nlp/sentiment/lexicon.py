"""LexiconSentiment: French lexicon + rules (negation, intensifiers, contrast, emojis, SMS).

Clause scores are also used by the theme detector to give each mention the polarity of the
clause that expresses it. Document labels come from a tiny multinomial logistic calibration
over a handful of lexicon features (see nlp/resources/lexicon_calibration.json + its card);
without that file, fixed thresholds are used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nlp.sentiment.irony import stated_irony
from nlp.sentiment.lexicon_fr import (
    EMOJI_VALENCE,
    INTENSIFIERS,
    NEGATED_EVENTS,
    build_lexicon,
)
from nlp.text.french import (
    NEGATION_WORDS,
    Clause,
    Token,
    Tokenizer,
    negation_flags,
    pending_question,
    split_clauses,
)
from nlp.text.memo import TextMemo
from nlp.text.normalize import fold_accents, normalize_text
from nlp.types import POLARITIES, Polarity, SentimentResult

VERSION = "0.3"
GENERAL_SCALE = 0.5  # weight of the general-vocabulary backoff lexicon vs our own entries
WORD_MEMO_MAX = 200_000  # distinct words whose valence a lexicon remembers (then starts over)
MEMO_CHARS = 1_000_000  # characters of recent texts whose tokens / clause scores are kept
# Hedges and reservations: typical of mixed / 3-star feedback.
_HEDGES = {
    "correct",
    "correcte",
    "corrects",
    "moyen",
    "moyenne",
    "assez",
    "plutot",
    "peu",
    "sinon",
    "bemol",
    "dommage",
    "mitige",
    "mitigee",
    "passable",
    "bof",
    "mouais",
    "quelques",
    "ok",
    "convenable",
    "acceptable",
    "basique",
    "simple",
    "neanmoins",
    "cependant",
    "toutefois",
    "reste",
    "malgre",
    "hormis",
    "sauf",
    "seul",
    "juste",
}
_CONTENT_STOP = {
    "le",
    "la",
    "les",
    "un",
    "une",
    "de",
    "du",
    "des",
    "l",
    "d",
    "et",
    "a",
    "en",
    "au",
    "aux",
    "ce",
    "c",
    "est",
    "je",
    "j",
    "il",
    "elle",
    "on",
    "se",
    "s",
    "y",
}
FEATURES = (
    "bias",
    "pos",
    "neg",
    "compound",
    "last",
    "n_pos",
    "n_neg",
    "excl",
    "length",
    "neg_events",
    "gen_pos",
    "gen_neg",
    "hedge",
    "contrast",
)


@dataclass(frozen=True, slots=True)
class ClauseScore:
    clause: Clause
    score: float  # signed valence sum of the clause
    pos: float
    neg: float
    opinion_starts: tuple[int, ...] = ()  # char offsets of the opinion-bearing tokens
    events: int = 0  # negated events ("jamais reçu") among its tokens


def _general_lexicon(scale: float) -> dict[str, float]:
    """General-vocabulary backoff: the French VADER lexicon of the `vaderSentiment-fr` package
    (MIT) when installed, accent-folded and scaled down; {} otherwise."""
    try:
        text = (
            resources.files("vaderSentiment_fr")
            .joinpath("fr_lexicon.txt")
            .read_text(encoding="utf-8")
        )
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        word, sep, value = line.rpartition("->")
        if not sep or not word.isalpha():
            continue  # emoticons, multi-word entries
        try:
            out.setdefault(fold_accents(word), float(value) * scale)
        except ValueError:
            continue
    return out


class _Lexicon:
    """Word/prefix/phrase valences, built once per model instance."""

    def __init__(self, general_scale: float = GENERAL_SCALE) -> None:
        self.general = _general_lexicon(general_scale) if general_scale > 0 else {}
        self.words, self.prefixes, phrases = build_lexicon()
        self.phrases = {tuple(k.split()): v for k, v in phrases.items()}
        # Expressions that state their own negation ("pas terrible", "toujours pas", "aucun
        # souci"): a negation before them does not flip them again.
        self.self_negated = {k for k in self.phrases if NEGATION_WORDS.intersection(k)}
        self.max_phrase = max((len(k) for k in self.phrases), default=1)
        # First word -> lengths of the multi-word expressions starting with it, longest first:
        # a token that starts none costs one dict lookup instead of a tuple per length.
        sizes: dict[str, set[int]] = {}
        for key in self.phrases:
            if len(key) > 1:
                sizes.setdefault(key[0], set()).add(len(key))
        self.phrase_sizes = {w: tuple(sorted(s, reverse=True)) for w, s in sizes.items()}
        self.intens_phrases = {tuple(k.split("_")): v for k, v in INTENSIFIERS.items() if "_" in k}
        self.intens = {k: v for k, v in INTENSIFIERS.items() if "_" not in k}
        self._word_memo: dict[str, float] = {}

    def word(self, norm: str) -> float:
        # Memoised: a word the lexicon lacks costs a prefix lookup per length otherwise.
        try:
            return self._word_memo[norm]
        except KeyError:
            pass
        if len(self._word_memo) >= WORD_MEMO_MAX:
            self._word_memo = {}
        value = self._word_memo[norm] = self._word(norm)
        return value

    def _word(self, norm: str) -> float:
        if norm in self.words:
            return self.words[norm]
        for size in range(len(norm), 3, -1):
            value = self.prefixes.get(norm[:size])
            if value is not None:
                return value
        return 0.0


def _modifier(tokens: list[Token], i: int, lex: _Lexicon) -> float:
    """Product of intensifiers just before token i (up to two words back)."""
    mult = 1.0
    back = [t.norm for t in tokens[max(0, i - 2) : i] if t.kind == "word"]
    if len(back) == 2 and tuple(back) in lex.intens_phrases:
        return lex.intens_phrases[tuple(back)]
    if back and back[-1] in lex.intens:
        mult *= lex.intens[back[-1]]
        if len(back) == 2 and lex.intens.get(back[0], 0.0) > 1.0:
            mult *= lex.intens[back[0]] ** 0.5
    return mult


def score_tokens(
    tokens: list[Token], lex: _Lexicon, opinion_at: list[int] | None = None
) -> tuple[float, float, int]:
    """(positive sum, negative sum as a positive number, negated-event count) of tokens.

    `opinion_at`, when given, receives the indices of the tokens that carry an opinion.
    """
    flags = negation_flags(tokens)
    n = len(tokens)
    pos = neg = 0.0

    # A negation flips the first opinion word of its scope only ("aucune livraison, 4 jours
    # de retard" keeps "retard" negative): once used, the rest of the scope is released.
    def release(k: int) -> None:
        while k < n and flags[k]:
            flags[k] = False
            k += 1

    events = 0
    # "Quand vais-je être remboursé ?": the first event word of a when/where question reads as
    # a negated one (not happened yet), as in "pas encore remboursé".
    pending = pending_question(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        value = 0.0
        consumed = 1
        if tok.kind == "emoji":
            value = EMOJI_VALENCE.get(tok.text, 0.0)
        elif tok.kind in ("word", "num"):
            # Multi-word expressions first; they encode their own negation ("pas terrible").
            for size in lex.phrase_sizes.get(tok.norm, ()):
                if size > n - i:
                    continue
                key = tuple(t.norm for t in tokens[i : i + size])
                if key in lex.phrases:
                    value, consumed = lex.phrases[key], size
                    # "pas à la hauteur", "pas au top", "pas de qualité": an expression in a
                    # negation's scope flips as a word does (it read as praise).
                    if value and flags[i] and key not in lex.self_negated:
                        value *= -0.8 if value > 0 else -0.45
                        release(i + size)
                    break
            if consumed == 1 and tok.kind == "word":
                value = lex.word(tok.norm)
                if value == 0.0 and (flags[i] or pending) and tok.norm in NEGATED_EVENTS:
                    value = NEGATED_EVENTS[tok.norm]
                    events += 1
                    pending = False
                    release(i + 1)
                elif (
                    value == 0.0
                    and i > 0
                    and tokens[i - 1].norm == "trop"
                    and tok.norm not in _CONTENT_STOP
                    and len(tok.norm) > 3
                    and not flags[i]
                ):
                    value = -1.0  # "trop grand", "trop long": excess is a complaint
                elif value != 0.0:
                    if tok.text.isupper() and len(tok.text) > 2:
                        value *= 1.2
                    if flags[i]:
                        # "pas bon" -> negative; "pas cher", "sans problème" -> mildly positive;
                        # "pas très bon" is softer than "pas bon"; "pas du tout bon" is not
                        # ("tout" is no softener there: it read softer than "pas bon").
                        soft = _modifier(tokens, i, lex) > 1.0 and not (
                            i > 1 and tokens[i - 2].norm == "du" and tokens[i - 1].norm == "tout"
                        )
                        if value > 0:
                            value *= -0.5 if soft else -0.8
                        else:
                            value *= -0.45
                        release(i + 1)
                    else:
                        value *= _modifier(tokens, i, lex)
        if value > 0:
            pos += value
        elif value < 0:
            neg -= value
        if value and opinion_at is not None:
            opinion_at.extend(range(i, i + consumed))
        i += consumed
    # Exclamation marks amplify whatever the clause says.
    bangs = sum(t.text.count("!") for t in tokens if t.kind == "punct")
    if bangs:
        amp = 1.0 + min(3, bangs) * 0.08
        pos, neg = pos * amp, neg * amp
    return pos, neg, events


def compound(total: float, alpha: float = 8.0) -> float:
    """VADER-style squashing of a valence sum into (-1, 1)."""
    return total / math.sqrt(total * total + alpha)


class LexiconSentiment:
    """Rule-based French sentiment; `predict(texts) -> list[SentimentResult]`."""

    name = "lexicon"

    def __init__(self, calibration: Path | None = None) -> None:
        self.lex = _Lexicon()
        self.version = VERSION
        self.tokenizer = Tokenizer()
        # Per text, once: its tokens and scored clauses (see nlp/text/memo).
        self._tokens: TextMemo[str, tuple[Token, ...]] = TextMemo(
            lambda text: tuple(self.tokenizer(text)), MEMO_CHARS
        )
        self._clauses: TextMemo[str, tuple[ClauseScore, ...]] = TextMemo(
            lambda text: self._score_clauses(text, self._tokens(text)), MEMO_CHARS
        )
        self.weights: dict[str, list[float]] | None = None
        path = calibration
        try:
            if path is None:
                text = (
                    resources.files("nlp.resources")
                    .joinpath("lexicon_calibration.json")
                    .read_text(encoding="utf-8")
                )
            else:
                text = Path(path).read_text(encoding="utf-8")
            data = json.loads(text)
            if list(data.get("features", [])) == list(FEATURES):
                self.weights = data["weights"]
        except (FileNotFoundError, OSError, ValueError, KeyError):
            self.weights = None

    # --- clause level (shared with the theme detector) --------------------------------------
    def tokens(self, text: str) -> list[Token]:
        """`tokenize(text)`, computed once per text (memoised with the clause scores)."""
        return list(self._tokens(text))

    def clause_scores(self, text: str, tokens: list[Token] | None = None) -> list[ClauseScore]:
        """Scored clauses of `text`; without `tokens`, computed once per text (memoised: the
        sentiment, the theme rules and the learned heads all read the same clauses)."""
        if tokens is None:
            return list(self._clauses(text))
        return list(self._score_clauses(text, tokens))

    def _score_clauses(self, text: str, tokens: Sequence[Token]) -> tuple[ClauseScore, ...]:
        out = []
        # In stated irony the praise is the complaint: "bravo la Poste" after "encore un colis
        # perdu" reads as negative, for the theme it names and for the document, whose
        # features are these clauses. (Exasperation emojis are lexicon entries already.)
        ironic = stated_irony(text)
        for clause in split_clauses(text, list(tokens)):
            at: list[int] = []
            pos, neg, events = score_tokens(list(clause.tokens), self.lex, at)
            if ironic and pos > neg:
                pos, neg = neg, pos
            starts = tuple(clause.tokens[k].start for k in at)
            out.append(ClauseScore(clause, pos - neg, pos, neg, starts, events))
        return tuple(out)

    # --- document level ---------------------------------------------------------------------
    def features(self, text: str) -> dict[str, float]:
        text = normalize_text(text)
        tokens = self._tokens(text)
        scored = self._clauses(text)
        pos = neg = 0.0
        n_pos = n_neg = 0
        events = 0
        contrast_pos = contrast_neg = 0.0
        weighted = 0.0
        last = 0.0
        for idx, cs in enumerate(scored):
            clause, cp, cn = cs.clause, cs.pos, cs.neg
            events += cs.events
            weight = 1.0
            if clause.after_contrast:
                weight = 1.5
                contrast_pos += cp
                contrast_neg += cn
            elif (
                idx + 1 < len(scored)
                and scored[idx + 1].clause.after_contrast
                and scored[idx + 1].clause.sentence == clause.sentence
            ):
                weight = 0.6
            pos += cp
            neg += cn
            n_pos += cp > cn
            n_neg += cn > cp
            weighted += weight * (cp - cn)
            if cp or cn:
                last = cp - cn
        words = sum(1 for t in tokens if t.is_word)
        gen_pos, gen_neg = self._general_sums(tokens)
        return {
            "bias": 1.0,
            "pos": math.log1p(pos),
            "neg": math.log1p(neg),
            "compound": compound(weighted),
            "last": compound(last),
            "contrast_pos": math.log1p(contrast_pos),
            "contrast_neg": math.log1p(contrast_neg),
            "n_pos": math.log1p(n_pos),
            "n_neg": math.log1p(n_neg),
            "excl": min(3.0, float(text.count("!"))) / 3.0,
            "length": math.log1p(words) / 5.0,
            "neg_events": math.log1p(events),
            # General-vocabulary words our lexicon lacks (news/tweets vocabulary): a separate,
            # calibrated signal so it never overrides the customer-feedback lexicon.
            "gen_pos": math.log1p(gen_pos),
            "gen_neg": math.log1p(gen_neg),
            "hedge": math.log1p(sum(1 for t in tokens if t.norm in _HEDGES)),
            "contrast": 1.0 if any(c.clause.after_contrast for c in scored) else 0.0,
        }

    def _general_sums(self, tokens: Sequence[Token]) -> tuple[float, float]:
        if not self.lex.general:
            return 0.0, 0.0
        flags = negation_flags(list(tokens))
        pos = neg = 0.0
        for tok, negated in zip(tokens, flags, strict=True):
            if not tok.is_word or self.lex.word(tok.norm) != 0.0:
                continue
            value = self.lex.general.get(tok.norm, 0.0)
            if negated:
                value *= -0.5
            if value > 0:
                pos += value
            else:
                neg -= value
        return pos, neg

    def _probs(self, feats: dict[str, float]) -> dict[str, float]:
        if self.weights is not None:
            logits = {
                label: sum(w * feats[f] for w, f in zip(self.weights[label], FEATURES, strict=True))
                for label in POLARITIES
            }
        else:
            c = feats["compound"]
            logits = {"negative": -4.0 * c - 0.6, "neutral": 0.0, "positive": 4.0 * c - 0.6}
        top = max(logits.values())
        exp = {k: math.exp(v - top) for k, v in logits.items()}
        total = sum(exp.values())
        return {k: exp[k] / total for k in POLARITIES}

    def predict_one(self, text: str) -> SentimentResult:
        probs = self._probs(self.features(text))
        label: Polarity = max(POLARITIES, key=lambda k: probs[k])
        # Expected stars: negative ~1.5, neutral 3, positive ~4.6 (distribution means).
        stars = 1.5 * probs["negative"] + 3.0 * probs["neutral"] + 4.6 * probs["positive"]
        return SentimentResult(
            label=label,
            score=round(probs[label], 4),
            stars=round(stars, 2),
            probs={k: round(v, 4) for k, v in probs.items()},
        )

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        return [self.predict_one(t) for t in texts]

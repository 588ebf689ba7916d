"""Which of many regexes can match a text, found in one pass: each regex's required literals.

A taxonomy has dozens of theme patterns and polarity cues, and each `finditer` walks the whole
text: most of the rule detector's time went there, for patterns that mostly match nothing. Every
packaged pattern needs some literal text to match ("numéro de suivi", one of "pas reçu" / "pas
arrivé"...): its *required literals* are read from Python's own parse of the regex (a set of
strings, one of which every match contains). One Aho-Corasick pass (`pyahocorasick`) over the
case-folded text finds the literals present; only the patterns whose literals are there run.
A pattern without derivable literals (or not a Python `re` pattern: RE2 user patterns) always
runs, so the result is exactly the same, only cheaper.

Case folding follows `re.IGNORECASE`: two characters `re` matches case-insensitively fold to
the same character (tests check it over every code point for the literals' alphabet).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import ahocorasick

MAX_STRINGS = 64  # literal sets larger than this are not worth expanding
MIN_LENGTH = 2  # literals shorter than this select nothing
MAX_CLASS = 8  # character classes of up to this many letters expand to literals

Strings = frozenset[str] | None


def fold_case(text: str) -> str:
    """`text` with every character case-folded so that two characters `re.IGNORECASE` treats
    as the same fold alike: lower case, then the lower case of the upper case (re's extra case
    pairs such as s / ſ, i / ı, µ / μ share their upper case), final sigma as sigma. Whole-string
    C-level calls; "İ" first becomes "i" (re lower-cases it so; str.lower adds a dot)."""
    text = text.lower() if text.isascii() else text.replace("\u0130", "i").lower()
    if text.isascii():
        return text
    return text.upper().lower().replace("\u03c2", "\u03c3")


def _product(left: set[str] | None, right: set[str] | None) -> set[str] | None:
    if left is None or right is None or len(left) * len(right) > MAX_STRINGS:
        return None
    return {a + b for a in left for b in right}


def _best(candidates: list[set[str] | None]) -> set[str] | None:
    """The most selective set: longest shortest string, then fewest strings."""
    usable = [c for c in candidates if c and min(map(len, c)) >= MIN_LENGTH]
    if not usable:
        return None
    return max(usable, key=lambda c: (min(map(len, c)), -len(c)))


class _Literals:
    """Exact and required literal sets of a parsed regex (sre_parse tree), case-folded."""

    def sequence(self, items: Any) -> tuple[set[str] | None, set[str] | None]:
        """(every string the sequence can match, or None; a set one of which every match
        contains, or None)."""
        exact: set[str] | None = {""}
        run: set[str] = {""}  # the current run of items with exact sets, concatenated
        candidates: list[set[str] | None] = []
        for op, av in items:
            e, r = self.item(op, av)
            if e is None:
                exact = None
                candidates.extend((run, r))
                run = {""}
                continue
            exact = _product(exact, e)
            joined = _product(run, e)
            if joined is None:  # too many strings: close the run, start one here
                candidates.append(run)
                run = e if len(e) <= MAX_STRINGS else {""}
            else:
                run = joined
        candidates.extend((run, exact))
        return exact, _best(candidates)

    def item(self, op: Any, av: Any) -> tuple[set[str] | None, set[str] | None]:
        if op is sre.LITERAL:
            return {fold_case(chr(av))}, None
        if op is sre.IN:
            if len(av) > MAX_CLASS or any(o is not sre.LITERAL for o, _ in av):
                return None, None  # ranges, categories, negations: any of many characters
            return {fold_case(chr(a)) for _, a in av}, None
        if op is sre.SUBPATTERN:
            return self.sequence(av[-1])
        if op is sre.BRANCH:
            parts = [self.sequence(alt) for alt in av[1]]
            exact: set[str] | None = None
            if all(e is not None for e, _ in parts):
                exact = set().union(*(e for e, _ in parts if e is not None))
                exact = exact if len(exact) <= MAX_STRINGS else None
            needs = [r if r is not None else _best([e]) for e, r in parts]
            required: set[str] | None = None
            if all(n is not None for n in needs):
                required = set().union(*(n for n in needs if n is not None))
                required = required if len(required) <= MAX_STRINGS else None
            return exact, required
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, sub = av
            e, r = self.sequence(sub)
            if low == 0:
                return (e | {""} if e is not None and high == 1 else None), None
            if low == high and e is not None:
                power: set[str] | None = {""}
                for _ in range(low):
                    power = _product(power, e)
                return power, r
            return None, r if r is not None else _best([e])
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return {""}, None  # zero-width: adds nothing to the matched text
        return None, None  # any character, categories, back-references...


def required_literals(pattern: str, flags: int = 0) -> Strings:
    """Case-folded strings one of which every match of `pattern` contains (None: no such set
    worth using, or a pattern Python cannot parse)."""
    try:
        tree = sre_parse.parse(pattern, flags)
    except (re.error, OverflowError, RecursionError):
        return None
    _, required = _Literals().sequence(tree)
    return frozenset(required) if required else None


class PatternFilter:
    """`candidates(text)`: indices, in order, of the patterns that may match `text` (any
    pattern that matches is among them). Built once per list of patterns."""

    def __init__(self, patterns: Sequence[Any]) -> None:
        self.always: list[int] = []
        self.literals: list[Strings] = []
        by_literal: dict[str, list[int]] = {}
        for k, pattern in enumerate(patterns):
            lits: Strings = None
            if isinstance(pattern, re.Pattern) and isinstance(pattern.pattern, str):
                lits = required_literals(pattern.pattern, pattern.flags)
            self.literals.append(lits)
            if lits is None:
                self.always.append(k)
                continue
            for lit in lits:
                by_literal.setdefault(lit, []).append(k)
        self.n_patterns = len(patterns)
        self._automaton: Any = None
        if by_literal:
            automaton = ahocorasick.Automaton()
            for lit, ks in by_literal.items():
                automaton.add_word(lit, tuple(ks))
            automaton.make_automaton()
            self._automaton = automaton

    def candidates(self, text: str) -> list[int]:
        if self._automaton is None:
            return list(self.always)
        found = set(self.always)
        for _, ks in self._automaton.iter(fold_case(text)):
            found.update(ks)
        return sorted(found)

"""Required-literal prefilter of taxonomy regexes: never skips a pattern that matches."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp.taxonomy import LinearPattern, compile_pattern, load_taxonomy
from nlp.text.prefilter import PatternFilter, fold_case, required_literals

TAXONOMIES = ("ecommerce", "restaurant")


def _packaged_patterns() -> list[str]:
    out: list[str] = []
    for name in TAXONOMIES:
        tax = load_taxonomy(name)
        out += tax.positive_cues + tax.negative_cues
        for theme in tax.active:
            out += theme.patterns + theme.positive_cues + theme.negative_cues
    return out


PATTERNS = _packaged_patterns()


def test_case_folding_agrees_with_re_ignorecase_over_every_code_point() -> None:
    """Every character `re.IGNORECASE` matches to a letter of the literals folds like it."""
    alphabet = {
        ch
        for p in PATTERNS
        for lits in [required_literals(p, re.I) or ()]
        for lit in lits
        for ch in lit
    }
    alphabet |= set("abcdefghijklmnopqrstuvwxyzàâäçéèêëîïôöùûüÿœæ0123456789 '-.€")
    every = "".join(chr(cp) for cp in range(0x110000))
    for letter in sorted(alphabet):
        for m in re.finditer(re.escape(letter), every, re.IGNORECASE):
            assert fold_case(m.group()) == fold_case(letter), (letter, m.group())
    # Folding a text folds each character as it would alone (what substring tests need).
    sample = "İSTANBUL ΟΔΟΣ ſtraße ǅemal Ünïcödé"
    assert fold_case(sample) == "".join(fold_case(ch) for ch in sample)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bnum[ée]ro de suivi\b", {"numero de suivi", "numéro de suivi"}),
        (r"\b(?:pas|jamais) re[çc]u", {"pas recu", "pas reçu", "jamais recu", "jamais reçu"}),
        (r"\bR\.?A\.?S\b(?! le bol)", {"ras", "r.as", "ra.s", "r.a.s"}),
        (
            r"\b\d+ (?:jours?|mois) d'attente",
            {" jour d'attente", " jours d'attente", " mois d'attente"},
        ),
        (r"\bcolis\b[^.]{0,40}?\b(?:ab[îi]m|cass)", {"colis"}),
        (r"\d+", None),  # no literal at all
        (r"\b(?:a|b)\b", None),  # literals too short to select anything
        (r"(", None),  # not a regex
    ],
)
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    lits = required_literals(pattern, re.IGNORECASE)
    assert (None if lits is None else set(lits)) == expected


def test_packaged_patterns_have_literals() -> None:
    # Not needed for correctness (a pattern without literals always runs), but each one makes
    # the rules slower: the only exception is the price pattern (digits, then "€" alone).
    without = {p for p in PATTERNS if required_literals(p, re.IGNORECASE) is None}
    assert without == {r"\b\d+(?:[.,]\d+)? ?(?:€|euros?|eur)\b"}


COMPILED = [compile_pattern(p) for p in PATTERNS]
FILTER = PatternFilter(COMPILED)


@st.composite
def _matching_texts(draw: st.DrawFn) -> str:
    """Some text around a match of one packaged pattern (hypothesis writes the match)."""
    pattern = draw(st.sampled_from(COMPILED))
    assert isinstance(pattern, re.Pattern)
    return draw(st.text(max_size=4)) + draw(st.from_regex(pattern)) + draw(st.text(max_size=4))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=_matching_texts())
def test_a_pattern_that_matches_is_always_a_candidate(text: str) -> None:
    candidates = set(FILTER.candidates(text))
    for k, pattern in enumerate(COMPILED):
        if pattern.search(text):
            assert k in candidates, (PATTERNS[k], text)


def test_candidates_skip_patterns_whose_literals_are_absent() -> None:
    pats = [compile_pattern(r"\bnum[ée]ro de suivi\b"), compile_pattern(r"\bmoins cher\b")]
    filt = PatternFilter(pats)
    assert filt.candidates("Le NUMÉRO DE SUIVI ne marche pas") == [0]
    assert filt.candidates("rien à voir") == []
    assert filt.candidates("moins cher, numero de suivi") == [0, 1]


def test_patterns_without_literals_always_run() -> None:
    user = LinearPattern(r"\bab[îi]m[ée]\b")  # RE2 user pattern: never filtered
    filt = PatternFilter([compile_pattern(r"\d+ ?€"), user])
    assert filt.candidates("") == [0, 1]  # "€" alone is too short to select
    assert 1 in filt.candidates("rien")
    assert PatternFilter([]).candidates("x") == []

"""Known first and last names, for names written without a capital ("le livreur karim").

A capital is what lets the cue rules and spaCy's NER see a name; reviews typed on a phone often
have none. The lists come from Faker's person providers (MIT, maintained), for the locales whose
names French customers and staff commonly carry: French-speaking countries (fr_DZ for the
Maghreb: the ar_* providers write Arabic script) and the largest European communities. They
are read once and handed to `PiiMasker` by its config.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

LOCALES = (
    "fr_FR",
    "fr_BE",
    "fr_CA",
    "fr_CH",
    "fr_DZ",
    "fr_QC",
    "en_US",
    "en_GB",
    "es_ES",
    "it_IT",
    "pt_PT",
    "pt_BR",
    "tr_TR",
)

# Names that are also everyday French (or common loan) words, so never read as a name when
# written in lower case: "la conseillère claire et précise", "j'ai eu beau appeler", "au max".
# Picked by hand from the providers' names found in spaCy's French lemma table or in the
# sentiment lexicons ("ravi du service", "le livreur courtois"); they leave both lists.
_WORD_NAMES_TEXT = """
    aimé aimée ale alpin ambre art aura aurore bas beau ben bibi bill blanche bravo canal
    capucine chance charlotte che claire clémence constance crin divan dom don dora edu engin
    espérance faith fleur flore france gala germain grace hermine honoré hope ion jade jet job
    jolie joy kick lance liane limon lot magret mar mare marguerite marin marine martial max
    maxi merle mélodie modeste nazi noël nova page pascal paye perle prudence ramadan rich roman
    rose salami sep sil sol sole summer tan thi toy victoire violette will
    beguin champagne courtois culot desiree dieu frère gagné good grand graves long love léger
    mignon mur noble paradis petit piquer pire pires plante ravi ravie sauvage vaillant vilain
    vives comment ceci
"""
WORD_NAMES = frozenset(_WORD_NAMES_TEXT.split())
# Shops and brands spelt as a first and a last name: "merci à yves rocher" thanks a brand.
NAMED_BRANDS = frozenset(
    [
        "yves rocher",
        "leroy merlin",
        "jacques dessange",
        "franck provost",
        # fashion, beauty, food and press brands NER takes for people ("Louis Vuitton sac")
        "louis vuitton",
        "christian dior",
        "christian louboutin",
        "christian lacroix",
        "jean paul gaultier",
        "yves saint laurent",
        "pierre cardin",
        "pierre hermé",
        "camille albane",
        "nina ricci",
        "ralph lauren",
        "tommy hilfiger",
        "calvin klein",
        "hugo boss",
        "marc jacobs",
        "guy degrenne",
    ]
)
# Brands spelt as a doctor: "mes Dr Martens", "la levure Dr. Oetker" (lower case, the words
# after "Dr"); the title of a real doctor ("Dr Martin") is still read as a name.
DOCTOR_BRANDS = frozenset(
    [
        "martens",
        "marten's",
        "oetker",
        "pepper",
        "scholl",
        "scholl's",
        "hauschka",
        "brandt",
        "bronner",
        "bronner's",
        "jart",
        "beckmann",
        "organic",
        "pierre ricaud",
    ]
)


@dataclass(frozen=True)
class NameLists:
    """Lower-cased first and last names, without the everyday words above."""

    first: frozenset[str]
    last: frozenset[str]

    def is_first(self, word: str) -> bool:
        return word.lower() in self.first

    def is_last(self, word: str) -> bool:
        return word.lower() in self.last


def _provider_names(locale: str, attrs: tuple[str, ...]) -> set[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    out: set[str] = set()
    for attr in attrs:
        # Lists, tuples, or {name: weight} dicts depending on the locale.
        for name in getattr(provider, attr, ()):
            # Two letters ("jo", "el") are too often something else.
            if isinstance(name, str) and len(name) >= 3 and name.replace("-", "").isalpha():
                out.add(name.lower())
    return out


@cache
def faker_names(locales: tuple[str, ...] = LOCALES) -> NameLists:
    """The names of Faker's person providers for `locales` (read once: constant data)."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in locales:
        first |= _provider_names(locale, ("first_names", "first_names_male", "first_names_female"))
        last |= _provider_names(locale, ("last_names",))
    return NameLists(first=frozenset(first - WORD_NAMES), last=frozenset(last - WORD_NAMES))

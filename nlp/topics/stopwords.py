"""French stop words for topic keywords: function words, auxiliaries, elided forms, SMS
spellings and the generic review fillers that name no topic ("très", "vraiment", "fois").

Only words that never carry a topic on their own are here: "retour", "personne", "délai",
"prix", "service" stay, unlike in some general-purpose lists, and so do the opinion words
that name a complaint ("nul", "bof", "cher", "lent": "nul" is no pronoun in reviews). Every
entry is also listed without accents ("deja", "etait", "a"), because customers often type
without them.
"""

from __future__ import annotations

from nlp.text.normalize import fold_accents

# Elided forms as they appear once the apostrophe is split off ("l'", "qu'", "jusqu'").
_ELIDED = """c d j l m n s t qu jusqu lorsqu puisqu quoiqu presqu quelqu aujourd"""
ELIDED = frozenset(_ELIDED.split())

_DETERMINERS_PRONOUNS = """
le la les un une des du de au aux ce cet cette ces ça ca ceci cela celui celle ceux celles
celui-ci celle-ci ceux-ci celles-ci celui-là celle-là ceux-là celles-là
mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs mien mienne miens miennes
tien tienne siens sienne nôtre nôtres vôtre vôtres
je tu il elle on nous vous ils elles me te se moi toi soi lui eux y en
moi-même toi-même lui-même elle-même nous-mêmes vous-mêmes eux-mêmes elles-mêmes
qui que quoi dont où lequel laquelle lesquels lesquelles auquel auxquels auxquelles duquel
desquels desquelles quel quelle quels quelles quelque quelques quelqu'un chacun chacune
chaque aucun aucune autre autres certain certaine certains certaines plusieurs tel telle tels
telles tout toute tous toutes rien quiconque même mêmes
"""

_PREPOSITIONS_CONJUNCTIONS = """
à a de en dans sur sous par pour avec sans chez vers entre parmi pendant depuis avant après
devant derrière contre selon malgré durant dès hors outre sauf via envers jusque jusqu'à
près auprès lors afin concernant environ hormis excepté
et ou mais donc or ni car que si comme quand lorsque puisque parce quoique tandis alors
ainsi cependant pourtant toutefois néanmoins sinon soit puis ensuite enfin bref aussi
"""

# Auxiliaries and the light verbs that fill reviews without naming anything.
_VERBS = """
être suis es est sommes êtes sont étais était étions étiez étaient serai seras sera serons
serez seront serais serait serions seriez seraient sois soit soyons soyez soient fus fut
furent été étant
avoir ai as a avons avez ont avais avait avions aviez avaient aurai auras aura aurons aurez
auront aurais aurait aurions auriez auraient aie aies ait ayons ayez aient eu eue eus eut
eurent ayant
faire fais fait faisons faites font faisait faisaient ferai fera ferons feront ferait
feraient fasse faisant faite faits
pouvoir peux peut pouvons pouvez peuvent pouvait pouvaient pourrai pourra pourrait
pourraient pourrais puisse pu
vouloir veux veut voulons voulez veulent voulait voulais voudrais voudrait voulu
devoir dois doit devons devez doivent devait devais devrait devrais devraient dû
aller vais vas va allons allez vont allait allais irai ira irait allé allée allés
falloir faut fallait faudra faudrait fallu
dire dis dit dite dits disent disait
savoir sais sait savent savait su
voir vois voit voient voyait vu vue vus
mettre mets met mis mise
prendre prends prend pris prise
donner donne donnent donné
venir viens vient venu venue
semble semblent sembler
"""

_ADVERBS = """
ne pas plus moins non oui si très trop peu assez beaucoup tellement tant vraiment
bien mal mieux encore toujours jamais déjà souvent parfois ici là là-bas
maintenant alors aujourd'hui hier demain ensuite aussitôt longtemps vite tard tôt
peut-être plutôt presque surtout seulement simplement vraiment juste absolument totalement
complètement franchement carrément également notamment directement vraiment environ
comment pourquoi combien autant ailleurs partout dessus dessous dedans dehors
d'ailleurs quand-même quand même tout-à-fait voilà voici
"""

# Review fillers: evaluative and counting words every topic shares (sentiment is scored
# elsewhere; a topic "très bien super" says nothing about what the customer talks about).
_FILLERS = """
fois chose choses truc trucs gens cas part fait façon genre côté niveau sorte
un deux trois quatre cinq six sept huit neuf dix vingt cent mille premier première
bonjour bonsoir merci cordialement madame monsieur mme mr svp
etc ok okay oui non ah oh eh bah ben bon bons bonne bonnes super vraiment top
"""

# SMS and chat spellings ("jai", "pcq", "bcp") seen in social posts and short reviews.
_SMS = """
jai jsuis chui jsp jpp jme jte jle jla jvais jveux jpense ya yavait cest cétait c'est
slt bjr bsr cc coucou stp svp pk pq pcq psk pck tkt dsl mdr ptdr lol xd mtn auj ajd
bcp bcq tjs tjrs tt ts ds dc vs ns pr pdt qd qq qqn qqch qqc ke ki koi kan ct g chuis
mm meme tres bcp deja etait etre apres ds
"""

# Stop words typed with a wrong accent: folding their accents off would also drop content
# words ("côte", "tél", "fût"), so only these unambiguous ones (« attentes, délai, trés »).
_MISACCENTED = """
trés aprés déja dèjà dejà complétement celà çà méme mème étre oú
"""


def _words(block: str) -> set[str]:
    return {w.strip().lower() for w in block.split() if w.strip()}


_BASE = (
    _words(_DETERMINERS_PRONOUNS)
    | _words(_PREPOSITIONS_CONJUNCTIONS)
    | _words(_VERBS)
    | _words(_ADVERBS)
    | _words(_FILLERS)
    | _words(_SMS)
    | _words(_MISACCENTED)
    | set(ELIDED)
)

FRENCH_STOP_WORDS: frozenset[str] = frozenset(_BASE | {fold_accents(w) for w in _BASE})


def is_stop_word(token: str, extra: frozenset[str] = frozenset()) -> bool:
    """Lower-cased token in the French list (or the caller's extra words)."""
    return token in FRENCH_STOP_WORDS or token in extra

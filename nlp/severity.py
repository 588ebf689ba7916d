"""Severity 0-1 of one piece of feedback: how negative, on which themes, with alarm words, and
whether the same customer / order keeps coming back.

severity = P(negative)-driven base (scaled by the heaviest negative theme's severity_weight and
by how many themes are negative) + a bump per alarm term of the taxonomy ("arnaque", "jamais
reçu", "intoxication"; a negated one, "pas une arnaque", does not count) + a bump when this is
a repeat complaint (`escalate`, applied by whoever knows the customer's history).

The base alone stays below "critique" (0.75): P(negative) is how sure the model is that the text
is negative, not how bad it is, and « Très déçu du SAV, délai trop long » (P 0.80 on a weight
1.2 theme: 0.78) outranked « saisir la DGCCRF… escroquerie » (0.776). Above "haute" (0.5) the
base is compressed into [0.5, TONE_MAX] (order kept, the "haute" count unchanged): "critique"
takes an alarm term or a repeat complaint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from nlp.taxonomy import Taxonomy
from nlp.text.normalize import fold_accents, normalize_text
from nlp.types import SentimentResult, ThemeMention

# "pas une arnaque", "aucun danger", "sans danger", "n'est pas dangereux", "pas du tout une
# arnaque", "rien de dangereux", "non dangereux", "en aucun cas une arnaque", "loin d'etre une
# arnaque", "pas vraiment une arnaque", "pas une seule arnaque", "aucun risque d'incendie",
# "pas été blessé", "personne n'a été blessé", "pas besoin de relancer", "sans se brûler": no
# alarm. Matched on the folded text (lower case, no accents) right before the alarm term.
_NEGATED = re.compile(
    r"(?:\b(?:(?:pas|aucun|aucune|sans|jamais|ni|nullement|aucunement|rien|non"
    r"|personne\s+(?:n'|ne\s+)(?:s'|se\s+)?(?:a|est|sont)?)"
    r"(?:\s+(?:du\s+tout|vraiment|absolument|forcement|cas))?"
    r"|loin\s+d'(?:etre|en\s+etre))\s*"
    r"(?:(?:une?|de|d'|du|des|la|le|l'|trop|tres|si|seule?|etre|ete|risques?|besoin|se|s'|me|m')"
    r"\s*){0,3})$"
)
# Harmless senses of alarm terms, as whole phrases on the folded text: an alarm term inside one
# does not count. A cart reminder (« mail de relance pour mon panier ») or a restart (« relance
# de la production »), a device or rule named after the fire (« détecteur incendie »,
# « détecteur de fumée et incendie », « anti-incendie », « alarme incendie »), burnt food or
# its taste (« pain brûlé », « crème brûlée », « goût de brûlé »: a quality defect, no harm;
# « odeur de brûlé » from a device stays an alarm), burning calories, a candle that burns, and
# feelings hurt by a reply (« blessé par votre réponse »). « 3e relance sans réponse »,
# « risque d'incendie », « mon fils a été blessé », « brûlure au doigt » still count.
_HARMLESS = re.compile(
    r"\b(?:"
    r"(?:(?:e-?)?mails?|courriels?|messages?|sms|notifications?)\s+de\s+relances?\s+"
    r"(?:(?:pour|de|du|d'|sur|concernant|mon|ma|mes|le|la|les|l'|votre|vos)\s*){0,3}paniers?"
    r"|relances?\s+(?:de\s+|du\s+|d')?(?:(?:mon|ma|mes|le|la|les|l'|votre|vos)\s*)?paniers?"
    r"|relances?\s+(?:de\s+la|de\s+l'|du|des)\s*(?:production|fabrication|economie|activite"
    r"|collection|gamme|ventes)"
    r"|(?:detecteurs?|alarmes?|avertisseurs?|extincteurs?|securite|protection|consignes?"
    r"|couvertures?|portes?)\s+(?:de\s+fumee\s+et\s+)?(?:d'|de\s+l'|contre\s+l')?\s*incendies?"
    r"|anti-?\s*incendies?"
    r"|(?:pains?|toasts?|tartines?|gateaux?|pizzas?|biscuits?|croissants?|brioches?|tartes?"
    r"|cremes?|cafes?|caramels?|sucres?|riz)\s+(?:(?:un\s+peu|trop|tout|completement"
    r"|legerement)\s+)?brulee?s?"
    r"|gouts?\s+de\s+brule"
    r"|brul(?:er|e|ent|ez|ons)\s+(?:(?:des|les|plus\s+de|\d+)\s+)?(?:calories|kcal|graisses)"
    r"|(?:bougies?|meches?)\s+(?:(?:qui|ne|n')\s*)?brul(?:e|ent|er)"
    r"|blesse(?:e|s|es)?\s+par\s+(?:votre|vos|ta|tes|ce|cet|cette|ces|le|la|les|l'|son|sa|ses)"
    r"\s*(?:reponses?|remarques?|propos|commentaires?|messages?|mails?|ton|attitude"
    r"|comportement|mots|manque|indifference|mepris)"
    r")\b"
)
ALARM_BUMP = 0.25
REPEAT_BUMP = 0.1  # per earlier complaint of the same customer / order
REPEAT_MAX = 3
# Each further distinct alarm term adds 0.05, at most this many: a list of alarm words is not a
# reason for a positive review to reach "haute" (>= 0.5).
EXTRA_ALARMS_MAX = 3
# The most the tone alone (no alarm term) reaches: just under "critique" (0.75).
TONE_MAX = 0.74
HIGH = 0.5  # the "haute" band's floor: the base above it is compressed into [HIGH, TONE_MAX]


_ELIDED_ARTICLE = re.compile(r"^l'\s*(?=\w)")  # not « d' »: see nlp.themes.rules._ELIDED


def plain_term(term: str) -> str:
    """An alarm term as texts are matched (folded, "'" apostrophes), without a leading elided
    article: « l’arnaque » (curly apostrophe) matched nothing, « l'escroquerie » only itself.
    Every apostrophe `normalize_text` reads (« lʼarnaque », « l‘arnaque ») as the texts have."""
    folded = fold_accents(normalize_text(term))
    return _ELIDED_ARTICLE.sub("", folded)


def alarm_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for a list of alarm terms: accent- and case-insensitive, on word boundaries,
    plural / feminine endings allowed ("arnaques", "dangereuse")."""
    parts = sorted({re.escape(plain_term(t)) for t in terms if t.strip()}, key=len, reverse=True)
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?:e?s|x|se|euse)?(?!\w)")


class SeverityScorer:
    """Built once per taxonomy (compiles the alarm-term regexes)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self.global_alarm = alarm_pattern(taxonomy.alarm_terms)
        self.theme_alarm = {t.id: alarm_pattern(t.alarm_terms) for t in taxonomy.active}
        self.weights = {t.id: t.severity_weight for t in taxonomy.active}
        self._plain_terms = {plain_term(t) for t in taxonomy.alarm_terms}
        for theme in taxonomy.active:
            self._plain_terms.update(plain_term(t) for t in theme.alarm_terms)

    def _canonical(self, found: str) -> str:
        """The alarm term as listed ("arnaques" -> "arnaque")."""
        if found in self._plain_terms:
            return found
        for suffix in ("euse", "es", "se", "s", "x", "e"):
            if found.endswith(suffix) and found[: -len(suffix)] in self._plain_terms:
                return found[: -len(suffix)]
        return found

    def alarms(self, text: str, themes: Iterable[ThemeMention] = ()) -> list[str]:
        folded = fold_accents(text).replace("\u2019", "'")
        found: set[str] = set()
        harmless = [h.span() for h in _HARMLESS.finditer(folded)]
        patterns = [self.global_alarm] + [self.theme_alarm.get(m.theme) for m in themes]
        for pattern in patterns:
            if pattern is None:
                continue
            for m in pattern.finditer(folded):
                if _NEGATED.search(folded[max(0, m.start() - 24) : m.start()]):
                    continue
                if any(s <= m.start() and m.end() <= e for s, e in harmless):
                    continue
                found.add(self._canonical(m.group(0)))
        return sorted(found)

    def score(self, text: str, sentiment: SentimentResult, themes: list[ThemeMention]) -> float:
        p_neg = sentiment.probs.get("negative")
        if p_neg is None or not math.isfinite(p_neg):
            if sentiment.label == "negative":
                p_neg = sentiment.score if math.isfinite(sentiment.score) else 0.5
            else:
                p_neg = 0.15 if sentiment.label == "neutral" else 0.03
        p_neg = min(1.0, max(0.0, p_neg))  # a probability: a NaN must not read as critical
        # One theme named twice is one irritant, not two.
        negative_themes = {m.theme for m in themes if m.polarity == "negative"}
        weight = max((self.weights.get(t, 1.0) for t in negative_themes), default=0.8)
        # Several negative themes at once = a broken experience, not a single irritant.
        breadth = 1.0 + 0.1 * max(0, len(negative_themes) - 1)
        base = min(1.0, p_neg * min(1.0, 0.55 + 0.35 * weight) * breadth)
        if base > HIGH:
            base = HIGH + (base - HIGH) * (TONE_MAX - HIGH) / (1.0 - HIGH)
        alarms = self.alarms(text, themes)
        if alarms:
            base += ALARM_BUMP + 0.05 * min(len(alarms) - 1, EXTRA_ALARMS_MAX)
        return round(max(0.0, min(1.0, base)), 4)


def escalate(severity: float, previous_complaints: int) -> float:
    """Severity of a complaint from a customer / order that already complained
    `previous_complaints` times: a repeat means the first answer did not solve it."""
    if not math.isfinite(severity):
        raise ValueError("severity must be a number in [0, 1]")
    severity = min(1.0, max(0.0, severity))
    if previous_complaints <= 0:
        return round(severity, 4)
    # Scaled by how bad this one is: a happy returning customer is no escalation.
    bump = REPEAT_BUMP * min(previous_complaints, REPEAT_MAX) * min(1.0, severity / 0.5)
    return round(min(1.0, severity + bump), 4)

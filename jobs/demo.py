"""`verbatim demo`: a synthetic, realistic French feedback feed (generated here, from templates).

60 days ending today by default, the 8 themes of the e-commerce taxonomy, channels review /
social / complaint, weekday seasonality, star ratings on reviews, repeat customers, SMS spelling,
emojis, some English, PII that ingestion must mask, and one injected packaging (emballage)
negative spike over the last days. Same seed + same end day = same file.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

PRODUITS = [
    "la cafetière",
    "le pull",
    "les chaussures",
    "le casque",
    "la lampe",
    "le jouet",
    "la poêle",
    "le matelas",
    "la robe",
    "le téléphone",
    "l'aspirateur",
    "le sac",
    "la crème",
    "les draps",
    "le vélo",
    "la montre",
]
TRANSPORTEURS = ["Colissimo", "Chronopost", "Mondial Relay", "DPD", "UPS", "le livreur", "la Poste"]
PRENOMS = [
    "marie",
    "julien",
    "sophie",
    "karim",
    "lea",
    "thomas",
    "camille",
    "nadia",
    "hugo",
    "ines",
    "paul",
    "chloe",
]
NOMS = ["martin", "bernard", "dubois", "petit", "durand", "leroy", "moreau", "garcia", "roux"]

# Clauses per theme and polarity; {p} product, {t} carrier, {n} a number of days, {e} euros.
CLAUSES: dict[str, dict[str, list[str]]] = {
    "livraison": {
        "negative": [
            "colis toujours pas reçu après {n} jours",
            "livraison en retard de {n} jours, aucune excuse",
            "{t} a marqué le colis livré alors que je n'ai rien reçu",
            "le suivi n'a pas bougé depuis une semaine",
            "livreur jamais passé, j'ai attendu toute la journée",
            "colis perdu par {t}, c'est la troisième fois",
            "la date de livraison n'a pas été respectée",
            "déposé dans un point relais à 20 km de chez moi sans prévenir",
        ],
        "positive": [
            "livraison ultra rapide, reçu en {n} jours",
            "colis arrivé en avance, top",
            "livré le lendemain par {t}, rien à redire",
            "le suivi est clair et le livreur très sympa",
            "aucun souci de livraison, dans les délais annoncés",
        ],
        "neutral": ["livraison en {n} jours comme prévu", "reçu via {t} en point relais"],
    },
    "emballage": {
        "negative": [
            "carton complètement écrasé à l'arrivée",
            "emballage déchiré, {p} à moitié sorti de la boîte",
            "aucune protection dans le colis, {p} se baladait dans le carton",
            "la boîte était ouverte et le scotch arraché",
            "le flacon a fui dans le colis, tout était trempé",
            "suremballage ridicule : un carton énorme pour un petit article",
            "colis abîmé, le carton était éventré",
            "emballage pas du tout adapté, {p} est arrivé rayé",
        ],
        "positive": [
            "emballage soigné, bien protégé avec du papier bulle",
            "très bien emballé, rien d'abîmé",
            "joli paquet cadeau, merci pour l'attention",
            "carton solide et produit bien calé",
        ],
        "neutral": ["emballage standard en carton", "livré dans une simple enveloppe"],
    },
    "service_client": {
        "negative": [
            "service client injoignable depuis {n} jours",
            "aucune réponse à mes mails",
            "conseillère désagréable au téléphone, elle m'a raccroché au nez",
            "le SAV se renvoie la balle, personne ne sait rien",
            "j'ai appelé {n} fois, toujours le même discours",
            "réponse automatique et puis plus rien",
            "le chat ne répond jamais",
        ],
        "positive": [
            "service client très réactif et aimable",
            "conseiller au top, problème réglé en une fois",
            "réponse rapide du SAV, merci à {prenom}",
            "super accueil au téléphone, on se sent écouté",
            "pas de souci avec le service client, toujours disponible",
        ],
        "neutral": ["j'ai contacté le service client par mail", "le SAV m'a rappelé"],
    },
    "retours_remboursements": {
        "negative": [
            "toujours pas remboursé après {n} jours",
            "retour refusé sans explication",
            "on me propose un avoir au lieu d'un remboursement",
            "étiquette de retour payante, c'est abusé",
            "j'ai renvoyé {p} il y a un mois et aucun remboursement",
            "l'échange est impossible, il faut tout renvoyer à mes frais",
        ],
        "positive": [
            "remboursement reçu en {n} jours, impeccable",
            "retour simple et gratuit",
            "échange fait sans discuter",
            "remboursé rapidement, rien à dire",
        ],
        "neutral": ["j'ai demandé un échange de taille", "retour en cours de traitement"],
    },
    "qualite_produit": {
        "negative": [
            "{p} ne fonctionne plus au bout de {n} jours",
            "qualité médiocre, {p} s'est cassé tout de suite",
            "la taille ne correspond pas du tout",
            "{p} n'est pas conforme à la photo",
            "matière qui bouloche après un lavage",
            "produit défectueux, il ne s'allume même pas",
            "franchement déçu par {p}, ça fait cheap",
        ],
        "positive": [
            "{p} est de très bonne qualité",
            "produit conforme à la description, très content",
            "{p} fonctionne parfaitement",
            "belle matière et finitions soignées",
            "je recommande {p}, solide et efficace",
            "aucun défaut, {p} est parfait",
        ],
        "neutral": ["{p} correspond à la description", "taille normale"],
    },
    "prix": {
        "negative": [
            "beaucoup trop cher pour ce que c'est",
            "frais de port exorbitants : {e} euros",
            "le code promo n'a pas marché",
            "prix qui a augmenté de {e} euros en une semaine",
            "pas du tout un bon rapport qualité prix",
        ],
        "positive": [
            "prix imbattable",
            "très bon rapport qualité prix",
            "livraison offerte et promo intéressante",
            "pas cher du tout pour cette qualité",
        ],
        "neutral": ["acheté pendant les soldes", "prix dans la moyenne"],
    },
    "commande_paiement": {
        "negative": [
            "commande annulée sans raison",
            "j'ai été débité deux fois",
            "le paiement par carte est refusé à chaque fois",
            "impossible de modifier ma commande",
            "facture jamais reçue",
            "commande bloquée en préparation depuis {n} jours",
        ],
        "positive": [
            "commande passée en deux minutes",
            "paiement en plusieurs fois très pratique",
            "confirmation de commande immédiate",
        ],
        "neutral": ["commande passée le week-end", "payé par carte"],
    },
    "site_appli": {
        "negative": [
            "le site plante au moment de payer",
            "l'appli bug sans arrêt",
            "impossible de me connecter à mon compte",
            "la recherche sur le site ne trouve rien",
            "l'application est lente et mal faite",
        ],
        "positive": [
            "site clair et facile à utiliser",
            "l'appli est super pratique",
            "navigation fluide sur le site",
        ],
        "neutral": ["commandé depuis l'appli", "j'ai créé un compte sur le site"],
    },
}

ENGLISH: dict[str, dict[str, list[str]]] = {
    "livraison": {
        "negative": ["parcel still not delivered after {n} days"],
        "positive": ["fast delivery, arrived in {n} days"],
    },
    "emballage": {"negative": ["the box arrived crushed"], "positive": ["nicely packed"]},
    "service_client": {
        "negative": ["customer service never answers"],
        "positive": ["very helpful support team"],
    },
    "qualite_produit": {
        "negative": ["poor quality, broke after a week"],
        "positive": ["great quality, works perfectly"],
    },
}

OPENERS = {
    "negative": [
        "Très déçu.",
        "Honnêtement,",
        "Franchement",
        "Bonjour,",
        "Alors là...",
        "Inadmissible !",
        "Je ne recommande pas :",
    ],
    "positive": ["Super !", "Très satisfaite.", "Bravo,", "Parfait,", "Top !", "Bonjour,"],
    "neutral": ["Bonjour,", "Avis :", ""],
}
CLOSERS = {
    "negative": [
        "Je ne commanderai plus jamais chez vous.",
        "Remboursez-moi svp.",
        "Vraiment nul.",
        "Bref, à éviter.",
        "Je vais porter plainte.",
        "C'est la dernière fois.",
    ],
    "positive": [
        "Je recommande !",
        "Merci beaucoup.",
        "Je reviendrai.",
        "Rien à redire.",
        "Encore merci à toute l'équipe.",
    ],
    "neutral": ["", "À voir dans le temps."],
}
EMOJIS = {
    "negative": ["😡", "👎", "😤", "😞", "🤬"],
    "positive": ["😍", "👍", "🙏", "😊", "❤️"],
    "neutral": ["🤔", ""],
}
SMS = [
    ("toujours", "tjrs"),
    ("problème", "pb"),
    ("beaucoup", "bcp"),
    ("jamais", "jms"),
    ("s'il vous plaît", "svp"),
    ("vraiment", "vrmt"),
    ("pourquoi", "pk"),
    ("quand même", "qd mm"),
    ("c'est", "c"),
    ("aujourd'hui", "ajd"),
    ("rien", "r1"),
    ("merci", "mrc"),
]
ACCENTS = str.maketrans("éèêàùç", "eeeauc")

THEME_WEIGHTS = {
    "livraison": 0.22,
    "qualite_produit": 0.18,
    "service_client": 0.13,
    "retours_remboursements": 0.10,
    "prix": 0.10,
    "commande_paiement": 0.10,
    "site_appli": 0.09,
    "emballage": 0.08,
}
CHANNEL_WEIGHTS = {"review": 0.55, "social": 0.25, "complaint": 0.20}
NEGATIVE_RATE = {"review": 0.35, "social": 0.55, "complaint": 0.92}
WEEKDAY = [1.25, 1.1, 1.0, 1.0, 0.95, 0.75, 0.7]  # Monday first: complaints after the weekend
SPIKE_DAYS = 3
PLATFORMS = ["twitter", "instagram", "facebook"]


@dataclass(frozen=True)
class DemoSpec:
    days: int = 60
    seed: int = 7
    end: date | None = None  # default: today (UTC)
    per_day: int = 90  # mean verbatims per (weekday-neutral) day
    spike_per_day: int = 28  # extra negative emballage verbatims on each spike day


class _Gen:
    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.customers: list[str] = []
        self.counter = 0

    def pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            p=r.choice(PRODUITS),
            t=r.choice(TRANSPORTEURS),
            n=r.randint(2, 21),
            e=r.choice([7, 9, 12, 15, 25]),
            prenom=r.choice(PRENOMS).capitalize(),
        )

    def clause(self, theme: str, polarity: str, english: bool) -> str:
        bank = ENGLISH.get(theme) if english else None
        if bank and polarity in bank:
            return self.fill(self.rng.choice(bank[polarity]))
        return self.fill(self.rng.choice(CLAUSES[theme][polarity]))

    def pii(self) -> str:
        r = self.rng
        first, last = r.choice(PRENOMS), r.choice(NOMS)
        return r.choice(
            [
                f"Commande n° {r.randint(10**8, 10**9 - 1)}.",
                f"Rappelez-moi au 0{r.randint(6, 7)} {r.randint(10, 99)} {r.randint(10, 99)} "
                f"{r.randint(10, 99)} {r.randint(10, 99)}.",
                f"Mon mail : {first}.{last}{r.randint(1, 99)}@gmail.com",
                f"ma commande {r.randint(10**6, 10**7 - 1)} svp",
                f"contact : {first}.{last}@orange.fr / +33 6 {r.randint(10, 99)} "
                f"{r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
            ]
        )

    def sms(self, text: str) -> str:
        r = self.rng
        out = text.lower()
        for long, short in SMS:
            if r.random() < 0.7:
                out = out.replace(long, short)
        if r.random() < 0.5:
            out = out.translate(ACCENTS)
        if r.random() < 0.3:
            out = out.replace("nul", "nuuul").replace("top", "toooop")
        return out

    def typo(self, text: str) -> str:
        """One slip of the finger: two letters swapped or one doubled in a longer word."""
        r = self.rng
        words = text.split(" ")
        long_words = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
        if not long_words:
            return text
        i = r.choice(long_words)
        w = words[i]
        j = r.randint(1, len(w) - 3)
        if r.random() < 0.6:
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]  # swap two letters
        else:
            words[i] = w[: j + 1] + w[j] + w[j + 1 :]  # double one letter
        return " ".join(words)

    def document(self, theme: str, polarity: str, channel: str) -> str:
        r = self.rng
        english = r.random() < 0.03
        parts = [self.clause(theme, polarity, english)]
        if not english and r.random() < 0.35:  # a second theme, often contrasting ("mais")
            other = self.pick({k: v for k, v in THEME_WEIGHTS.items() if k != theme})
            other_pol = r.choice(["positive", "negative", polarity])
            joiner = " mais " if other_pol != polarity else r.choice([", et ", ". ", ", "])
            parts.append(joiner + self.clause(other, other_pol, False))
        body = "".join(parts)
        body = body[0].upper() + body[1:]
        if not english:
            opener = r.choice(OPENERS[polarity]) if r.random() < 0.4 else ""
            if opener.endswith((",", ":")) or opener == "Franchement":
                body = body[0].lower() + body[1:]
            closer = r.choice(CLOSERS[polarity]) if r.random() < 0.45 else ""
            body = " ".join(x for x in (opener, body + ".", closer) if x)
        else:
            body += "."
        if r.random() < 0.08 or (channel == "complaint" and r.random() < 0.3):
            body += " " + self.pii()
        if channel == "social" and r.random() < 0.3:
            body = "@boutique " + body
        if r.random() < 0.12 or (channel == "social" and r.random() < 0.25):
            body = self.sms(body)
        if r.random() < 0.08:
            body = self.typo(body)
        if r.random() < (0.35 if channel == "social" else 0.15):
            body += " " + r.choice(EMOJIS[polarity])
        if r.random() < 0.05:
            body = body.replace("!", "!!!").replace(".", "...", 1)
        return body.strip()

    def customer(self, channel: str) -> str:
        repeat = 0.45 if channel == "complaint" else 0.2
        if self.customers and self.rng.random() < repeat:
            return self.rng.choice(self.customers[-400:])
        cid = f"CL{100000 + len(self.customers):06d}"
        self.customers.append(cid)
        return cid

    def row(self, day: date, theme: str, polarity: str, channel: str) -> dict[str, Any]:
        r = self.rng
        self.counter += 1
        hour = min(23, max(0, int(r.gauss(14, 4.5))))
        at = datetime.combine(day, time(hour, r.randint(0, 59), r.randint(0, 59)), tzinfo=UTC)
        row: dict[str, Any] = {
            "id": f"{channel[:3].upper()}-{day:%Y%m%d}-{self.counter:06d}",
            "created_at": at.isoformat().replace("+00:00", "Z"),
            "channel": channel,
            "text": self.document(theme, polarity, channel),
            "customer": self.customer(channel),
        }
        if channel == "review":
            stars = {"negative": [1, 1, 2, 2, 3], "neutral": [3, 3, 4], "positive": [4, 5, 5, 5]}
            row["rating"] = r.choice(stars[polarity])
        if channel == "social":
            row["platform"] = r.choice(PLATFORMS)
        return row


def iter_demo(spec: DemoSpec | None = None) -> Iterator[dict[str, Any]]:
    """Yield the demo rows, day by day (streamed: nothing is kept but the customer pool)."""
    spec = spec or DemoSpec()
    gen = _Gen(spec)
    r = gen.rng
    end = spec.end or datetime.now(UTC).date()
    start = end - timedelta(days=spec.days - 1)
    for offset in range(spec.days):
        day = start + timedelta(days=offset)
        volume = max(1, int(r.gauss(spec.per_day * WEEKDAY[day.weekday()], spec.per_day * 0.08)))
        rows = []
        for _ in range(volume):
            channel = gen.pick(CHANNEL_WEIGHTS)
            theme = gen.pick(THEME_WEIGHTS)
            neg = NEGATIVE_RATE[channel]
            polarity = r.choices(
                ["negative", "neutral", "positive"], weights=[neg, 0.1, max(0.0, 0.9 - neg)]
            )[0]
            rows.append(gen.row(day, theme, polarity, channel))
        if (end - day).days < SPIKE_DAYS:  # the injected packaging incident
            for _ in range(int(r.gauss(spec.spike_per_day, 3))):
                channel = r.choice(["review", "review", "social", "complaint"])
                rows.append(gen.row(day, "emballage", "negative", channel))
        rows.sort(key=lambda x: x["created_at"])
        yield from rows


def write_demo(path: Path, spec: DemoSpec | None = None) -> int:
    """Write the feed as JSONL (default) or CSV (by extension). Returns the number of rows.
    Written whole or not at all, as `verbatim analyze -o` (`jobs.analyze.atomic_output`): a
    ".part" file renamed over `-o /dev/stdout` replaced that link (as root) or was refused,
    and over a link to the feed replaced the link."""
    from jobs.analyze import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_output(path) as fh:
        if path.suffix.lower() == ".csv":
            fields = ["id", "created_at", "channel", "text", "rating", "customer", "platform"]
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            for row in iter_demo(spec):
                writer.writerow(row)
                count += 1
        else:
            for row in iter_demo(spec):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count


# A fixed feed (the end day pinned) so that every set-up calibrates on the same texts.
CALIBRATION_SPEC = DemoSpec(end=date(2026, 1, 5))


def calibration_texts(n: int = 600) -> list[str]:
    """Review-length synthetic texts for the encoder's static int8 scales (`verbatim setup`):
    1 to 4 consecutive demo verbatims joined, like the research reviews' lengths (demo
    verbatims alone are one sentence; scales calibrated on those moved more dev labels off
    fp32, 0.45 % against 0.32 %). Never research data: this ships."""
    rows = iter_demo(CALIBRATION_SPEC)
    texts = []
    for k in range(n):
        texts.append(" ".join(next(rows)["text"] for _ in range(1 + k % 4)))
    return texts

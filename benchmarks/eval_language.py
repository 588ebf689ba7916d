"""Language routing: how much French is kept French, how much foreign is kept out.

    python benchmarks/eval_language.py                        # this tree
    python benchmarks/eval_language.py --reference-rev HEAD   # and nlp/text/language.py at HEAD
    python benchmarks/eval_language.py --show 20              # texts whose routing changed

Runs `detect_language` + `is_french` (the ingest rule) on every text of the French research
sets (read at run time from ../shared/data, never copied): per set, the share routed French
("kept"), and the shares detected fr / another language / "und". Some of those sets hold real
foreign reviews (Trustpilot: English, German, Indonesian), so "kept" there is not 100 % by
design: `--show` lists the texts whose routing differs from the reference, to read them. Then
the recall of non-French on short reviews written for this script (en, es, de, it, pt, nl),
a held-out batch written after the word lists were set, and mixed French/English texts
labelled by the language carrying the sentence. Prints the CPU with the timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_api import cpu_model  # noqa: E402
from sentiment_data import SHARED  # noqa: E402

from nlp.text import language as current  # noqa: E402

SETS = (
    "marc_fr/dev",
    "marc_fr/train",
    "trustpilot_fr/reviews",
    "deft2017_tweets/dev",
    "deft2017_tweets/train",
    "tripadvisor_fr/dev",
    "tripadvisor_fr/train",
    "semeval16_fr/train_restaurants",
    "themes_fr/dev",
)

FOREIGN: dict[str, list[str]] = {
    "en": [
        "Fast shipping, great price.",
        "Terrible customer service, nobody answers the phone.",
        "Item arrived damaged and the refund took weeks.",
        "Excellent quality, would buy again!",
        "Still waiting for my parcel after two weeks.",
        "Works perfectly, easy to install.",
        "Really disappointed, the size is way too small.",
        "Great value for money",
        "Wrong item sent, returned it straight away",
        "Love it! My kids use it every day.",
        "Stopped working after a month. Avoid.",
        "Friendly staff and quick check-in.",
        "Battery life is awful",
        "Highly recommended!",
        "Never again. Worst experience ever.",
    ],
    "es": [
        "Muy buena calidad, lo recomiendo.",
        "El paquete llegó roto y nadie me responde.",
        "Envío rápido y todo perfecto",
        "Pésimo servicio al cliente.",
        "Llevo tres semanas esperando mi pedido",
        "Funciona genial, muy contento con la compra",
        "La talla es más pequeña de lo normal.",
        "No lo recomiendo, se rompió enseguida.",
        "Excelente atención, volveré a comprar",
        "Producto de mala calidad",
        "Me llegó otro color, qué desastre",
        "Todo correcto, gracias",
        "Tardaron mucho en devolverme el dinero.",
        "Buena relación calidad precio",
        "Muy recomendable",
    ],
    "de": [
        "Schnelle Lieferung, alles bestens.",
        "Leider defekt angekommen.",
        "Der Kundenservice ist eine Katastrophe.",
        "Top Qualität, gerne wieder!",
        "Ich warte seit zwei Wochen auf mein Paket.",
        "Passt perfekt, bin sehr zufrieden.",
        "Nach einer Woche kaputt gegangen",
        "Geld zurück hat ewig gedauert",
        "Preis-Leistung stimmt",
        "Würde ich nicht noch einmal kaufen.",
        "Falsche Größe geliefert, Rücksendung war kompliziert",
        "Funktioniert einwandfrei",
        "Sehr freundliches Personal",
        "Absolut empfehlenswert!",
        "Die Farbe entspricht nicht dem Foto.",
    ],
    "it": [
        "Spedizione veloce, prodotto ottimo.",
        "Pessimo servizio clienti, nessuno risponde.",
        "Il pacco è arrivato danneggiato.",
        "Ottima qualità, lo consiglio.",
        "Aspetto ancora il rimborso da un mese",
        "Funziona benissimo, sono soddisfatta",
        "La taglia è troppo piccola",
        "Non lo comprerei più.",
        "Personale gentile e disponibile",
        "Rapporto qualità prezzo eccellente",
        "Si è rotto dopo pochi giorni",
        "Consegna in ritardo di una settimana",
        "Tutto perfetto, grazie!",
        "Prodotto conforme alla descrizione",
        "Esperienza pessima, mai più",
    ],
    "pt": [
        "Entrega rápida, recomendo.",
        "Produto chegou com defeito.",
        "Péssimo atendimento, ninguém responde.",
        "Ótima qualidade, adorei!",
        "Estou esperando o reembolso há semanas",
        "Funciona muito bem, estou satisfeito",
        "O tamanho é menor do que o esperado.",
        "Não recomendo, quebrou no primeiro dia.",
        "Chegou antes do prazo, tudo certo",
        "Atendimento excelente, voltarei a comprar",
        "A cor é diferente da foto",
        "Preço justo e boa qualidade",
        "Encomenda nunca chegou",
        "Muito bom, obrigada!",
        "Experiência horrível",
    ],
    "nl": [
        "Snelle levering, prima product.",
        "Slechte klantenservice, niemand reageert.",
        "Pakket kwam beschadigd aan.",
        "Goede kwaliteit, aanrader!",
        "Ik wacht al twee weken op mijn bestelling.",
        "Werkt perfect, heel tevreden",
        "De maat valt erg klein uit",
        "Na een week al kapot",
        "Geld terug duurde veel te lang",
        "Vriendelijk personeel en snelle service",
        "Zou het niet nog eens kopen.",
        "Prijs-kwaliteit is top",
        "Verkeerde kleur geleverd",
        "Alles netjes op tijd bezorgd, dank je wel",
        "Nooit meer bij deze winkel",
    ],
}

# Mixed French/English: the expected label is the language carrying the sentence (the French
# ones with English loanwords must stay French; an English review with "merci" is foreign).
MIXED: list[tuple[str, str]] = [
    ("Livraison rapide, great product !", "fr"),
    ("Le service client est top, very helpful", "fr"),
    ("Produit nickel, ok pour le prix", "fr"),
    ("Franchement le pire customer service que j'ai vu", "fr"),
    ("Commande reçue, packaging au top", "fr"),
    ("Le process de retour est une horreur, no comment", "fr"),
    ("J'ai fait un unboxing, tout est ok", "fr"),
    ("Super deal, je recommande", "fr"),
    ("Great service, merci beaucoup !", "en"),
    ("Thank you so much, c'était parfait", "fr"),
    ("Fast delivery and good quality, merci", "en"),
    ("The staff was lovely, bravo à toute l'équipe", "en"),
    ("Very good product, je suis contente", "en"),
    ("I ordered on Monday, reçu mardi, perfect", "en"),
    ("Nice hotel but le petit déjeuner was cold", "en"),
    ("Best croissant in Paris, c'est magnifique", "en"),
]

# Written after the word lists were set, never used to choose words: a check on overfitting.
HELD_OUT: dict[str, list[str]] = {
    "en": [
        "The hotel room was clean but the bed was uncomfortable.",
        "Delivery driver left the box in the rain.",
        "Five stars, will order from them again",
        "Customer support solved my issue in minutes.",
        "Overpriced and underwhelming.",
    ],
    "es": [
        "El hotel estaba limpio pero la cama era incómoda.",
        "El repartidor dejó la caja bajo la lluvia.",
        "Cinco estrellas, volveré a pedir",
        "Atención al cliente resolvió mi problema en minutos.",
        "Caro y decepcionante.",
    ],
    "de": [
        "Das Hotelzimmer war sauber, aber das Bett unbequem.",
        "Der Fahrer hat den Karton im Regen stehen lassen.",
        "Fünf Sterne, bestelle bestimmt wieder",
        "Der Support hat mein Problem in Minuten gelöst.",
        "Überteuert und enttäuschend.",
    ],
    "it": [
        "La camera era pulita ma il letto scomodo.",
        "Il corriere ha lasciato la scatola sotto la pioggia.",
        "Cinque stelle, ordinerò di nuovo",
        "L'assistenza ha risolto il mio problema in pochi minuti.",
        "Caro e deludente.",
    ],
    "pt": [
        "O quarto estava limpo mas a cama era desconfortável.",
        "O entregador deixou a caixa na chuva.",
        "Cinco estrelas, vou pedir de novo",
        "O suporte resolveu meu problema em minutos.",
        "Caro e decepcionante.",
    ],
    "nl": [
        "De hotelkamer was schoon maar het bed was oncomfortabel.",
        "De bezorger liet de doos in de regen staan.",
        "Vijf sterren, ik bestel zeker opnieuw",
        "De klantenservice loste mijn probleem binnen minuten op.",
        "Te duur en teleurstellend.",
    ],
}

Route = Callable[[str], tuple[str, bool]]


def router(module: object) -> Route:
    """text -> (detected language, routed French?) with a language module's two functions."""
    detect = module.detect_language  # type: ignore[attr-defined]
    french = module.is_french  # type: ignore[attr-defined]

    def route(text: str) -> tuple[str, bool]:
        lang, conf = detect(unicodedata.normalize("NFC", text))  # as the analyzer does
        return lang, french(lang, conf)

    return route


def module_at(rev: str) -> object:
    """nlp/text/language.py as it was at a git revision (read with `git show`)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:nlp/text/language.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "language_ref.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("language_ref", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_texts(name: str) -> list[str]:
    path = SHARED / f"{name}.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line).get("text") or "" for line in f if line.strip()]


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}" if whole else "    -"


def french_table(routes: dict[str, Route], show: int) -> None:
    names = list(routes)
    print("French research sets: % routed French (kept); detected fr / other / und")
    print(f"{'set':32} {'rows':>6} " + " ".join(f"{n + ' kept':>14}" for n in names), end="")
    print("   fr / other / und (" + names[-1] + ")")
    changed: list[tuple[str, str, str]] = []
    for name in SETS:
        try:
            texts = read_texts(name)
        except FileNotFoundError:
            print(f"{name:32} missing")
            continue
        results = {n: [route(t) for t in texts] for n, route in routes.items()}
        kept = {n: sum(k for _, k in r) for n, r in results.items()}
        last = results[names[-1]]
        fr = sum(lang == "fr" for lang, _ in last)
        und = sum(lang == "und" for lang, _ in last)
        print(
            f"{name:32} {len(texts):6} "
            + " ".join(f"{pct(kept[n], len(texts)):>14}" for n in names),
            end="",
        )
        other = len(texts) - fr - und
        print(f"   {pct(fr, len(texts))} / {pct(other, len(texts))} / {pct(und, len(texts))}")
        if len(names) > 1:
            for text, a, b in zip(texts, results[names[0]], results[names[-1]], strict=True):
                if a[1] != b[1]:
                    changed.append((name, "now kept " if b[1] else f"now out ({b[0]})", text))
    if show and changed:
        print(f"\n{len(changed)} texts routed differently from the reference; the first {show}:")
        for name, what, text in changed[:show]:
            print(f"  {name:24} {what:13} {text[:110]!r}")


def foreign_table(routes: dict[str, Route]) -> None:
    names = list(routes)
    print("\nNon-French short reviews: % kept out of the French figures (recall)")
    print(f"{'batch':32} {'rows':>6} " + " ".join(f"{n + ' recall':>14}" for n in names))
    for label, batch in (("written", FOREIGN), ("held out", HELD_OUT)):
        rows = [(lang, text) for lang, texts in batch.items() for text in texts]
        for lang in [*batch, "all"]:
            sub = [t for lg, t in rows if lang in ("all", lg)]
            out = {n: sum(not route(t)[1] for t in sub) for n, route in routes.items()}
            print(
                f"{label + ' ' + lang:32} {len(sub):6} "
                + " ".join(f"{pct(out[n], len(sub)):>14}" for n in names)
            )
    print("\nMixed French/English, routed as the language carrying the sentence")
    for n, route in routes.items():
        right = sum(route(t)[1] == (lang == "fr") for t, lang in MIXED)
        print(f"  {n}: {right}/{len(MIXED)}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reference-rev", help="also score nlp/text/language.py at this git revision")
    ap.add_argument("--show", type=int, default=0, help="list this many texts routed differently")
    args = ap.parse_args()
    routes: dict[str, Route] = {}
    if args.reference_rev:
        routes[args.reference_rev] = router(module_at(args.reference_rev))
    routes["tree"] = router(current)
    start = time.perf_counter()
    french_table(routes, args.show)
    foreign_table(routes)
    took = time.perf_counter() - start
    print(f"\n{took:.1f} s for {len(routes)} detector(s); CPU: {cpu_model()}")


if __name__ == "__main__":
    main()

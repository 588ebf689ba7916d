"""Dev figures of the rule-based stack (lexicon sentiment + rule themes), printed as a table.

    nice -n 10 python benchmarks/eval_lexicon.py [--data ../shared/data] [--fallback sentence]

Datasets (dev splits only): themes_fr (theme micro-F1, polarity accuracy), marc_fr and
deft2017_tweets (3-class macro-F1), tripadvisor_fr with the restaurant taxonomy (aspects as
themes + sentiment). Equivalent CLI, one file at a time:
    verbatim evaluate --data ../shared/data/themes_fr/dev.jsonl
    verbatim evaluate --data ../shared/data/tripadvisor_fr/dev.jsonl --taxonomy restaurant
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.analysis import load_spacy
from jobs.evaluate import evaluate, read_rows
from nlp.analyzer import Analyzer
from nlp.sentiment.lexicon import LexiconSentiment
from nlp.taxonomy import load_taxonomy
from nlp.themes import RuleThemeDetector

ROOT = Path(__file__).resolve().parents[1]
SETS = (
    ("themes_fr/dev.jsonl", "ecommerce"),
    ("marc_fr/dev.jsonl", "ecommerce"),
    ("deft2017_tweets/dev.jsonl", "ecommerce"),
    ("tripadvisor_fr/dev.jsonl", "restaurant"),
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--fallback", default="doc", choices=("none", "sentence", "doc"))
    ap.add_argument("--no-spacy", action="store_true")
    ap.add_argument("--only", default=None, help="substring of a dataset path")
    args = ap.parse_args()
    nlp = None if args.no_spacy else load_spacy()
    sentiment = LexiconSentiment()
    print(
        f"{'dataset':<28}{'n':>6}{'sent acc':>10}{'sent mF1':>10}{'th micro':>10}"
        f"{'th macro':>10}{'pol acc':>9}{'docs/s':>9}"
    )
    for rel, tax_name in SETS:
        if args.only and args.only not in rel:
            continue
        path = args.data / rel
        if not path.exists():
            print(f"{rel:<28} missing")
            continue
        taxonomy = load_taxonomy(tax_name)
        themes = RuleThemeDetector(taxonomy, nlp=nlp, scorer=sentiment, fallback=args.fallback)
        analyzer = Analyzer(sentiment, themes, taxonomy)
        rows = read_rows(path)
        t0 = time.perf_counter()
        res = evaluate(analyzer, rows)
        speed = len(rows.texts) / (time.perf_counter() - t0)
        s, t = res.get("sentiment", {}), res.get("themes", {})

        def f(d: dict, k: str) -> str:
            return f"{d[k]:.4f}" if k in d else "-"

        print(
            f"{rel:<28}{len(rows.texts):>6}{f(s, 'accuracy'):>10}{f(s, 'macro_f1'):>10}"
            f"{f(t, 'micro_f1'):>10}{f(t, 'macro_f1'):>10}{f(t, 'polarity_accuracy'):>9}"
            f"{speed:>9.0f}"
        )


if __name__ == "__main__":
    main()

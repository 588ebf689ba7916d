"""A user's own taxonomy, trained through `verbatim train themes`: SemEval-2016 French restaurants.

    nice -n 10 python benchmarks/eval_custom_taxonomy.py [--data ../shared/data]
        [--taxonomy benchmarks/taxonomies/semeval_restaurant.yaml] [--folds 5] [--cli]
        [--cache /tmp/verbatim-theme-cache]

What a new user would do: write a 12-category taxonomy (the SemEval E#A categories, a label and
a few keywords each: `benchmarks/taxonomies/semeval_restaurant.yaml`), label sentences, train
heads, score them on sentences the heads never saw.
- Rows: `semeval16_fr/train_restaurants.jsonl`, one example per sentence (out-of-scope sentences
  left out, as SemEval does); opinions of one category in a sentence become one label: one
  polarity -> it; differing polarities -> "neutral" (the product has no "mixed"; the labelling
  guidelines, themes_fr/GUIDELINES.md: "neutral = mentioned factually or mixed").
- Split by review (the id before ":"; sentences of one review never straddle train and test),
  80/20 by a stable hash of the review id; `--folds K` adds K-fold cross-validation over reviews.
- Training goes through `jobs.train_themes.train_from_examples` (what the CLI calls; `--cli`
  also runs the real `verbatim train themes` command on the 80 % and scores its output) with
  the sentiment backend's encoder, as `verbatim analyze` uses it.
- Figures: category micro-F1 over sentence x category, macro-F1, polarity accuracy on the
  categories found in both gold and prediction, per-category P/R/F1, predicted vs gold polarity
  mix. Encoder outputs are cached under --cache (keyed by text hash; never copied in the repo).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.eval_themes import (  # noqa: E402
    polarity_mix,
    preload_encodings,
    score,
    table,
)
from core.analysis import load_lemmatizer  # noqa: E402
from core.settings import load_settings  # noqa: E402
from jobs.train_themes import CachedSignals, build_signals, train_from_examples  # noqa: E402
from nlp.encoder.runtime import cpu_description  # noqa: E402
from nlp.taxonomy import Taxonomy, load_taxonomy  # noqa: E402
from nlp.themes.learned import LearnedThemeDetector, load_theme_model  # noqa: E402

DEFAULT_TAXONOMY = ROOT / "benchmarks" / "taxonomies" / "semeval_restaurant.yaml"


def default_data() -> Path:
    """../shared/data next to the checkout (a git worktree may sit one level deeper)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def category_id(category: str) -> str:
    """ "FOOD#STYLE_OPTIONS" -> "food_style_options" (a valid theme id)."""
    return category.lower().replace("#", "_")


def sentence_labels(opinions: Sequence[dict[str, str]]) -> dict[str, str]:
    """One label per category: its polarity when the opinions agree, else "neutral" (mixed)."""
    seen: dict[str, set[str]] = {}
    for op in opinions:
        seen.setdefault(category_id(op["category"]), set()).add(op["polarity"])
    return {c: pols.pop() if len(pols) == 1 else "neutral" for c, pols in seen.items()}


def read_semeval(path: Path) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """(texts, labels, review ids) of the in-scope sentences."""
    texts, labels, reviews = [], [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("out_of_scope"):
                continue
            texts.append(row["text"])
            labels.append(sentence_labels(row.get("opinions") or []))
            reviews.append(str(row["id"]).split(":", 1)[0])
    return texts, labels, reviews


def review_bucket(review: str, buckets: int) -> int:
    return int(hashlib.sha1(review.encode("utf-8")).hexdigest(), 16) % buckets


def holdout_split(reviews: Sequence[str], test_share: float) -> tuple[list[int], list[int]]:
    """80/20 (test_share) by a stable hash of the review id."""
    test = [i for i, r in enumerate(reviews) if review_bucket(r, 1000) < test_share * 1000]
    held = set(test)
    return [i for i in range(len(reviews)) if i not in held], test


def kfold_splits(reviews: Sequence[str], folds: int) -> list[tuple[list[int], list[int]]]:
    out = []
    for k in range(folds):
        test = [i for i, r in enumerate(reviews) if review_bucket(r + "|fold", folds) == k]
        held = set(test)
        out.append(([i for i in range(len(reviews)) if i not in held], test))
    return out


# --- train and score ----------------------------------------------------------------------------
def train(
    tax: Taxonomy, texts: list[str], labels: list[dict[str, str]], nlp: Any, signals: Any
) -> LearnedThemeDetector:
    model, _notes = train_from_examples(tax, texts, labels, nlp=nlp, signals=signals)
    return model


def predict(model: LearnedThemeDetector, texts: list[str], signals: Any) -> list[dict[str, str]]:
    model.signals = signals
    encoded = signals.encode(texts) if signals is not None else None
    return [{m.theme: m.polarity for m in doc} for doc in model.predict(texts, encoded=encoded)]


def train_cli(tax_path: Path, texts: list[str], labels: list[dict[str, str]], cache: Path) -> Path:
    """`verbatim train themes` itself on these examples (a temporary examples file)."""
    work = Path(tempfile.mkdtemp(prefix="verbatim-semeval-"))
    examples = work / "examples.jsonl"
    with examples.open("w", encoding="utf-8") as fh:
        for text, lab in zip(texts, labels, strict=True):
            fh.write(json.dumps({"text": text, "themes": lab}, ensure_ascii=False) + "\n")
    out = work / "model"
    cmd = [sys.executable, "-m", "verbatim_cli", "train", "themes", "--taxonomy", str(tax_path)]
    cmd += ["--examples", str(examples), "--out", str(out), "--cache-dir", str(cache)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    examples.unlink()
    return out


def report(title: str, gold: list[dict[str, str]], pred: list[dict[str, str]], tax: Any) -> dict:
    m = score(gold, pred, tax)
    m["predicted_polarities"] = polarity_mix(pred)
    m["gold_polarities"] = polarity_mix(gold)
    print(table(title, m))
    print(f"  polarities predicted {m['predicted_polarities']}, gold {m['gold_polarities']}")
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY)
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--folds", type=int, default=0, help="also K-fold CV over reviews (0: no)")
    ap.add_argument("--backend", default=None, help="sentiment backend (its encoder is used)")
    ap.add_argument("--no-encoder", action="store_true", help="encoder-free heads only")
    ap.add_argument("--cli", action="store_true", help="also train with `verbatim train themes`")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/verbatim-theme-cache"))
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    print(f"CPU: {cpu_description()['model']} ({os.cpu_count()} logical cores)")
    tax = load_taxonomy(args.taxonomy)
    texts, labels, reviews = read_semeval(args.data / "semeval16_fr" / "train_restaurants.jsonl")
    unknown = {c for lab in labels for c in lab} - set(tax.ids)
    if unknown:
        raise SystemExit(f"error: categories missing from {args.taxonomy}: {sorted(unknown)}")
    settings = load_settings()
    nlp = load_lemmatizer(settings.lemmatizer)
    signals = None
    if not args.no_encoder:
        _, signals = build_signals(settings, args.backend, args.cache)
        if isinstance(signals, CachedSignals):
            preload_encodings(signals, args.cache, texts)
    out: dict[str, Any] = {
        "cpu": cpu_description()["model"],
        "n": len(texts),
        "reviews": len(set(reviews)),
    }
    tr, te = holdout_split(reviews, args.test_share)
    print(
        f"{len(texts)} sentences, {len(set(reviews))} reviews; train {len(tr)} sentences, "
        f"held-out {len(te)} ({len({reviews[i] for i in te})} reviews)",
        flush=True,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = train(tax, [texts[i] for i in tr], [labels[i] for i in tr], nlp, signals)
    fit_s = time.perf_counter() - t0
    gold_te = [labels[i] for i in te]
    chosen = {k: v for k, v in model.info.items() if k == "C" or k.startswith("polarity_")}
    for v in chosen.values():
        if isinstance(v, dict):
            v.pop("cv", None)
    print(f"settings picked by internal CV on the training part: {chosen}")
    for variant, sig in (("full", signals), ("lite", None)):
        if variant == "full" and signals is None:
            continue
        pred = predict(model, [texts[i] for i in te], sig)
        out[f"holdout_{variant}"] = report(
            f"\nheld-out 20 % — {variant} heads (fit {fit_s:.0f}s)", gold_te, pred, tax
        )
    if args.cli:
        path = train_cli(args.taxonomy, [texts[i] for i in tr], [labels[i] for i in tr], args.cache)
        cli_model = load_theme_model(path, tax, nlp=nlp, signals=signals)
        pred = predict(cli_model, [texts[i] for i in te], signals)
        out["holdout_cli"] = report("\nheld-out 20 % — `verbatim train themes`", gold_te, pred, tax)
    if args.folds:
        oof: list[dict[str, str]] = [{} for _ in texts]
        for ftr, fte in kfold_splits(reviews, args.folds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fold = train(tax, [texts[i] for i in ftr], [labels[i] for i in ftr], nlp, signals)
            for i, p in zip(fte, predict(fold, [texts[i] for i in fte], signals), strict=True):
                oof[i] = p
        out["kfold"] = report(
            f"\n{args.folds}-fold CV over reviews (out-of-fold, all {len(texts)} sentences)",
            labels,
            oof,
            tax,
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

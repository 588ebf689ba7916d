"""Theme detection + aspect polarity figures for both built-in taxonomies (per-theme F1 tables).

    nice -n 10 python benchmarks/eval_themes.py [--data ../shared/data] [--only ecommerce]
        [--folds 5] [--seeds 0 1 2] [--backend embedded] [--cache /tmp/verbatim-theme-cache]

- ecommerce, themes_fr/dev (300 hand-labelled rows, the only gold there is): the rules, then
  the learned heads (encoder-free `lite` and encoder `full`) **out-of-fold**: k-fold over dev,
  each fold's model trained on the other folds only, repeated over seeds (mean ± sd).
- restaurant: heads trained on tripadvisor_fr/train, scored on tripadvisor_fr/dev and on
  semeval16_fr/train_restaurants (sentence opinions mapped to the four aspects), never trained
  on. Mention macro-F1 over the aspects; polarity macro-F1 over the three classes on aspects
  found in both gold and prediction.
The encoder variants use the sentiment backend's encoder, as `verbatim analyze` does; encoder
outputs are cached under --cache (texts hashed, never copied).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis import load_lemmatizer
from core.settings import load_settings
from jobs.evaluate import theme_metrics
from jobs.train_themes import CachedSignals, build_signals
from nlp.sentiment.lexicon import LexiconSentiment
from nlp.taxonomy import Taxonomy, load_taxonomy
from nlp.themes.learned import LearnedThemeDetector, load_theme_model
from nlp.themes.rules import RuleThemeDetector
from nlp.types import POLARITIES

ROOT = Path(__file__).resolve().parents[1]
SEMEVAL_ASPECTS = {
    "FOOD": "cuisine",
    "DRINKS": "cuisine",
    "SERVICE": "service",
    "AMBIENCE": "ambiance",
}


# --- encoder cache: the one-pass encodings (token states) kept on disk between runs -------------
def _encoding_file(cache: Path, signals: Any) -> Path:
    sig = str(signals.sentiment_signature)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sig)
    return cache / f"encodings-{safe}.npz"


def preload_encodings(signals: CachedSignals, cache: Path, texts: Sequence[str]) -> None:
    """Fill `signals`' in-memory pass memo from disk, encode what is missing, save."""
    from nlp.sentiment.embedded import DocEncoding

    file = _encoding_file(cache, signals)
    memo: dict[str, Any] = signals.__dict__.setdefault("_encoded", {})
    model = getattr(signals.inner, "sentiment", None)
    if file.is_file():
        with np.load(file) as npz:
            data = {k: npz[k] for k in npz.files}  # each npz[k] access reads the file again
        offsets = data["offsets"]
        for i, text in enumerate(data["texts"].tolist()):
            a, b = int(offsets[i]), int(offsets[i + 1])
            memo[text] = DocEncoding(
                model,
                data["pooled"][i : i + 1],
                data["sentiment"][i : i + 1],
                data["stars"][i : i + 1],
                [data["states"][a:b]],
                [data["spans"][a:b]],
                [text],
            )
    missing = sorted({t for t in texts if t not in memo})
    if not missing:
        return
    t0 = time.perf_counter()
    signals.encode(missing)
    print(f"encoded {len(missing)} texts in {time.perf_counter() - t0:.0f}s", flush=True)
    items = list(memo.items())
    lengths = [len(e.states[0]) for _, e in items]
    np.savez(
        file,
        keys=np.array([hashlib.sha1(t.encode("utf-8")).hexdigest() for t, _ in items]),
        texts=np.array([t for t, _ in items]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        pooled=np.vstack([e.pooled for _, e in items]),
        sentiment=np.vstack([e.sentiment_logits for _, e in items]),
        stars=np.vstack([e.star_logits for _, e in items]),
        states=np.vstack([e.states[0] for _, e in items]).astype(np.float32),
        spans=np.vstack([e.spans[0] for _, e in items]),
    )


def read_jsonl(path: Path, key: str) -> tuple[list[str], list[dict[str, str]]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(dict(row.get(key) or {}))
    return texts, labels


def semeval_aspects(opinions: list[dict[str, str]]) -> dict[str, str]:
    """Sentence opinions -> {aspect: polarity}; positive and negative together = neutral."""
    seen: dict[str, set[str]] = {}
    for op in opinions:
        entity, _, attribute = op["category"].partition("#")
        aspect = "prix" if attribute == "PRICES" else SEMEVAL_ASPECTS.get(entity)
        if aspect is not None:
            seen.setdefault(aspect, set()).add(op["polarity"])
    out = {}
    for aspect, pols in seen.items():
        strong = pols - {"neutral"}
        out[aspect] = strong.pop() if len(strong) == 1 else "neutral"
    return out


def read_semeval(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("out_of_scope"):
                continue
            texts.append(row["text"])
            labels.append(semeval_aspects(row.get("opinions", [])))
    return texts, labels


def polarity_scores(
    gold: Sequence[dict[str, str]], pred: Sequence[dict[str, str]]
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    pairs = [(g[t], p[t]) for g, p in zip(gold, pred, strict=True) for t in g if t in p]
    if not pairs:
        return {"polarity_macro_f1": 0.0, "polarity_accuracy": 0.0, "polarity_n": 0}
    y, z = zip(*pairs, strict=True)
    return {
        "polarity_macro_f1": round(
            float(f1_score(y, z, labels=list(POLARITIES), average="macro", zero_division=0)), 4
        ),
        "polarity_accuracy": round(float(np.mean([a == b for a, b in pairs])), 4),
        "polarity_n": len(pairs),
    }


def score(
    gold: Sequence[dict[str, str]], pred: Sequence[dict[str, str]], tax: Taxonomy
) -> dict[str, Any]:
    out = theme_metrics(list(gold), list(pred), tax.ids)
    out.update(polarity_scores(gold, pred))
    return out


def as_labels(mentions: Sequence[Sequence[Any]]) -> list[dict[str, str]]:
    return [{m.theme: m.polarity for m in doc} for doc in mentions]


def table(title: str, m: dict[str, Any]) -> str:
    lines = [
        f"{title}: micro-F1 {m['micro_f1']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
        f"polarity acc {m['polarity_accuracy']:.4f} / macro-F1 {m['polarity_macro_f1']:.4f}"
        f" (on {m['polarity_n']} found)",
        f"  {'theme':<24}{'P':>7}{'R':>7}{'F1':>7}{'gold':>6}{'pred':>6}",
    ]
    for t, v in m["per_theme"].items():
        lines.append(
            f"  {t:<24}{v['precision']:>7.3f}{v['recall']:>7.3f}{v['f1']:>7.3f}"
            f"{v['support']:>6}{v['predicted']:>6}"
        )
    return "\n".join(lines)


def summary(runs: list[dict[str, Any]]) -> str:
    keys = ("micro_f1", "macro_f1", "polarity_accuracy", "polarity_macro_f1")
    return "  ".join(
        f"{k} {np.mean([r[k] for r in runs]):.4f}±{np.std([r[k] for r in runs]):.4f}" for k in keys
    )


def predict_variant(
    model: LearnedThemeDetector, texts: list[str], rules: list[Any], variant: str, signals: Any
) -> list[dict[str, str]]:
    model.signals = signals if variant == "full" else None
    return as_labels(model.predict(texts, rules))


def ecommerce(args: argparse.Namespace, nlp: Any, scorer: Any, signals: Any) -> dict[str, Any]:
    from sklearn.model_selection import KFold

    tax = load_taxonomy("ecommerce")
    texts, gold = read_jsonl(args.data / "themes_fr" / "dev.jsonl", "themes")
    rules = RuleThemeDetector(tax, nlp=nlp, scorer=scorer)
    found = rules.detect(texts)
    res: dict[str, Any] = {
        "rules": score(gold, as_labels([[r.mention for r in d] for d in found]), tax)
    }
    print(
        table(
            "themes_fr/dev — rules (seeds/patterns written with this set in view: in-sample)",
            res["rules"],
        ),
        flush=True,
    )
    variants = ["lite"] + (["full"] if signals is not None else [])
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    first: dict[str, list[dict[str, str]]] = {}
    for seed in args.seeds:
        oof: dict[str, list[dict[str, str]]] = {v: [{}] * len(texts) for v in variants}
        for tr, te in KFold(args.folds, shuffle=True, random_state=seed).split(texts):
            model = LearnedThemeDetector(tax, nlp=nlp, scorer=scorer, signals=signals)
            model.rules = rules
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(
                    [texts[i] for i in tr],
                    [gold[i] for i in tr],
                    rule_mentions=[found[i] for i in tr],
                )
            for v in variants:
                preds = predict_variant(
                    model, [texts[i] for i in te], [found[i] for i in te], v, signals
                )
                for i, p in zip(te, preds, strict=True):
                    oof[v][i] = p
        for v in variants:
            runs[v].append(score(gold, oof[v], tax))
            first.setdefault(v, oof[v])
    for v in variants:
        res[f"learned_{v}_oof"] = {
            "seeds": list(args.seeds),
            "folds": args.folds,
            "runs": runs[v],
            "first_seed": score(gold, first[v], tax),
        }
        print(
            f"\nthemes_fr/dev — learned {v}, {args.folds}-fold out-of-fold over seeds "
            f"{list(args.seeds)}: {summary(runs[v])}"
        )
        print(table(f"  seed {args.seeds[0]}", score(gold, first[v], tax)), flush=True)
    return res


def fit_model(
    tax: Taxonomy,
    nlp: Any,
    scorer: Any,
    signals: Any,
    rules: Any,
    texts: list[str],
    gold: list[dict[str, str]],
    found: list[Any],
) -> LearnedThemeDetector:
    model = LearnedThemeDetector(tax, nlp=nlp, scorer=scorer, signals=signals)
    model.rules = rules
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(texts, gold, rule_mentions=found)
    return model


def polarity_mix(pred: list[dict[str, str]]) -> dict[str, int]:
    return {p: sum(1 for d in pred for v in d.values() if v == p) for p in POLARITIES}


def ecommerce_extra(
    args: argparse.Namespace, nlp: Any, scorer: Any, signals: Any
) -> dict[str, Any]:
    """With --extra (benchmarks/build_theme_data.py output, no dev rows): train on the extra
    labels -> score themes_fr/dev; train on dev -> score the extra labels; k-fold out-of-fold
    over the union. Nothing here was tuned on the scored side of each split."""
    from sklearn.model_selection import KFold

    tax = load_taxonomy("ecommerce")
    dev_x, dev_y = read_jsonl(args.data / "themes_fr" / "dev.jsonl", "themes")
    new_x, new_y = read_jsonl(args.extra, "themes")
    rules = RuleThemeDetector(tax, nlp=nlp, scorer=scorer)
    dev_f, new_f = rules.detect(dev_x), rules.detect(new_x)
    variants = ["lite"] + (["full"] if signals is not None else [])
    res: dict[str, Any] = {"n_dev": len(dev_x), "n_extra": len(new_x)}
    splits = [
        (
            f"train extra ({len(new_x)}) -> themes_fr/dev ({len(dev_x)})",
            (new_x, new_y, new_f),
            (dev_x, dev_y, dev_f),
        ),
        (
            f"train themes_fr/dev ({len(dev_x)}) -> extra ({len(new_x)})",
            (dev_x, dev_y, dev_f),
            (new_x, new_y, new_f),
        ),
    ]
    for name, (tx, ty, tf), (ex, ey, ef) in splits[:1] if args.quick else splits:
        t0 = time.perf_counter()
        model = fit_model(tax, nlp, scorer, signals, rules, tx, ty, tf)
        picked = {
            k: {a: b for a, b in v.items() if a != "cv"} if isinstance(v, dict) else v
            for k, v in model.info.items()
            if k == "C" or k.startswith("polarity_")
        }
        print(f"\n{name}: settings picked by internal CV: {picked}", flush=True)
        res[name] = {}
        for v in variants:
            pred = predict_variant(model, ex, ef, v, signals)
            res[name][v] = dict(score(ey, pred, tax), predicted_polarities=polarity_mix(pred))
            print(
                table(f"\n{name} — learned {v} ({time.perf_counter() - t0:.0f}s)", res[name][v]),
                flush=True,
            )
            print(f"  predicted polarities: {polarity_mix(pred)}; gold: {polarity_mix(ey)}")
    if args.quick:  # only the first split above (the model card's headline figures)
        return res
    ux, uy, uf = dev_x + new_x, dev_y + new_y, dev_f + new_f
    oof: dict[str, list[dict[str, str]]] = {v: [{}] * len(ux) for v in variants}
    for tr, te in KFold(args.folds, shuffle=True, random_state=args.seeds[0]).split(ux):
        model = fit_model(
            tax,
            nlp,
            scorer,
            signals,
            rules,
            [ux[i] for i in tr],
            [uy[i] for i in tr],
            [uf[i] for i in tr],
        )
        for v in variants:
            preds = predict_variant(model, [ux[i] for i in te], [uf[i] for i in te], v, signals)
            for i, p in zip(te, preds, strict=True):
                oof[v][i] = p
    name = f"union ({len(ux)}), {args.folds}-fold out-of-fold"
    res[name] = {}
    for v in variants:
        res[name][v] = dict(score(uy, oof[v], tax), predicted_polarities=polarity_mix(oof[v]))
        print(table(f"\n{name} — learned {v}", res[name][v]), flush=True)
        dev_part = score(dev_y, oof[v][: len(dev_x)], tax)
        res[name][v]["dev_rows_only"] = dev_part
        print(
            f"  of which themes_fr/dev rows: micro-F1 {dev_part['micro_f1']:.4f}, polarity acc "
            f"{dev_part['polarity_accuracy']:.4f}; predicted polarities "
            f"{polarity_mix(oof[v])}, gold {polarity_mix(uy)}"
        )
    if args.save is not None:
        # The shipped heads: every labelled row (the figures above are all out-of-fold).
        model = fit_model(tax, nlp, scorer, signals, rules, ux, uy, uf)
        model.rules = RuleThemeDetector(tax, nlp=nlp, scorer=scorer)
        model.save(args.save)
        print(f"\nheads trained on all {len(ux)} rows -> {args.save}")
    return res


def restaurant(args: argparse.Namespace, nlp: Any, scorer: Any, signals: Any) -> dict[str, Any]:
    tax = load_taxonomy("restaurant")
    tr_x, tr_y = read_jsonl(args.data / "tripadvisor_fr" / "train.jsonl", "aspects")
    sets = {
        "tripadvisor_fr/dev": read_jsonl(args.data / "tripadvisor_fr" / "dev.jsonl", "aspects"),
        "semeval16_fr/train (never trained on)": read_semeval(
            args.data / "semeval16_fr" / "train_restaurants.jsonl"
        ),
    }
    rules = RuleThemeDetector(tax, nlp=nlp, scorer=scorer)
    t0 = time.perf_counter()
    if args.model is not None:  # a saved model (e.g. the shipped heads), not retrained here
        model = load_theme_model(args.model, tax, nlp=nlp, scorer=scorer, signals=signals)
        print(f"\nrestaurant heads loaded from {args.model}", flush=True)
    else:
        model = LearnedThemeDetector(tax, nlp=nlp, scorer=scorer, signals=signals)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(tr_x, tr_y)
        print(
            f"\nrestaurant heads trained on tripadvisor_fr/train ({len(tr_x)} rows, "
            f"{time.perf_counter() - t0:.0f}s)",
            flush=True,
        )
    model.rules = rules
    res: dict[str, Any] = {}
    variants = ["lite"] + (["full"] if signals is not None else [])
    for name, (x, y) in sets.items():
        found = rules.detect(x)
        res[name] = {"rules": score(y, as_labels([[r.mention for r in d] for d in found]), tax)}
        print(table(f"\n{name} — rules", res[name]["rules"]))
        for v in variants:
            res[name][v] = score(y, predict_variant(model, x, found, v, signals), tax)
            print(table(f"{name} — learned {v}", res[name][v]), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--only", choices=("ecommerce", "restaurant"), default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--backend", default=None, help="sentiment backend (its encoder is used)")
    ap.add_argument("--no-encoder", action="store_true", help="lite heads only")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/verbatim-theme-cache"))
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    ap.add_argument(
        "--extra",
        type=Path,
        default=None,
        help="extra e-commerce labels (benchmarks/build_theme_data.py --out, no dev)",
    )
    ap.add_argument(
        "--save",
        type=Path,
        default=None,
        help="with --extra: also train on dev + extra and save the heads here",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="with --extra: only train extra -> score themes_fr/dev (no union CV, no --save)",
    )
    ap.add_argument(
        "--model",
        type=Path,
        default=None,
        help="restaurant: score this saved model (e.g. nlp/resources/models/themes_restaurant) "
        "instead of training one on tripadvisor_fr/train",
    )
    args = ap.parse_args()
    nlp = load_lemmatizer(load_settings().lemmatizer)
    scorer = LexiconSentiment()
    signals = None
    if not args.no_encoder:
        _, signals = build_signals(load_settings(), args.backend, args.cache)
    if isinstance(signals, CachedSignals) and args.extra is not None:
        # The one-pass encodings (token states) of every scored text, kept on disk.
        dev_x, _ = read_jsonl(args.data / "themes_fr" / "dev.jsonl", "themes")
        preload_encodings(signals, args.cache, dev_x + read_jsonl(args.extra, "themes")[0])
    out: dict[str, Any] = {}
    if args.only in (None, "ecommerce") and args.extra is not None:
        out["ecommerce_extra"] = ecommerce_extra(args, nlp, scorer, signals)
    elif args.only in (None, "ecommerce"):
        out["ecommerce"] = ecommerce(args, nlp, scorer, signals)
    if args.only in (None, "restaurant"):
        out["restaurant"] = restaurant(args, nlp, scorer, signals)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

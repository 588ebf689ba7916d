"""Sentiment on informal writing: the same reviews shouted in capitals and in chat spellings.

    python benchmarks/eval_informal.py                          # this tree
    python benchmarks/eval_informal.py --reference-rev a81982c  # and an older tree, same run

Takes MARC-fr dev (read at run time from ../shared/data, never copied) and writes two
variants of every review: all in capitals, and with chat spellings ("toujours" -> "tjrs",
"problème" -> "pb", "je suis" -> "jsuis"; the inverse of `nlp/text/informal.SPELLED_OUT`,
one spelling per word). Each file goes through the real `verbatim analyze` (embedded default,
a subprocess per tree); the table gives the 3-class macro-F1 against the stars and how many
labels differ from the same tree's label for the original review. The variants are synthetic:
they measure robustness to the writing, not accuracy on real informal posts. Prints the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_analyze import reference_tree, run_cli  # noqa: E402
from sentiment_data import SHARED  # noqa: E402

from jobs.evaluate import gold_sentiment  # noqa: E402
from nlp.encoder.runtime import cpu_description  # noqa: E402
from nlp.text.informal import SPELLED_OUT  # noqa: E402
from nlp.types import POLARITIES  # noqa: E402


def chat_spellings() -> re.Pattern[str]:
    return re.compile(
        r"(?<![\w'’])("
        + "|".join(re.escape(w) for w in sorted(_CHAT, key=len, reverse=True))
        + r")(?![\w'’])",
        re.IGNORECASE,
    )


# Plain word -> one chat spelling of it (the first listed in SPELLED_OUT).
_CHAT: dict[str, str] = {}
for _short, _full in SPELLED_OUT.items():
    _CHAT.setdefault(_full, _short)


def in_chat(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: _CHAT[m.group(1).lower()], text)


def macro_f1(gold: list[str], pred: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=list(POLARITIES), average="macro"))


def labels(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line).get("sentiment", {}).get("label", "") for line in fh]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "marc_fr" / "dev.jsonl")
    ap.add_argument("--reference-rev", default=None, help="also run this git revision")
    ap.add_argument("--backend", default="embedded")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8") if line.strip()]
    gold = [gold_sentiment(r) for r in rows]
    pattern = chat_spellings()
    variants = {
        "original": [r["text"] for r in rows],
        "capitals": [r["text"].upper() for r in rows],
        "chat spellings": [in_chat(r["text"], pattern) for r in rows],
    }
    changed = {
        k: sum(a != b for a, b in zip(v, variants["original"], strict=True))
        for k, v in variants.items()
    }
    cpu = cpu_description()
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, {' '.join(cpu['features'])}")
    print(f"{len(rows)} reviews from {args.data}")
    with tempfile.TemporaryDirectory(prefix="verbatim-informal-") as tmp:
        root = Path(tmp)
        feeds = {}
        for name, texts in variants.items():
            feeds[name] = root / f"{name.replace(' ', '_')}.jsonl"
            with feeds[name].open("w", encoding="utf-8") as fh:
                for i, text in enumerate(texts):
                    fh.write(json.dumps({"id": str(i), "text": text}, ensure_ascii=False) + "\n")
        trees = {"this tree": ROOT}
        with contextlib.ExitStack() as stack:
            if args.reference_rev:
                ref = stack.enter_context(reference_tree(args.reference_rev, root / "ref"))
                trees[f"rev {args.reference_rev}"] = ref
            head = ("tree", "variant", "texts changed", "macro-F1", "labels != original")
            print(f"{head[0]:<16} {head[1]:<16} {head[2]:>13} {head[3]:>9} {head[4]:>19}")
            for tree, tree_root in trees.items():
                preds = {}
                for name, feed in feeds.items():
                    out = root / f"out-{tree.replace(' ', '_')}-{feed.name}"
                    run_cli(feed, out, args.backend, 256, root=tree_root)
                    preds[name] = labels(out)
                for name, pred in preds.items():
                    moved = sum(a != b for a, b in zip(pred, preds["original"], strict=True))
                    f1 = macro_f1(gold, pred)
                    print(f"{tree:<16} {name:<16} {changed[name]:>13} {f1:>9.4f} {moved:>19}")


if __name__ == "__main__":
    main()

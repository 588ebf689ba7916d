"""What one hostile taxonomy can cost a request: `RuleThemeDetector.detect_one` of one long
text against taxonomies whose patterns, cues or seeds match everywhere (the audit's "a
thousand match-everything patterns froze /analyze"). Prints seconds per case and the CPU.

Run:  python benchmarks/bench_rules_worst_case.py [--chars 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_api import cpu_model  # noqa: E402

from nlp.taxonomy import Taxonomy, Theme  # noqa: E402
from nlp.themes.rules import RuleThemeDetector  # noqa: E402

EVERYWHERE = [".", r"\w", "[a-z]", "(a|b|c)", r"\s"]


def cases() -> dict[str, Taxonomy]:
    patterns = [
        Theme(
            id=f"t{k}",
            label=f"T{k}",
            patterns=EVERYWHERE,
            positive_cues=["."],
            negative_cues=[r"\w"],
        )
        for k in range(125)
    ]
    seeds = [Theme(id=f"t{k}", label=f"T{k}", seeds=["abcdefghij", "super"]) for k in range(200)]
    return {
        "125 themes x (5 patterns + 2 cues) matching everywhere": Taxonomy(
            name="p", themes=patterns, positive_cues=["."]
        ),
        "200 themes x 2 seeds matching every word": Taxonomy(name="s", themes=seeds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=20_000)
    args = parser.parse_args()
    text = ("abcdefghij, super. " * (args.chars // 19 + 1))[: args.chars]
    figures: dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count(), "chars": args.chars}
    for name, taxonomy in cases().items():
        detector = RuleThemeDetector(taxonomy)
        start = time.perf_counter()
        mentions = detector.detect_one(text)
        figures[name] = {
            "seconds": round(time.perf_counter() - start, 3),
            "mentions": len(mentions),
        }
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

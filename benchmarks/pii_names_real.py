"""What the lower-case name rules (`nlp/text/names.py`) change on real reviews and tweets.

Masks every text of the shared research sources with the rules (no NER), once with Faker's
name lists and once with empty ones, and prints each text that differs (the part that changed)
and both timings. A change is either a real name written in lower case or a false mask.
The texts are read from ../shared/data at run time and never written anywhere.

Run:  python benchmarks/pii_names_real.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from nlp.encoder.runtime import cpu_description
from nlp.text.names import NameLists, faker_names
from nlp.text.pii import PiiConfig, PiiMasker

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    with_names = PiiMasker(PiiConfig(known_names=faker_names()))
    without = PiiMasker(PiiConfig(known_names=NameLists(frozenset(), frozenset())))
    n = 0
    changed: list[tuple[str, str, str]] = []
    spent = {"with": 0.0, "without": 0.0}
    for path in sorted(args.data.glob("*/*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                text = json.loads(line).get("text") or ""
                n += 1
                t0 = time.perf_counter()
                a = with_names(text)
                t1 = time.perf_counter()
                b = without(text)
                spent["with"] += t1 - t0
                spent["without"] += time.perf_counter() - t1
                if a != b:
                    changed.append((path.parent.name, text, a))
    cpu = cpu_description()
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores")
    print(
        f"{n} texts, {len(changed)} changed by the name lists; masking time (rules, one run): "
        f"{spent['with']:.1f} s with them, {spent['without']:.1f} s without"
    )
    for source, text, masked in changed:
        i = len(os.path.commonprefix([text, masked]))
        start = max(0, i - 40)
        print(f"  {source}: {text[start : i + 30]!r}\n    -> {masked[start : i + 30]!r}")


if __name__ == "__main__":
    main()

"""What one hostile text can cost the PII masker: `PiiMasker.mask` (rules only, or with NER)
of long dotted, dashed, numeric or spelt-out tokens, the shapes on which the e-mail and URL
patterns used to rescan the whole token from every word boundary (a 40 kB "a.a.a…" took about
a minute), and names before roles, each of which read the text again on the NER path. Prints
the CPU and seconds per shape and size.

Run:  python benchmarks/bench_pii_worst_case.py [--chars 20000 40000] [--ner]
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

from nlp.text.pii import PiiMasker, load_ner  # noqa: E402

# name: (prefix, repeated unit, suffix). A suffix arms the gates of the rules that only run
# when the text holds "@" or "chez".
SHAPES: dict[str, tuple[str, str, str]] = {
    "a.": ("", "a.", ""),
    "a. + @": ("", "a.", "@"),
    "a-": ("", "a-", ""),
    "a- + @": ("", "a-", "@"),
    "a_": ("", "a_", ""),
    "1.": ("", "1.", ""),
    "a@": ("", "a@", ""),
    "a.a@": ("", "a.a@", ""),
    "www.": ("", "www.", ""),
    "http:// a.": ("http://", "a.", ""),
    "a. + /": ("", "a.", "/"),
    "1 ": ("", "1 ", ""),
    "1-": ("", "1-", ""),
    "1/": ("", "1/", ""),
    "é.": ("", "é.", "@"),
    "A": ("", "A", ""),
    "a point + chez": ("", "a point ", "chez"),
    # With --ner: a name before each role, each of which used to rescan the text and entities.
    "names + roles": ("", "Jean Dupont, Karim le livreur. ", ""),
    "mix": ("", "a.b-c_1/é@x.fr ", ""),
}


def shape(name: str, chars: int) -> str:
    prefix, unit, suffix = SHAPES[name]
    body = unit * ((chars - len(prefix) - len(suffix)) // len(unit) + 1)
    return (prefix + body)[: chars - len(suffix)] + suffix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, nargs="+", default=[20_000, 40_000])
    parser.add_argument("--ner", action="store_true", help="with the spaCy NER pipeline")
    args = parser.parse_args()
    masker = PiiMasker(nlp=load_ner() if args.ner else None)
    figures: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ner": masker.nlp is not None,
    }
    for name in SHAPES:
        row: dict[str, float] = {}
        for chars in args.chars:
            text = shape(name, chars)
            start = time.perf_counter()
            masker.mask(text)
            row[str(chars)] = round(time.perf_counter() - start, 3)
        figures[name] = row
        print(f"{name:16} " + "  ".join(f"{k}: {v:8.3f} s" for k, v in row.items()), flush=True)
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

"""Write the default sentiment training corpus (from ../shared/data) to a JSONL file.

python benchmarks/make_sentiment_corpus.py /tmp/sentiment_train.jsonl
verbatim train sentiment --data /tmp/sentiment_train.jsonl --out nlp/resources/sentiment
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentiment_data import training_rows  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sentiment_train.jsonl")
    data = training_rows()
    with out.open("w", encoding="utf-8") as fh:
        for row in data:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    by = collections.Counter((r.get("source"), r.get("sentiment")) for r in data)
    print(f"wrote {len(data)} rows to {out}")
    for key, n in sorted(by.items()):
        print(f"  {key[0]:<12} {key[1]:<9} {n}")


if __name__ == "__main__":
    main()

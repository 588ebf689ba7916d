"""Rebuild the e-commerce theme training file from label files (ids + themes) and the texts.

    python benchmarks/build_theme_data.py --out /tmp/verbatim-themes/train.jsonl

The extra labelled rows are our own annotations, stored as `{"ref", "themes"}` lines only
(`benchmarks/theme_labels/extra_*.jsonl`: a source id and the labels, never a text); their texts are
joined here, at run time, from `../shared/data` (trustpilot_fr/reviews.jsonl,
marc_fr/train.jsonl; ids `tp-…` / `marc-tr-…`). Rows of themes_fr/dev are refused (dev stays a
held-out set), as are unknown ids, unknown themes or polarities, and duplicated ids: the script
says which file and line, and exits with code 2. The output (`text` + `themes`, the format of
`verbatim train themes --examples`) is written outside the repository; `--with-dev` appends
themes_fr/dev for the final training run. Prints counts per theme and polarity.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCES = ("trustpilot_fr/reviews.jsonl", "marc_fr/train.jsonl")


class LabelError(ValueError):
    pass


def read_texts(data: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name in SOURCES:
        with (data / name).open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                texts[str(row["id"])] = row["text"]
    return texts


def read_labels(files: list[Path], taxonomy_ids: set[str]) -> list[tuple[str, dict[str, str]]]:
    seen: dict[str, str] = {}
    out = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    rid, themes = str(row.get("ref", row.get("id"))), row["themes"]
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise LabelError(f'{path}:{n}: expected {{"ref", "themes"}}') from None
                if not isinstance(themes, dict):
                    raise LabelError(f"{path}:{n}: 'themes' must be an object")
                for key, pol in themes.items():
                    if key not in taxonomy_ids:
                        raise LabelError(f"{path}:{n}: unknown theme {key!r}")
                    if pol not in ("negative", "neutral", "positive"):
                        raise LabelError(f"{path}:{n}: theme {key!r} has polarity {pol!r}")
                if rid in seen:
                    raise LabelError(f"{path}:{n}: id {rid} already labelled in {seen[rid]}")
                seen[rid] = f"{path.name}:{n}"
                out.append((rid, dict(themes)))
    return out


def build(
    labels_dir: Path, data: Path, pattern: str = "extra_[A-Z].jsonl", with_dev: bool = False
) -> list[dict]:
    from nlp.taxonomy import load_taxonomy

    files = sorted(labels_dir.glob(pattern))
    if not files:
        raise LabelError(f"no label files matching {pattern} in {labels_dir}")
    ids = set(load_taxonomy("ecommerce").ids)
    labels = read_labels(files, ids)
    dev_path = data / "themes_fr" / "dev.jsonl"
    dev = [json.loads(line) for line in dev_path.open(encoding="utf-8") if line.strip()]
    dev_ids = {str(r["id"]) for r in dev}
    texts = read_texts(data)
    rows = []
    for rid, themes in labels:
        if rid in dev_ids:
            raise LabelError(f"id {rid} is in themes_fr/dev: dev stays held out")
        if rid not in texts:
            raise LabelError(f"id {rid}: no such row in {', '.join(SOURCES)}")
        rows.append({"id": rid, "text": texts[rid], "themes": themes})
    if with_dev:
        rows += [{"id": r["id"], "text": r["text"], "themes": r["themes"]} for r in dev]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=ROOT / "benchmarks" / "theme_labels")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--pattern", default="extra_[A-Z].jsonl", help="label files (glob)")
    ap.add_argument("--with-dev", action="store_true", help="append themes_fr/dev (300)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.out.resolve().is_relative_to(ROOT):
        print(
            "error: write the training file outside the repository (research data)", file=sys.stderr
        )
        raise SystemExit(2)
    try:
        rows = build(args.labels, args.data, args.pattern, args.with_dev)
    except (LabelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = Counter((t, p) for r in rows for t, p in r["themes"].items())
    print(
        f"{len(rows)} rows -> {args.out} ({sum(1 for r in rows if not r['themes'])} without "
        "a theme)"
    )
    for theme in sorted({t for t, _ in counts}):
        per = {p: counts[(theme, p)] for p in ("negative", "neutral", "positive")}
        print(f"  {theme:<24} {sum(per.values()):>5}  {per}")


if __name__ == "__main__":
    main()

"""Agreement between two annotations of the same reviews (theme presence and polarity kappa).

    python benchmarks/theme_agreement.py \
        benchmarks/theme_labels/heldout_[EF].jsonl \
        --second benchmarks/theme_labels/check_heldout_cross.jsonl \
                 benchmarks/theme_labels/check_heldout_E_second.jsonl

Label files are `{"ref", "themes"}` lines (benchmarks/theme_labels). Rows are joined on `ref`;
only rows labelled in both annotations count. Presence: Cohen's kappa over every (row, theme)
pair of the e-commerce taxonomy, "mentioned or not". Polarity: Cohen's kappa over the themes
both annotations found. A row found in several files of one side counts once, as labelled in
the last of them. Kappa comes from scikit-learn (`cohen_kappa_score`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from build_theme_data import read_labels
from sklearn.metrics import cohen_kappa_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Agreement:
    rows: int
    presence_kappa: float
    polarity_kappa: float
    shared_mentions: int
    identical_rows: float


def read_annotation(paths: list[Path], theme_ids: set[str]) -> dict[str, dict[str, str]]:
    """ref -> themes over `paths`, checked by `build_theme_data.read_labels` file by file (a
    ref may appear in several files of one side: the last one counts)."""
    out: dict[str, dict[str, str]] = {}
    for path in paths:
        out.update(read_labels([path], theme_ids))
    return out


def agreement(
    first: dict[str, dict[str, str]], second: dict[str, dict[str, str]], themes: list[str]
) -> Agreement:
    refs = sorted(first.keys() & second.keys())
    if not refs:
        raise ValueError("the two annotations share no row")
    pairs = [(first[r], second[r]) for r in refs]
    presence_a = [int(t in a) for a, _ in pairs for t in themes]
    presence_b = [int(t in b) for _, b in pairs for t in themes]
    shared = [(a[t], b[t]) for a, b in pairs for t in themes if t in a and t in b]
    return Agreement(
        rows=len(refs),
        presence_kappa=float(cohen_kappa_score(presence_a, presence_b)),
        polarity_kappa=float(cohen_kappa_score(*zip(*shared, strict=True))) if shared else 0.0,
        shared_mentions=len(shared),
        identical_rows=sum(a == b for a, b in pairs) / len(pairs),
    )


def main() -> None:
    from nlp.taxonomy import load_taxonomy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path, nargs="+", help="label files of the first annotation")
    ap.add_argument("--second", type=Path, nargs="+", required=True)
    args = ap.parse_args()
    themes = list(load_taxonomy("ecommerce").ids)
    try:
        result = agreement(
            read_annotation(args.first, set(themes)),
            read_annotation(args.second, set(themes)),
            themes,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(
        f"{result.rows} rows in both: presence kappa {result.presence_kappa:.3f}, polarity kappa "
        f"{result.polarity_kappa:.3f} on {result.shared_mentions} themes found by both, "
        f"identical labels on {result.identical_rows:.1%} of the rows"
    )


if __name__ == "__main__":
    main()

"""`verbatim evaluate`: score the analyzer on a labelled JSONL file (scikit-learn metrics).

Sentiment gold: `sentiment` (negative/neutral/positive, neg/neu/pos or négatif/neutre/positif,
any case) or `stars` (1-2 / 3 / 4-5). Theme gold: `themes` or `aspects` ({id: polarity});
rows without either are not theme-scored. A label that is given but cannot be read is an
error naming its line: scoring the file without it would report figures on other rows than
the team's.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.analyze import atomic_output
from nlp.analyzer import Analyzer
from nlp.errors import VerbatimError
from nlp.sentiment.labelled import LabelConflicts
from nlp.types import POLARITIES, POLARITY_FORMS, polarity_name


class LabelError(VerbatimError, ValueError):
    """A labelled row whose label cannot be read (message names the file and line)."""


def polarity_label(value: Any) -> str | None:
    """negative / neutral / positive from a label in any case, English, French or short
    (neg/neu/pos): the one reading of every labelled file (nlp.types.polarity_name)."""
    return polarity_name(value)


def stars_to_label(stars: Any) -> str | None:
    """1-2 negative, 3 neutral, 4-5 positive; anything off the 1-5 scale (0, 6, a 0-10 score,
    NaN) is no label rather than a wrong one."""
    if isinstance(stars, bool):
        return None
    try:
        value = float(stars)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or not 1 <= value <= 5:
        return None
    if value <= 2:
        return "negative"
    if value < 4:
        return "neutral"
    return "positive"


def gold_sentiment(row: dict[str, Any]) -> str | None:
    label = polarity_label(row.get("sentiment"))
    if label is not None:
        return label
    return stars_to_label(row.get("stars")) if "stars" in row else None


def gold_themes(row: dict[str, Any]) -> dict[str, str] | None:
    """{theme id: polarity}, or None when the row has no theme label (LabelError when it has
    one that cannot be read: a list of ids, an unknown polarity)."""
    for key in ("themes", "aspects"):
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise LabelError(f"'{key}' must be an object {{theme id: polarity}}")
        out: dict[str, str] = {}
        for theme, pol in value.items():
            label = polarity_label(pol)
            if label is None:
                raise LabelError(f"theme {theme!r} has polarity {pol!r}; expected {POLARITY_FORMS}")
            out[str(theme)] = label
        return out
    return None


def checked_sentiment(row: dict[str, Any]) -> str | None:
    """The row's sentiment gold; LabelError when a label is given but cannot be read. A
    `sentiment` that cannot be read is an error even beside readable `stars`: falling back to
    the stars hid a column of typos. (Readable `stars` beside a readable `sentiment` that
    disagrees: see `labels_disagree`.)"""
    label = gold_sentiment(row)
    given = {k: row[k] for k in ("sentiment", "stars") if row.get(k) is not None}
    if "sentiment" in given and polarity_label(given["sentiment"]) is None:
        given.pop("stars", None)
        label = None
    if label is None and given:
        shown = ", ".join(f"{k} {v!r}" for k, v in given.items())
        raise LabelError(
            f"unreadable sentiment label ({shown}): 'sentiment' is {POLARITY_FORMS}, "
            "'stars' a number from 1 to 5"
        )
    return label


def labels_disagree(row: dict[str, Any]) -> bool:
    """A readable `sentiment` and readable `stars` that say different things ("positive",
    stars 1): `sentiment` is the gold, but the file deserves a look."""
    said = polarity_label(row.get("sentiment"))
    rated = stars_to_label(row.get("stars"))
    return said is not None and rated is not None and said != rated


@dataclass
class EvalRows:
    texts: list[str] = field(default_factory=list)
    sentiment: list[str | None] = field(default_factory=list)
    themes: list[dict[str, str] | None] = field(default_factory=list)
    ids: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line of each row in the file
    skipped: int = 0
    conflicts: LabelConflicts = field(default_factory=LabelConflicts)
    # Why rows were skipped (reason -> their lines), and the lines of rows read but with no
    # label at all: said on stderr, "skipped: 3" alone hid a labelled row cut in the export.
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    unlabelled: list[int] = field(default_factory=list)

    def skip(self, reason: str, line: int) -> None:
        self.skipped += 1
        self.skipped_lines.setdefault(reason, []).append(line)

    def warnings(self, path: Path) -> list[str]:
        """One line on the skipped rows (how many, why, the first line of each reason), one on
        the rows with no label (analysed, scored on nothing)."""
        out = []
        if self.skipped:
            why = ", ".join(
                f"{len(lines)} {reason} (first: line {lines[0]})"
                for reason, lines in self.skipped_lines.items()
            )
            out.append(f"warning: {self.skipped} row(s) of {path} skipped: {why}")
        if self.unlabelled:
            out.append(
                f"warning: {len(self.unlabelled)} row(s) of {path} have no label (sentiment, "
                f"stars, themes or aspects): scored on nothing (first: line {self.unlabelled[0]})"
            )
        return out


def read_rows(path: Path, limit: int | None = None) -> EvalRows:
    """Rows with a non-empty text (others counted in `skipped`; blank lines ignored). A BOM
    (Excel, Notepad) is not part of the first row; LabelError names the line of an unreadable
    label."""
    rows = EvalRows()
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if limit is not None and len(rows.texts) >= limit:
                break
            if not line.strip():  # a blank line (the trailing one of many exports) is no row
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                rows.skip("not JSON", n)
                continue
            if not isinstance(row, dict):
                rows.skip("not a JSON object", n)
                continue
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                rows.skip("without a non-empty 'text'", n)
                continue
            try:
                sentiment, themes = checked_sentiment(row), gold_themes(row)
            except LabelError as exc:
                raise LabelError(f"{path}:{n}: {exc}") from None
            if labels_disagree(row):
                rows.conflicts.add(f"{path}:{n}")
            if sentiment is None and themes is None:
                rows.unlabelled.append(n)
            rows.texts.append(text)
            rows.sentiment.append(sentiment)
            rows.themes.append(themes)
            rows.ids.append(row.get("id"))
            rows.lines.append(n)
    return rows


def check_theme_ids(rows: EvalRows, taxonomy: Any, path: Path) -> None:
    """LabelError naming the first line whose gold theme the taxonomy does not know (or has
    retired), as `verbatim train themes` refuses it: a typo or another taxonomy's id was
    scored as a missed theme, and the prediction beside it as a false one."""
    for themes, n in zip(rows.themes, rows.lines, strict=True):
        for key in themes or {}:
            theme = taxonomy.resolve(key)
            if theme is None or theme.retired:
                raise LabelError(
                    f"{path}:{n}: unknown theme id {key!r} (taxonomy {taxonomy.name!r} "
                    f"has: {', '.join(taxonomy.ids)})"
                )


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def sentiment_metrics(gold: list[str], pred: list[str]) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = list(POLARITIES)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    # Macro over the classes in gold or predictions: a class absent from both (no neutral
    # in the file, none predicted) is no error and must not count as an F1 of 0.
    seen = [lab for lab in labels if lab in set(gold) | set(pred)]
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "macro_f1": round(
            float(f1_score(gold, pred, labels=seen, average="macro", zero_division=0)), 4
        ),
        "per_class": {
            lab: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(s[i]),
            }
            for i, lab in enumerate(labels)
        },
        "labels": labels,
        "confusion": confusion_matrix(gold, pred, labels=labels).tolist(),  # rows = gold
    }


def theme_metrics(
    gold: list[dict[str, str]], pred: list[dict[str, str]], theme_ids: list[str]
) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    ids = sorted(set(theme_ids) | {k for g in gold for k in g} | {k for p in pred for k in p})
    y_true = np.array([[1 if t in g else 0 for t in ids] for g in gold], dtype=int)
    y_pred = np.array([[1 if t in p else 0 for t in ids] for p in pred], dtype=int)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    # Macro over the themes in gold or predictions, as for sentiment: a theme the file never
    # labels but the model finds (every one a false positive) is an F1 of 0, not left out.
    seen = [i for i, sup in enumerate(s) if sup > 0 or y_pred[:, i].any()]
    macro = float(np.mean([f[i] for i in seen])) if seen else 0.0
    both = [(g[t], q[t]) for g, q in zip(gold, pred, strict=True) for t in g if t in q]
    pol_acc = sum(1 for a, b in both if a == b) / len(both) if both else 0.0
    pol_by_theme: dict[str, list[int]] = {}  # theme -> [right, found]
    swaps: Counter[tuple[str, str]] = Counter()  # (gold theme missed, theme predicted instead)
    for g, q in zip(gold, pred, strict=True):
        for t in g:
            if t in q:
                cell = pol_by_theme.setdefault(t, [0, 0])
                cell[0] += g[t] == q[t]
                cell[1] += 1
        swaps.update((m, x) for m in g if m not in q for x in q if x not in g)
    labels = list(POLARITIES)
    pol_confusion = (
        confusion_matrix([g for g, _ in both], [x for _, x in both], labels=labels).tolist()
        if both
        else [[0] * len(labels) for _ in labels]
    )
    return {
        "n": len(gold),
        "micro_f1": round(float(f1_score(y_true, y_pred, average="micro", zero_division=0)), 4),
        "macro_f1": round(macro, 4),
        "polarity_accuracy": round(pol_acc, 4),
        "polarity_n": len(both),
        "exact_match": round(
            sum(1 for g, q in zip(gold, pred, strict=True) if set(g) == set(q)) / max(1, len(gold)),
            4,
        ),
        "per_theme": {
            t: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(s[i]),
                "predicted": int(y_pred[:, i].sum()),
                "polarity_accuracy": round(
                    pol_by_theme[t][0] / pol_by_theme[t][1] if t in pol_by_theme else 0.0, 4
                ),
                "polarity_n": pol_by_theme.get(t, [0, 0])[1],
            }
            for i, t in enumerate(ids)
        },
        "polarity_labels": labels,
        "polarity_confusion": pol_confusion,  # rows = gold, on themes found
        # Where a gold theme was missed and another predicted in the same text: the pairs a
        # team should read first (a seed or an example in the wrong theme, an ambiguous word).
        "confusions": [
            {"gold": a, "predicted": b, "count": n} for (a, b), n in swaps.most_common(8) if n >= 2
        ],
    }


def evaluate(
    analyzer: Analyzer, rows: EvalRows, batch_size: int = 128, errors_path: Path | None = None
) -> dict[str, Any]:
    pred_sent: list[str] = []
    pred_themes: list[dict[str, str]] = []
    for part in _batches(len(rows.texts), batch_size):
        for doc in analyzer.analyze(rows.texts[part]):
            pred_sent.append(doc.sentiment.label)
            pred_themes.append({m.theme: m.polarity for m in doc.themes})
    result: dict[str, Any] = {
        "model_version": analyzer.model_version,
        "rows": len(rows.texts),
        "skipped": rows.skipped,
    }
    s_idx = [i for i, g in enumerate(rows.sentiment) if g is not None]
    if s_idx:
        result["sentiment"] = sentiment_metrics(
            [rows.sentiment[i] for i in s_idx], [pred_sent[i] for i in s_idx]
        )
    t_idx = [i for i, g in enumerate(rows.themes) if g is not None]
    if t_idx:
        gold = [_resolve(rows.themes[i], analyzer) for i in t_idx]
        result["themes"] = theme_metrics(
            gold, [pred_themes[i] for i in t_idx], analyzer.taxonomy.ids
        )
    if errors_path is not None:
        # `--errors /dev/stderr 2>> log` reopened the log with "w": its earlier lines lost.
        with atomic_output(errors_path) as fh:
            for i, text in enumerate(rows.texts):
                g_t = _resolve(rows.themes[i], analyzer) if rows.themes[i] is not None else None
                wrong_s = rows.sentiment[i] is not None and rows.sentiment[i] != pred_sent[i]
                wrong_t = g_t is not None and g_t != pred_themes[i]
                if wrong_s or wrong_t:
                    fh.write(
                        json.dumps(
                            {
                                "id": rows.ids[i],
                                "text": text,
                                "gold_sentiment": rows.sentiment[i],
                                "pred_sentiment": pred_sent[i],
                                "gold_themes": g_t,
                                "pred_themes": pred_themes[i],
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
    return result


def _resolve(themes: dict[str, str], analyzer: Analyzer) -> dict[str, str]:
    """Gold ids through taxonomy aliases (a renamed theme still scores)."""
    out = {}
    for key, pol in themes.items():
        theme = analyzer.taxonomy.resolve(key)
        out[theme.id if theme else key] = pol
    return out


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"model: {result['model_version']}  rows: {result['rows']}  skipped: {result['skipped']}"
    ]
    sent = result.get("sentiment")
    if sent:
        lines.append("")
        lines.append(
            f"SENTIMENT  n={sent['n']}  accuracy={sent['accuracy']:.4f}"
            f"  macro-F1={sent['macro_f1']:.4f}"
        )
        lines.append(f"  {'class':<10}{'P':>8}{'R':>8}{'F1':>8}{'n':>7}")
        for lab, m in sent["per_class"].items():
            lines.append(
                f"  {lab:<10}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
                f"{m['support']:>7}"
            )
        lines.append("  confusion (rows = gold, cols = predicted: neg neu pos)")
        for lab, row in zip(sent["labels"], sent["confusion"], strict=True):
            lines.append(f"  {lab:<10}" + "".join(f"{v:>7}" for v in row))
    th = result.get("themes")
    if th:
        lines.append("")
        lines.append(
            f"THEMES  n={th['n']}  micro-F1={th['micro_f1']:.4f}"
            f"  macro-F1={th['macro_f1']:.4f}  polarity-acc={th['polarity_accuracy']:.4f}"
            f" (on {th['polarity_n']} found)  exact={th['exact_match']:.4f}"
        )
        lines.append(
            f"  {'theme':<24}{'P':>8}{'R':>8}{'F1':>8}{'gold':>7}{'pred':>7}{'pol-acc':>9}"
        )
        for t, m in th["per_theme"].items():
            pol = f"{m['polarity_accuracy']:>9.3f}" if m["polarity_n"] else f"{'-':>9}"
            lines.append(
                f"  {t:<24}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
                f"{m['support']:>7}{m['predicted']:>7}{pol}"
            )
        lines.append("  polarity on found themes (rows = gold, cols = predicted: neg neu pos)")
        for lab, row in zip(th["polarity_labels"], th["polarity_confusion"], strict=True):
            lines.append(f"  {lab:<10}" + "".join(f"{v:>7}" for v in row))
        if th["confusions"]:
            lines.append("  most confused (gold theme missed -> theme predicted in its place)")
            for c in th["confusions"]:
                lines.append(f"  {c['gold']:>24} -> {c['predicted']:<24}{c['count']:>5}")
    return "\n".join(lines)

"""Train theme heads: from a company's labelled examples, or the packaged default by weak
supervision (rule labels on unlabelled reviews + the taxonomy's `examples:`).

`verbatim train themes --taxonomy T.yaml --examples E.jsonl --out DIR` (registered on the
`train` group of jobs/cli_train.py). Heavy imports happen inside functions.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer


class ExamplesError(ValueError):
    """An examples file that cannot be used (message names the file and line)."""


def read_examples(path: Path, taxonomy: Any) -> tuple[list[str], list[dict[str, str]]]:
    """`text` + `themes: {id: polarity}` per JSONL line (the themes_fr format).

    Theme ids resolve through taxonomy aliases; an unknown id or polarity is an error that names
    the line. Blank lines are skipped.
    """
    from nlp.types import POLARITIES

    texts: list[str] = []
    labels: list[dict[str, str]] = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ExamplesError(f"{path}:{n}: not valid JSON ({exc})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) \
                    or not row["text"].strip():
                raise ExamplesError(f"{path}:{n}: expected an object with a non-empty 'text'")
            themes = row.get("themes", row.get("aspects", {}))
            if not isinstance(themes, dict):
                raise ExamplesError(f"{path}:{n}: 'themes' must be an object {{id: polarity}}")
            out: dict[str, str] = {}
            for key, pol in themes.items():
                theme = taxonomy.resolve(str(key))
                if theme is None or theme.retired:
                    raise ExamplesError(
                        f"{path}:{n}: unknown theme id {key!r} (taxonomy {taxonomy.name!r} "
                        f"has: {', '.join(taxonomy.ids)})"
                    )
                if pol not in POLARITIES:
                    raise ExamplesError(
                        f"{path}:{n}: theme {key!r} has polarity {pol!r}; expected one of "
                        f"{', '.join(POLARITIES)}"
                    )
                out[theme.id] = pol
            texts.append(row["text"])
            labels.append(out)
    if not texts:
        raise ExamplesError(f"{path}: no examples")
    return texts, labels


def train_from_examples(taxonomy: Any, texts: list[str], labels: list[dict[str, str]], *,
                        nlp: Any | None = None, use_rules: bool = True,
                        min_examples: int | None = None) -> tuple[Any, list[str]]:
    """Fit a LearnedThemeDetector; returns it and the warnings raised (rule fall-backs)."""
    from nlp.themes.learned import MIN_EXAMPLES, LearnedThemeDetector

    model = LearnedThemeDetector(taxonomy, nlp=nlp, use_rules=use_rules,
                                 min_examples=min_examples or MIN_EXAMPLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(texts, labels)
    return model, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# --- weak supervision for the packaged default ------------------------------------------------
def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def weak_corpus(data_dir: Path, taxonomy: Any, rules: Any, *, exclude: Path | None = None,
                limit: int | None = None, product_prior: bool = True
                ) -> tuple[list[str], list[dict[str, str]], dict[str, Any]]:
    """Rule-labelled trustpilot_fr + marc_fr/train reviews (minus every id/text in `exclude`),
    plus the taxonomy's own `examples:`.

    `product_prior`: marc_fr rows are Amazon *product* reviews, so qualite_produit is added
    unless the rules found only other themes there.
    """
    from nlp.text.normalize import normalize_text

    banned_ids: set[str] = set()
    banned_texts: set[str] = set()
    if exclude is not None and exclude.exists():
        for row in _jsonl(exclude):
            banned_ids.add(str(row.get("id")))
            banned_texts.add(normalize_text(row.get("text", "")).lower())
    rows: list[tuple[str, str]] = []  # (source, text)
    for name in ("trustpilot_fr/reviews.jsonl", "marc_fr/train.jsonl"):
        file = data_dir / name
        if not file.exists():
            raise FileNotFoundError(f"training data not found: {file}")
        source = name.split("/")[0]
        taken = 0
        for row in _jsonl(file):
            text = normalize_text(row.get("text") or "")
            if not text or str(row.get("id")) in banned_ids or text.lower() in banned_texts:
                continue
            rows.append((source, text))
            taken += 1
            if limit and taken >= limit:
                break
    texts = [t for _, t in rows]
    mentions = rules.predict(texts)
    labels: list[dict[str, str]] = []
    for (source, _), found in zip(rows, mentions, strict=True):
        lab = {m.theme: m.polarity for m in found}
        if (product_prior and source == "marc_fr" and "qualite_produit" in taxonomy.ids
                and (not lab or "qualite_produit" in lab)):
            lab.setdefault("qualite_produit", "neutral")
        labels.append(lab)
    n_weak = len(texts)
    for theme in taxonomy.active:
        for ex in theme.examples:
            texts.append(ex)
            labels.append({theme.id: "neutral"})
    stats = {"weak_rows": n_weak, "taxonomy_examples": len(texts) - n_weak,
             "excluded_ids": len(banned_ids)}
    return texts, labels, stats


# --- CLI ----------------------------------------------------------------------------------------
def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def register_themes(group: typer.Typer) -> None:
    """Add `themes` to the `train` command group."""

    @group.command("themes")
    def train_themes_cmd(
        examples: Path = typer.Option(
            ..., "--examples", help="JSONL: 'text' + 'themes' {theme id: polarity} per line."
        ),
        out: Path = typer.Option(..., "--out", help="Directory to write the theme model to."),
        taxonomy: str | None = typer.Option(
            None, "--taxonomy", help="Taxonomy YAML file, or 'ecommerce' / 'restaurant'."
        ),
        min_examples: int = typer.Option(
            8, "--min-examples", min=1,
            help="Themes with fewer positive examples fall back to the rule detector.",
        ),
        no_rules: bool = typer.Option(
            False, "--no-rule-features", help="Do not stack the rule detector's scores."
        ),
    ) -> None:
        """Train theme heads on your own labelled examples (use with analyze --themes-model)."""
        from nlp.taxonomy import TaxonomyError, load_taxonomy

        try:
            tax = load_taxonomy(taxonomy)
        except TaxonomyError as exc:
            raise _fail(f"bad taxonomy: {exc}") from None
        if not examples.is_file():
            raise _fail(f"examples file not found: {examples}")
        try:
            texts, labels = read_examples(examples, tax)
        except (ExamplesError, UnicodeDecodeError) as exc:
            raise _fail(str(exc)) from None
        from jobs.factory import load_spacy

        model, notes = train_from_examples(tax, texts, labels, nlp=load_spacy(),
                                           use_rules=not no_rules, min_examples=min_examples)
        for note in notes:
            typer.echo(f"warning: {note}", err=True)
        model.save(out)
        learned = ", ".join(f"{t} (thr {model.thresholds[t]:.2f})" for t in model.themes)
        typer.echo(f"trained on {len(texts)} examples -> {out}; learned: {learned or 'none'}"
                   + (f"; rules: {', '.join(model.rule_only)}" if model.rule_only else ""),
                   err=True)

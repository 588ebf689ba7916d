"""Train theme heads from labelled examples (`text` + `themes: {id: polarity}` per line).

`verbatim train themes --taxonomy T.yaml --examples E.jsonl --out DIR` (registered on the
`train` group of jobs/cli_train.py). The encoder variants use the sentiment backend's encoder
(as `verbatim analyze` will), so train with the backend you analyse with. Heavy imports happen
inside functions.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import typer

from core.cli import not_a_file
from nlp.errors import VerbatimError


class ExamplesError(VerbatimError, ValueError):
    """An examples file that cannot be used (message names the file and line)."""


class Examples(NamedTuple):
    texts: list[str]
    labels: list[dict[str, str]]
    # Lines with no `themes` key (a sentiment-only row, e.g. from `corrections export`):
    # skipped, since reading them as "no theme" would teach every head "not this theme".
    unlabelled_lines: list[int]


def read_examples(path: Path, taxonomy: Any) -> Examples:
    """`text` + `themes: {id: polarity}` per JSONL line (the themes_fr format).

    Theme ids resolve through taxonomy aliases; polarities are read as `verbatim evaluate`
    reads them (any case, French or neg/neu/pos); an unknown id or polarity is an error that
    names the line. `themes: {}` means "no theme"; a row without the key is skipped (and
    counted), as `verbatim evaluate` leaves it out of the theme scores. Blank lines and a
    BOM (Excel, Notepad) are skipped.
    """
    from jobs.evaluate import polarity_label
    from nlp.types import POLARITY_FORMS

    texts: list[str] = []
    labels: list[dict[str, str]] = []
    unlabelled: list[int] = []
    with Path(path).open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ExamplesError(f"{path}:{n}: not valid JSON ({exc})") from None
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("text"), str)
                or not row["text"].strip()
            ):
                raise ExamplesError(f"{path}:{n}: expected an object with a non-empty 'text'")
            themes = row.get("themes", row.get("aspects"))
            if themes is None:
                unlabelled.append(n)
                continue
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
                label = polarity_label(pol)
                if label is None:
                    raise ExamplesError(
                        f"{path}:{n}: theme {key!r} has polarity {pol!r}; expected {POLARITY_FORMS}"
                    )
                out[theme.id] = label
            texts.append(row["text"])
            labels.append(out)
    if not texts:
        which = f" (no line has 'themes': lines {unlabelled[0]}…)" if unlabelled else ""
        raise ExamplesError(f"{path}: no examples{which}")
    return Examples(texts, labels, unlabelled)


def merge_corrections(
    texts: list[str],
    labels: list[dict[str, str]],
    rows: list[dict[str, Any]],
    taxonomy: Any,
    dropped: Counter[str] | None = None,
) -> tuple[list[str], list[dict[str, str]]]:
    """Examples + corrected verbatims ({"text", "themes"}); a correction wins over an example
    with the same text, as ingested or as stored (core.store.text_hash: the stored text has
    its quotes and dashes normalised and its order numbers masked; compared as written, the
    example with the old label was trained on beside the correction). Themes retired since
    the correction, or that `taxonomy` does not have (another --taxonomy than the
    corrections'), are dropped and counted in `dropped`."""
    from core.store import text_hash

    merged: dict[str, tuple[str, dict[str, str]]] = {
        text_hash(t): (t, label) for t, label in zip(texts, labels, strict=True)
    }
    for row in rows:
        themes = {}
        for key, pol in row["themes"].items():
            theme = taxonomy.resolve(key)
            if theme is not None and not theme.retired:
                themes[theme.id] = pol
            elif dropped is not None:
                dropped[key] += 1
        # As ingested (a file of the raw texts) or as stored (one exported from Verbatim).
        keys = list(
            dict.fromkeys(k for k in (row.get("content_hash"), text_hash(row["text"])) if k)
        )
        found = [k for k in keys if k in merged]
        for key in found[1:]:  # both copies in the file: one correction, not two rows
            del merged[key]
        merged[found[0] if found else keys[-1]] = (row["text"], themes)
    return [t for t, _ in merged.values()], [label for _, label in merged.values()]


def train_from_examples(
    taxonomy: Any,
    texts: list[str],
    labels: list[dict[str, str]],
    *,
    nlp: Any | None = None,
    use_rules: bool = True,
    min_examples: int | None = None,
    signals: Any | None = None,
) -> tuple[Any, list[str]]:
    """Fit a LearnedThemeDetector; returns it and the warnings raised (rule fall-backs).

    With `signals` (nlp/themes/embed.TextSignals) the encoder variants are trained as well."""
    from nlp.themes.learned import MIN_EXAMPLES, LearnedThemeDetector

    model = LearnedThemeDetector(
        taxonomy,
        nlp=nlp,
        use_rules=use_rules,
        signals=signals,
        min_examples=min_examples or MIN_EXAMPLES,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(texts, labels)
    return model, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


class CachedSignals:
    """TextSignals with a disk cache (per signature, keyed by text hash): cross-validation and
    benchmarks encode each text once."""

    def __init__(self, inner: Any, cache_dir: Path) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.vector_signature = inner.vector_signature
        self.sentiment_signature = inner.sentiment_signature
        self._stores: dict[str, dict[str, np.ndarray]] = {}

    def _file(self, kind: str) -> Path:
        sig = self.vector_signature if kind == "vectors" else self.sentiment_signature
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(sig))
        return self.cache_dir / f"{kind}-{safe}.npz"

    def _store(self, kind: str) -> dict[str, np.ndarray]:
        if kind not in self._stores:
            store: dict[str, np.ndarray] = {}
            file = self._file(kind)
            if file.is_file():
                with np.load(file) as data:
                    store = dict(zip(data["keys"].tolist(), data["values"], strict=True))
            self._stores[kind] = store
        return self._stores[kind]

    def _get(self, kind: str, texts: Sequence[str]) -> np.ndarray:
        store = self._store(kind)
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in store}.items())
        if missing:
            compute = self.inner.vectors if kind == "vectors" else self.inner.sentiment_probs
            values = compute([t for _, t in missing])
            for (k, _), v in zip(missing, values, strict=True):
                store[k] = np.asarray(v, dtype=np.float32)
            np.savez(
                self._file(kind), keys=np.array(list(store)), values=np.stack(list(store.values()))
            )
        return np.stack([store[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        return self._get("vectors", texts)

    def encode(self, texts: Sequence[str]) -> Any | None:
        """One encoder pass per distinct text, kept in memory (token states are too big for
        the disk cache); None when the inner signals cannot give one."""
        if getattr(self.inner, "encode", None) is None:
            return None
        memo = self.__dict__.setdefault("_encoded", {})
        missing = sorted({t for t in texts if t not in memo})
        if missing:
            enc = self.inner.encode(missing)
            if enc is None:
                return None
            for i, t in enumerate(missing):
                memo[t] = enc.subset([i])
        if not texts:
            return self.inner.encode([])
        from nlp.sentiment.embedded import DocEncoding

        parts = [memo[t] for t in texts]
        return DocEncoding(
            parts[0].model,
            np.vstack([p.pooled for p in parts]),
            np.vstack([p.sentiment_logits for p in parts]),
            np.vstack([p.star_logits for p in parts]),
            [p.states[0] for p in parts],
            [p.spans[0] for p in parts],
            [p.texts[0] for p in parts],
        )

    def sentiment_probs(self, texts: Sequence[str]) -> np.ndarray:
        return self._get("probs", texts)


def build_signals(
    settings: Any, backend: str | None = None, cache_dir: Path | None = None
) -> tuple[Any, Any]:
    """(sentiment model, signals) as `verbatim analyze` would build them, so a head trained
    here uses the encoder it will meet at inference."""
    from core.analysis import sentiment_for, theme_signals

    sentiment = sentiment_for(settings, backend)
    signals = theme_signals(sentiment)
    if signals is not None and cache_dir is not None:
        signals = CachedSignals(signals, cache_dir)
    return sentiment, signals


# --- CLI ----------------------------------------------------------------------------------------
def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def register_themes(group: typer.Typer) -> None:
    """Add `themes` to the `train` command group."""

    @group.command("themes")
    def train_themes_cmd(
        examples: Path | None = typer.Option(
            None, "--examples", help="JSONL: 'text' + 'themes' {theme id: polarity} per line."
        ),
        corrections: bool = typer.Option(
            False,
            "--corrections",
            help="Also train on the analysts' theme corrections stored in the database "
            "(a correction replaces an example with the same text).",
        ),
        out: Path = typer.Option(..., "--out", help="Directory to write the theme model to."),
        taxonomy: str | None = typer.Option(
            None,
            "--taxonomy",
            help="Taxonomy YAML file, or 'ecommerce' / 'restaurant' (default: with "
            "--corrections the database's current taxonomy, else the taxonomy_path setting).",
        ),
        min_examples: int = typer.Option(
            8,
            "--min-examples",
            min=1,
            help="Themes with fewer positive examples fall back to the rule detector.",
        ),
        no_rules: bool = typer.Option(
            False, "--no-rule-features", help="Do not stack the rule detector's scores."
        ),
        no_encoder: bool = typer.Option(
            False, "--no-encoder", help="Train the encoder-free heads only (rules + TF-IDF)."
        ),
        backend: str | None = typer.Option(
            None,
            "--backend",
            help="Sentiment backend whose encoder the heads use "
            "(default: settings.sentiment_backend).",
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="Cache encoder outputs here (repeated trainings)."
        ),
    ) -> None:
        """Train theme heads on your own labelled examples (use with analyze --themes-model)."""
        from core.settings import load_settings
        from nlp.taxonomy import TaxonomyError, load_taxonomy

        if examples is None and not corrections:
            raise _fail("give --examples FILE and/or --corrections")
        from jobs.cli_train import out_problem

        problem = out_problem(out, "thresholds", "theme model")  # before training, not after
        if problem:
            raise _fail(problem)
        settings = load_settings()
        rows: list[dict[str, Any]] = []
        tax = None
        if corrections:
            from jobs.corrections import corrected_rows

            rows, stored = corrected_rows("themes")
            # Corrections name the themes of the database's version (edited by the API).
            tax = stored if taxonomy is None else None
        if tax is None:
            try:
                tax = load_taxonomy(taxonomy if taxonomy is not None else settings.taxonomy_path)
            except TaxonomyError as exc:
                raise _fail(f"bad taxonomy: {exc}") from None
        texts: list[str] = []
        labels: list[dict[str, str]] = []
        if examples is not None:
            if not examples.is_file():
                raise _fail(not_a_file(examples, "examples file"))
            try:
                texts, labels, unlabelled = read_examples(examples, tax)
            except (ExamplesError, UnicodeDecodeError) as exc:
                raise _fail(str(exc)) from None
            if unlabelled:
                typer.echo(
                    f"warning: {len(unlabelled)} row(s) of {examples} have no 'themes' and were "
                    f"skipped (first: line {unlabelled[0]}); write 'themes': {{}} for a "
                    "verbatim with no theme",
                    err=True,
                )
        n_examples = len(texts)
        if corrections:
            dropped: Counter[str] = Counter()
            texts, labels = merge_corrections(texts, labels, rows, tax, dropped)
            typer.echo(f"{len(rows)} corrected verbatims merged", err=True)
            if dropped:  # said, not silent: those texts now teach "not this theme"
                shown = ", ".join(f"{t} ({n})" for t, n in dropped.most_common())
                typer.echo(
                    f"warning: corrected themes that taxonomy {tax.name!r} does not have "
                    f"(or has retired) were left out: {shown}",
                    err=True,
                )
        if not texts:
            raise _fail("no examples: the examples file and the corrections are empty")
        from core.analysis import load_lemmatizer

        signals = None
        if not no_encoder:
            try:
                _, signals = build_signals(settings, backend, cache_dir)
            except Exception as exc:  # noqa: BLE001 - encoder-free heads still train
                typer.echo(
                    f"warning: no encoder signals ({exc}); training the encoder-free heads only",
                    err=True,
                )
        model, notes = train_from_examples(
            tax,
            texts,
            labels,
            nlp=load_lemmatizer(settings.lemmatizer, settings.resolved_model_dir),
            use_rules=not no_rules,
            min_examples=min_examples,
            signals=signals,
        )
        for note in notes:
            typer.echo(f"warning: {note}", err=True)
        if not model.themes:
            # Saved all the same (a start to add examples to), but said plainly: deployed, it
            # would replace the packaged heads with the keyword rules alone.
            typer.echo(
                f"warning: no theme reached --min-examples ({min_examples}): "
                f"{out} has no learned head and reads every theme by keyword rules alone, "
                "below the packaged heads; add labelled examples before deploying it "
                "(VERBATIM_THEMES_MODEL)",
                err=True,
            )
        model.save(out)
        summary = _heads_summary(model)
        _write_card(
            out,
            model,
            tax,
            examples,
            n_examples,
            len(rows) if corrections else None,
            examples_total=len(texts),
            base={
                "sentiment_backend": backend or settings.sentiment_backend,
                "sentiment_model_path": settings.sentiment_model_path,
                "vector_signature": model.vector_signature,
                "sentiment_signature": model.sentiment_signature,
            },
            options={
                "min_examples": min_examples,
                "rule_features": not no_rules,
                "encoder": not no_encoder,
            },
        )
        typer.echo(
            f"trained on {len(texts)} examples -> {out}; heads: {summary['heads']}; learned: "
            f"{summary['learned_themes']}"
            + (f"; rules: {summary['rule_only_themes']}" if model.rule_only else ""),
            err=True,
        )


def _write_card(
    out: Path,
    model: Any,
    taxonomy: Any,
    examples: Path | None,
    n_examples: int,
    corrections: int | None,
    *,
    examples_total: int,
    base: dict[str, Any],
    options: dict[str, Any],
) -> None:
    """MODEL_CARD.md + meta.json's `training_record`: the data these heads inherit their terms
    from, the taxonomy, the encoder signatures, the settings and what training reported."""
    from jobs.model_card import add_to_meta, build_record, file_entry, write_card

    files = [] if examples is None else [file_entry(examples, n_examples, n_examples, 0)]
    validation: dict[str, Any] = {"examples_trained_on": examples_total, **_heads_summary(model)}
    record = build_record(
        kind="themes",
        files=files,
        corrections=corrections,
        base=base,
        settings=options,
        validation=validation,
        taxonomy={"name": taxonomy.name, "version": taxonomy.version},
    )
    add_to_meta(out, record)
    write_card(out, record, f"theme heads trained on your data (`{Path(out).name}`)")


def _heads_summary(model: Any) -> dict[str, str]:
    """What training reports of its heads (printed, and recorded in the card)."""
    thr = model.thresholds.get("lite", {})
    return {
        "heads": "+".join(sorted(model.coef)) or "none",
        "learned_themes": ", ".join(f"{t} (thr {thr.get(t, 0.5):.2f})" for t in model.themes)
        or "none",
        "rule_only_themes": ", ".join(model.rule_only) or "none",
    }

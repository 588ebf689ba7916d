"""Where the API reads and writes the taxonomy, and how edits are applied.

Saved to `settings.taxonomy_path` when it is a file path, else `data_dir/taxonomy.yaml`
(which then takes precedence over the built-in taxonomy at the next start). The previous
file is kept under `taxonomy-history/` next to it; the taxonomy's own `history` lists edits.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from core.settings import Settings
from nlp.taxonomy import (
    BUILTIN_TAXONOMIES,
    HistoryEntry,
    Taxonomy,
    TaxonomyError,
    Theme,
    load_taxonomy,
)
from service.errors import ApiError
from service.schemas import AddOp, MergeOp, RenameOp, RetireOp, TaxonomyUpdate


def taxonomy_file(settings: Settings) -> Path:
    path = settings.taxonomy_path
    if path is not None and str(path) not in BUILTIN_TAXONOMIES:
        return Path(path)
    return settings.data_dir / "taxonomy.yaml"


def load_current(settings: Settings) -> tuple[Taxonomy, Path | None]:
    """(taxonomy, file it came from or None when built-in)."""
    file = taxonomy_file(settings)
    if file.exists():
        return load_taxonomy(file), file
    if settings.taxonomy_path is not None and str(settings.taxonomy_path) not in BUILTIN_TAXONOMIES:
        return load_taxonomy(settings.taxonomy_path), file  # raises a clear TaxonomyError
    return load_taxonomy(settings.taxonomy_path), None


def save(settings: Settings, new: Taxonomy, old: Taxonomy) -> Path:
    file = taxonomy_file(settings)
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.exists():
        history = file.parent / "taxonomy-history"
        history.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (history / f"{file.stem}-v{old.version}-{stamp}.yaml").write_bytes(file.read_bytes())
    tmp = file.with_suffix(file.suffix + ".tmp")
    tmp.write_text(new.to_yaml(), encoding="utf-8")
    os.replace(tmp, file)  # atomic: readers never see half a file
    return file


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else str(exc)
    return str(exc)


def apply_update(current: Taxonomy, update: TaxonomyUpdate) -> Taxonomy:
    """Apply operations in order, or replace with a full document; ApiError(422) names the field."""
    if (update.operations is None) == (update.taxonomy is None):
        raise ApiError(422, "send either 'operations' or 'taxonomy' (exactly one)", "operations")
    if update.taxonomy is not None:
        try:
            proposed = Taxonomy.model_validate(update.taxonomy)
        except (ValidationError, TaxonomyError, ValueError) as exc:
            raise ApiError(422, f"invalid taxonomy: {_error_text(exc)}", "taxonomy") from exc
        return Taxonomy(
            name=proposed.name,
            language=proposed.language,
            version=current.version + 1,
            alarm_terms=proposed.alarm_terms,
            themes=proposed.themes,
            history=[*current.history, HistoryEntry(action="update", theme="*")],
        )
    taxonomy = current
    for i, op in enumerate(update.operations or []):
        field = f"operations[{i}]"
        try:
            if isinstance(op, AddOp):
                taxonomy = taxonomy.add(Theme.model_validate(op.theme))
            elif isinstance(op, RenameOp):
                Theme.model_validate({"id": op.new_id, "label": "x"})  # id format check
                taxonomy = taxonomy.rename(op.id, op.new_id, op.label)
            elif isinstance(op, MergeOp):
                taxonomy = taxonomy.merge(op.source, op.target)
            elif isinstance(op, RetireOp):
                taxonomy = taxonomy.retire(op.id)
        except (ValidationError, KeyError, ValueError) as exc:
            raise ApiError(422, f"{field} ({op.op}): {_error_text(exc)}", field) from exc
    return taxonomy

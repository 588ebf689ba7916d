"""How an API edit (`PUT /taxonomy`) is applied to the current taxonomy.

Storage is in the database (`core/taxonomy_store.py`), shared by every job and replica.
"""

from __future__ import annotations

from pydantic import ValidationError

from nlp.taxonomy import (
    Taxonomy,
    TaxonomyError,
    Theme,
    describe_errors,
)
from service.errors import ApiError
from service.schemas import AddOp, MergeOp, RenameOp, RetireOp, TaxonomyUpdate


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return describe_errors(exc)  # every problem (up to 5), named as the files' errors are
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else str(exc)
    return str(exc)


def apply_update(current: Taxonomy, update: TaxonomyUpdate) -> Taxonomy:
    """Apply operations in order, or replace with a full document; ApiError(422) names the field.

    A full document replaces the taxonomy whatever changed since it was read (its `version`
    is not checked: last writer wins); `If-Match` makes it conditional (the router)."""
    if (update.operations is None) == (update.taxonomy is None):
        raise ApiError(422, "send either 'operations' or 'taxonomy' (exactly one)", "operations")
    if update.taxonomy is not None:
        try:
            proposed = Taxonomy.model_validate(update.taxonomy)
        except (ValidationError, TaxonomyError, ValueError) as exc:
            raise ApiError(422, f"invalid taxonomy: {_error_text(exc)}", "taxonomy") from exc
        if current.same_content(proposed):
            return current  # nothing to store (the caller keeps the version)
        return current.replaced_by(proposed)
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

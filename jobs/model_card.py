"""The data record and MODEL_CARD.md that `verbatim train sentiment|themes` write beside a model.

A model inherits the terms of the data it was trained on: the card names each training file
(as given, with its sha256 and the rows read, used and skipped), the corrections merged, the
base encoder, the settings and the validation figures, and says whose terms apply. The same
record goes into the model's meta.json (`training_record`) for tools. Loaders read their own
files by name, so the card is never mistaken for part of the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CARD_FILE = "MODEL_CARD.md"
RESEARCH_MARK = "shared/data"  # where the project's research-only datasets live


def file_entry(path: Path, read: int, used: int, skipped: int) -> dict[str, Any]:
    """One training file: its path as given, sha256 and row counts."""
    from jobs.readers import fingerprint

    return {
        "path": str(path),
        "sha256": fingerprint(Path(path)),
        "rows_read": read,
        "rows_used": used,
        "rows_skipped": skipped,
    }


def is_research_data(path: str) -> bool:
    """A file under the project's research-only datasets (`shared/data`), as given or resolved."""
    given = Path(path).as_posix()
    try:
        resolved = Path(path).resolve().as_posix()
    except OSError:
        resolved = given
    return RESEARCH_MARK in given or RESEARCH_MARK in resolved


def licence_text(files: list[dict[str, Any]], corrections: int | None) -> str:
    research = [f["path"] for f in files if is_research_data(f["path"])]
    text = (
        "This model inherits the terms of its training data: check that the licence of "
        "every training file"
        + (
            " (and the terms under which the analysts' corrected verbatims were collected)"
            if corrections is not None
            else ""
        )
        + " allows your use before deploying it."
    )
    if research:
        text += (
            " **Research-only data:** "
            + ", ".join(f"`{p}`" for p in research)
            + (" is" if len(research) == 1 else " are")
            + " from the project's research datasets (`shared/data`: academic or internal "
            "evaluation licences, no commercial use): this model is for research and "
            "evaluation only."
        )
    return text


def build_record(
    *,
    kind: str,
    files: list[dict[str, Any]],
    corrections: int | None,
    base: dict[str, Any],
    settings: dict[str, Any],
    validation: dict[str, Any],
    taxonomy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The machine-readable record (`corrections` None: not asked for)."""
    from core import __version__

    record: dict[str, Any] = {
        "kind": kind,
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verbatim_version": __version__,
        "base": base,
        "data": files,
        "corrections_merged": corrections,
        "settings": settings,
        "validation": validation,
        "research_only": any(is_research_data(f["path"]) for f in files),
        "licence": licence_text(files, corrections),
    }
    if taxonomy is not None:
        record["taxonomy"] = taxonomy
    return record


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if v != int(v) else str(v)
    if v is None:
        return "—"
    return str(v)


def render_card(record: dict[str, Any], title: str) -> str:
    lines = [f"# Model card: {title}", ""]
    lines.append(
        f"**Trained** {record['trained_at']} (UTC) with Verbatim {record['verbatim_version']} "
        f"(`verbatim train {record['kind']}`). The same record is in `meta.json` "
        "(`training_record`)."
    )
    lines.append("")
    base = ", ".join(f"{k} `{_value(v)}`" for k, v in record["base"].items())
    lines.append(f"**Base model.** {base or '—'}")
    if "taxonomy" in record:
        tax = record["taxonomy"]
        lines.append("")
        lines.append(f"**Taxonomy.** `{tax['name']}` version {tax['version']}")
    lines += ["", "## Training data", ""]
    if record["data"]:
        lines.append("| file | sha256 | rows read | used | skipped |")
        lines.append("|---|---|---|---|---|")
        for f in record["data"]:
            lines.append(
                f"| `{f['path']}` | `{f['sha256']}` | {f['rows_read']} | {f['rows_used']} "
                f"| {f['rows_skipped']} |"
            )
    else:
        lines.append("No training file.")
    if record["corrections_merged"] is not None:
        lines.append("")
        lines.append(
            f"Analysts' corrections merged from the database (`--corrections`): "
            f"{record['corrections_merged']}."
        )
    lines += ["", "## Licence", "", record["licence"], "", "## Settings", ""]
    lines += [f"- {k}: {_value(v)}" for k, v in record["settings"].items()]
    lines += ["", "## Validation", ""]
    if record["validation"]:
        lines += [f"- {k}: {_value(v)}" for k, v in record["validation"].items()]
    else:
        lines.append("No validation figures.")
    return "\n".join(lines) + "\n"


def write_card(out: Path, record: dict[str, Any], title: str) -> Path:
    path = Path(out) / CARD_FILE
    path.write_text(render_card(record, title), encoding="utf-8")
    return path


def add_to_meta(out: Path, record: dict[str, Any]) -> None:
    """Put the record in the model's meta.json as `training_record` (its loaders ignore it)."""
    import json

    meta_file = Path(out) / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["training_record"] = record
    meta_file.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

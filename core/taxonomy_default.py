"""The taxonomy a command that works on files reads without --taxonomy (analyze, evaluate,
backtest), and the one the database is seeded with on first use.

Kept apart from core.taxonomy_store: `verbatim analyze` without a database must not pay for
importing SQLAlchemy and the models (0.75 s of its start-up).
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.settings import Settings
from nlp.taxonomy import BUILTIN_TAXONOMIES, Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def seed_taxonomy(settings: Settings) -> tuple[Taxonomy, str]:
    """What version 1 is seeded from, and how to say so: the `taxonomy_path` setting, else a
    `data_dir/taxonomy.yaml` left by older releases, else the packaged e-commerce taxonomy."""
    path = settings.taxonomy_path
    if path is not None:
        return load_taxonomy(path), f"seeded from {path}"
    legacy = settings.data_dir / "taxonomy.yaml"  # where the file-based API store wrote edits
    if legacy.is_file() and str(legacy) not in BUILTIN_TAXONOMIES:
        return load_taxonomy(legacy), f"seeded from {legacy}"
    return load_taxonomy(None), "seeded from the packaged ecommerce taxonomy"


def default_taxonomy(settings: Settings) -> Taxonomy:
    """The database's current taxonomy (what enrich, detect and the API read, edits made
    through the API included) when the database exists, else what the first run would seed
    it with. Nothing is created: a SQLite file that does not exist is not opened."""
    return _stored_taxonomy(settings) or seed_taxonomy(settings)[0]


def _stored_taxonomy(settings: Settings) -> Taxonomy | None:
    """None when there is no database yet, no version stored, or it cannot be read."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    from sqlalchemy import create_engine, select
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from core.models import TaxonomyVersion
    from core.taxonomy_store import parse_version

    engine = create_engine(url)
    try:
        with Session(engine) as session:
            row = session.execute(
                select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc()).limit(1)
            ).scalar_one_or_none()
            return None if row is None else parse_version(row)
    except SQLAlchemyError as exc:  # no table yet, a server down: the file setting
        log.info("taxonomy: database not read (%s); using the taxonomy_path setting", exc)
        return None
    finally:
        engine.dispose()

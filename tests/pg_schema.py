"""A throwaway PostgreSQL schema as a database URL (for code that opens its own engine, e.g. a
subprocess): `?options=-csearch_path=<schema>` keeps every table inside the schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest


@contextmanager
def pg_schema_url() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    url = os.environ.get("VERBATIM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("VERBATIM_TEST_POSTGRES_URL not set")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()

"""`?format=csv` on list endpoints: a CSV download built by core.exports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query, Response

from core.exports import Table, to_csv
from service.errors import ApiError

FormatQ = Annotated[
    Literal["json", "csv"],
    Query(description="json (default) or csv (UTF-8 with BOM, comma-separated, every row)"),
]
MAX_EXPORT_ROWS = 50_000  # a CSV export pages through the whole list, up to this many rows

Row = TypeVar("Row")
Cursor = TypeVar("Cursor")


def every_row(
    page: Callable[[Cursor | None], tuple[list[Row], Cursor | None]], cursor: Cursor | None
) -> list[Row]:
    """Every row of a paged list from `cursor` on, for a CSV export. More than
    MAX_EXPORT_ROWS is a 422: a file cut at the newest rows looked complete."""
    found: list[Row] = []
    while True:
        rows, cursor = page(cursor)
        found.extend(rows)
        if len(found) > MAX_EXPORT_ROWS:
            raise ApiError(
                422,
                f"more than {MAX_EXPORT_ROWS} rows to export: narrow the period or the filters",
                "format",
            )
        if cursor is None:
            return found


def csv_response(table: Table, filename: str) -> Response:
    return Response(
        to_csv(table).encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def jsonl_response(rows: Iterable[dict[str, Any]], filename: str) -> Response:
    """One JSON object a line (UTF-8, no BOM: JSON readers take none), as a download."""
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return Response(
        body.encode("utf-8"),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}.jsonl"'},
    )


# OpenAPI: the 200 answer may also be CSV.
CSV_RESPONSE: dict[int | str, dict] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}

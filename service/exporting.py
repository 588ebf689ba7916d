"""`?format=csv` on list endpoints: a CSV download built by core.exports."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Response

from core.exports import Table, to_csv

FormatQ = Annotated[
    Literal["json", "csv"],
    Query(description="json (default) or csv (UTF-8 with BOM, comma-separated, every row)"),
]
MAX_EXPORT_ROWS = 50_000  # a CSV export pages through the whole list, up to this many rows


def csv_response(table: Table, filename: str) -> Response:
    return Response(
        to_csv(table).encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


# OpenAPI: the 200 answer may also be CSV.
CSV_RESPONSE: dict[int | str, dict] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}

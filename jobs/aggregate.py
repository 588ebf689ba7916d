"""`verbatim aggregate`: the rebuild lives in core.aggregate (the API re-aggregates a corrected
verbatim's days too, and service/ may not import jobs/)."""

from __future__ import annotations

from core.aggregate import ALL_THEMES, COLUMNS, MAX_DAY_LIST, aggregate, aggregate_all, feedback_day

__all__ = ["ALL_THEMES", "COLUMNS", "MAX_DAY_LIST", "aggregate", "aggregate_all", "feedback_day"]

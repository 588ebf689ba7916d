"""Topic sizes over time: documents per topic per day, for the trends work."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date


def sizes_per_day(
    topic_ids: Sequence[int | None], days: Sequence[date]
) -> dict[int, dict[date, int]]:
    """{topic id: {day: documents}}, days ascending; None / negative ids (outliers) skipped."""
    if len(topic_ids) != len(days):
        raise ValueError(f"{len(topic_ids)} topic ids but {len(days)} days")
    counts = Counter(
        (t, d) for t, d in zip(topic_ids, days, strict=True) if t is not None and t >= 0
    )
    out: dict[int, dict[date, int]] = {}
    for (topic, day), n in sorted(counts.items()):
        out.setdefault(topic, {})[day] = n
    return out

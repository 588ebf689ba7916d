"""`verbatim backtest FEED.jsonl -o ALERTS.jsonl`: replay a feed day by day, as the scheduled
jobs would, and write the alerts the detector raises.

Input lines: `id`, `text`, `created_at` (ISO date/datetime, or epoch seconds), optional
`channel`, `source`, `rating`. Bad lines are reported on stderr and skipped; input order does
not matter. Texts are analysed with `core.analysis.build_analyzer` (the analysis of a text does
not depend on other days, so it is done once for all); mentions are aggregated per UTC day x
theme (volume = verbatims mentioning the theme, negatives = mentions with negative polarity,
the same counting as `verbatim aggregate`), then `SpikeDetector.detect` + `update_episodes`
(the very code `verbatim detect` runs) are applied on every day from the first to the last.

Output: one line per alert episode, on the day it was raised:
  {"theme", "kind", "day", "severity", "observed", "expected", "p_value", "ratio",
   "episode": key, "revision": 1, "channel": null, "update": false}
With `include_updates`, each later day the episode escalates adds a line with "update": true
(same episode key, higher revision). Days a persisting episode merely continues add nothing.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from nlp.spikes import (
    DetectorConfig,
    Episode,
    Series,
    SpikeDetector,
    apply_events,
    rules_from_taxonomy,
    update_episodes,
)
from nlp.taxonomy import Taxonomy


@dataclass(frozen=True)
class FeedRow:
    id: str
    text: str
    day: date
    channel: str | None = None
    source: str | None = None


@dataclass
class BacktestResult:
    rows: int = 0
    bad: int = 0
    days: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)


def parse_day(value: Any) -> date:
    """UTC day of an ISO date/datetime string or epoch seconds/milliseconds."""
    if isinstance(value, bool) or value is None:
        raise ValueError("missing created_at")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("created_at is not finite")
        secs = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(secs, tz=UTC).date()
    if not isinstance(value, str) or not value.strip():
        raise ValueError("created_at must be an ISO date string")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if len(text) == 10:
        return date.fromisoformat(text)
    try:
        ts = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError as exc:
        raise ValueError(f"created_at {value!r} is not an ISO date") from exc
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.date()


def read_feed(lines: Iterable[str], warn: Callable[[str], None]) -> tuple[list[FeedRow], int]:
    """Parse JSONL lines; bad ones are reported through `warn` and skipped."""
    rows: list[FeedRow] = []
    bad = 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("missing or empty text")
            day = parse_day(obj.get("created_at"))
            channel = obj.get("channel")
            source = obj.get("source")
            rows.append(
                FeedRow(
                    id=str(obj.get("id", n)),
                    text=text,
                    day=day,
                    channel=str(channel) if channel not in (None, "") else None,
                    source=str(source) if source not in (None, "") else None,
                )
            )
        except (ValueError, TypeError) as exc:
            bad += 1
            warn(f"line {n}: skipped ({exc})")
    return rows, bad


def aggregate_mentions(
    rows: list[FeedRow], analyses: list[Any], taxonomy: Taxonomy, per_channel: bool = False
) -> dict[tuple[str, str | None], dict[date, tuple[int, int]]]:
    """(theme, channel) -> {day: (volume, negatives)}, one count per verbatim and theme."""
    counts: dict[tuple[str, str | None], dict[date, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for row, doc in zip(rows, analyses, strict=True):
        seen: set[str] = set()
        for mention in doc.themes:
            theme = taxonomy.resolve(mention.theme)
            if theme is None or theme.retired or theme.id in seen:
                continue
            seen.add(theme.id)
            cell = counts[(theme.id, row.channel if per_channel else None)][row.day]
            cell[0] += 1
            cell[1] += int(mention.polarity == "negative")
    return {k: {d: (c[0], c[1]) for d, c in v.items()} for k, v in counts.items()}


def replay(
    counts: dict[tuple[str, str | None], dict[date, tuple[int, int]]],
    start: date,
    end: date,
    detector: SpikeDetector,
    themes: Iterable[str],
    include_updates: bool = False,
) -> Iterator[dict[str, Any]]:
    """Run the detector on every day of [start, end] with the data up to that day."""
    keys = set(counts) | {(t, None) for t in themes}
    full = {k: Series.from_days(k[0], counts.get(k, {}), start, end, k[1]) for k in keys}
    episodes: dict[str, Episode] = {}
    cooldown = {t: r.cooldown_days for t, r in detector.rules.items()}
    day = start
    while day <= end:
        i = (day - start).days + 1
        # Only data up to `day` is visible, as in the scheduled job.
        visible = [
            Series(s.theme, s.start, s.volumes[:i], s.negatives[:i], s.channel)
            for _, s in sorted(full.items(), key=lambda kv: str(kv[0]))
        ]
        signals = detector.detect(visible, day)
        opened = [e for e in episodes.values() if e.status == "open"]
        events = update_episodes(opened, signals, day, cooldown or detector.config.cooldown_days)
        apply_events(episodes, events)
        for ev in events:
            if ev.action == "new" or (include_updates and ev.action == "update" and ev.notify):
                yield alert_line(ev.episode, day, update=ev.action == "update")
        day += timedelta(days=1)


def alert_line(ep: Episode, day: date, update: bool = False) -> dict[str, Any]:
    ratio = ep.observed / ep.expected if ep.expected else None
    return {
        "theme": ep.theme,
        "kind": ep.kind,
        "day": day.isoformat(),
        "severity": ep.severity,
        "observed": round(float(ep.observed), 4),
        "expected": round(float(ep.expected), 4),
        "p_value": float(f"{ep.p_value:.4g}") if ep.p_value is not None else None,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "episode": ep.key,
        "first_day": ep.first_day.isoformat(),
        "revision": ep.revision,
        "channel": ep.channel,
        "update": update,
    }


def run_backtest(
    feed: Path,
    output: Path,
    *,
    analyzer: Any,
    taxonomy: Taxonomy,
    config: DetectorConfig | None = None,
    per_channel: bool = False,
    include_updates: bool = False,
    batch_size: int = 256,
    warn: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Replay `feed` and write alerts to `output` (JSONL). `analyzer` has `.analyze(texts)`."""
    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    with feed.open(encoding="utf-8", errors="replace") as fh:
        rows, bad = read_feed(fh, warn)
    result = BacktestResult(rows=len(rows), bad=bad)
    analyses: list[Any] = []
    for i in range(0, len(rows), batch_size):
        analyses.extend(analyzer.analyze([r.text for r in rows[i : i + batch_size]]))
    config = config or DetectorConfig()
    detector = SpikeDetector(config, rules_from_taxonomy(taxonomy, config))
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as out:
        if rows:
            start, end = min(r.day for r in rows), max(r.day for r in rows)
            result.days = (end - start).days + 1
            counts = aggregate_mentions(rows, analyses, taxonomy, per_channel)
            for line in replay(counts, start, end, detector, taxonomy.ids, include_updates):
                result.alerts.append(line)
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return result


def write_lines(lines: Iterable[dict[str, Any]], fh: TextIO) -> None:
    for line in lines:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")

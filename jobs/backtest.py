"""`verbatim backtest FEED -o ALERTS.jsonl`: replay a feed day by day, as the scheduled jobs
would, and write the alerts the detector raises.

Input: the files `verbatim ingest` reads (JSONL, or CSV with `,` `;` tab or `|`; a BOM, CRLF
line ends, an Excel `sep=` line are fine), with the same column names (`text`/`commentaire`/...,
`id`, `created_at`/`date`/..., optional `channel`, `rating`...). Each row goes through the very
checks of `verbatim ingest` (`core.store.prepare_feedback`: dates in ISO with or without an
offset, DD/MM/YYYY, epoch seconds or milliseconds, written out in French or English; no date
before 1990 or in the future; text normalised and PII-masked), plus one of its own: a row
without a date is rejected (ingest would date it "now"). Bad rows are reported on stderr
(the first ones one by one, then counts by reason) and skipped; a row whose id (else text +
date) was already read is a duplicate and counts once, as ingest stores it once. Input order
does not matter.

Texts are analysed with `core.analysis.build_analyzer` (the analysis of a text does not
depend on other days, so it is done once for all); mentions are aggregated per UTC day x
theme as `verbatim aggregate` does (volume = verbatims mentioning the theme, negatives =
mentions with negative polarity; only verbatims in French or of unknown language, like
`daily_aggregates`), then `SpikeDetector.detect` + `absorb_related` + `update_episodes` (the
very code `verbatim detect` runs, on the same look-back window, each series' own episode days
held out of its baselines by `hold_out_episodes` as there) are applied on every day from
the first to the last day with a verbatim in those languages (`verbatim detect`'s days).
With `per_channel`, per-channel series are tested as well as the overall ones (`verbatim
detect --per-channel`); a row without a channel is a "review".

Output: one line per alert episode, on the day it was raised:
  {"theme", "kind", "day", "severity", "observed", "expected", "p_value", "ratio",
   "episode": key, "revision": 1, "channel": null, "update": false}
With `include_updates`, each later day the episode escalates adds a line with "update": true
(same episode key, higher revision). Days a persisting episode merely continues add nothing.
Each line also names its `incident` ("theme|first day"), grouped as `verbatim detect` groups
alerts into one Slack message (`jobs.incidents.attach`): an alert of the theme, whatever its
kind, joins the open incident whose days (its episodes' whole spans, not only the days they
were raised) are within cooldown + 1 days of its own; an incident closes once all its
episodes are resolved. The detector's warm-up applies from
the feed's first day in French: no alert in its first `warmup_days` days. Emerging topics (`verbatim
topics`) are not replayed: only the taxonomy's themes.

The output file is written whole or not at all (a temporary file renamed at the end): an
interrupted run leaves the previous output as it was, and running again starts over.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from core.store import (
    RATING_SCALE,
    InvalidValue,
    Rejection,
    parse_datetime,
    prepare_feedback,
    utcnow,
)
from jobs.analyze import OutputError, atomic_output, check_not_input, is_stdout
from jobs.ingest import MappingError, resolve_mapping
from jobs.readers import (
    RawRecord,
    ReaderError,
    check_encoding_name,
    check_text_file,
    columns,
    detect_format,
    iter_records,
)
from nlp.errors import VerbatimError
from nlp.spikes import (
    DetectorConfig,
    Episode,
    Series,
    SpikeDetector,
    absorb_related,
    apply_events,
    hold_out_episodes,
    rules_from_taxonomy,
    source_returns,
    update_episodes,
)
from nlp.taxonomy import Taxonomy

DEFAULT_CHANNEL = "review"  # what `verbatim ingest` gives a row without a channel
# Languages `daily_aggregates` counts (core.queries.AGGREGATED_LANGUAGES, kept in step by a test).
AGGREGATED_LANGUAGES = ("fr", "und")
MAX_TEXT_CHARS = 20_000  # Settings.max_text_chars' default
SHOWN_BAD = 20  # bad rows reported one by one; the rest are counted by reason


class FeedError(VerbatimError, ValueError):
    """The feed as a whole cannot be replayed (no text or date column, not text...)."""


@dataclass(frozen=True)
class FeedRow:
    id: str
    text: str
    day: date
    channel: str | None = None
    source: str | None = None
    language: str = "und"


@dataclass
class BacktestResult:
    rows: int = 0  # distinct verbatims replayed
    bad: int = 0  # rows rejected (reasons in `reasons`)
    days: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0  # records read: read == rows + bad + duplicates
    duplicates: int = 0  # rows whose id (else text + date) was read before: counted once
    not_aggregated: int = 0  # verbatims in another language: not in the theme series
    reasons: dict[str, int] = field(default_factory=dict)
    tested_from: date | None = None  # first day past the warm-up (None: no day tested)


def parse_day(value: Any, now: datetime | None = None) -> date:
    """UTC day of a date as `verbatim ingest` reads it (`core.store.parse_datetime`)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("missing created_at")
    try:
        return parse_datetime(value, now=now).date()
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


@dataclass
class _Reader:
    """Turns raw records into FeedRows with ingest's checks; counts what it skips."""

    warn: Callable[[str], None]
    now: datetime
    max_text_chars: int = MAX_TEXT_CHARS
    rating_scale: int = RATING_SCALE  # as `verbatim ingest --rating-scale`
    label: str = "line"
    read: int = 0
    bad: int = 0
    duplicates: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    keys: set[str] = field(default_factory=set)

    def reject(self, number: int, reason: str, detail: str) -> None:
        self.bad += 1
        self.reasons[reason] += 1
        if self.bad <= SHOWN_BAD:
            self.warn(f"{self.label} {number}: skipped ({reason}: {detail})")

    def row(
        self, number: int, fields: Mapping[str, Any], mapping: Mapping[str, str]
    ) -> FeedRow | None:
        self.read += 1
        canonical = {f: fields[c] for f, c in mapping.items() if c in fields}
        raw_date = canonical.get("created_at")
        if raw_date is None or (isinstance(raw_date, str) and not raw_date.strip()):
            # Ingest dates such a row "now"; a replay cannot place it on any day.
            self.reject(number, "bad_date", "missing created_at")
            return None
        try:
            prepared = prepare_feedback(
                canonical,
                source="backtest",
                channel=DEFAULT_CHANNEL,
                max_text_chars=self.max_text_chars,
                now=self.now,
                rating_scale=self.rating_scale,
            )
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # never a crash
            self.reject(number, "bad_row", str(exc)[:200])
            return None
        if isinstance(prepared, Rejection):
            self.reject(number, prepared.reason, prepared.detail)
            return None
        if prepared["dedup_key"] in self.keys:
            self.duplicates += 1
            return None
        self.keys.add(prepared["dedup_key"])
        ident = canonical.get("id")
        return FeedRow(
            id=str(ident) if ident not in (None, "") else str(number),
            text=prepared["text"],
            day=prepared["created_at"].astimezone(UTC).date(),
            channel=prepared["channel"],
            source=None,
            language=prepared["language"],
        )

    def record(self, rec: RawRecord, mapping: Mapping[str, str]) -> FeedRow | None:
        # The file's line where the record starts (blank lines, a CSV header counted).
        number = rec.line or rec.number
        if rec.error is not None or rec.fields is None:
            self.read += 1
            reason, _field, detail = rec.error or ("bad_row", None, "unreadable")
            self.reject(number, reason, detail)
            return None
        return self.row(number, rec.fields, mapping)

    def summary(self) -> None:
        if self.bad > SHOWN_BAD:
            by = ", ".join(f"{r} ×{n}" for r, n in self.reasons.most_common())
            self.warn(f"... {self.bad - SHOWN_BAD} more bad row(s) not shown; all: {by}")
        if self.reasons.get("encoding_error"):
            self.warn(
                f"{self.reasons['encoding_error']} row(s) are not UTF-8 text: save the file as "
                "UTF-8 (Excel: CSV UTF-8) and run again"
            )
        if self.duplicates:
            self.warn(
                f"{self.duplicates} duplicate row(s) counted once (same id, else same text and "
                "date), as `verbatim ingest` stores them once"
            )


def read_feed(
    lines: Iterable[str],
    warn: Callable[[str], None],
    *,
    now: datetime | None = None,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> tuple[list[FeedRow], int]:
    """Parse JSONL lines with ingest's checks; bad ones are reported through `warn` and
    skipped, duplicates counted once. (Files: `read_feed_file`, which also reads CSV.)"""
    reader = _Reader(warn, now or utcnow(), max_text_chars)
    rows: list[FeedRow] = []
    identity = {name: name for name in ("text", "id", "created_at", "channel", "rating")}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.lstrip("\ufeff"))
        except json.JSONDecodeError as exc:
            reader.read += 1
            reader.reject(n, "invalid_json", exc.msg)
            continue
        except RecursionError:
            reader.read += 1
            reader.reject(n, "too_deep", "lists or objects nested too deep to parse")
            continue
        if not isinstance(obj, dict):
            reader.read += 1
            reader.reject(n, "not_an_object", f"got {type(obj).__name__}")
            continue
        row = reader.row(n, obj, identity)
        if row is not None:
            rows.append(row)
    reader.summary()
    return rows, reader.bad


def _blank(path: Path) -> bool:
    with path.open("rb") as fh:
        return not any(
            chunk.strip(b" \t\r\n\xef\xbb\xbf") for chunk in iter(lambda: fh.read(1 << 16), b"")
        )


def read_feed_file(
    path: Path,
    warn: Callable[[str], None],
    *,
    encoding: str = "utf-8",
    now: datetime | None = None,
    max_text_chars: int = MAX_TEXT_CHARS,
    columns_map: Mapping[str, str] | None = None,
    rating_scale: int = RATING_SCALE,
) -> tuple[list[FeedRow], _Reader]:
    """Read a CSV or JSONL feed as `verbatim ingest` would (`columns_map`: its `--map`, field ->
    column); raise FeedError when the file as a whole cannot be replayed (binary, UTF-16, no
    text or date column)."""
    try:
        encoding = check_encoding_name(encoding)
        check_text_file(path)
        fmt = detect_format(path)
        names = columns(path, fmt, encoding)
        if not names and _blank(path):
            raise FeedError(f"{path}: no rows to replay (the file is empty)")
        if not names:  # JSONL without one readable object: each line is reported below
            mapping = {"text": "text", "created_at": "created_at"}
        else:
            try:
                mapping = resolve_mapping(names, columns_map or {})
            except MappingError as exc:
                raise FeedError(f"{path}: {exc}") from None
        if "created_at" not in mapping:
            raise FeedError(
                f"{path}: no date column (created_at, date, timestamp...); a backtest needs "
                f"the day of each verbatim: name it with --map created_at=COLUMN (file "
                f"columns: {', '.join(names)})"
            )
        reader = _Reader(warn, now or utcnow(), max_text_chars, rating_scale)
        rows: list[FeedRow] = []
        for rec in iter_records(path, fmt, encoding):
            row = reader.record(rec, mapping)
            if row is not None:
                rows.append(row)
    except ReaderError as exc:
        raise FeedError(str(exc)) from None
    reader.summary()
    return rows, reader


def aggregate_mentions(
    rows: list[FeedRow], analyses: list[Any], taxonomy: Taxonomy, per_channel: bool = False
) -> dict[tuple[str, str | None], dict[date, tuple[int, int]]]:
    """(theme, channel) -> {day: (volume, negatives)}, one count per verbatim and theme, as
    `daily_aggregates`: verbatims in AGGREGATED_LANGUAGES only. Overall series have channel
    None; with `per_channel`, each (theme, channel) series is there too."""
    counts: dict[tuple[str, str | None], dict[date, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for row, doc in zip(rows, analyses, strict=True):
        if row.language not in AGGREGATED_LANGUAGES:
            continue
        seen: set[str] = set()
        for mention in doc.themes:
            theme = taxonomy.resolve(mention.theme)
            if theme is None or theme.retired or theme.id in seen:
                continue
            seen.add(theme.id)
            negative = int(mention.polarity == "negative")
            scopes = [None, row.channel or DEFAULT_CHANNEL] if per_channel else [None]
            for channel in scopes:
                cell = counts[(theme.id, channel)][row.day]
                cell[0] += 1
                cell[1] += negative
    return {k: {d: (c[0], c[1]) for d, c in v.items()} for k, v in counts.items()}


def co_mention_counts(
    rows: list[FeedRow], analyses: list[Any], taxonomy: Taxonomy
) -> dict[date, dict[tuple[str, str], int]]:
    """day -> {(theme a, theme b), a < b: verbatims mentioning both}."""
    out: dict[date, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for row, doc in zip(rows, analyses, strict=True):
        ids = set()
        for mention in doc.themes:
            theme = taxonomy.resolve(mention.theme)
            if theme is not None and not theme.retired:
                ids.add(theme.id)
        ordered = sorted(ids)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                out[row.day][(a, b)] += 1
    return out


def replay(
    counts: dict[tuple[str, str | None], dict[date, tuple[int, int]]],
    start: date,
    end: date,
    detector: SpikeDetector,
    themes: Iterable[str],
    include_updates: bool = False,
    co_mentions: dict[date, dict[tuple[str, str], int]] | None = None,
    sources: Mapping[tuple[str, str | None], Mapping[str, Mapping[date, tuple[int, int]]]]
    | None = None,
    source_days: Mapping[str, Iterable[date]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Run the detector on every day of [start, end] with the data up to that day, as
    `verbatim detect` does on a first run: each day sees the series over its look-back window
    (window + guard days; the history starts on `start`), signals on the overall series
    (channel None) go through `absorb_related` (`co_mentions`: day -> theme pair -> verbatims
    naming both), those of per-channel series are added, and `update_episodes` gets the open
    episodes plus the recently resolved ones. `sources`: the same counts per source
    ((theme, channel) -> source -> day -> counts), as `verbatim detect` reads them from
    `daily_aggregates` (a feed replayed alone is one source); a source whose first verbatim
    comes after `start`, or back after an outage longer than the window, is held out of the
    tests during its warm-up, as in `verbatim detect`. `source_days`: each source's days with
    a verbatim, of any theme or none (`verbatim detect` reads them from every aggregate row,
    the "*" total included); by default, its days with a mention in `sources`."""
    keys = set(counts) | {(t, None) for t in themes}
    # Each source's days with a verbatim, as `verbatim detect` reads them: a source connected
    # after `start`, or back from an outage, warms up (`DetectorConfig.source_warmup_days`).
    active: dict[str, set[date]] = defaultdict(set)
    if source_days is not None:
        for name, listed in source_days.items():
            active[name].update(listed)
    else:
        for per_source in (sources or {}).values():
            for name, days in per_source.items():
                active[name].update(d for d, (v, _n) in days.items() if v > 0)
    since = {name: min(days) for name, days in active.items() if days}
    returns = {
        name: back
        for name, days in active.items()
        if (back := source_returns(days, detector.outage_days))
    }
    full = {
        k: Series.from_days(
            k[0],
            counts.get(k, {}),
            start,
            end,
            k[1],
            sources=(sources or {}).get(k),
            source_since=since or None,
            source_returns=returns or None,
        )
        for k in keys
    }
    ordered = [s for _, s in sorted(full.items(), key=lambda kv: str(kv[0]))]
    episodes: dict[str, Episode] = {}
    incidents: list[_Incident] = []
    of_episode: dict[str, _Incident] = {}
    cfg = detector.config
    span = cfg.window_days + cfg.guard_days + 1  # jobs.detect.detect_day
    cooldown = {t: r.cooldown_days for t, r in detector.rules.items()}
    reach = max([cfg.cooldown_days, *cooldown.values()]) + 2
    day = start
    while day <= end:
        i = (day - start).days + 1
        lo = max(0, i - 1 - span)
        # Only data up to `day` is visible, as in the scheduled job; the days of each
        # series' own episodes stay out of its baselines (`verbatim detect` alike).
        window = hold_out_episodes(
            [replace(s.window(lo, i), history_from=start) for s in ordered],
            episodes.values(),
            cooldown or cfg.cooldown_days,
        )
        overall = [s for s in window if s.channel is None]
        signals = detector.detect(overall, day)
        opened = [e for e in episodes.values() if e.status == "open"]
        if co_mentions is not None:
            signals, _ = absorb_related(
                detector,
                overall,
                signals,
                day,
                co_mentions.get(day, {}),
                active={e.theme for e in opened},
            )
        by_channel = [s for s in window if s.channel is not None]
        if by_channel:
            signals += detector.detect(by_channel, day)
        known = [
            e
            for e in episodes.values()
            if e.status == "open" or e.last_day >= day - timedelta(days=reach)
        ]
        events = update_episodes(known, signals, day, cooldown or cfg.cooldown_days)
        apply_events(episodes, events)
        for ev in events:
            if ev.action == "resolve":
                continue
            gap = cooldown.get(ev.episode.theme, cfg.cooldown_days) + 1
            inc = attach_incident(incidents, of_episode, ev.episode, gap)
            if ev.action == "new" or (include_updates and ev.action == "update" and ev.notify):
                line = alert_line(ev.episode, day, update=ev.action == "update")
                line["incident"] = inc.key
                yield line
        # `incidents.close_quiet`: an incident whose every episode is resolved is closed.
        for inc in incidents:
            if inc.open and all(episodes[k].status == "resolved" for k in inc.episodes):
                inc.open = False
        day += timedelta(days=1)


@dataclass
class _Incident:
    theme: str
    first: date
    last: date
    episodes: set[str] = field(default_factory=set)
    open: bool = True

    @property
    def key(self) -> str:
        return f"{self.theme}|{self.first.isoformat()}"


def attach_incident(
    incidents: list[_Incident], of_episode: dict[str, _Incident], ep: Episode, gap: int
) -> _Incident:
    """The incident `ep` joins, as `jobs.incidents.attach` does on every new or updated
    episode: its own, else the theme's open one whose days (the days its episodes lasted,
    not only the days they were raised) widened by `gap` overlap the episode's."""
    inc = of_episode.get(ep.key)
    if inc is None:
        near = [
            i
            for i in incidents
            if i.open
            and i.theme == ep.theme
            and i.first <= ep.last_day + timedelta(days=gap)
            and i.last >= ep.first_day - timedelta(days=gap)
        ]
        inc = max(near, key=lambda i: i.last) if near else None
    if inc is None:
        inc = _Incident(ep.theme, ep.first_day, ep.last_day)
        incidents.append(inc)
    inc.first, inc.last = min(inc.first, ep.first_day), max(inc.last, ep.last_day)
    inc.episodes.add(ep.key)
    of_episode[ep.key] = inc
    return inc


def group_incidents(
    alerts: Iterable[dict[str, Any]], gap: int | Mapping[str, int] = 4, default_gap: int = 4
) -> list[dict[str, Any]]:
    """Alert lines -> incidents, as `verbatim detect` groups them: every alert of one theme
    whose day is within `gap` days (the theme's cooldown + 1: a number, or theme -> days with
    `default_gap` for the others) of the incident's last day joins it, whatever its kind or
    channel. Each incident: theme, first_day, last_day, kinds, alerts (count)."""
    out: list[dict[str, Any]] = []
    current: dict[str, dict[str, Any]] = {}
    for a in sorted(alerts, key=lambda a: (a["day"], a["theme"])):
        day = date.fromisoformat(a["day"])
        inc = current.get(a["theme"])
        limit = gap.get(a["theme"], default_gap) if isinstance(gap, Mapping) else gap
        if inc is not None and (day - inc["last"]).days <= limit:
            inc["last"] = max(inc["last"], day)
            inc["kinds"].add(a["kind"])
            inc["alerts"] += 1
            continue
        inc = {"theme": a["theme"], "first": day, "last": day, "kinds": {a["kind"]}, "alerts": 1}
        current[a["theme"]] = inc
        out.append(inc)
    return [
        {
            "theme": i["theme"],
            "first_day": i["first"].isoformat(),
            "last_day": i["last"].isoformat(),
            "kinds": sorted(i["kinds"]),
            "alerts": i["alerts"],
        }
        for i in out
    ]


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


def check_output(feed: Path, output: Path) -> None:
    """Refuse an output the alerts cannot go to; the command checks it before the analyzer
    loads (half a minute), not after."""
    if is_stdout(output):  # the summary goes to stdout: the alerts need a file of their own
        raise OutputError(f"-o {output}: write the alerts to a file, e.g. -o alerts.jsonl")
    check_not_input(feed, output)


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
    encoding: str = "utf-8",
    now: datetime | None = None,
    max_text_chars: int = MAX_TEXT_CHARS,
    columns_map: Mapping[str, str] | None = None,
    rating_scale: int = RATING_SCALE,
) -> BacktestResult:
    """Replay `feed` and write alerts to `output` (JSONL, written whole or not at all).
    `analyzer` has `.analyze(texts)`. Raises FeedError / OutputError (VerbatimError) when the
    feed cannot be replayed or `output` is the feed itself."""
    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    check_output(feed, output)
    rows, reader = read_feed_file(
        feed,
        warn,
        encoding=encoding,
        now=now,
        max_text_chars=max_text_chars,
        columns_map=columns_map,
        rating_scale=rating_scale,
    )
    result = BacktestResult(
        rows=len(rows),
        bad=reader.bad,
        read=reader.read,
        duplicates=reader.duplicates,
        reasons=dict(reader.reasons),
    )
    analyses: list[Any] = []
    for i in range(0, len(rows), max(batch_size, 1)):
        analyses.extend(analyzer.analyze([r.text for r in rows[i : i + batch_size]]))
    result.not_aggregated = sum(r.language not in AGGREGATED_LANGUAGES for r in rows)
    if result.not_aggregated:
        warn(
            f"{result.not_aggregated} verbatim(s) not in French: analysed but not counted in "
            "the theme series (as in `verbatim aggregate`)"
        )
    config = config or DetectorConfig()
    detector = SpikeDetector(config, rules_from_taxonomy(taxonomy, config))
    # `verbatim detect` tests the days of `daily_aggregates`, French rows only: a day with
    # only English rows neither starts the warm-up nor ends the replay.
    days = [r.day for r in rows if r.language in AGGREGATED_LANGUAGES]
    if days:
        start, end = min(days), max(days)
        result.days = (end - start).days + 1
        # No alert before the warm-up's days of history: said, else a feed shorter than it
        # read « 0 alert line(s) » as a quiet period where no day could raise one.
        first = start + timedelta(days=config.warmup_days)
        if first <= end:
            result.tested_from = first  # the command's summary says it
        else:
            warn(
                f"no day tested for spikes: the detector needs {config.warmup_days} day(s) of "
                f"history (detection_warmup_days) before a first alert, and the feed covers "
                f"{result.days}; replay a longer history"
            )
        counts = aggregate_mentions(rows, analyses, taxonomy, per_channel)
        co = co_mention_counts(rows, analyses, taxonomy)
        # Each line names its incident (theme|first day), grouped in the replay as `verbatim
        # detect` groups them (each theme's own cooldown: a taxonomy may set one per theme).
        result.alerts = list(
            replay(counts, start, end, detector, taxonomy.ids, include_updates, co_mentions=co)
        )
    with atomic_output(output) as out:
        write_lines(result.alerts, out)
    return result


def write_lines(lines: Iterable[dict[str, Any]], fh: TextIO) -> None:
    for line in lines:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")


__all__ = [
    "BacktestResult",
    "FeedError",
    "FeedRow",
    "OutputError",
    "aggregate_mentions",
    "alert_line",
    "check_output",
    "group_incidents",
    "parse_day",
    "read_feed",
    "read_feed_file",
    "replay",
    "run_backtest",
]

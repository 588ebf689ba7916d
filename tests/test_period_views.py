"""The precomputed period views (daily_facets, hourly_aggregates, daily_aggregates) equal a
from-scratch computation over the stored analyses, on a small real database (CSV ingest ->
enrich with the lexicon backend -> a re-analysis, a correction, a duplicated mention ->
aggregate), on SQLite and PostgreSQL; and re-aggregating only the touched days after new data
gives the same tables as a full rebuild. Texts are written for this test (no dataset rows)."""

from __future__ import annotations

import csv
import dataclasses
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import day_table
from core.aggregate import aggregate
from core.analysis import build_analyzer
from core.corrections import apply_correction
from core.db import session_scope
from core.models import (
    CORRECTION_MODEL,
    Analysis,
    DailyAggregate,
    DailyFacet,
    DailyKeyword,
    DriverCell,
    Feedback,
    HourlyAggregate,
    ThemeMention,
)
from core.queries import (
    AGGREGATED_LANGUAGES,
    SEVERITY_BANDS,
    daily_series,
    key_driver_report,
    list_sources,
    other_language_volumes,
    period_version,
    rating_impacts,
    score_summary,
    theme_breakdown,
    theme_gravity,
    theme_summary,
    theme_trend,
    top_keywords,
    top_keywords_many,
)
from core.settings import Settings
from core.versions import PERIOD_MEMO, ChangeLog, PeriodMemo
from jobs.enrich import enrich
from jobs.ingest import ingest_file
from nlp.drivers import DriverConfig, key_drivers
from nlp.taxonomy import load_taxonomy

FR = (
    "Colis livré avec une semaine de retard.",
    "L'emballage était déchiré, carton écrasé.",
    "Le prix est vraiment trop élevé.",
    "Service client injoignable, personne ne répond.",
    "Livraison rapide, emballage soigné, merci !",
    "Remboursement toujours pas reçu après mon retour.",
    "Produit de bonne qualité, je recommande.",
)
EN = ("The parcel arrived late and the box was damaged.", "Customer service never answered me.")
END = datetime.now(UTC).date() - timedelta(days=1)
START = END - timedelta(days=5)


def _feed(path: Path, rng: random.Random, n: int, first: date, days: int, tag: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "date", "text", "note", "nps", "csat", "ces"])
        for i in range(n):
            day = first + timedelta(days=i % days)
            at = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60))
            text = " ".join(rng.sample(FR, rng.choice((1, 1, 2)))) if i % 9 else rng.choice(EN)
            out.writerow(
                [
                    f"{tag}{i}",
                    at.isoformat(),
                    f"{text} ({tag}{i})",
                    rng.choice(("", "1", "2", "4", "5")),
                    rng.choice(("", "3", "8", "10")),
                    rng.choice(("", "2", "4", "5")),
                    rng.choice(("", "2", "6")),
                ]
            )


def _ingest(sessions: sessionmaker[Session], settings: Settings, tmp: Path, tag: str, **kw: Any):
    rng = random.Random(tag)
    touched = set()
    for source, channel in (("boutique", "review"), ("enquete", "survey")):
        path = tmp / f"{tag}_{source}.csv"
        _feed(path, rng, kw.get("n", 60), kw.get("first", START), kw.get("days", 6), tag + source)
        ingest_file(
            sessions,
            settings,
            path,
            source=source,
            channel=channel,
            mapping={
                "id": "id",
                "created_at": "date",
                "text": "text",
                "rating": "note",
                "nps": "nps",
                "csat": "csat",
                "ces": "ces",
            },
        )
    result = enrich(sessions, settings, analyzer=build_analyzer(settings))
    touched |= set(result.days)
    return touched


def _build(sessions: sessionmaker[Session], settings: Settings, tmp: Path) -> None:
    _ingest(sessions, settings, tmp, "a")
    with session_scope(sessions) as s:
        # A newer model analysis of one verbatim (with a theme named twice), and an analyst's
        # correction of another: the latest / the correction must count, once.
        fb = s.scalars(select(Feedback).order_by(Feedback.id)).all()
        now = datetime.now(UTC)
        newer = Analysis(
            feedback_id=fb[1].id,
            model_version="v2",
            sentiment="negative",
            sentiment_score=0.9,
            severity=0.8,
            is_recurrent=True,
            analyzed_at=now,
        )
        s.add(newer)
        s.flush()
        day = fb[1].created_at.date()
        for _ in range(2):
            s.add(
                ThemeMention(
                    analysis_id=newer.id,
                    feedback_id=fb[1].id,
                    theme="livraison",
                    polarity="negative",
                    score=0.9,
                    day=day,
                )
            )
        apply_correction(
            s,
            fb[2].id,
            author="test",
            taxonomy=load_taxonomy(),
            sentiment="positive",
            themes=[("prix", "positive")],
        )
        aggregate(s)


def _latest(s: Session) -> dict[int, Analysis]:
    best: dict[int, Analysis] = {}
    for a in s.scalars(select(Analysis)):
        kept = best.get(a.feedback_id)
        rank = (a.model_version == CORRECTION_MODEL, a.id)
        if kept is None or rank > (kept.model_version == CORRECTION_MODEL, kept.id):
            best[a.feedback_id] = a
    return best


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _oracle(s: Session) -> dict[str, Any]:
    """Everything the views hold, computed in Python from the stored rows."""
    latest = _latest(s)
    fbs = {f.id: f for f in s.scalars(select(Feedback))}
    mentions = [
        m for m in s.scalars(select(ThemeMention)) if latest[m.feedback_id].id == m.analysis_id
    ]
    facets: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * 8)
    hourly: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * 6)
    rated: dict[tuple, set[int]] = defaultdict(set)
    pol = {"negative": 1, "neutral": 2, "positive": 3}
    for m in mentions:
        f, a = fbs[m.feedback_id], latest[m.feedback_id]
        band = next(i for i, (_, up) in enumerate(SEVERITY_BANDS) if (a.severity or 0) < up)
        key = (m.day, m.theme, f.channel, f.source, f.language, band)
        acc = facets[key]
        acc[0] += 1
        acc[pol[m.polarity]] += 1
        acc[4] += f.rating or 0.0
        acc[5] += f.rating is not None
        acc[6] += (a.severity or 0) >= 0.5
        acc[7] += bool(a.is_recurrent)
        if f.rating is not None:
            rated[key].add(f.id)
        if f.language not in AGGREGATED_LANGUAGES:  # the hourly trend counts French only
            continue
        h = hourly[(m.day, _utc(f.created_at).hour, m.theme, f.channel, f.source)]
        h[0] += 1
        h[pol[m.polarity]] += 1
        h[4] += f.rating or 0.0
        h[5] += f.rating is not None
    totals: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * 10)
    for fid, a in latest.items():
        f = fbs[fid]
        band = next(i for i, (_, up) in enumerate(SEVERITY_BANDS) if (a.severity or 0) < up)
        acc = totals[(_utc(f.created_at).date(), "*", f.channel, f.source, f.language, band)]
        acc[0] += 1
        acc[pol[a.sentiment]] += 1
        acc[4] += f.rating or 0.0
        acc[5] += f.rating is not None
        if f.nps is not None:
            acc[6] += 1
            acc[7] += 100.0 if f.nps >= 9 else 0.0 if f.nps >= 7 else -100.0
        if f.csat is not None:
            acc[8] += 1
            acc[9] += 100.0 if f.csat >= 4 else 0.0
    return {"facets": facets, "hourly": hourly, "rated": rated, "totals": totals, "fbs": fbs}


def _facet_table(s: Session) -> dict[tuple, tuple]:
    return {
        (r.day, r.theme, r.channel, r.source, r.language, r.band): (
            r.volume,
            r.negatives,
            r.neutrals,
            r.positives,
            round(r.rating_sum, 6),
            r.rating_count,
            r.severe,
            r.recurrent,
            r.rated,
            round(r.rated_sum, 6),
            r.nps_count,
            round(r.nps_points, 6),
            r.csat_count,
            round(r.csat_points, 6),
        )
        for r in s.scalars(select(DailyFacet))
    }


def _check(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        want = _oracle(s)
        table = _facet_table(s)
        assert len(want["facets"]) > 20 and any(k[4] == "en" for k in want["facets"])
        for key, acc in want["facets"].items():
            got = table.pop(key)
            assert got[:8] == (*map(int, acc[:4]), round(acc[4], 6), *map(int, acc[5:])), key
            ratings = [want["fbs"][i].rating for i in want["rated"][key]]
            assert got[8:10] == (len(ratings), round(sum(ratings), 6)), key
        for key, acc in want["totals"].items():
            got = table.pop(key)
            assert got[:6] == (*map(int, acc[:4]), round(acc[4], 6), int(acc[5])), key
            assert got[10:] == (int(acc[6]), round(acc[7], 6), int(acc[8]), round(acc[9], 6))
        assert table == {}  # nothing else
        hourly = {
            (r.day, r.hour, r.theme, r.channel, r.source): (
                r.volume,
                r.negatives,
                r.neutrals,
                r.positives,
                round(r.rating_sum, 6),
                r.rating_count,
            )
            for r in s.scalars(select(HourlyAggregate))
        }
        assert hourly == {
            k: (*map(int, v[:4]), round(v[4], 6), int(v[5])) for k, v in want["hourly"].items()
        }
        # daily_aggregates: the French facets summed.
        french: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * 4)
        for key, acc in [*want["facets"].items(), *want["totals"].items()]:
            if key[4] in AGGREGATED_LANGUAGES:
                for i in range(4):
                    french[key[:4]][i] += acc[i]
        daily = {
            (r.day, r.theme, r.channel, r.source): (r.volume, r.negatives, r.neutrals, r.positives)
            for r in s.scalars(select(DailyAggregate))
        }
        assert daily == {k: tuple(map(int, v)) for k, v in french.items()}

        # The read functions over them, against the same oracle.
        facets = want["facets"]
        in_period = {k: v for k, v in facets.items() if START <= k[0] <= END}
        liv = {k: v for k, v in in_period.items() if k[1] == "livraison"}
        found = theme_breakdown(s, ["livraison"], start=START, end=END)
        by_channel: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        by_band: dict[str, int] = defaultdict(int)
        for k, v in liv.items():
            if k[4] not in AGGREGATED_LANGUAGES:  # the splits count French, as the summary
                continue
            by_channel[k[2]][0] += int(v[0])
            by_channel[k[2]][1] += int(v[1])
            by_band[SEVERITY_BANDS[k[5]][0]] += int(v[0])
        assert {r.key: [r.mentions, r.negatives] for r in found["channel"]} == dict(by_channel)
        assert {r.key: r.mentions for r in found["severity"]} == dict(by_band)
        gravity = theme_gravity(s, ["livraison"], start=START, end=END)
        french_rows = [v for k, v in liv.items() if k[4] in AGGREGATED_LANGUAGES]
        assert sum(p.severe for p in gravity) == sum(int(v[6]) for v in french_rows)
        assert sum(p.recurrent for p in gravity) == sum(int(v[7]) for v in french_rows)
        trend = theme_trend(s, ["livraison"], start=START, end=END, granularity="hour")
        hours = {
            datetime(k[0].year, k[0].month, k[0].day, k[1], tzinfo=UTC): int(v[0])
            for k, v in want["hourly"].items()
            if k[2] == "livraison" and START <= k[0] <= END
        }
        merged: dict[datetime, int] = defaultdict(int)
        for k, v in want["hourly"].items():
            if k[2] == "livraison" and START <= k[0] <= END:
                merged[datetime(k[0].year, k[0].month, k[0].day, k[1], tzinfo=UTC)] += int(v[0])
        assert {p.bucket: p.volume for p in trend if p.volume} == dict(merged)
        assert len(hours) > 0
        impact = rating_impacts(s, {"livraison": ["livraison"]}, start=START, end=END)
        # French only, as the "*" totals "without" is derived from (/themes' population).
        french_liv = [k for k in liv if k[4] in AGGREGATED_LANGUAGES]
        ids = set().union(*(want["rated"][k] for k in french_liv)) if french_liv else set()
        assert impact["livraison"].rated_with == len(ids) > 0
        nps = score_summary(s, "nps", start=START, end=END)
        tot = [
            v
            for k, v in want["totals"].items()
            if START <= k[0] <= END and k[4] in AGGREGATED_LANGUAGES  # French, as /overview
        ]
        assert nps.answers == sum(int(v[6]) for v in tot) > 0
        assert nps.value == pytest.approx(sum(v[7] for v in tot) / nps.answers)
        other = other_language_volumes(s, start=START, end=END)
        want_other: dict[str, int] = defaultdict(int)
        for k, v in want["totals"].items():
            if START <= k[0] <= END and k[4] not in AGGREGATED_LANGUAGES:
                want_other[k[4]] += int(v[0])
        assert other == dict(want_other) and other
        # Keywords: the period's evidence spans of the latest analyses, tokenised.
        from collections import Counter

        from nlp.topics.vectorize import FrenchAnalyzer

        words = FrenchAnalyzer(ngram_max=1, min_length=3).words
        latest = _latest(s)
        feedback = {f.id: f for f in s.scalars(select(Feedback))}
        counted: Counter[str] = Counter()
        for m in s.scalars(select(ThemeMention).where(ThemeMention.theme == "livraison")):
            fresh = latest[m.feedback_id].id == m.analysis_id and START <= m.day <= END
            french = feedback[m.feedback_id].language in AGGREGATED_LANGUAGES
            if fresh and french and m.evidence_text:
                counted.update({w for clause in words(m.evidence_text) for w in clause})
        want_words = [w for w, _ in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
        assert top_keywords(s, ["livraison"], start=START, end=END) == want_words
        assert want_words
        # Filtered by channel or by source: the same count over that slice's verbatims only.
        for field in ("channel", "source"):
            slices = sorted({getattr(f, field) for f in feedback.values()})
            assert len(slices) == 2
            for value in slices:
                counted = Counter()
                for m in s.scalars(select(ThemeMention).where(ThemeMention.theme == "livraison")):
                    fresh = latest[m.feedback_id].id == m.analysis_id and START <= m.day <= END
                    if (
                        fresh
                        and m.evidence_text
                        and getattr(feedback[m.feedback_id], field) == value
                        and feedback[m.feedback_id].language in AGGREGATED_LANGUAGES
                    ):
                        counted.update({w for clause in words(m.evidence_text) for w in clause})
                want_slice = [
                    w for w, _ in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
                ]
                got = top_keywords(s, ["livraison"], start=START, end=END, **{field: value})
                assert got == want_slice, (field, value)
        # Key drivers from the grouped cells = the per-verbatim regression.
        themes_of: dict[int, set[str]] = defaultdict(set)
        for m in s.scalars(select(ThemeMention)):
            if latest[m.feedback_id].id == m.analysis_id:
                themes_of[m.feedback_id].add(m.theme)
        rows = [  # French only, as the theme figures
            f
            for f in want["fbs"].values()
            if f.rating is not None
            and f.id in latest
            and START <= _utc(f.created_at).date() <= END
            and f.language in AGGREGATED_LANGUAGES
        ]
        named = {t for f in rows for t in themes_of[f.id]}
        presence = {t: [t in themes_of[f.id] for f in rows] for t in named}
        expected = key_drivers(presence, [f.rating for f in rows], DriverConfig(min_mentions=5))
        found_drivers = key_driver_report(
            s, "rating", start=START, end=END, config=DriverConfig(min_mentions=5)
        )
        assert found_drivers.answers == len(rows)
        got_effects = {e.theme: e for e in found_drivers.effects}
        assert len(expected) >= 2 and set(got_effects) == {e.theme for e in expected}
        for e in expected:
            got = got_effects[e.theme]
            assert got.mentions == e.mentions
            assert (got.effect, got.ci_low, got.ci_high) == pytest.approx(
                (e.effect, e.ci_low, e.ci_high), rel=1e-6, abs=1e-9
            )


def _snapshot(s: Session) -> dict[str, set]:
    cols = {
        DailyFacet: ("day", "theme", "channel", "source", "language", "band", "volume", "rated"),
        HourlyAggregate: ("day", "hour", "theme", "channel", "source", "volume", "negatives"),
        DailyAggregate: ("day", "theme", "channel", "source", "volume", "negatives"),
    }
    return {
        t.__tablename__: {tuple(getattr(r, c) for c in names) for r in s.scalars(select(t))}
        for t, names in cols.items()
    }


def _incremental(sessions: sessionmaker[Session], settings: Settings, tmp: Path) -> None:
    # New data on an existing day and on a new one: re-aggregating only those days (what the
    # jobs do) must give the tables a full rebuild gives.
    touched = _ingest(sessions, settings, tmp, "b", n=10, first=END - timedelta(days=1), days=2)
    assert touched
    with session_scope(sessions) as s:
        aggregate(s, days=touched)
    with sessions() as s:
        partial = _snapshot(s)
    with session_scope(sessions) as s:
        aggregate(s)
    with sessions() as s:
        assert _snapshot(s) == partial
    _check(sessions)


def _period_answers(s: Session) -> list[object]:
    """What every period query answers for a few periods, filters and themes."""
    tax = load_taxonomy()
    out: list[object] = []
    out.append(list_sources(s))
    for first, last in ((START, END), (END, END), (START - timedelta(days=30), START)):
        for channel, source in ((None, None), ("review", None), (None, "enquete"), ("x", None)):
            cell = {"start": first, "end": last, "channel": channel, "source": source}
            out.append(theme_summary(s, **cell, taxonomy=tax, include_total=True))
            out.append(daily_series(s, **cell, taxonomy=tax))
            out.append(daily_series(s, **cell, themes=["livraison", "prix"], taxonomy=tax))
            out.append(other_language_volumes(s, **cell))
            out.extend(score_summary(s, score, **cell) for score in ("nps", "csat", "rating"))
            out.append(rating_impacts(s, {"liv": ["livraison"], "px": ["prix"]}, **cell))
            out.append(theme_trend(s, ["livraison", "emballage"], **cell))
            themes = {"liv": ["livraison"], "deux": ["emballage", "prix"], "none": ["zzz"]}
            out.append(top_keywords_many(s, themes, **cell))
            for score in ("nps", "rating"):
                report = key_driver_report(s, score, **cell, config=DriverConfig(min_mentions=2))
                out.append(report)
        period = {"start": first, "end": last}
        out.append(theme_trend(s, ["livraison"], **period, by_channel=True, by_source=True))
        out.append(theme_breakdown(s, ["livraison", "emballage"], **period))
        out.append(theme_gravity(s, ["livraison"], **period))
    return out


def _in_memory_agrees(sessions: sessionmaker[Session], memo: PeriodMemo) -> None:
    """The API's in-memory aggregate tables answer every period query as the database does."""
    with sessions() as s:
        want = _period_answers(s)
    with sessions() as s:
        s.info[PERIOD_MEMO] = memo
        tables = (DailyAggregate, DailyFacet, DailyKeyword, DriverCell)
        assert all(memo.table(s, t) is not None for t in tables)
        got = _period_answers(s)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert _rounded(a) == _rounded(b), (i, a, b)


def _rounded(value: object) -> object:
    """`value` with floats to 9 places (sums of floats differ in their last bits by order)."""
    if isinstance(value, float):
        return round(value, 9)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _rounded(dataclasses.astuple(value))
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _distinct_agrees(sessions: sessionmaker[Session], memo: PeriodMemo) -> None:
    """`DayTable.distinct` answers SELECT DISTINCT, with one filter or several, of one value or
    a list."""
    with sessions() as s:
        table = memo.table(s, DailyAggregate)
        assert table is not None
        for where in (
            {"theme": "*"},
            {"theme": "*", "channel": "review"},
            {"theme": ["*", "livraison"], "channel": ["review", "x"]},
        ):
            stmt = select(DailyAggregate.source).distinct()
            for name, want in where.items():
                stmt = stmt.where(
                    getattr(DailyAggregate, name).in_(want if isinstance(want, list) else [want])
                )
            found = table.distinct("source", where=where)
            assert found == sorted(s.scalars(stmt)) and found, where


def _memory_follows_rebuilds(
    sessions: sessionmaker[Session], settings: Settings, tmp: Path
) -> None:
    memo = PeriodMemo(ChangeLog(), table_rows=100_000)
    _in_memory_agrees(sessions, memo)
    _distinct_agrees(sessions, memo)
    old = (START - timedelta(days=40), START - timedelta(days=20))

    def versions() -> tuple[object, object]:
        with sessions() as s:
            s.info[PERIOD_MEMO] = memo
            return period_version(s, START, END), period_version(s, *old)

    before = versions()
    # Days re-aggregated by the jobs (an existing day and a new one): only those are read
    # again, and the copy still agrees; then a full rebuild (every day) is followed too.
    touched = _ingest(sessions, settings, tmp, "c", n=12, first=END - timedelta(days=1), days=2)
    with session_scope(sessions) as s:
        aggregate(s, days=touched)
    _in_memory_agrees(sessions, memo)
    # The version that keys the period's cached keywords moved; an untouched period's did not.
    after = versions()
    assert after[0] != before[0] and after[1] == before[1]
    with session_scope(sessions) as s:
        aggregate(s)
    _in_memory_agrees(sessions, memo)
    # A reader whose snapshot predates the copy's version is answered from the newer copy:
    # no reload (under read-committed, readers alternate between versions).
    table = memo.tables["daily_facets"]
    kept = table._snap
    with sessions() as s:
        assert table.sync(s, 1, memo.changes)
    assert table._snap is kept
    # Over its row bound a table is not copied: the queries read the database.
    small = PeriodMemo(ChangeLog(), table_rows=5)
    with sessions() as s:
        s.info[PERIOD_MEMO] = small
        assert small.table(s, DailyFacet) is None
        assert _rounded(_period_answers(s)) == _rounded(_period_answers_plain(sessions))


def _period_answers_plain(sessions: sessionmaker[Session]) -> list[object]:
    with sessions() as s:
        return _period_answers(s)


def test_precomputed_views_equal_from_scratch_sqlite(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _build(sessions, settings, tmp_path)
    _check(sessions)
    _incremental(sessions, settings, tmp_path)
    _memory_follows_rebuilds(sessions, settings, tmp_path)
    # Group-bys over keys that could form many groups sort them instead of counting in
    # place (a large deployment's words x themes): the same answers.
    monkeypatch.setattr(day_table, "_DENSE_GROUPS", 0)
    monkeypatch.setattr(day_table, "_DENSE_PER_ROW", 0)
    _in_memory_agrees(sessions, PeriodMemo(ChangeLog(), table_rows=100_000))


@pytest.mark.postgres
def test_precomputed_views_equal_from_scratch_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    _build(pg_sessions, settings, tmp_path)
    _check(pg_sessions)
    _incremental(pg_sessions, settings, tmp_path)
    _memory_follows_rebuilds(pg_sessions, settings, tmp_path)

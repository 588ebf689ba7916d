"""Fill a database (SQLite or PostgreSQL) with N synthetic, *analysed* verbatims, fast.

    python benchmarks/load_data.py --url sqlite:////tmp/verbatim_bench/bench.db --rows 1000000
    python benchmarks/load_data.py --url postgresql+psycopg://postgres@127.0.0.1:54329/bench

Feedback, analyses, theme mentions (with evidence spans), topics and topic assignments, plus a
few hundred alerts and incidents, are written with bulk inserts (SQLite `executemany`,
PostgreSQL `COPY`): the rows do NOT go through ingestion nor the encoder (their sentiment,
themes and severity are drawn at random with realistic shapes), so this measures the read
side, not the models. The precomputed views (`daily_aggregates`, `daily_facets`,
`hourly_aggregates`) are then built by the real aggregate job (`core.aggregate`).

Shapes: ~1 year ending today; weekly seasonality, slow growth and a few bursts; 8 e-commerce
themes with skewed frequencies (0-3 per verbatim), mention polarity mostly that of the
verbatim; channels review / social / complaint / survey with their own sources; ratings on
reviews, NPS / CSAT / CES on surveys; ~4 % not French. Texts are synthetic French phrases.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

THEMES = (
    ("livraison", 0.30),
    ("service_client", 0.16),
    ("qualite_produit", 0.15),
    ("retours_remboursements", 0.11),
    ("emballage", 0.09),
    ("prix", 0.08),
    ("commande_paiement", 0.06),
    ("site_appli", 0.05),
)
PHRASES = {
    "livraison": ("colis en retard de trois jours", "livraison rapide et soignée", "jamais reçu"),
    "service_client": ("service client injoignable", "conseillère très aimable", "sav muet"),
    "qualite_produit": ("produit de mauvaise qualité", "tissu qui bouloche", "très bonne qualité"),
    "retours_remboursements": ("remboursement toujours pas reçu", "retour accepté sans souci"),
    "emballage": ("emballage abîmé à la réception", "carton écrasé", "bien emballé"),
    "prix": ("prix trop élevé", "bon rapport qualité prix", "frais de port abusifs"),
    "commande_paiement": ("paiement refusé deux fois", "commande annulée sans raison"),
    "site_appli": ("application qui plante", "site lent au paiement", "appli pratique"),
}
FILLERS = ("vraiment déçu", "je recommande", "à voir", "pas terrible", "merci", "bof")
CHANNELS = (
    ("review", 0.50, ("boutique", "appli", "trustpilot")),
    ("social", 0.20, ("twitter", "facebook")),
    ("complaint", 0.15, ("sav",)),
    ("survey", 0.15, ("enquete",)),
)
LANGUAGES = (("fr", 0.955), ("en", 0.025), ("es", 0.01), ("und", 0.01))
SENTIMENTS = ("negative", "neutral", "positive")
MODEL = "bench-synthetic"


def day_weights(days: int, rng: np.random.Generator) -> np.ndarray:
    """Weekly seasonality x growth x a few bursts, normalised."""
    idx = np.arange(days)
    weekly = np.array([1.15, 1.1, 1.05, 1.0, 0.95, 0.75, 0.7])[idx % 7]
    growth = np.linspace(0.8, 1.2, days)
    bursts = np.ones(days)
    for start in rng.choice(days - 3, size=6, replace=False):
        bursts[start : start + 3] *= rng.uniform(1.5, 2.5)
    w = weekly * growth * bursts
    return w / w.sum()


def _pick(rng: np.random.Generator, weights: list[float], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def generate(
    rows: int, days: int, seed: int, first_id: int = 1
) -> Iterator[tuple[list, list, list, list]]:
    """Batches of (feedback, analyses, mentions, assignments) tuples (ids from first_id)."""
    rng = np.random.default_rng(seed)
    end = datetime.now(UTC).date()
    first_day = end - timedelta(days=days - 1)
    weights = day_weights(days, rng)
    theme_ids = [t for t, _ in THEMES]
    theme_p = [p for _, p in THEMES]
    mention_id = first_id * 2
    batch = 100_000
    for base in range(first_id, first_id + rows, batch):
        n = min(batch, first_id + rows - base)
        ids = np.arange(base, base + n)
        day_i = rng.choice(days, size=n, p=weights)
        secs = rng.normal(14.5 * 3600, 4 * 3600, size=n).clip(0, 86399).astype(int)
        ch = _pick(rng, [c[1] for c in CHANNELS], n)
        lang = _pick(rng, [x[1] for x in LANGUAGES], n)
        sent = _pick(rng, [0.35, 0.2, 0.45], n)
        sev = np.where(sent == 0, rng.beta(2.5, 3, n), rng.beta(1.2, 6, n)).round(3)
        recurrent = rng.random(n) < 0.05
        k = _pick(rng, [0.3, 0.5, 0.15, 0.05], n)
        first_theme = _pick(rng, theme_p, n)
        other = rng.random((n, 3))
        variant = rng.integers(0, 3, size=(n, 3))
        flip = rng.random((n, 3)) < 0.2
        flip_to = rng.integers(0, 3, size=(n, 3))
        src_r = rng.integers(0, 3, size=n)
        rating_r = rng.random(n)
        score_r = rng.random((n, 3))
        topic = np.where(rng.random(n) < 0.6, first_theme * 5 + rng.integers(0, 5, n), -1)
        fb, an, me, ta = [], [], [], []
        for j in range(n):
            i = int(ids[j])
            day = first_day + timedelta(days=int(day_i[j]))
            ts = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=int(secs[j])
            )
            cname, _, sources = CHANNELS[ch[j]]
            source = sources[src_r[j] % len(sources)]
            s = int(sent[j])
            rating = nps = csat = ces = None
            if cname == "review" or rating_r[j] < 0.3:
                rating = float(
                    (1, 2)[int(score_r[j, 0] * 2)]
                    if s == 0
                    else 3
                    if s == 1
                    else 4 + int(score_r[j, 0] * 2)
                )
            if cname == "survey":
                nps = float(
                    int(score_r[j, 1] * 7)
                    if s == 0
                    else 7 + int(score_r[j, 1] * 2)
                    if s == 1
                    else 8 + int(score_r[j, 1] * 3)
                )
                csat = float(
                    1 + int(score_r[j, 2] * 2)
                    if s == 0
                    else 3
                    if s == 1
                    else 4 + int(score_r[j, 2] * 2)
                )
                ces = float(1 + int(score_r[j, 0] * 7)) if score_r[j, 0] < 0.5 else None
            themes = [int(first_theme[j])]
            for extra in range(int(k[j]) - 1):
                t = int(_pick_one(theme_p, other[j, extra]))
                if t not in themes:
                    themes.append(t)
            if k[j] == 0:
                themes = []
            parts, spans = [f"Commande {i} :"], []
            for slot, t in enumerate(themes):
                opts = PHRASES[theme_ids[t]]
                phrase = opts[int(variant[j, slot]) % len(opts)]
                start = len(" ".join(parts)) + 1
                parts.append(phrase + ",")
                spans.append((t, phrase, start, start + len(phrase), slot))
            parts.append(FILLERS[i % len(FILLERS)] + ".")
            text = " ".join(parts)
            language = LANGUAGES[lang[j]][0]
            fb.append(
                (
                    i,
                    source,
                    cname,
                    f"x{i}",
                    f"id:x{i}",
                    ts,
                    ts,
                    rating,
                    nps,
                    csat,
                    ces,
                    text,
                    language,
                    language in ("fr", "und"),
                    f"{i:064x}",
                    f"c{i % 97_000}" if recurrent[j] else None,
                    "{}",
                    None,
                    True,
                )
            )
            an.append(
                (i, i, MODEL, SENTIMENTS[s], 0.8, None, float(sev[j]), bool(recurrent[j]), ts)
            )
            for t, phrase, a, b, slot in spans:
                pol = SENTIMENTS[int(flip_to[j, slot])] if flip[j, slot] else SENTIMENTS[s]
                mention_id += 1
                me.append((mention_id, i, i, theme_ids[t], pol, 0.9, day, a, b, phrase))
            if topic[j] >= 0:
                ta.append((i, int(topic[j]) + 1, day, 0.9))
        yield fb, an, me, ta


def _pick_one(weights: list[float], r: float) -> int:
    acc = 0.0
    total = sum(weights)
    for i, w in enumerate(weights):
        acc += w / total
        if r < acc:
            return i
    return len(weights) - 1


FEEDBACK_COLS = (
    "id, source, channel, external_id, dedup_key, created_at, ingested_at, rating, nps, csat, "
    "ces, text, language, is_french, content_hash, customer_key, metadata, run_id, analyzed"
)
ANALYSIS_COLS = (
    "id, feedback_id, model_version, sentiment, sentiment_score, expected_stars, severity, "
    "is_recurrent, analyzed_at"
)
MENTION_COLS = (
    "id, analysis_id, feedback_id, theme, polarity, score, day, evidence_start, evidence_end, "
    "evidence_text"
)
ASSIGN_COLS = "feedback_id, topic_id, day, probability"


def _sqlite_row(row: tuple) -> tuple:
    out = []
    for v in row:
        if isinstance(v, datetime):
            out.append(v.strftime("%Y-%m-%d %H:%M:%S.%f"))
        elif isinstance(v, date):
            out.append(v.isoformat())
        elif isinstance(v, bool):
            out.append(int(v))
        else:
            out.append(v)
    return tuple(out)


def load(url: str, rows: int, days: int, seed: int = 7) -> dict[str, Any]:
    """Migrate, bulk-load, then aggregate with the real job. Returns timings and counts."""
    from sqlalchemy import text

    from core.db import make_engine, migrate, session_factory, session_scope

    engine = make_engine(url)
    migrate(engine)
    figures: dict[str, Any] = {"rows": rows}
    t0 = time.perf_counter()
    counts = {"feedback": 0, "mentions": 0, "assignments": 0}
    _topics(engine)
    if engine.dialect.name == "sqlite":
        import sqlite3

        con = sqlite3.connect(engine.url.database or "")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        for fb, an, me, ta in generate(rows, days, seed):
            for table, cols, data in (
                ("feedback", FEEDBACK_COLS, fb),
                ("analyses", ANALYSIS_COLS, an),
                ("theme_mentions", MENTION_COLS, me),
                ("topic_assignments", ASSIGN_COLS, ta),
            ):
                marks = ",".join("?" * (cols.count(",") + 1))
                con.executemany(
                    f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608 - constants
                    [_sqlite_row(r) for r in data],
                )
            con.commit()
            counts["feedback"] += len(fb)
            counts["mentions"] += len(me)
            counts["assignments"] += len(ta)
            print(f"  loaded {counts['feedback']:,} verbatims", flush=True)
        con.close()
    else:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for fb, an, me, ta in generate(rows, days, seed):
                for table, cols, data in (
                    ("feedback", FEEDBACK_COLS, fb),
                    ("analyses", ANALYSIS_COLS, an),
                    ("theme_mentions", MENTION_COLS, me),
                    ("topic_assignments", ASSIGN_COLS, ta),
                ):
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                        for r in data:
                            copy.write_row(r)
                raw.commit()
                counts["feedback"] += len(fb)
                counts["mentions"] += len(me)
                counts["assignments"] += len(ta)
                print(f"  loaded {counts['feedback']:,} verbatims", flush=True)
            for table in ("feedback", "analyses", "theme_mentions"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    figures["load_s"] = round(time.perf_counter() - t0, 1)
    figures.update(counts)
    _alerts(engine)
    from core import taxonomy_store
    from core.settings import Settings

    # Seeded the way the first job seeds it (the API reads it from the first request).
    taxonomy_store.for_job(session_factory(engine), Settings(database_url=url))
    t0 = time.perf_counter()
    from core.aggregate import aggregate_all

    with session_scope(session_factory(engine)) as session:
        aggregate_all(session)
    figures["aggregate_s"] = round(time.perf_counter() - t0, 1)
    with engine.connect() as conn:
        for table in ("daily_aggregates", "daily_facets", "hourly_aggregates"):
            figures[table] = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return figures


def _topics(engine: Any) -> None:
    from sqlalchemy.orm import Session

    from core.models import Topic

    now = datetime.now(UTC)
    with Session(engine) as session:
        for t, (theme, _) in enumerate(THEMES):
            for v in range(5):
                phrase = PHRASES[theme][v % len(PHRASES[theme])]
                session.add(
                    Topic(
                        id=t * 5 + v + 1,
                        label=phrase,
                        keywords=phrase.split()[:4],
                        representatives=[],
                        theme=theme,
                        is_emerging=v == 4,
                        size=1000,
                        centroid=[],
                        first_seen=now - timedelta(days=365),
                        last_seen=now,
                    )
                )
        session.commit()


def _alerts(engine: Any) -> None:
    """~300 incidents and their alerts over the year (what /alerts and /incidents list)."""
    from sqlalchemy.orm import Session

    from core.models import Alert, Incident

    rng = np.random.default_rng(3)
    now = datetime.now(UTC)
    today = now.date()
    with Session(engine) as session:
        for n in range(300):
            theme = THEMES[int(rng.integers(0, len(THEMES)))][0]
            last = today - timedelta(days=int(rng.integers(0, 360)))
            first = last - timedelta(days=int(rng.integers(0, 3)))
            sev = ("low", "medium", "high", "critical")[int(rng.integers(0, 4))]
            inc = Incident(
                theme=theme,
                team="default",
                status=("open", "acknowledged", "resolved")[int(rng.integers(0, 3))],
                first_day=first,
                last_day=last,
                severity=sev,
                kinds=["volume"],
                signals={"volume": {"observed": 40, "expected": 12}},
                drivers=[],
                examples=[],
                historical=last < today - timedelta(days=2),
                created_at=now,
                updated_at=now,
            )
            session.add(inc)
            session.flush()
            session.add(
                Alert(
                    alert_key=f"bench|{theme}|volume|{first}|{n}",
                    theme=theme,
                    kind="volume",
                    status="open" if inc.status != "resolved" else "resolved",
                    first_day=first,
                    last_day=last,
                    severity=sev,
                    observed=40.0,
                    expected=12.0,
                    p_value=1e-5,
                    details={},
                    created_at=now,
                    updated_at=now,
                    incident_id=inc.id,
                )
            )
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of an EMPTY database")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    figures = load(args.url, args.rows, args.days, args.seed)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Ingestion throughput: N demo rows -> a fresh SQLite file; prints rows/s and peak RSS.

    nice -n 10 python benchmarks/bench_ingest.py              # 100k rows, JSONL
    nice -n 10 python benchmarks/bench_ingest.py --rows 20000 --format csv --enrich

The feed is generated first (streamed to disk), then timed separately from ingestion.
`--enrich` also times `enrich` (`--backend`, default lexicon) and a full `aggregate` recompute.
Wall time and this process's CPU time are both printed: on a loaded machine rows/s per CPU
second is the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.db import make_engine, migrate, session_factory, session_scope  # noqa: E402
from core.settings import Settings  # noqa: E402
from jobs.demo import DemoSpec, write_demo  # noqa: E402
from jobs.ingest import ingest_file  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="approximate row count")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--enrich", action="store_true", help="also time enrich + aggregate")
    parser.add_argument("--backend", default="lexicon", help="sentiment backend for --enrich")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="verbatim-bench-") as tmp:
        root = Path(tmp)
        feed = root / f"feed.{args.format}"
        per_day = max(1, round(args.rows / args.days / 0.97))  # weekday factors average ~0.97
        t0 = time.perf_counter()
        count = write_demo(feed, DemoSpec(days=args.days, seed=7, per_day=per_day))
        gen_s = time.perf_counter() - t0
        size_mb = feed.stat().st_size / 1e6
        print(f"generated {count} rows ({size_mb:.1f} MB {args.format}) in {gen_s:.1f} s")
        rss_before = peak_rss_mb()

        settings = Settings(
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'data' / 'bench.db'}",
            batch_size=args.batch_size,
        )
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        sessions = session_factory(engine)
        t0, c0 = time.perf_counter(), time.process_time()
        result = ingest_file(
            sessions, settings, feed, source="bench", mapping={"channel": "channel"}
        )
        ingest_s, ingest_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"ingest: {result.read} read, {result.stored} stored, {result.rejected} rejected "
            f"in {ingest_s:.1f} s wall = {result.read / ingest_s:,.0f} rows/s "
            f"({ingest_cpu:.1f} s CPU = {result.read / ingest_cpu:,.0f} rows/CPU-s; "
            f"batch {args.batch_size})"
        )
        print(f"peak RSS: {peak_rss_mb():.0f} MB (after generation: {rss_before:.0f} MB)")
        db_mb = (root / "data" / "bench.db").stat().st_size / 1e6
        print(f"database file: {db_mb:.0f} MB")

        if args.enrich:
            from core.analysis import build_analyzer
            from jobs.aggregate import aggregate
            from jobs.enrich import enrich

            analyzer = build_analyzer(settings, backend=args.backend)
            t0, c0 = time.perf_counter(), time.process_time()
            done = enrich(sessions, settings, analyzer=analyzer)
            enrich_s, enrich_cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"enrich ({args.backend}): {done.analyzed} in {enrich_s:.1f} s wall = "
                f"{done.analyzed / enrich_s:,.0f} docs/s ({enrich_cpu:.1f} s CPU = "
                f"{done.analyzed / enrich_cpu:,.0f} docs/CPU-s; {done.mentions} mentions)"
            )
            t0 = time.perf_counter()
            with session_scope(sessions) as session:
                written = aggregate(session)
            print(f"aggregate (full recompute): {written} rows in {time.perf_counter() - t0:.2f} s")
            t0 = time.perf_counter()
            with session_scope(sessions) as session:
                written = aggregate(session, days=done.days and sorted(done.days)[-3:])
            print(f"aggregate (last 3 days): {written} rows in {time.perf_counter() - t0:.2f} s")
            print(f"peak RSS: {peak_rss_mb():.0f} MB")
        engine.dispose()


if __name__ == "__main__":
    main()

"""Throughput of `verbatim enrich --engine ray` with 1 and 2 local workers (vs in-process).

Generates a demo feed (the project's own synthetic data), ingests it into a fresh SQLite file
(or --database-url, e.g. a PostgreSQL schema), then analyses it three times from scratch: the
in-process engine, Ray with 1 worker, Ray with 2 workers. Prints docs/s for each, with the
CPU model. Ray start-up (`ray.init`) is timed separately; actor start-up (loading the
analyzer) is inside each Ray figure, as a user would pay it.

    python benchmarks/bench_ray.py --rows 2000 --backend lexicon
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--backend", default="lexicon")
    ap.add_argument("--range-size", type=int, default=250)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()

    from sqlalchemy import update

    from core.db import make_engine, migrate, session_factory
    from core.models import Analysis, Feedback
    from core.settings import Settings
    from jobs.demo import DemoSpec, write_demo
    from jobs.enrich import enrich
    from jobs.enrich_ray import RayOptions, enrich_ray
    from jobs.ingest import ingest_file

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    settings = Settings(data_dir=tmp, database_url=url, sentiment_backend=args.backend)
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    feed = tmp / "feed.jsonl"
    per_day = max(1, args.rows // 30)
    write_demo(feed, DemoSpec(days=30, per_day=per_day))
    ingest_file(sessions, settings, feed, source="demo", mapping={"channel": "channel"})

    def reset() -> None:
        with sessions.begin() as s:
            s.execute(Analysis.__table__.delete())
            s.execute(update(Feedback).values(analyzed=False))

    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")) if p
    )
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; backend {args.backend}")
    reset()
    t = time.perf_counter()
    n = enrich(sessions, settings).analyzed
    local = time.perf_counter() - t
    print(f"in-process enrich: {n} docs in {local:.1f} s = {n / local:.1f} docs/s")

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print(f"ray.init (local instance): {time.perf_counter() - t:.1f} s")
    for workers in (1, 2):
        reset()
        t = time.perf_counter()
        opts = RayOptions(workers=workers, range_size=args.range_size)
        n = enrich_ray(settings, sessions, options=opts).analyzed
        took = time.perf_counter() - t
        print(
            f"ray, {workers} worker(s): {n} docs in {took:.1f} s = {n / took:.1f} docs/s "
            f"(actor start-up included; {local / took:.2f}x the in-process run)"
        )
    ray.shutdown()
    engine.dispose()


if __name__ == "__main__":
    main()

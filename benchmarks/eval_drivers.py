"""Key-driver figures on the synthetic survey feed of tests/test_scores.py (true effects known):
CSV -> ingest (--map nps/csat/ces) -> enrich (lexicon backend) -> aggregate -> key drivers.

    python benchmarks/eval_drivers.py [--seed 20261202]

`--coverage N` instead measures, over N simulated feeds per setting (no database), how often
the 95 % intervals of `nlp.drivers.key_drivers` contain the true effect: per theme on the
heteroskedastic feed of tests/test_drivers.py (n = 100, 400, 2000), and on NPS-coded 0-10
answers regressed from frequency-weighted cells (the path of `key_driver_report`).

    python benchmarks/eval_drivers.py --coverage 2000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--coverage", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.coverage:
        coverage(args.coverage)
        return

    import test_scores as feed

    from core.aggregate import aggregate_all
    from core.analysis import build_analyzer
    from core.db import make_engine, migrate, session_factory, session_scope
    from core.queries import key_driver_report
    from core.settings import Settings
    from jobs.enrich import enrich
    from jobs.ingest import ingest_file

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        settings = Settings(
            data_dir=d, database_url=f"sqlite:///{d / 'v.db'}", sentiment_backend="lexicon"
        )
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        sessions = session_factory(engine)
        feed._write_feed(d / "feed.csv", random.Random(args.seed))
        mapping = {
            "id": "ref",
            "created_at": "jour",
            "text": "commentaire",
            "nps": "reco",
            "csat": "satisfaction",
            "ces": "effort",
        }
        ingest_file(
            sessions, settings, d / "feed.csv", source="s", channel="survey", mapping=mapping
        )
        enrich(sessions, settings, analyzer=build_analyzer(settings))
        with session_scope(sessions) as session:
            aggregate_all(session)
            end = date.today()
            print(f"{feed.ROWS} synthetic answers, seed {args.seed}")
            for score, truth in (("nps", feed.TRUE_NPS), ("csat", feed.TRUE_CSAT)):
                report = key_driver_report(session, score, start=end - timedelta(days=90), end=end)
                for e in report.effects:
                    found = (
                        f"{score:5} {e.theme:16} estimate "
                        f"{e.effect:+6.1f} [{e.ci_low:+6.1f} ; {e.ci_high:+6.1f}]"
                    )
                    if e.theme not in truth:  # named by the feed's filler sentences: no truth
                        print(f"{found}  (no planted effect)")
                        continue
                    inside = e.ci_low <= truth[e.theme] <= e.ci_high
                    print(
                        f"{found}  true {truth[e.theme]:+6.1f}  {'covered' if inside else 'MISSED'}"
                    )
        engine.dispose()


def coverage(runs: int) -> None:
    import numpy as np
    from test_drivers import TRUE_EFFECTS, synthetic_feed

    from nlp.drivers import DriverConfig, key_drivers, nps_points

    config = DriverConfig(min_mentions=5)
    for n in (100, 400, 2000):
        hits = dict.fromkeys(TRUE_EFFECTS, 0)
        done = 0
        for s in range(runs):
            presence, score = synthetic_feed(n, seed=50_000 + s)
            found = {e.theme: e for e in key_drivers(presence, score, config)}
            if set(found) != set(TRUE_EFFECTS):
                continue
            done += 1
            for theme, truth in TRUE_EFFECTS.items():
                hits[theme] += found[theme].ci_low <= truth <= found[theme].ci_high
        shares = "  ".join(f"{t} {hits[t] / done:.3f}" for t in TRUE_EFFECTS)
        print(f"n={n:<5} {done} feeds  coverage  {shares}")

    def nps_feed(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        a = rng.random(n) < 0.3
        b = np.where(a, rng.random(n) < 0.5, rng.random(n) < 0.1)
        answers = np.clip(np.round(rng.normal(8.3 - 2.0 * a - 1.0 * b, 1.3)), 0, 10)
        return a, b, answers

    # True NPS-point effects: the regression on a population of two million answers.
    a, b, answers = nps_feed(2_000_000, np.random.default_rng(1))
    design = np.column_stack([np.ones(a.size), a, b]).astype(float)
    truth = np.linalg.lstsq(design, nps_points(answers), rcond=None)[0][1:]
    hits2 = np.zeros(2)
    done = 0
    for s in range(runs):
        a, b, answers = nps_feed(500, np.random.default_rng(10_000 + s))
        cells: dict[tuple[bool, bool, float], int] = {}
        for key in zip(a.tolist(), b.tolist(), answers.tolist(), strict=True):
            cells[key] = cells.get(key, 0) + 1
        keys = list(cells)
        found = {
            e.theme: e
            for e in key_drivers(
                {"a": [k[0] for k in keys], "b": [k[1] for k in keys]},
                nps_points([k[2] for k in keys]).tolist(),
                config,
                [cells[k] for k in keys],
            )
        }
        if len(found) != 2:
            continue
        done += 1
        for j, theme in enumerate("ab"):
            hits2[j] += found[theme].ci_low <= truth[j] <= found[theme].ci_high
    print(
        f"NPS cells n=500 {done} feeds  true effects {truth[0]:+.1f} / {truth[1]:+.1f} NPS points"
        f"  coverage  a {hits2[0] / done:.3f}  b {hits2[1] / done:.3f}"
    )


if __name__ == "__main__":
    main()

"""Key-driver figures on the synthetic survey feed of tests/test_scores.py (true effects known):
CSV -> ingest (--map nps/csat/ces) -> enrich (lexicon backend) -> aggregate -> key drivers.

    python benchmarks/eval_drivers.py [--seed 20261202]
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
    args = parser.parse_args()

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
                    inside = e.ci_low <= truth[e.theme] <= e.ci_high
                    print(
                        f"{score:5} {e.theme:10} true {truth[e.theme]:+6.1f}  estimate "
                        f"{e.effect:+6.1f} [{e.ci_low:+6.1f} ; {e.ci_high:+6.1f}]"
                        f"  {'covered' if inside else 'MISSED'}"
                    )
        engine.dispose()


if __name__ == "__main__":
    main()

"""Cost of building period views in process: the API's in-memory aggregate tables against SQL.

Builds distinct theme-detail views (theme x end day, 30-day periods, the detail's rating
impact included) one after another on a loaded database (benchmarks/load_data.py), once
through the SQL path and once through the API's `PeriodMemo` with its in-memory copies of
`daily_aggregates` / `daily_facets` (core.day_table), in alternated rounds, each round on
views neither path built before. Prints ms per view, their ratio and the CPU model; asserts
nothing.

    python benchmarks/bench_views.py --url sqlite:////tmp/verbatim_bench/bench.db
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session  # noqa: E402

from core.db import make_engine, session_factory  # noqa: E402
from core.models import DailyAggregate, DailyFacet  # noqa: E402
from core.queries import latest_day, rating_impacts, theme_keys  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.taxonomy_store import current  # noqa: E402
from core.versions import PERIOD_MEMO, ChangeLog, PeriodMemo  # noqa: E402
from nlp.encoder.runtime import cpu_description  # noqa: E402
from service.views import KeywordCache, theme_detail_view  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="database URL (a loaded database)")
    parser.add_argument("--views", type=int, default=100, help="views per path and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    engine = make_engine(args.url)
    sessions = session_factory(engine)
    memo = PeriodMemo(ChangeLog(), table_rows=Settings().api_day_table_rows)
    with sessions() as session:
        taxonomy = current(session, Settings(database_url=args.url)).taxonomy
        end = latest_day(session)
        started = time.perf_counter()
        session.info[PERIOD_MEMO] = memo
        loaded = all(memo.table(session, m) is not None for m in (DailyAggregate, DailyFacet))
        load_s = time.perf_counter() - started
    if end is None:
        raise SystemExit("empty database: fill it with benchmarks/load_data.py first")
    themes = [t.id for t in taxonomy.themes]
    views = [(t, end - timedelta(days=back)) for back in range(1, 200) for t in themes]
    random.Random(7).shuffle(views)

    def build(session: Session, theme: str, last: date) -> None:
        first = last - timedelta(days=29)
        view = theme_detail_view(
            session,
            taxonomy,
            theme,
            start=first,
            end=last,
            channel=None,
            source=None,
            keywords=KeywordCache(),
        )
        rating_impacts(session, {theme: theme_keys(taxonomy, theme)}, start=first, end=last)
        view.model_dump_json()

    per_view: dict[str, list[float]] = {"sql": [], "memory": []}
    at = 0
    for _ in range(args.rounds):
        for path in ("sql", "memory"):
            batch = views[at : at + args.views]
            at += args.views
            with sessions() as session:
                if path == "memory":
                    session.info[PERIOD_MEMO] = memo
                build(session, *batch[0])  # the path's statements compiled, not timed
                started = time.perf_counter()
                for theme, last in batch[1:]:
                    build(session, theme, last)
                per_view[path].append((time.perf_counter() - started) * 1000 / (len(batch) - 1))
    sql, mem = min(per_view["sql"]), min(per_view["memory"])
    print(
        json.dumps(
            {
                "cpu": cpu_description(),
                "database": engine.dialect.name,
                "in_memory_tables_loaded": loaded,
                "load_s": round(load_s, 2),
                "ms_per_view": {k: [round(v, 2) for v in vs] for k, vs in per_view.items()},
                "ratio_sql_over_memory (best rounds)": round(sql / mem, 2),
            },
            indent=2,
        )
    )
    engine.dispose()


if __name__ == "__main__":
    main()

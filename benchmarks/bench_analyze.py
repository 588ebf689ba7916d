"""`verbatim analyze` throughput and peak RSS, run as the real CLI in a subprocess.

    nice -n 10 python benchmarks/bench_analyze.py                      # 20k demo rows, lexicon
    nice -n 10 python benchmarks/bench_analyze.py --rows 5000 --backend embedded
    nice -n 10 python benchmarks/bench_analyze.py --input ../shared/data/marc_fr/dev.jsonl

Input: a synthetic demo feed (`jobs.demo`, generated here), or any JSONL with a `text` field
given by `--input` (read in place, never copied). The CLI runs twice: on the first 50 lines
(start-up: imports, spaCy, taxonomy, model load) and on all of them; docs/s is reported both
end to end and net of start-up. Peak RSS is the child process's maximum resident set
(getrusage RUSAGE_CHILDREN, one child at a time). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_cli(feed: Path, out: Path, backend: str, batch_size: int) -> dict[str, float]:
    """One `verbatim analyze` child: wall s, user+sys CPU s, max RSS MB (of that child)."""
    exe = shutil.which("verbatim") or str(Path(sys.executable).with_name("verbatim"))
    cmd = [
        exe,
        "analyze",
        str(feed),
        "-o",
        str(out),
        "--backend",
        backend,
        "--batch-size",
        str(batch_size),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=os.environ.copy())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: run the big one last.
    return {"wall_s": wall, "cpu_s": cpu, "max_rss_mb": after.ru_maxrss / 1024}


def head(src: Path, dst: Path, n: int) -> int:
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        lines = list(itertools.islice(fin, n))
        fout.writelines(lines)
    return len(lines)


def count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="demo rows (ignored with --input)")
    ap.add_argument("--input", type=Path, default=None, help="JSONL with a 'text' field")
    ap.add_argument("--backend", default="lexicon")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="verbatim-bench-analyze-") as tmp:
        root = Path(tmp)
        if args.input is not None:
            feed = args.input.resolve()
        else:
            from jobs.demo import DemoSpec, write_demo

            feed = root / "feed.jsonl"
            days = 60
            per_day = max(1, round(args.rows / days / 0.97))
            write_demo(feed, DemoSpec(days=days, seed=11, per_day=per_day))
        n = count_lines(feed)
        small = root / "small.jsonl"
        n_small = head(feed, small, 50)
        out = root / "out.jsonl"

        start = run_cli(small, out, args.backend, args.batch_size)
        full = run_cli(feed, out, args.backend, args.batch_size)
        written = count_lines(out)
        with out.open(encoding="utf-8") as fh:
            first = json.loads(fh.readline())
        assert {"sentiment", "themes"} <= set(first), "unexpected output record"

        net_wall = max(full["wall_s"] - start["wall_s"], 1e-9)
        net_cpu = max(full["cpu_s"] - start["cpu_s"], 1e-9)
        figures = {
            "backend": args.backend,
            "input": str(args.input) if args.input else f"demo feed ({n} rows)",
            "docs": n,
            "written": written,
            "startup_wall_s (50 docs)": round(start["wall_s"], 2),
            "total_wall_s": round(full["wall_s"], 2),
            "total_cpu_s": round(full["cpu_s"], 2),
            "docs_per_s_end_to_end": round(n / full["wall_s"], 1),
            "docs_per_s_net_of_startup": round((n - n_small) / net_wall, 1),
            "docs_per_cpu_s_net_of_startup": round((n - n_small) / net_cpu, 1),
            "peak_rss_mb": round(full["max_rss_mb"], 0),
            "startup_peak_rss_mb": round(start["max_rss_mb"], 0),
        }
        print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

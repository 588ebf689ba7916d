"""End-to-end figures of the real CLI in subprocesses: a 90-day backtest, and peak RSS while
streaming many rows through `verbatim ingest` + `verbatim enrich` on SQLite.

    # 2,300 reviews over 90 days: `verbatim backtest` (stateless contract) and `verbatim run`
    # (ingest -> enrich -> aggregate -> detect -> report on a fresh SQLite file, one process)
    python benchmarks/bench_pipeline.py backtest --data ../shared/data/marc_fr/train.jsonl

    # peak RSS streaming N demo rows through ingest + enrich (RSS sampled every 0.5 s)
    python benchmarks/bench_pipeline.py stream --rows 1000000 --backend lexicon
    python benchmarks/bench_pipeline.py stream --rows 20000 --backend embedded

Backtest texts are the first N lines of `--data` (any JSONL with a `text` field, read at run
time, never copied into the repo), spread evenly over 90 days ending yesterday; without
`--data` the synthetic demo feed (jobs.demo) is used. Stream rows are the demo feed. Each
command runs in its own process with an isolated data directory and settings; wall time, CPU
time and peak RSS (os.wait4, the child's own) are printed with the CPU model, the encoder
runtime recorded by `verbatim setup` and the load average. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict[str, object]:
    from benchmarks.bench_analyze import runtime_choice
    from nlp.encoder.runtime import cpu_description, kernel_path

    return {
        "cpu": cpu_description(),
        "kernels": kernel_path(),
        "runtime_recorded_by_setup": runtime_choice(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


def child_env(data_dir: Path, backend: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        PYTHONPATH=str(ROOT),
        VERBATIM_CONFIG=os.devnull,
        VERBATIM_DATA_DIR=str(data_dir),
        VERBATIM_SENTIMENT_BACKEND=backend,
        # Keep the model cache of the caller (built by `verbatim setup`).
        **(
            {"VERBATIM_MODEL_DIR": os.environ["VERBATIM_MODEL_DIR"]}
            if "VERBATIM_MODEL_DIR" in os.environ
            else {}
        ),
        **(extra or {}),
    )
    return env


def run(args: list[str], env: dict[str, str], *, sample: bool = False) -> dict[str, object]:
    """`verbatim ARGS` in a child: wall s, CPU s, peak RSS MB; with `sample`, VmRSS every 0.5 s."""
    cmd = [sys.executable, "-m", "verbatim_cli", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env, text=True
    )
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def poll() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while not stop.wait(0.5):
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        samples.append((time.perf_counter() - t0, int(line.split()[1]) / 1024))
            except OSError:
                return

    poller = threading.Thread(target=poll, daemon=True)
    if sample:
        poller.start()
    # Drain the pipes in threads so a chatty child never blocks; wait4 gives its own rusage.
    outs: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, f=f: outs.__setitem__(k, f.read()), daemon=True)
        for k, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    for r in readers:
        r.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(
            f"verbatim {' '.join(args)} failed ({code}): {outs.get('err', '')[-2000:]}"
        )
    result: dict[str, object] = {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "stdout_tail": (outs.get("out") or "").strip().splitlines()[-3:],
    }
    if sample and samples:
        result["rss_mb_by_elapsed_fraction"] = rss_profile(samples, wall)
    return result


def rss_profile(samples: list[tuple[float, float]], wall: float) -> dict[str, float]:
    """RSS at 10/25/50/75/100 % of the run: flat after the start means streaming."""
    out = {}
    for frac in (0.1, 0.25, 0.5, 0.75, 1.0):
        before = [rss for t, rss in samples if t <= frac * wall] or [samples[0][1]]
        out[f"{int(frac * 100)}%"] = round(before[-1])
    return out


# --- 90-day backtest ---------------------------------------------------------------------------
def write_backtest_feed(data: Path | None, n: int, days: int, out: Path) -> int:
    """n texts spread evenly over `days` days ending yesterday (UTC): id, text, created_at."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    if data is None:
        from jobs.demo import DemoSpec, write_demo

        tmp = out.with_suffix(".demo.jsonl")
        write_demo(tmp, DemoSpec(days=days, seed=5, per_day=max(1, round(n / days / 0.97))))
        source = tmp
    else:
        source = data
    count = 0
    with source.open(encoding="utf-8") as fin, out.open("w", encoding="utf-8") as fout:
        for line in itertools.islice(fin, n):
            row = json.loads(line)
            at = start + timedelta(days=count * days // n, hours=9 + count % 10, minutes=count % 60)
            fout.write(
                json.dumps(
                    {
                        "id": f"bt-{count}",
                        "text": row["text"],
                        "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "channel": "review",
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
            count += 1
    return count


def bench_backtest(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="verbatim-bench-backtest-") as tmp:
        root = Path(tmp)
        feed = root / "feed.jsonl"
        n = write_backtest_feed(args.data, args.rows, args.days, feed)
        figures: dict[str, object] = {
            "machine": machine(),
            "backend": args.backend,
            "feed": f"{n} texts of {args.data or 'the demo feed'} over {args.days} days",
        }
        # 1) The stateless contract: `verbatim backtest FEED -o ALERTS` (one process).
        env = child_env(root / "bt", args.backend)
        bt = run(["backtest", str(feed), "-o", str(root / "alerts.jsonl")], env)
        with (root / "alerts.jsonl").open(encoding="utf-8") as fh:
            bt["alerts"] = sum(1 for _ in fh)
        figures["verbatim backtest"] = bt
        # 2) As a user replays history into the product: `verbatim run` with the feed as its
        # source (ingest -> enrich -> aggregate -> detect -> Slack outbox -> themes table).
        source = [{"path": str(feed), "source": "replay", "channel": "review"}]
        env = child_env(root / "run", args.backend, {"VERBATIM_SOURCES": json.dumps(source)})
        figures["verbatim run (ingest+enrich+aggregate+detect+report, SQLite)"] = run(["run"], env)
        # 3) The same steps as separate commands (each pays its own start-up).
        env = child_env(root / "steps", args.backend)
        steps: dict[str, object] = {}
        for name, cmd in (
            ("ingest", ["ingest", str(feed), "--source", "replay", "--channel", "review"]),
            ("enrich", ["enrich"]),
            ("aggregate", ["aggregate"]),
            ("detect", ["detect"]),
            ("report", ["report", "--days", "7"]),
        ):
            steps[name] = run(cmd, env)
        steps["total_wall_s"] = round(sum(s["wall_s"] for s in steps.values()), 2)  # type: ignore[index,misc]
        figures["separate commands"] = steps
        figures["load_average_1m_after"] = round(os.getloadavg()[0], 1)
        return figures


# --- streaming RSS ---------------------------------------------------------------------------
def bench_stream(args: argparse.Namespace) -> dict[str, object]:
    from jobs.demo import DemoSpec, write_demo

    with tempfile.TemporaryDirectory(prefix="verbatim-bench-stream-", dir=args.tmp) as tmp:
        root = Path(tmp)
        feed = root / "feed.jsonl"
        days = 365
        t0 = time.perf_counter()
        n = write_demo(
            feed, DemoSpec(days=days, seed=13, per_day=max(1, round(args.rows / days / 0.97)))
        )
        figures: dict[str, object] = {
            "machine": machine(),
            "backend": args.backend,
            "rows": n,
            "feed_written_s": round(time.perf_counter() - t0, 1),
        }
        env = child_env(root / "data", args.backend)
        ingest = run(
            ["ingest", str(feed), "--source", "demo", "--channel", "review"], env, sample=True
        )
        ingest["rows_per_s"] = round(n / max(ingest["wall_s"], 1e-9), 1)  # type: ignore[arg-type]
        figures["ingest"] = ingest
        enrich = run(["enrich"], env, sample=True)
        enrich["docs_per_s"] = round(n / max(enrich["wall_s"], 1e-9), 1)  # type: ignore[arg-type]
        enrich["docs_per_cpu_s"] = round(n / max(enrich["cpu_s"], 1e-9), 1)  # type: ignore[arg-type]
        figures["enrich"] = enrich
        db = root / "data" / "verbatim.db"
        figures["database_mb"] = round(db.stat().st_size / 2**20) if db.exists() else None
        figures["load_average_1m_after"] = round(os.getloadavg()[0], 1)
        return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    bt = sub.add_parser("backtest", help="90-day backtest, end to end")
    bt.add_argument("--data", type=Path, default=None, help="JSONL with a 'text' field")
    bt.add_argument("--rows", type=int, default=2300)
    bt.add_argument("--days", type=int, default=90)
    bt.add_argument("--backend", default="embedded")
    st = sub.add_parser("stream", help="peak RSS streaming rows through ingest + enrich")
    st.add_argument("--rows", type=int, default=1_000_000)
    st.add_argument("--backend", default="lexicon")
    st.add_argument("--tmp", default=None, help="where the feed and SQLite file go")
    args = ap.parse_args()
    figures = bench_backtest(args) if args.what == "backtest" else bench_stream(args)
    print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

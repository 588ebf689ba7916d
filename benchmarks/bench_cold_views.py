"""CPU cost of a freshly started API's first requests, in process, without the network.

`bench_api.py` measures latency under an open-loop load, which on a shared 2-core machine
varies a lot from run to run (the cold start's p99 moved 0.4-4 s between identical runs).
This replays the same request mix (`bench_api.request_mix`: the first N requests, nearly
all for views nobody asked for yet) one after another through the ASGI app of a fresh
process, with the app's middleware, routing, front cache and thread pool but no sockets,
and prints the server CPU per request overall and per endpoint. With `--reference-rev REV`
the same replay runs on a checkout of REV (a git worktree), in alternated rounds, and the
ratio of the two is printed: a figure measured in one run, on one CPU. Asserts nothing.

    python benchmarks/bench_cold_views.py --url sqlite:////tmp/verbatim_bench/bench.db \
        --reference-rev 406a260
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def replay(url: str, n: int) -> dict[str, object]:
    """Run in a child process whose sys.path starts with the tree under test."""
    from bench_api import last_day, make_key, request_mix

    # bench_api puts this file's tree first on sys.path: the tree under test (cwd) goes first.
    sys.path.insert(0, str(Path.cwd()))
    import core
    from core.settings import load_settings
    from service.app import create_app

    token = make_key(url)
    mix = request_mix(last_day(url), n)
    app = create_app(load_settings())
    headers = [(b"host", b"127.0.0.1"), (b"x-api-key", token.encode()), (b"accept", b"*/*")]

    async def call(path: str) -> int:
        route, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": route,
            "raw_path": route.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        status = [0]

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        await app(scope, receive, send)
        return status[0]

    async def run() -> dict[str, object]:
        per: dict[str, list[float]] = defaultdict(list)
        failed = 0
        async with app.router.lifespan_context(app):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for name, path in mix:
                t = time.perf_counter()
                failed += await call(path) != 200
                per[name].append((time.perf_counter() - t) * 1000)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {
            "code": str(Path(core.__file__).parent.parent),
            "requests": n,
            "not_200": failed,
            "wall_s": round(wall, 3),
            "cpu_ms_per_request": round(cpu / n * 1000, 3),
            "per_endpoint_ms": {k: round(statistics.fmean(v), 2) for k, v in per.items()},
        }

    return asyncio.run(run())


def measure(tree: Path, url: str, n: int) -> dict[str, object]:
    """One replay in a fresh process on `tree`'s code (the request mix of this file's tree)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT / "benchmarks")]),
        "VERBATIM_DATABASE_URL": url,
        "VERBATIM_API_PRELOAD_MODELS": "false",  # reads only: no models
        "VERBATIM_DATA_DIR": tempfile.mkdtemp(prefix="verbatim_cold_"),
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--url", url, "--requests", str(n)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="database filled by load_data.py")
    parser.add_argument("--requests", type=int, default=2000, help="first N of the mix")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-rev", help="also replay on this git revision, alternated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(replay(args.url, args.requests)))
        return

    from bench_api import cpu_model

    trees = {"this tree": ROOT}
    if args.reference_rev:
        ref = Path(tempfile.mkdtemp(prefix="verbatim_cold_ref_")) / "ref"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(ref), args.reference_rev], check=True)
        trees[f"rev {args.reference_rev}"] = ref
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
    try:
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(measure(tree, args.url, args.requests))
    finally:
        if args.reference_rev:
            subprocess.run([*git, "remove", "--force", str(trees[f"rev {args.reference_rev}"])])
    figures: dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count()}
    for name, found in runs.items():
        cpu = [float(r["cpu_ms_per_request"]) for r in found]  # type: ignore[arg-type]
        figures[name] = {
            "cpu_ms_per_request": cpu,
            "median": statistics.median(cpu),
            "not_200": sum(int(r["not_200"]) for r in found),  # type: ignore[call-overload]
            "code": found[-1]["code"],
            "per_endpoint_ms (last round)": found[-1]["per_endpoint_ms"],
        }
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.reference_rev:
        ours = figures["this tree"]["median"]  # type: ignore[index]
        theirs = figures[f"rev {args.reference_rev}"]["median"]  # type: ignore[index]
        print(
            f"first {args.requests} requests of a fresh API, server CPU per request: "
            f"{ours:.2f} ms vs {theirs:.2f} ms at {args.reference_rev} "
            f"(x{theirs / ours:.2f} less; medians of {args.rounds} alternated rounds); "
            f"CPU {figures['cpu']}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if "--child" not in sys.argv:
        sys.path.insert(0, str(ROOT))
    main()

"""Load benchmark of the read API at scale: open-loop requests/s against `verbatim serve`.

    # 1. a database with 1M analysed verbatims (benchmarks/load_data.py, minutes)
    python benchmarks/load_data.py --url sqlite:////tmp/verbatim_bench/bench.db
    # 2. 200 requests/s for 60 s on the read endpoints, fresh server (cold caches), while an
    #    ingest + enrich + aggregate writer runs
    python benchmarks/bench_api.py --url sqlite:////tmp/verbatim_bench/bench.db --rate 200 \
        --duration 60 --writer

The server is started the way production runs it: `verbatim serve` (one uvicorn process,
the analyzer built at start-up), in a fresh process, and requests start as soon as /health
answers, so the first (cold: empty view caches) requests are counted. Requests follow a fixed
schedule (open loop: request i is sent at t0 + i/rate whatever the previous ones did) over a
mix of the dashboard's read endpoints with varying periods, themes and filters; latency is
measured from the scheduled send time, so a server that falls behind shows it. At most
`--max-inflight` requests are in flight (bounded); a request that cannot be sent, times out
(`--timeout`) or gets a status other than 200 is an error. Requests go through a minimal
keep-alive HTTP/1.1 client (`_Http`): httpx took ~0.65 of a core at 200 requests/s, CPU the
server under test then lacked on a 2-core machine. The API process's RSS and CPU are sampled
every 0.2 s; `timeline_10s` gives latency and the server's busy cores per 10 s window (stalls
show there), `--dump FILE` every request. The writer (`--writer`) is one process that, every
`--writer-every` seconds, ingests `--writer-rows` new verbatims (CSV, real ingest path with
PII masking), enriches them with the lexicon backend and re-aggregates the touched days (what
`verbatim run` does), so the view caches are invalidated while the load runs. It loads its
models (and its PII masker, once) before the load starts, like a long-running scheduled job,
and writes from the first second. Prints figures and the CPU model, a single-core speed probe
before and after the run (`speed_probe`) and the machine's busy and steal shares during it;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
THEMES = (
    "livraison",
    "service_client",
    "qualite_produit",
    "retours_remboursements",
    "emballage",
    "prix",
    "commande_paiement",
    "site_appli",
)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def speed_probe(rounds: int = 5) -> dict[str, float]:
    """Milliseconds a fixed pure-Python loop takes on one core (best and worst of `rounds`).
    On the shared 2-vCPU VM of 2026-12-04 this varied from 22 to 39 ms within minutes on an
    idle machine, and the same server code ran 1.4-2.3 ms of CPU per request from run to run:
    the probe, printed before and after the load, tells a slow machine from a slow server."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        times.append((time.perf_counter() - t) * 1000)
    return {"best_ms": round(min(times), 1), "worst_ms": round(max(times), 1)}


def cpu_ticks() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4], fields[7] if len(fields) > 7 else 0


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB), from /proc."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy(marks: list[tuple[float, float]], start: float, end: float) -> float:
    """Cores the server kept busy between two monotonic times, from (time, CPU s) samples."""
    inside = [m for m in marks if start <= m[0] <= end]
    if len(inside) < 2:
        return float("nan")
    return round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_key(url: str) -> str:
    from core.db import make_engine, migrate, session_factory, session_scope
    from service.auth import create_key

    engine = make_engine(url)
    migrate(engine)
    with session_scope(session_factory(engine)) as session:
        _, token = create_key(session, "bench", "read")
    engine.dispose()
    return token


def last_day(url: str) -> date:
    from core.db import make_engine, session_factory
    from core.queries import latest_day

    engine = make_engine(url)
    with session_factory(engine)() as session:
        day = latest_day(session) or datetime.now(UTC).date()
    engine.dispose()
    return day


def request_mix(end: date, n: int, seed: int = 11) -> list[tuple[str, str]]:
    """(endpoint name, path) for each scheduled request: the dashboard's reads, with periods,
    themes and filters varied so that most distinct views are built during the run."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for i in range(n):
        theme = THEMES[rng.randrange(len(THEMES))]
        back = rng.randrange(60)
        e = end - timedelta(days=back)
        choices = [
            ("/themes", "/themes"),
            ("/themes?days=30", "/themes?days=30"),
            ("/themes?days=7&end=D", f"/themes?days=7&end={e}"),
            ("/themes?days=30&channel=C", f"/themes?days=30&channel=review&end={e}"),
            ("/themes/{id}", f"/themes/{theme}?days=90"),
            ("/themes/{id}?end=D", f"/themes/{theme}?days=30&end={e}"),
            ("/themes/{id}/verbatims", f"/themes/{theme}/verbatims?limit=20"),
            (
                "/themes/{id}/verbatims?polarity&channel",
                f"/themes/{theme}/verbatims?limit=20&polarity=negative&channel=review",
            ),
            ("/themes/{id}/trend", f"/themes/{theme}/trend?days=30&end={e}"),
            ("/themes/{id}/trend?hour", f"/themes/{theme}/trend?granularity=hour&days=7"),
            ("/themes/{id}/trend?split", f"/themes/{theme}/trend?days=14&split=channel_source"),
            ("/themes/{id}/breakdown", f"/themes/{theme}/breakdown?days=30&end={e}"),
            ("/overview", f"/overview?end={e}"),
            ("/alerts", "/alerts"),
            ("/alerts?status=open&theme", f"/alerts?status=open&theme={theme}"),
            ("/incidents", "/incidents"),
            ("/topics", "/topics"),
            ("/drivers", "/drivers?score=nps"),
            ("/drivers?end=D", f"/drivers?score=csat&days=30&end={e}"),
        ]
        out.append(choices[i % len(choices)] if i < len(choices) else rng.choice(choices))
    return out


class _Http:
    """A minimal keep-alive HTTP/1.1 GET client over asyncio streams (loopback only).

    httpx's AsyncClient spent ~0.65 of a core to send 200 requests/s: on a 2-core machine the
    load generator then took the CPU the server under test needs. This one parses just the
    status line, Content-Length and chunked bodies, at a few percent of that cost."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = f"Host: {host}:{port}\r\n{extra}\r\n"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def get(self, path: str) -> int:
        """Status code of GET `path` (the body is read and dropped). A kept-alive connection
        the server closed meanwhile (uvicorn drops idle ones after 5 s) is retried once on a
        fresh one, as HTTP clients do for idempotent requests that got no response byte."""
        now = time.monotonic()
        while self.idle:
            reader, writer, used = self.idle.pop()
            if now - used < 4.0:
                try:
                    return await self._send(reader, writer, path)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise
            else:
                writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._send(reader, writer, path)

    async def _send(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
    ) -> int:
        try:
            writer.write(f"GET {path} HTTP/1.1\r\n{self.head}".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            if "content-length" in fields:
                await reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
        except BaseException:
            writer.close()  # a half-read response: the connection cannot be reused
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


async def open_loop(
    base: str,
    token: str,
    plan: list[tuple[str, str]],
    rate: float,
    timeout: float,
    max_inflight: int,
) -> list[tuple[str, float, float, str]]:
    """Send plan[i] at t0 + i/rate; returns (endpoint, scheduled offset s, latency ms, error)."""
    host, port = base.removeprefix("http://").split(":")
    client = _Http(host, int(port), {"X-API-Key": token})
    results: list[tuple[str, float, float, str]] = []
    inflight = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05

    async def one(name: str, path: str, at: float) -> None:
        nonlocal inflight
        err = ""
        try:
            status = await asyncio.wait_for(client.get(path), timeout)
            if status != 200:
                err = f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - every failure is counted as an error
            err = type(exc).__name__
        finally:
            inflight -= 1
        results.append((name, at - t0, (loop.time() - at) * 1000, err))

    tasks = []
    for i, (name, path) in enumerate(plan):
        at = t0 + i / rate
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if inflight >= max_inflight:  # bounded: never more than max_inflight at once
            results.append((name, at - t0, 0.0, "dropped (too many in flight)"))
            continue
        inflight += 1
        tasks.append(asyncio.create_task(one(name, path, at)))
    await asyncio.gather(*tasks)
    client.close()
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(rows: list[tuple[str, float, float, str]]) -> dict[str, object]:
    ok = [r[2] for r in rows if not r[3]]
    return {
        "n": len(rows),
        "errors": sum(1 for r in rows if r[3]),
        "p50_ms": round(pct(ok, 0.5), 1),
        "p95_ms": round(pct(ok, 0.95), 1),
        "p99_ms": round(pct(ok, 0.99), 1),
        "max_ms": round(max(ok), 1) if ok else None,
    }


def writer_loop(url: str, rows: int, every: float, stop_file: Path) -> None:
    """Ingest + enrich (lexicon) + re-aggregate the touched days, every `every` seconds."""
    from core.aggregate import aggregate
    from core.analysis import build_analyzer
    from core.db import make_engine, session_factory, session_scope
    from core.settings import Settings
    from jobs.enrich import enrich
    from jobs.ingest import build_masker, ingest_file

    workdir = Path(tempfile.mkdtemp(prefix="verbatim_writer_"))
    settings = Settings(data_dir=workdir, database_url=url, sentiment_backend="lexicon")
    engine = make_engine(url)
    sessions = session_factory(engine)
    analyzer = build_analyzer(settings)
    # A scheduled job's steady state: models loaded once (spaCy's NER for PII was rebuilt by
    # every batch, ~0.4 s of CPU each), and its start-up over before the load starts.
    masker = build_masker(settings)
    (stop_file.parent / "writer.ready").touch()
    rng = random.Random(5)
    phrases = (
        "Colis livré avec une semaine de retard, appelez-moi au 06 12 34 56 78.",
        "L'emballage était déchiré.",
        "Service client injoignable depuis lundi.",
        "Très bon produit, livraison rapide.",
        "Remboursement toujours pas reçu.",
    )
    batches = stored = 0
    while not stop_file.exists():
        t0 = time.monotonic()
        path = workdir / f"feed_{batches}.csv"
        now = datetime.now(UTC)
        with path.open("w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["id", "date", "text", "note"])
            for i in range(rows):
                text = f"{rng.choice(phrases)} (lot {batches}, avis {i})"
                out.writerow([f"w{os.getpid()}-{batches}-{i}", now.isoformat(), text, 1 + i % 5])
        result = ingest_file(
            sessions, settings, path, source="writer", channel="review", masker=masker
        )
        stored += result.stored
        enriched = enrich(sessions, settings, analyzer=analyzer)
        with session_scope(sessions) as session:
            aggregate(session, days=enriched.days)
        batches += 1
        summary = {"batches": batches, "stored": stored, "last_batch_s": time.monotonic() - t0}
        (stop_file.parent / "writer.json").write_text(json.dumps(summary))
        time.sleep(max(0.0, every - (time.monotonic() - t0)))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="database filled by load_data.py")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--max-inflight", type=int, default=256)
    parser.add_argument(
        "--dump", type=Path, help="write every request (endpoint, send offset s, ms, error) here"
    )
    parser.add_argument("--writer", action="store_true", help="run the ingest+enrich writer")
    parser.add_argument("--writer-rows", type=int, default=200)
    parser.add_argument("--writer-every", type=float, default=5.0)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the server (e.g. VERBATIM_SENTIMENT_BACKEND=lexicon)",
    )
    parser.add_argument("--writer-loop", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer_loop:
        url, rows, every, stop = args.writer_loop
        writer_loop(url, int(rows), float(every), Path(stop))
        return

    figures: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "speed_probe_before": speed_probe(),
        "database": args.url.split("@")[-1],
        "rate": args.rate,
        "duration_s": args.duration,
    }
    token = make_key(args.url)
    end = last_day(args.url)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="verbatim_bench_api_"))
    env = {
        **os.environ,
        "VERBATIM_DATABASE_URL": args.url,
        "VERBATIM_DATA_DIR": str(workdir),
        "PYTHONPATH": str(ROOT),
    }
    env.update(kv.split("=", 1) for kv in args.server_env)
    cmd = [sys.executable, "-m", "verbatim_cli", "serve", "--host", "127.0.0.1"]
    t_start = time.monotonic()
    server = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "server.log", "w"),  # noqa: SIM115 - closed with the process
    )
    writer = None
    stop_file = workdir / "stop"
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited: {(workdir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - t_start > 300:
                raise SystemExit("server did not start in 300 s")
            time.sleep(0.1)
        figures["server_start_s"] = round(time.monotonic() - t_start, 1)
        figures["server_rss_idle_mb"] = round(rss_mb(server.pid), 1)
        if args.writer:
            writer = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--url",
                    args.url,
                    "--writer-loop",
                    args.url,
                    str(args.writer_rows),
                    str(args.writer_every),
                    str(stop_file),
                ],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            ready = workdir / "writer.ready"
            deadline = time.monotonic() + 300
            while not ready.exists():  # its imports and models, then it writes from the start
                if writer.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the writer did not start")
                time.sleep(0.1)
        peak = [0.0]
        sampling = threading.Event()

        cpu_marks: list[tuple[float, float]] = []  # (monotonic, server CPU s), every 0.2 s
        rss_marks: list[tuple[float, float]] = []  # (monotonic, server RSS MB)

        def sample() -> None:
            while not sampling.is_set():
                now, rss = time.monotonic(), rss_mb(server.pid)
                peak[0] = max(peak[0], rss)
                rss_marks.append((now, rss))
                cpu_marks.append((now, cpu_seconds(server.pid)))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        plan = request_mix(end, int(args.rate * args.duration))
        cpu0, w0 = cpu_seconds(server.pid), time.monotonic()
        ticks0 = cpu_ticks()
        client_cpu0 = time.process_time()
        rows = asyncio.run(open_loop(base, token, plan, args.rate, args.timeout, args.max_inflight))
        wall = time.monotonic() - w0
        if args.dump:
            args.dump.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        server_cpu = cpu_seconds(server.pid) - cpu0
        ticks = [b - a for a, b in zip(ticks0, cpu_ticks(), strict=True)]
        # The whole machine while the load ran: busy share of all cores, and the share the
        # hypervisor gave to other guests (steal).
        figures["machine_busy"] = round(1 - ticks[1] / max(ticks[0], 1), 3)
        figures["machine_steal"] = round(ticks[2] / max(ticks[0], 1), 3)
        sampling.set()
        sampler.join()
        figures["achieved_rps"] = round(len([r for r in rows if not r[3]]) / wall, 1)
        answered = sum(1 for r in rows if not r[3].startswith("dropped"))
        figures["server_cpu_s"] = round(server_cpu, 1)
        figures["server_cpu_ms_per_answered_request"] = round(
            server_cpu * 1000 / max(1, answered), 2
        )
        figures["server_rss_peak_mb"] = round(peak[0], 1)
        figures["all"] = summary(rows)
        figures["first_10_s (cold)"] = summary([r for r in rows if r[1] < 10])
        # How the cold start drains: p99 per second of the first ten.
        figures["first_10_s_p99_ms_by_second"] = [
            summary([r for r in rows if w <= r[1] < w + 1])["p99_ms"] for w in range(10)
        ]
        # Latency over time (10-s windows by scheduled send time): stalls show here.
        figures["timeline_10s"] = {
            f"{w * 10}-{w * 10 + 10}s": {
                **summary([r for r in rows if w * 10 <= r[1] < w * 10 + 10]),
                "server_cores": busy(cpu_marks, w0 + w * 10, w0 + w * 10 + 10),
                "server_rss_mb": max(
                    (round(m, 1) for t, m in rss_marks if w0 + w * 10 <= t < w0 + w * 10 + 10),
                    default=float("nan"),
                ),
            }
            for w in range(int(args.duration // 10))
        }
        figures["client_cpu_s"] = round(time.process_time() - client_cpu0, 1)
        per: dict[str, list] = defaultdict(list)
        for r in rows:
            per[r[0]].append(r)
        figures["per_endpoint"] = {k: summary(v) for k, v in sorted(per.items())}
        errors: dict[str, int] = defaultdict(int)
        for r in rows:
            if r[3]:
                errors[f"{r[0]}: {r[3]}"] += 1
        figures["error_kinds"] = dict(errors)
        # What the front response cache did (service.response_cache), from /metrics.
        try:
            t_scrape = time.monotonic()
            scraped = httpx.get(f"{base}/metrics", timeout=60).text
            figures["metrics_scrape_s"] = round(time.monotonic() - t_scrape, 2)
            figures["response_cache"] = {
                line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                for line in scraped.splitlines()
                if line.startswith("verbatim_response_cache_events{")
            }
        except httpx.HTTPError as exc:
            figures["response_cache"] = f"/metrics unavailable: {type(exc).__name__}"
    finally:
        if writer is not None:
            stop_file.touch()
            try:
                writer.wait(timeout=120)
            except subprocess.TimeoutExpired:
                writer.kill()
            done = workdir / "writer.json"
            # Batches done while the load ran (a batch in flight at the stop is not counted).
            figures["writer"] = (
                json.loads(done.read_text()) if done.exists() else "no batch finished"
            )
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["speed_probe_after"] = speed_probe()
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    a = figures["all"]
    assert isinstance(a, dict)
    print(
        f"{args.rate:g} req/s for {args.duration:g} s: achieved {figures['achieved_rps']} req/s, "
        f"errors {a['errors']}, p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms (target <= 50), "
        f"API RSS peak {figures['server_rss_peak_mb']} MB (target <= 1024); CPU {figures['cpu']}, "
        f"speed probe {figures['speed_probe_before']} before, {figures['speed_probe_after']} after"
    )


if __name__ == "__main__":
    main()

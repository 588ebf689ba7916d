"""Resident memory of `verbatim serve` with the models loaded, before and after analyses.

    python benchmarks/bench_serve_memory.py [--runtime openvino-int8|openvino-bf16] [--data-dir DIR]

Starts `verbatim serve` on loopback over DIR (default: a fresh temporary data directory, its
database migrated at start-up; pass the README first run's directory for a filled one), makes a
write key, then reads the server's VmRSS from /proc: once it answers /health (analyzer and PII
masker preloaded), after `POST /analyze` of the first 300 tripadvisor_fr/dev reviews in 6
requests, and after the first 600 marc_fr/dev reviews in 30 more (read at run time from
../shared/data). Issue 11's budget for the API process is 1 GB. Prints the figures with the
CPU model and the encoder runtime; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.encoder.runtime import cpu_description  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# This checkout's code (as bench_api.py runs it), not whichever `verbatim` is installed.
VERBATIM = [sys.executable, "-m", "verbatim_cli"]


def rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def texts(name: str, n: int) -> list[str]:
    with open(DATA / name / "dev.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line, _ in zip(f, range(n), strict=False)]


def analyze(url: str, key: str, items: list[str], per_request: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(items), per_request):
        body = {"items": [{"text": t} for t in items[i : i + per_request]]}
        reply = httpx.post(f"{url}/analyze", json=body, headers={"X-API-Key": key}, timeout=600)
        reply.raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="auto", help="VERBATIM_ENCODER_RUNTIME")
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="verbatim-servemem-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            VERBATIM_DATA_DIR=str(data_dir),
            VERBATIM_ENCODER_RUNTIME=args.runtime,
        )
        log = open(Path(tmp) / "serve.log", "w")  # noqa: SIM115 - lives as long as the server
        server = subprocess.Popen(
            [*VERBATIM, "serve", "--port", str(args.port)], env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{args.port}"
        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: see {log.name}")
                time.sleep(0.5)
            made = subprocess.run(
                [*VERBATIM, "apikey", "create", f"servemem-{os.getpid()}", "--scope", "write"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            key = made.stdout.split()[-1]
            figures: dict[str, object] = {"runtime_setting": args.runtime}
            figures["rss_start_mb"] = rss_mb(server.pid)
            seconds = analyze(url, key, texts("tripadvisor_fr", 300), 50)
            figures["rss_after_300_tripadvisor_mb"] = rss_mb(server.pid)
            figures["tripadvisor_seconds"] = round(seconds, 1)
            seconds = analyze(url, key, texts("marc_fr", 600), 20)
            figures["rss_after_600_marc_more_mb"] = rss_mb(server.pid)
            figures["marc_seconds"] = round(seconds, 1)
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
    cpu = cpu_description()
    print(
        json.dumps(
            {"cpu": cpu.get("model"), "cpu_features": cpu.get("features"), **figures}, indent=1
        )
    )


if __name__ == "__main__":
    main()

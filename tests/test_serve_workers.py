"""`verbatim serve --workers 2`: several uvicorn processes answer on one port (real server on
127.0.0.1), each building the app from the settings; `api_preload_models = false` keeps the
models out of a read replica until the first write."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from core.db import make_engine, migrate, session_factory, session_scope
from core.settings import Settings
from service.app import create_app
from service.auth import create_key

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, output: IO[bytes] | None) -> None:
    """Until `verbatim serve` answers /health on `port`; its `output` shown if it exits."""
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, output.read().decode()[-2000:] if output else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)


@contextmanager
def _serving(tmp_path: Path, *args: str) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """`verbatim serve ARGS` on a free loopback port over a new database with one read key:
    (base url, token, process); stopped (SIGTERM to its group) on exit, its log then on stdout."""
    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    migrate(engine)
    with session_scope(session_factory(engine)) as session:
        _, token = create_key(session, "t", "read")
    engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")},
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATABASE_URL": url,
        "VERBATIM_DATA_DIR": str(tmp_path),
        "VERBATIM_API_PRELOAD_MODELS": "false",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "verbatim_cli", "serve", "--port", str(port), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,  # its first line, and its log (access log included) from stderr
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers are stopped with it
    )
    try:
        _wait_healthy(proc, port, proc.stdout)
        yield f"http://127.0.0.1:{port}", token, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=90)  # graceful: workers finish their requests
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_serve_with_two_workers(tmp_path: Path) -> None:
    with _serving(tmp_path, "--workers", "2") as (base, token, proc):
        workers = [
            c for c in _children(proc.pid) if "python" in Path(f"/proc/{c}/cmdline").read_text()
        ]
        assert len(workers) >= 2
        with httpx.Client(base_url=base) as client:
            for _ in range(6):
                assert client.get("/themes", headers={"X-API-Key": token}).status_code == 200
            assert client.get("/themes").status_code == 401


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_key_sent_in_the_query_string_stays_out_of_the_access_log(
    tmp_path: Path, workers: str
) -> None:
    """The key goes in the X-API-Key header; one pasted into a URL as well (`?api_key=vb_…`,
    a script's or a proxy's habit) was ignored but written whole by the access log (journald,
    `docker logs`), readable by whoever reads the logs. Only its prefix, as
    `verbatim apikey list` shows it, is written now."""
    with (
        _serving(tmp_path, "--workers", workers) as (base, token, proc),
        httpx.Client(base_url=base) as client,
    ):
        res = client.get(f"/themes?api_key={token}", headers={"X-API-Key": token})
        assert res.status_code == 200
        assert client.get(f"/themes?key={token}&days=7").status_code == 401
    assert proc.stdout is not None
    log = proc.stdout.read().decode()
    assert '"GET /themes?api_key=' in log  # the access log is still written
    assert token not in log and token[10:] not in log
    assert f"/themes?api_key={token[:10]}… HTTP/1.1" in log
    assert f"/themes?key={token[:10]}…&days=7 HTTP/1.1" in log


def test_models_not_preloaded_when_asked(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'v.db'}",
        sentiment_backend="lexicon",
        api_preload_models=False,
    )
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:  # runs the lifespan
        assert client.get("/health").status_code == 200
        assert app.state.verbatim.analyzer is None and app.state.verbatim.pii_masker is None
    engine.dispose()


def test_a_port_in_use_is_refused_before_start_up(tmp_path: Path) -> None:
    """A second `verbatim serve` on a busy port built the models and warmed up (seconds to a
    minute), then uvicorn's own `ERROR: [Errno 98] … address already in use`, exit code 3."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_CONFIG=os.devnull,
        VERBATIM_DATA_DIR=str(tmp_path / "data"),
        VERBATIM_SENTIMENT_BACKEND="lexicon",
        VERBATIM_API_PRELOAD_MODELS="false",  # without the check: a short start-up
        VERBATIM_API_WARM_UP="false",
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(app, ["serve", "--port", str(port)], env=env)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert res.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another server, "
        "another `verbatim serve` perhaps, uses it: stop it or choose another --port)"
    ]


def test_an_address_not_of_this_machine_is_not_called_busy(tmp_path: Path) -> None:
    """`--host 192.0.2.1` (no interface has it) said « another server, another `verbatim
    serve` perhaps, uses it: … choose another --port »: the port was never the problem."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_CONFIG=os.devnull,
        VERBATIM_DATA_DIR=str(tmp_path / "data"),
        VERBATIM_SENTIMENT_BACKEND="lexicon",
        VERBATIM_API_PRELOAD_MODELS="false",
        VERBATIM_API_WARM_UP="false",
    )
    res = CliRunner().invoke(app, ["serve", "--host", "192.0.2.1", "--port", "8765"], env=env)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert res.stderr.strip().splitlines() == [
        "error: cannot listen on 192.0.2.1:8765: Cannot assign requested address (no network "
        "interface of this machine has this address: choose another --host)"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_json_logs_hold_the_server_lines_too(tmp_path: Path, workers: int) -> None:
    """VERBATIM_LOG_FORMAT=json wrote our lines as JSON but uvicorn's with its own handlers,
    in its own format (`INFO:     Started server process [5695]`, the access log
    `INFO:     127.0.0.1:40304 - "GET /health HTTP/1.1" 200 OK`) on the same stream: a log
    shipper reading JSON lines choked on them. The workers (new processes) configured no
    logging at all: the app's warnings came out bare. Every line is JSON now, at the levels
    the CLI's configuration gives (-q drops the INFO lines)."""
    import json

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")},
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(tmp_path),
        "VERBATIM_SENTIMENT_BACKEND": "lexicon",
        "VERBATIM_API_PRELOAD_MODELS": "false",
        "VERBATIM_API_WARM_UP": "false",
        "VERBATIM_LOG_FORMAT": "json",
        "VERBATIM_NOT_A_SETTING": "1",  # a warning each process logs (core.settings)
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "verbatim_cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", str(workers)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_healthy(proc, port, proc.stderr)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
    lines = [line for line in err.decode().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("GET /health" in r["message"] and r["level"] == "INFO" for r in access), lines
    assert any(r["logger"] == "uvicorn.error" for r in records), lines
    warned = [r for r in records if "VERBATIM_NOT_A_SETTING" in r["message"]]
    assert warned and all(r["level"] == "WARNING" for r in warned), lines

"""The deployment files (Docker is not run here): docker-compose.yml parses and has what a
team needs (PostgreSQL + API + scheduler, healthchecks, named volumes), the image runs as a
non-root user with CPU-only torch, and the shipped verbatim.toml is a valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core.settings import Settings
from jobs.scheduler import make_trigger

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))


def test_compose_services_healthchecks_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"db", "api", "scheduler"} <= set(services)
    for name in ("db", "api", "scheduler"):
        assert services[name].get("healthcheck", {}).get("test"), name
        assert services[name].get("restart") == "unless-stopped", name
    assert services["scheduler"]["command"] == ["verbatim", "scheduler"]
    assert services["api"]["command"][:2] == ["verbatim", "serve"]
    declared = set(compose["volumes"])
    assert {"pg-data", "verbatim-data"} <= declared
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"volume {source} is not declared"
    for name in ("api", "scheduler"):  # they wait for a healthy database
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        url = services[name]["environment"]["VERBATIM_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])


def test_image_is_non_root_and_cpu_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "download.pytorch.org/whl/cpu" in dockerfile and "torch==2.13.0" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert {".git", ".venv", "verbatim-data", ".env"} <= set(ignored)


def test_shipped_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERBATIM_CONFIG", str(ROOT / "deploy" / "verbatim.toml"))
    settings = Settings()
    assert [s.kind for s in settings.sources] == ["folder"]
    for job in settings.scheduler.jobs:
        make_trigger(job.cron, settings.scheduler.timezone)
    assert settings.scheduler.jobs[0].command == "run"


def test_image_copies_every_package_the_console_script_needs() -> None:
    """`pip install .` in the image installs what was copied: a package left out (the
    `verbatim_cli` root command) made `verbatim setup` fail during `docker build`."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    script = project["project"]["scripts"]["verbatim"].split(":")[0]
    assert script in packages
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    copied = set(re.findall(r"^COPY\s+(\S+)\s+\S+\s*$", dockerfile, re.M))
    ignored = set((ROOT / ".dockerignore").read_text("utf-8").split())
    for package in packages:
        assert package in copied or "." in copied, f"Dockerfile does not COPY {package}"
        assert package not in ignored, f".dockerignore drops {package}"


def test_image_setup_keeps_the_language_model_where_the_runtime_user_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image runs `verbatim setup` as root (HOME /root) and its commands as `verbatim`
    (HOME /data). The language model's uncompressed copy went to /root/.cache, unread: every
    container decompressed it again and wrote 68 MB into its data volume. It now lies beside
    the encoder, in the image's VERBATIM_MODEL_DIR, made readable to all after the setup."""
    import lzma

    from nlp.text import language

    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    models = re.search(r"VERBATIM_MODEL_DIR=(\S+)", dockerfile)
    home = re.search(r"useradd .*--home-dir (\S+)", dockerfile)
    readable = re.search(r"chmod -R a\+rX (\S+)", dockerfile)
    assert models and home and readable and home[1] != "/root"
    assert models[1].startswith(readable[1].rstrip("/") + "/")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("VERBATIM_MODEL_DIR", str(tmp_path / models[1].lstrip("/")))
    source = tmp_path / "model.xz"
    source.write_bytes(lzma.compress(b"weights"))
    monkeypatch.setenv("HOME", str(tmp_path / "root"))  # `verbatim setup`, as root
    language._keep_uncompressed(source, language._cache_dir() / "py3langid-7.npz")
    monkeypatch.setenv("HOME", str(tmp_path / home[1].lstrip("/")))  # the runtime user
    assert (language._cache_dir() / "py3langid-7.npz").read_bytes() == b"weights"

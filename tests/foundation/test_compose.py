"""docker-compose.yml is validated with Debian's docker-compose (no Docker engine needed)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed"
)


def compose(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | env
    return subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid():
    result = compose("config", "-q", SECRET_KEY="s3cret")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_secret_key():
    result = compose("config", "-q")
    assert result.returncode != 0
    assert "set SECRET_KEY" in result.stderr


def test_production_layout():
    config = yaml.safe_load(compose("config", SECRET_KEY="s3cret").stdout)
    services = config["services"]
    assert {"web", "worker-cpu", "worker-gpu", "worker-training", "db", "redis"} <= set(services)
    gpu = services["worker-gpu"]
    assert "gpu" in gpu["command"][gpu["command"].index("-Q") + 1]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    training = services["worker-training"]["command"]
    assert training[training.index("-Q") + 1] == "training" and "solo" in training
    mounts = {
        v["target"] if isinstance(v, dict) else v.split(":")[1] for v in services["web"]["volumes"]
    }
    assert {"/data/media", "/data/models"} <= mounts
    assert {"pgdata", "media", "models"} <= set(config["volumes"])
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["web"]["environment"]["REDIS_URL"].startswith("redis://")

"""docker-compose.yml is validated with Debian's docker-compose (no Docker engine needed)."""

import fnmatch
import os
import re
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


def queues(service: dict) -> set[str]:
    command = service["command"]
    return set(command[command.index("-Q") + 1].split(","))


def queues_of(service: dict) -> set[str]:
    """A service's queues, none for one that runs no worker."""
    command = service.get("command") or []
    return queues(service) if "-Q" in command else set()


SECRETS = {"SECRET_KEY": "s3cret", "AWS_SECRET_ACCESS_KEY": "minio-s3cret"}


def test_compose_file_is_valid():
    result = compose("config", "-q", **SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_its_secrets(missing):
    result = compose("config", "-q", **{k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_production_layout():
    config = yaml.safe_load(compose("config", **SECRETS).stdout)
    services = config["services"]
    assert {"web", "worker-cpu", "worker-gpu", "worker-training", "db", "redis"} <= set(services)
    # Segmentation where it is fastest: on the GPU worker, and on the CPU worker's processes.
    assert queues(services["worker-cpu"]) == {"default", "segment"}
    assert queues(services["worker-gpu"]) == {"gpu", "segment"}
    # Mail on workers of its own, not behind exports and documents.
    assert [name for name in services if "mail" in queues_of(services[name])] == ["worker-mail"]
    assert queues(services["worker-mail"]) == {"mail"}
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    training = services["worker-training"]["command"]
    assert training[training.index("-Q") + 1] == "training" and "solo" in training
    # A model that cannot load fails its lines in production; the starter does not stand in.
    assert services["worker-gpu"]["environment"]["OCRREVIEW_MODEL_FALLBACK"] == "false"
    # Objects in MinIO's bucket, created before migrate (whose checks need it) lets the rest
    # start; no volume is shared between the app's services, so each may run elsewhere.
    assert {"minio", "create-bucket"} <= set(services)
    assert "create-bucket" in services["migrate"]["depends_on"]
    app_services = ["web", "worker-cpu", "worker-gpu", "worker-training", "worker-mail", "migrate"]
    volumes = {
        name: {
            v["source"] if isinstance(v, dict) else v.split(":")[0]
            for v in services[name].get("volumes", [])
        }
        for name in app_services
    }
    for name in app_services:
        others = set().union(*(volumes[o] for o in app_services if o != name))
        assert not volumes[name] & others, name
    assert not volumes["web"]
    environment = services["web"]["environment"]
    assert environment["OCRREVIEW_S3_BUCKET"] == "ocrreview"
    assert environment["OCRREVIEW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert environment["AWS_SECRET_ACCESS_KEY"] == SECRETS["AWS_SECRET_ACCESS_KEY"]
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["web"]["environment"]["REDIS_URL"].startswith("redis://")


def gpus(**env: str) -> dict[str, list[str]]:
    services = yaml.safe_load(compose("config", **SECRETS, **env).stdout)["services"]
    return {
        name: [
            device_id
            for device in service["deploy"]["resources"]["reservations"]["devices"]
            for device_id in device["device_ids"]
        ]
        for name, service in services.items()
        if "deploy" in service
    }


def test_recognition_and_training_get_the_gpus_named_for_them():
    """`count: 1` gave every service the host's first GPU, training's beside recognition's
    even on a host with two. Both default to GPU 0, which every GPU host has."""
    assert gpus() == {"worker-gpu": ["0"], "worker-training": ["0"]}
    assert gpus(OCRREVIEW_TRAINING_GPU="1") == {"worker-gpu": ["0"], "worker-training": ["1"]}
    assert gpus(OCRREVIEW_RECOGNITION_GPU="2", OCRREVIEW_TRAINING_GPU="3") == {
        "worker-gpu": ["2"],
        "worker-training": ["3"],
    }


def seconds(duration: str) -> int:
    """A compose duration such as 1m30s."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def test_services_get_time_to_stop_before_docker_kills_them():
    """Docker's default is 10 s before SIGKILL: it cut gunicorn's 30 s graceful timeout, the
    page kraken was on, and a training run's checkpoint upload."""
    services = yaml.safe_load(compose("config", **SECRETS).stdout)["services"]
    grace = {
        name: seconds(services[name]["stop_grace_period"])
        for name in ("db", "web", "worker-cpu", "worker-gpu", "worker-training", "worker-mail")
    }
    assert grace["web"] > 30
    assert min(grace["worker-cpu"], grace["worker-gpu"]) > 300  # OCRREVIEW_SEGMENTATION_TIMEOUT
    assert grace["worker-training"] == max(grace.values())
    assert all(period > 10 for period in grace.values()), grace


def test_workers_log_at_the_level_the_app_is_given():
    """A worker without --loglevel logs at Celery's WARNING, which hid the retries it logs at
    INFO whatever LOG_LEVEL said."""
    for level in ("INFO", "DEBUG"):
        services = yaml.safe_load(compose("config", **SECRETS, LOG_LEVEL=level).stdout)["services"]
        for name in ("worker-cpu", "worker-gpu", "worker-training", "worker-mail"):
            command = services[name]["command"]
            assert command[command.index("--loglevel") + 1] == level, name
        assert services["web"]["environment"]["LOG_LEVEL"] == level


def test_the_database_is_healthy_once_it_answers_where_the_app_connects():
    """On a new volume the image's set-up server listens on the Unix socket alone: a check on
    the socket let migrate start while it was about to stop for the real one."""
    check = yaml.safe_load(compose("config", **SECRETS).stdout)["services"]["db"]["healthcheck"]
    command = " ".join(check["test"][1:])
    assert command.startswith("pg_isready ")
    assert "-h 127.0.0.1" in command and "-d ocrreview" in command


def test_aws_s3_is_reached_with_the_endpoint_and_public_address_set_empty():
    """README, "Storage": AWS needs no endpoint; `${X:-default}` would put MinIO's back."""
    config = yaml.safe_load(
        compose(
            "config",
            **SECRETS,
            OCRREVIEW_S3_ENDPOINT_URL="",
            OCRREVIEW_S3_PUBLIC_URL="",
            OCRREVIEW_S3_ADDRESSING="virtual",
        ).stdout
    )
    for name in ("web", "worker-cpu", "worker-gpu", "worker-training", "migrate"):
        environment = config["services"][name]["environment"]
        assert not environment["OCRREVIEW_S3_ENDPOINT_URL"], name
        assert not environment["OCRREVIEW_S3_PUBLIC_URL"], name
        assert environment["OCRREVIEW_S3_ADDRESSING"] == "virtual", name


def published(**env: str) -> dict[str, list]:
    config = yaml.safe_load(compose("config", **SECRETS, **env).stdout)
    return {name: s["ports"] for name, s in config["services"].items() if s.get("ports")}


def test_plain_http_and_flower_are_published_to_the_host_alone():
    """Plain HTTP (passwords in clear) for the TLS proxy on the host; Flower has no login."""
    assert published() == {
        "flower": ["127.0.0.1:5555:5555/tcp"],
        "minio": ["127.0.0.1:9000:9000/tcp"],
        "web": ["127.0.0.1:8000:8000/tcp"],
    }
    everywhere = published(OCRREVIEW_PUBLISH_ADDRESS="0.0.0.0")
    assert everywhere["web"] == ["0.0.0.0:8000:8000/tcp"]
    assert everywhere["flower"] == ["127.0.0.1:5555:5555/tcp"]


def test_the_image_leaves_out_what_a_local_run_keeps():
    """`COPY . .` after a `make run` in the same checkout took var/ (the secret key, the demo
    admin's password, the embedded database) into the image's layers."""
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"var/", ".venv/", ".git/", "media/"} <= set(ignored)


def test_compose_s_secrets_file_stays_out_of_the_image_and_the_repository():
    """Compose needs SECRET_KEY and AWS_SECRET_ACCESS_KEY for every command, so they live in
    .env beside docker-compose.yml, which `COPY . .` took into the image's layers."""
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".env", "production.env"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in ignored), name
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name


def test_the_image_runs_as_a_user_who_owns_only_what_the_app_writes():
    """Run as root, a hole in the app or a library was root in its container, and on every
    volume it mounts."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = [
        line.split(None, 1) for line in dockerfile.splitlines() if re.match(r"[A-Z]+ ", line)
    ]
    users = [
        argument.split(":")[0].strip() for keyword, argument in instructions if keyword == "USER"
    ]
    assert users and users[-1] not in ("root", "0")
    # Its folders (the ENV's, under /data; compose's /cache volumes) are its own, its code not.
    owned = " ".join(a for k, a in instructions if k == "RUN" and f"chown -R {users[-1]}" in a)
    assert re.search(r" /data\b", owned) and re.search(r" /cache\b", owned)
    folders = re.findall(r"=(/[^ /]+)/", " ".join(a for k, a in instructions if k == "ENV"))
    assert set(folders) == {"/data"}

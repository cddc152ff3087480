"""Start a real Celery worker process against the real Redis broker and the test database."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from ocrreview.celery import app

ROOT = Path(__file__).resolve().parent.parent


def worker_env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    env["REDIS_URL"] = settings.CELERY_BROKER_URL
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env.update(extra)
    return env


@dataclass
class Worker:
    process: subprocess.Popen
    hostname: str


@contextmanager
def celery_worker(
    queues: str = "default,segment,gpu,training",
    *,
    name: str = "test",
    timeout: float = 60,
    pool: str = "solo",
    cwd: Path = ROOT,
    answers_first: bool = True,
    include: str = "",
    **env: str,
) -> Iterator[Worker]:
    """A worker in its own process group, so kill -9 reaches it and its pool children.
    `pool="prefork"` runs one pool child, as `manage.py serve` starts its main worker.
    A `cwd` other than the repository stands for a worker on another host. With
    `answers_first`, it is yielded once it answers a ping; a solo worker that finds work
    queued at its start answers none until that work is done, so a test that queues first
    waits on the database instead. `include`: modules of tasks the app does not know, registered
    by tests alone."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise RuntimeError("Worker tests need REDIS_URL (the test command sets it).")
    hostname = f"{name}-{os.getpid()}-{time.monotonic_ns()}@localhost"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ocrreview",
            "worker",
            "-Q",
            queues,
            "--pool",
            pool,
            *(["--concurrency", "1"] if pool == "prefork" else []),
            "--hostname",
            hostname,
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            *(["--include", include] if include else []),
        ],
        cwd=cwd,
        env=worker_env(PYTHONPATH=str(ROOT), **env),
        start_new_session=True,
    )
    try:
        if answers_first:
            wait_for_worker(hostname, timeout)
        yield Worker(process, hostname)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_queued(queue: str) -> int:
    """The messages waiting on `queue` in the test's Redis, oldest first, run in this process as
    a worker would run them (and those they queue there), but within the test's transaction,
    which a worker process cannot see: how tests that are not about the worker read the mail it
    sends. A task's retries come at once, as Celery runs them for apply(). Returns how many ran."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    ran = 0
    # Kombu's Redis transport pushes on the left and takes from the right.
    while raw := broker.rpop(queue):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        app.tasks[message["headers"]["task"]].apply(args, kwargs)
        ran += 1
    return ran


def wait_for_worker(hostname: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(destination=[hostname], timeout=1.0):
            return
    raise TimeoutError(f"Celery worker {hostname} did not answer within {timeout} s")


def worker_that_stops_at_start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """A worker started as production starts it, expected to exit before taking a task."""
    finished = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "ocrreview", "worker", "-Q", "start-check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0, finished.stderr
    return finished

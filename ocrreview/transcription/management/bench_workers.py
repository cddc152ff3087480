"""What the pipeline benchmarks share: a collection of their own, Celery workers of their own
(started from the benchmark's environment, so they read its database, broker and storage),
and which model did the reading."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import CommandError
from django.db.models import QuerySet

from ocrreview.celery import app
from ocrreview.corpus.models import Collection, ModelVersion

WORKER_START_SECONDS = 120
# A solo worker stops after its task; a recognition task drains the whole queue, so one that
# is stopped mid-run (Ctrl-C, a timeout) is killed rather than waited for.
WORKER_STOP_SECONDS = 30


def bench_collection(model: str | None, **fields) -> Collection:
    """A new collection; with `model` (a directory or hub id), read by that model rather than
    the site's default."""
    collection = Collection(name=f"bench-{os.getpid()}-{time.time():.0f}", **fields)
    if model:
        collection.model_version, _ = ModelVersion.objects.get_or_create(
            name=f"bench: {model}", defaults={"source": model}
        )
    collection.save()
    return collection


def delete_collection(collection: Collection) -> None:
    """The collection with its documents and their page files."""
    for document in collection.documents.all():
        for page in document.pages.all():
            page.image.delete(save=False)
        document.delete()
    collection.delete()


@contextmanager
def celery_workers(*queues: str) -> Iterator[list[subprocess.Popen]]:
    """A solo worker for each queue, each in a process group of its own (Ctrl-C reaches the
    benchmark alone), stopped however the block ends."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        raise CommandError("The benchmark needs a real broker: set REDIS_URL.")
    workers: dict[str, subprocess.Popen] = {}
    try:
        for queue in queues:
            hostname = f"bench-{queue}-{os.getpid()}@localhost"
            workers[hostname] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "ocrreview", "--quiet", "worker"]
                + ["-Q", queue, "--pool", "solo", "--hostname", hostname]
                + ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
                cwd=settings.BASE_DIR,
                start_new_session=True,
            )
        # They start side by side: each takes seconds to import torch and kraken.
        deadline = time.monotonic() + WORKER_START_SECONDS
        for hostname, process in workers.items():
            while not app.control.ping(destination=[hostname], timeout=1.0):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"The benchmark's worker {hostname} did not start.")
        yield list(workers.values())
    finally:
        _stop(list(workers.values()))


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone with its worker
        os.killpg(process.pid, signum)


def model_report(requests: QuerySet) -> list[str]:
    """Which model read the lines of `requests`, and whether it was the one asked for."""
    first = requests.select_related("model_version", "line__model_version").first()
    ran, asked = first.line.model_version, first.model_version
    report = [f"model: {ran.name} ({ran.source})"]
    if ran != asked:
        report.append(f"  ({asked.name} could not be loaded; the starter model ran)")
    return report

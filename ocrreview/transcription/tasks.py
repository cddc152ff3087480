"""Recognition tasks (the `gpu` queue, see ocrreview/celery.py). Thin wrappers: the work
and its guarantees are in services.py."""

import ctypes
import logging
import multiprocessing

import redis
from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from celery.worker import state as worker_state
from django.conf import settings

from ocrreview.sweep import consumes, start_sweeping
from ocrreview.transcription import services

logger = logging.getLogger(__name__)

KICK_KEY = "ocrreview:recognition-kick"
# A kick that never ran (its message lost) stops holding back new ones after this long.
KICK_TTL_MS = 60_000


def _redis() -> redis.Redis | None:
    broker = settings.CELERY_BROKER_URL
    return redis.Redis.from_url(broker) if broker.startswith(("redis://", "rediss://")) else None


def kick() -> None:
    """Ask a worker to drain the queue, unless a kick is already waiting: an upload of 200
    files queues 200 documents but needs one kick."""
    client = _redis()
    if client is None or client.set(KICK_KEY, "1", nx=True, px=KICK_TTL_MS):
        recognize_pending.delay()


@shared_task(bind=True, autoretry_for=(Exception,), retry_backoff=5, max_retries=None)
def recognize_pending(self) -> int:
    """Drain the recognition queue, a chunk of lines (from any documents) at a time."""
    client = _redis()
    if client is not None:
        # From here on, newly queued lines need a kick of their own.
        client.delete(KICK_KEY)
    worker = self.request.hostname or "worker"
    total = 0
    while not _stopping() and (
        claimed := services.do_recognize_pending(worker, should_stop=_stopping)
    ):
        total += claimed
    return total


# Only the worker's main process hears SIGTERM or Ctrl+C; a prefork child reads on. The main
# process imports this module before its pool forks, so this memory is shared with every child.
_shutting_down = multiprocessing.RawValue(ctypes.c_bool, False)


@worker_shutting_down.connect
def _tell_the_pool(**kwargs) -> None:
    _shutting_down.value = True


def _stopping() -> bool:
    """Whether this worker is shutting down (SIGTERM, Ctrl+C): a warm
    shutdown waits for the running task, which would otherwise drain the whole queue first."""
    return (
        _shutting_down.value
        or worker_state.should_stop is not None
        or worker_state.should_terminate is not None
    )


def sweep() -> None:
    """Drain what no live worker is reading (see ocrreview/sweep.py). The kick's dedupe key is
    not consulted: it may belong to a kick that died with a worker. The message expires by
    the next sweep, so sweeps do not pile up behind a busy worker."""
    if services.unattended_work_exists():
        recognize_pending.apply_async(expires=settings.OCRREVIEW_SWEEP_SECONDS)


@worker_ready.connect
def _sweep_while_serving(sender, **kwargs) -> None:
    # Lines a crashed worker held are picked up as soon as a worker that reads them is back,
    # and while it runs, whichever worker dies.
    if consumes(sender, "gpu"):
        start_sweeping("recognition", sweep)

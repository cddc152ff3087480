"""Recognition tasks (the `gpu` queue, see ocrreview/celery.py). Thin wrappers: the work
and its guarantees are in services.py."""

import logging
from datetime import timedelta

import redis
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from ocrreview.transcription import services

logger = logging.getLogger(__name__)

SWEEP_KEY = "ocrreview:recognition-sweep"
KICK_KEY = "ocrreview:recognition-kick"
# A kick that never ran (its message lost) stops holding back new ones after this long.
KICK_TTL_MS = 60_000


def _redis() -> redis.Redis | None:
    broker = settings.CELERY_BROKER_URL
    return redis.Redis.from_url(broker) if broker.startswith("redis://") else None


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
    while claimed := services.do_recognize_pending(worker):
        total += claimed
    _sweep_after_leases()
    return total


def _sweep_after_leases() -> None:
    """Lines held by other workers come back if those workers die; look again when their
    leases run out. One sweep is scheduled at a time, so idle kicks do not pile up."""
    expiry = services.next_lease_expiry()
    if expiry is None:
        return
    delay = max(1.0, (expiry - timezone.now()).total_seconds() + 1)
    client = _redis()
    if client is not None and not client.set(SWEEP_KEY, "1", nx=True, px=int(delay * 1000)):
        return
    recognize_pending.apply_async(eta=timezone.now() + timedelta(seconds=delay))


@worker_ready.connect
def _resume_after_restart(sender, **kwargs) -> None:
    # Lines a crashed worker held are picked up as soon as a worker is back.
    recognize_pending.delay()

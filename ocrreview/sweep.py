"""A periodic sweep in every Celery worker, for work whose worker died, and the beat with
which a live worker tells the sweeps that its work is not dead, only slow.

A task message held by a worker killed with SIGKILL comes back from Redis only after its
visibility timeout (an hour), so what brings back a dead worker's work cannot be a message
either: each live worker looks for it on a timer of its own, at start-up and then every
OCRREVIEW_SWEEP_SECONDS. It is a thread rather than the worker's own timer, which a solo
pool runs only between tasks, and a training task takes hours.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery.signals import worker_shutdown
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.db.models.functions import Now

logger = logging.getLogger(__name__)


def consumes(consumer, queue: str) -> bool:
    """Whether the worker that `worker_ready` announced reads `queue` (its -Q option)."""
    return queue in consumer.app.amqp.queues.consume_from


def lost_after() -> timedelta:
    """How old a queued task's message is when the sweep takes it for lost and sends another
    (OCRREVIEW_LOST_MESSAGE_SECONDS)."""
    return timedelta(seconds=settings.OCRREVIEW_LOST_MESSAGE_SECONDS)


class LeftForLater(Exception):
    """Raised by a send_lost `send` that may not send the row now: its claim is undone, and a
    later sweep finds it again."""


def send_lost(
    queued: QuerySet, send: Callable[[Any], None], lost: QuerySet | None = None, **claim: Any
) -> int:
    """Send the message of each row of `lost` (of `queued`: the rows whose message is out, or
    never went, and whose work is not done) queued for lost_after() again, with `send(row)`.
    Each is claimed by one conditional update of its queued_at (and of the fields `claim`
    sets), in the transaction that sends it: of two sweeps that found it, the second waits for
    the first's and then matches nothing, as it does a row that left `queued` meanwhile; a
    broker down (`send` raising) leaves it unclaimed for the next sweep, as LeftForLater does
    without ending this one. How many were sent."""
    lost = (queued if lost is None else lost).filter(queued_at__lt=Now() - lost_after())
    sent = 0
    for row in lost:
        try:
            with transaction.atomic():
                if queued.filter(pk=row.pk, queued_at=row.queued_at).update(
                    queued_at=Now(), **claim
                ):
                    send(row)
                    sent += 1
        except LeftForLater:
            continue
    return sent


def start_sweeping(name: str, sweep: Callable[[], None], interval: float | None = None) -> None:
    """Run `sweep` now and then every `interval` seconds (OCRREVIEW_SWEEP_SECONDS) until the
    worker shuts down."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                sweep()
            except Exception:
                # A database or broker outage must not end the sweeps that follow it.
                logger.exception("The %s sweep failed; trying again in %s s", name, interval)
            finally:
                connections.close_all()
            if stop.wait(interval):
                return

    interval = interval or settings.OCRREVIEW_SWEEP_SECONDS
    worker_shutdown.connect(lambda **kwargs: stop.set(), weak=False)
    threading.Thread(target=loop, name=f"sweep-{name}", daemon=True).start()


@contextmanager
def beating(
    beat: Callable[[], object], interval: float, name: str, at_most: float | None = None
) -> Iterator[None]:
    """Call `beat` (renew a claim's lease or heartbeat) from a thread every `interval` seconds
    while the body runs, so that a sweep takes the work over only from a worker that died,
    never from one busy with a long step: a model's download, an evaluation, an upload. With
    `at_most` seconds, a body that hangs lets its work go after that long."""
    stop = threading.Event()
    until = None if at_most is None else time.monotonic() + at_most

    def loop() -> None:
        while not stop.wait(interval) and (until is None or time.monotonic() < until):
            try:
                beat()
            except DatabaseError:
                logger.exception("No heartbeat for %s", name)
            finally:
                connections.close_all()

    thread = threading.Thread(target=loop, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

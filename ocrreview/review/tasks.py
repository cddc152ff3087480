"""Thin Celery wrappers; the work is in saves_undo."""

from celery import shared_task
from celery.signals import worker_ready

from ocrreview.review import saves_undo
from ocrreview.sweep import consumes, start_sweeping


# Acknowledged once it ran: a worker lost in the middle gives the message back, and the undo
# goes on after the batches it committed.
@shared_task
def undo_saves(undo_id: int) -> None:
    saves_undo.run(undo_id)


@worker_ready.connect
def _sweep_while_serving(sender, **kwargs) -> None:
    # An undo whose message was lost is sent again by whichever worker of its queue is alive.
    if consumes(sender, "default"):
        start_sweeping("saves-undo", saves_undo.requeue_lost)

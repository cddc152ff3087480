"""Thin Celery wrappers; the work is in saves_undo."""

from celery import shared_task

from ocrreview.review import saves_undo


# Acknowledged once it ran: a worker lost in the middle gives the message back, and the undo
# goes on after the batches it committed.
@shared_task
def undo_saves(undo_id: int) -> None:
    saves_undo.run(undo_id)

"""One task at a time works on a document while it is FETCHING its IIIF images or SEGMENTING
its pages. The task claims the document under a token of its own run, which its retries carry,
in one conditional update, claims it again as a sign of life before each step (a canvas, a page),
and writes only while it holds the claim. Work silent for longer than a step may take lost
its message or its worker: the sweep queues another task, which takes the work over; the old
one, should it come back, finds the claim gone and stops. Its signs of life are written and
compared by the database's clock (db_clock), as reviewers' leases are: a sweeping worker whose
clock ran ahead took live work over, and failed documents whose work went on."""

from django.db.models import Case, F, Q, When

from ocrreview.corpus.models import Document
from ocrreview.db_clock import DatabaseNow, database_now_plus

# Takeovers in a row with no step done in between, after which the document fails.
MAX_TAKEOVERS = 3


def _silent(step_seconds: float) -> Q:
    # NULL: queued before work gave signs of life.
    return Q(work_alive_at__lt=database_now_plus(-step_seconds)) | Q(work_alive_at__isnull=True)


def claim(document_id: int, task: str, status: str, step_seconds: float) -> bool:
    """Make `task` the document's one worker while it is in `status`, and mark it alive;
    False when another task holds it and is alive, or the document is past `status`."""
    free = Q(worked_by=task) | Q(worked_by="") | _silent(step_seconds)
    taking_over = ~Q(worked_by=task) & ~Q(worked_by="")
    claimed = Document.objects.filter(free, pk=document_id, status=status)
    return bool(
        claimed.update(
            worked_by=task,
            work_alive_at=DatabaseNow(),
            work_takeovers=F("work_takeovers") + Case(When(taking_over, then=1), default=0),
        )
    )


def postpone(document_id: int, task: str, seconds: float) -> None:
    """The task tries again in `seconds`: silent until then, its work is not lost."""
    Document.objects.filter(pk=document_id, worked_by=task).update(
        work_alive_at=database_now_plus(seconds)
    )


def made_progress(document_id: int, task: str) -> None:
    """A step was done: the takeovers counted so far were of work that went on, not of a
    step that kills its worker each time."""
    Document.objects.filter(pk=document_id, worked_by=task).update(work_takeovers=0)


def unclaimed() -> dict:
    """The fields of a document whose work starts anew, to be claimed by the task queued."""
    return {"worked_by": "", "work_alive_at": DatabaseNow(), "work_takeovers": 0}


def lost(status: str, step_seconds: float, gave_up: str) -> list[int]:
    """The documents in `status` whose work is silent, for the sweep to queue again; one whose
    work was taken over MAX_TAKEOVERS times already fails instead, with the error `gave_up`."""
    silent = Document.objects.filter(_silent(step_seconds), status=status)
    silent.filter(work_takeovers__gte=MAX_TAKEOVERS).update(
        status=Document.Status.FAILED, error=gave_up
    )
    return list(silent.values_list("pk", flat=True))

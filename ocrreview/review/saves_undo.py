"""Undoing a person's saves: at once where it is small, on a worker where it is not.

Each line undone is a locked save of its own (actions.do_revert_user_saves): measured on this
2-core machine under load, 2,000 lines took 86 s and 5,000 lines 238 s (48 ms a line). A
volunteer's collection-wide find and replace, or a vandal's evening, is thousands of lines,
minutes of work that a request must not hold (a proxy's timeout would cut it off and leave
the coordinator not knowing what was done). Up to one
batch (REVERT_BATCH lines) is undone within the request, as before; more is queued as a
SavesUndo, which a worker runs a batch at a time while the coordinator's page shows the lines
done."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone
from kombu.exceptions import OperationalError

from ocrreview.corpus.models import Collection
from ocrreview.review import actions
from ocrreview.review.models import Correction, SavesUndo
from ocrreview.sweep import send_lost

logger = logging.getLogger(__name__)

# The most lines an undo decides on within the request that asks for it.
UNDO_NOW_LINES = actions.REVERT_BATCH

# An undo queued or running for OCRREVIEW_LOST_MESSAGE_SECONDS (sweep.lost_after) that no
# worker holds had its message lost (a broker restarted without its data, or its worker's
# unacknowledged message with it) and is sent again. Best as long as an export may wait queued
# (training.models.EXPORT_SILENCE_SECONDS, its default): an undo may wait behind one on the
# `default` queue. A message sent again beside one that was only slow is harmless: run() holds
# the undo's lock and goes on after its last batch.
UNFINISHED = (SavesUndo.Status.QUEUED, SavesUndo.Status.RUNNING)

# The advisory lock run() holds while it undoes, as pg_locks shows a bigint key: its high and
# low halves, in this database.
LOCK_KEY = "saves-undo:"
HELD = f"""EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND (classid::bigint << 32) | objid::bigint
        = hashtextextended('{LOCK_KEY}' || review_savesundo.id, 0)
)"""


class UndoNotQueued(Exception):
    """The broker could not be reached; nothing was undone."""


def do_undo_saves(collection: Collection, user, since, actor) -> actions.UserRevert | SavesUndo:
    """Undo `user`'s saves since `since` now, or queue the undo for a worker where it decides
    on more than UNDO_NOW_LINES lines: what it did, or the undo queued. Saves the person makes
    from now on are theirs to keep: the undo stops at the time it is asked for."""
    until = timezone.now()
    total = actions.lines_saved_by(collection, user, since, until)
    if total <= UNDO_NOW_LINES:
        return actions.do_revert_user_saves(collection, user, since, actor, until=until)
    undo = SavesUndo.objects.create(
        collection=collection,
        person=user,
        since=since,
        actor=actor,
        lines_total=total,
        until=until,
    )
    try:
        _send(undo.pk)
    except OperationalError as exc:
        logger.warning("undo %s not queued: %s", undo.pk, exc)
        undo.delete()
        raise UndoNotQueued from exc
    return undo


def _send(undo_id: int) -> None:
    from ocrreview.review.tasks import undo_saves

    undo_saves.delay(undo_id)


def requeue_lost() -> int:
    """The `default` workers' sweep (ocrreview/sweep.py): send the message of each undo queued
    or running for sweep.lost_after() that no worker holds again (sweep.send_lost). How many
    were sent."""
    queued = SavesUndo.objects.filter(status__in=UNFINISHED)
    return send_lost(
        queued,
        _send_again,
        queued.alias(held=RawSQL(HELD, [], output_field=BooleanField())).filter(held=False),
    )


def _send_again(undo: SavesUndo) -> None:
    _send(undo.pk)
    logger.warning("undo %s sent again: its message was lost", undo.pk)


def run(undo_id: int) -> None:
    """A worker's part: undo the saves a batch at a time, each batch's outcome recorded with
    it. A worker lost in the middle leaves the batches committed recorded; the task's message
    comes back, and this goes on after the last of them. The message also comes back to
    another worker while the first still runs, when that takes longer than the broker's
    visibility timeout (an hour: about 75,000 lines): that one leaves the undo to the first,
    which would otherwise see the lines both undid as changed since, by the coordinator."""
    with _held(undo_id) as held:
        if held:
            _run(undo_id)


@contextmanager
def _held(undo_id: int) -> Iterator[bool]:
    """Whether this session holds the undo's lock (released when done, or by PostgreSQL when
    the worker's connection goes)."""
    key = f"{LOCK_KEY}{undo_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        (held,) = cursor.fetchone()
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def _run(undo_id: int) -> None:
    found = SavesUndo.objects.select_related("collection", "person", "actor").filter(pk=undo_id)
    undo = found.first()
    if undo is None or undo.finished:
        return
    SavesUndo.objects.filter(pk=undo_id).update(status=SavesUndo.Status.RUNNING)

    def record(part: actions.UserRevert, last_line_id: int) -> None:
        locked = SavesUndo.objects.select_for_update().get(pk=undo_id)
        locked.reverted += part.reverted
        locked.requeued += part.requeued
        locked.skipped += [[left.newest.pk, left.reason] for left in part.skipped]
        locked.lines_done += len(part.reverted) + len(part.skipped)
        locked.last_line_id = last_line_id
        locked.save(
            update_fields=[
                "reverted", "requeued", "skipped", "lines_done", "last_line_id",
            ]
        )  # fmt: skip

    try:
        actions.do_revert_user_saves(
            undo.collection,
            undo.person,
            undo.since,
            undo.actor,
            until=undo.until,
            after_line_id=undo.last_line_id,
            on_batch=record,
        )
    except Exception as exc:
        SavesUndo.objects.filter(pk=undo_id).update(
            status=SavesUndo.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise
    SavesUndo.objects.filter(pk=undo_id).update(
        status=SavesUndo.Status.DONE, finished_at=timezone.now()
    )


def outcome(undo: SavesUndo) -> actions.UserRevert:
    """What the undo has done so far, as actions.UserRevert."""
    newest = Correction.objects.select_related("user").in_bulk([pk for pk, _ in undo.skipped])
    return actions.UserRevert(
        reverted=list(undo.reverted),
        requeued=list(undo.requeued),
        skipped=[actions.LeftAlone(newest[pk], reason) for pk, reason in undo.skipped],
    )

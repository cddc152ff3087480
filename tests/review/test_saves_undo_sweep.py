"""An undo whose task message was lost (Redis restarted without its data, with the worker that
held it or before any took it) is sent again by the `default` workers' sweep once it is
OCRREVIEW_LOST_MESSAGE_SECONDS old and no worker holds it; two sweeps send it once, and an undo run twice (its
message sent again beside one that was only slow) is undone once."""

import json
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.db.models.functions import Now
from kombu.exceptions import OperationalError

from ocrreview.corpus.models import CollectionEvent
from ocrreview.review import actions, saves_undo
from ocrreview.review.models import Correction, SavesUndo
from ocrreview.sweep import lost_after
from tests.db_locks import end_session, once_another_session_commits
from tests.review.test_saves_undo import texts, wait_for
from tests.workers import celery_worker

UNDONE = ["I received your", "letter of the 3d", "inst and"]
NOT_UNDONE = ["I RECEIVED YOUR", "LETTER OF THE 3D", "inst and"]
OLD = lost_after() + timedelta(minutes=1)


def queued_messages(broker) -> list[int]:
    """The undos whose message waits in the `default` queue, in the order a worker takes
    them (kombu pushes each to the head of the queue's Redis list and takes from its tail)."""
    bodies = [json.loads(raw)["headers"] for raw in reversed(broker.lrange("default", 0, -1))]
    return [int(headers["argsrepr"].strip("(),")) for headers in bodies]


def an_undo(letters, person, alice, since, *, age=OLD, **fields) -> SavesUndo:
    total = actions.lines_saved_by(letters, person, since)
    made = SavesUndo.objects.create(
        collection=letters, person=person, since=since, actor=alice, lines_total=total, **fields
    )
    SavesUndo.objects.filter(pk=made.pk).update(queued_at=Now() - age)
    return SavesUndo.objects.get(pk=made.pk)


@pytest.fixture
def other_session():
    """A second connection to the test database: another worker or sweep."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as made:
        yield made


def hold_lock(session, undo: SavesUndo) -> None:
    """What a worker running the undo holds (saves_undo._held)."""
    key = f"{saves_undo.LOCK_KEY}{undo.pk}"
    session.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])


def test_an_old_undo_nobody_holds_is_sent_again_once(alice, bob, letters, bobs_saves, broker):
    lost = an_undo(letters, bob, alice, bobs_saves)
    young = an_undo(letters, bob, alice, bobs_saves, age=timedelta(minutes=1))
    an_undo(letters, bob, alice, bobs_saves, status="done")
    an_undo(letters, bob, alice, bobs_saves, status="failed")
    assert saves_undo.requeue_lost() == 1
    assert queued_messages(broker) == [lost.pk]
    sent = SavesUndo.objects.get(pk=lost.pk)
    assert sent.queued_at > lost.queued_at and sent.status == "queued"
    assert SavesUndo.objects.get(pk=young.pk).queued_at == young.queued_at
    # Sent again, it waits as long again before the next sweep sends it once more.
    assert saves_undo.requeue_lost() == 0
    assert queued_messages(broker) == [lost.pk]


def test_the_time_after_which_an_undo_is_lost_is_the_setting(
    alice, bob, letters, bobs_saves, broker, settings
):
    settings.OCRREVIEW_LOST_MESSAGE_SECONDS = 3600
    waiting = an_undo(letters, bob, alice, bobs_saves, age=timedelta(minutes=59))
    assert saves_undo.requeue_lost() == 0
    settings.OCRREVIEW_LOST_MESSAGE_SECONDS = 120
    assert saves_undo.requeue_lost() == 1
    assert queued_messages(broker) == [waiting.pk]


def test_a_running_undo_is_sent_again_only_once_its_worker_let_go(
    alice, bob, letters, bobs_saves, broker, other_session
):
    running = an_undo(letters, bob, alice, bobs_saves, status="running")
    hold_lock(other_session, running)
    assert saves_undo.requeue_lost() == 0  # its worker undoes it still, however long
    assert queued_messages(broker) == []
    end_session(other_session)  # its worker died, and its lock with its connection
    assert saves_undo.requeue_lost() == 1
    assert queued_messages(broker) == [running.pk]


def test_a_lock_of_another_undo_is_no_claim_on_this_one(
    alice, bob, letters, bobs_saves, broker, other_session
):
    lost = an_undo(letters, bob, alice, bobs_saves, status="running")
    other = an_undo(letters, bob, alice, bobs_saves, age=timedelta(0))
    hold_lock(other_session, other)
    assert saves_undo.requeue_lost() == 1
    assert queued_messages(broker) == [lost.pk]


@pytest.mark.django_db(transaction=True)
def test_of_two_sweeps_at_once_only_one_sends_it(
    alice, bob, letters, lines, bobs_saves, broker, other_session
):
    """The other sweep has claimed the undo and not yet committed (it is sending the
    message): this one waits for its row, then finds it claimed and sends nothing."""
    lost = an_undo(letters, bob, alice, bobs_saves)
    other_session.execute("BEGIN")
    claimed = other_session.execute(
        "UPDATE review_savesundo SET queued_at = now() WHERE id = %s AND queued_at = %s",
        [lost.pk, lost.queued_at],
    )
    assert claimed.rowcount == 1
    assert once_another_session_commits(saves_undo.requeue_lost, other_session) == 0
    assert queued_messages(broker) == []


def test_with_the_broker_down_the_undo_stays_unclaimed(
    alice, bob, letters, bobs_saves, broker_down
):
    lost = an_undo(letters, bob, alice, bobs_saves)
    with pytest.raises(OperationalError):
        saves_undo.requeue_lost()
    # The claim went with the send: the next sweep, with the broker back, sends it.
    assert SavesUndo.objects.get(pk=lost.pk).queued_at == lost.queued_at


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_sweeps_a_lost_undo_and_runs_it(alice, bob, letters, lines, bobs_saves, broker):
    """Nothing in the queue (Redis restarted): the worker's own sweep, at its start, sends it,
    and the worker undoes it."""
    lost = an_undo(letters, bob, alice, bobs_saves)
    with celery_worker("default", name="sweep", answers_first=False):
        wait_for(lambda: SavesUndo.objects.filter(pk=lost.pk, status="done").exists(), 120)
    done = SavesUndo.objects.get(pk=lost.pk)
    assert (done.lines_done, len(done.reverted), len(done.skipped)) == (3, 2, 1)
    assert texts(lines)[1:] == UNDONE


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_undo_sent_twice_is_undone_once(alice, bob, charlie, letters, lines, bobs_saves, broker):
    """The message was only slow (a long export ahead of it), and the sweep sent another:
    the first run undoes, the second finds it done and leaves it."""
    slow = an_undo(letters, bob, alice, bobs_saves)
    saves_undo._send(slow.pk)  # the first message, still in the queue
    assert saves_undo.requeue_lost() == 1
    # After both, an undo of nothing (charlie saved nothing here): the solo worker takes its
    # messages one at a time, in order, so once it is done both runs of the first are over.
    last = an_undo(letters, charlie, alice, bobs_saves, age=timedelta(0))
    saves_undo._send(last.pk)
    assert queued_messages(broker) == [slow.pk, slow.pk, last.pk]
    with celery_worker("default", name="twice", answers_first=False):
        wait_for(lambda: SavesUndo.objects.filter(pk=last.pk, status="done").exists(), 120)
    done = SavesUndo.objects.get(pk=slow.pk)
    assert (done.status, done.lines_done, done.lines_total) == ("done", 3, 3)
    assert sorted(done.reverted) == [lines[1].pk, lines[2].pk] and len(done.skipped) == 1
    assert texts(lines)[1:] == UNDONE
    assert CollectionEvent.objects.filter(event_type=CollectionEvent.Type.SAVES_UNDONE).count() == 1
    assert Correction.objects.filter(action=Correction.Action.REVERT).count() == 2

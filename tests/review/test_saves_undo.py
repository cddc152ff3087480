"""An undo of a person's saves over more lines than a request should hold runs on a real
Celery worker, a batch at a time, its progress on the coordinator's page; a small one is done
within the request, as before."""

import time

import psycopg
import pytest
from django.db import connection
from django.urls import reverse

from ocrreview.corpus.models import CollectionEvent, Line
from ocrreview.review import actions, saves_undo
from ocrreview.review.models import SavesUndo
from tests.db_locks import end_session
from tests.workers import celery_worker

S = Line.Status


def wait_for(found, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(0.1)
    raise TimeoutError("not there in time")


def undo(client, collection, bob, since):
    url = reverse("review_revert_user", args=[collection.pk])
    return client.post(url, {"user": bob.pk, "since": since.isoformat()})


def texts(lines):
    return [Line.objects.get(pk=line.pk).text for line in lines]


def test_a_small_undo_is_done_within_the_request(client, alice, bob, letters, lines, bobs_saves):
    client.force_login(alice)
    response = undo(client, letters, bob, bobs_saves)
    assert "done=1" in response["Location"]
    assert not SavesUndo.objects.exists()
    assert texts(lines)[1:] == ["I received your", "letter of the 3d", "inst and"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_large_undo_runs_on_a_worker_and_its_page_follows_it(
    client, alice, bob, letters, lines, bobs_saves, large, broker
):
    client.force_login(alice)
    response = undo(client, letters, bob, bobs_saves)
    queued = SavesUndo.objects.get()
    assert response["Location"] == reverse("review_saves_undo", args=[letters.pk, queued.pk])
    # The request undid nothing: the worker will.
    assert texts(lines)[1:] == ["I RECEIVED YOUR", "LETTER OF THE 3D", "inst and"]
    assert (queued.status, queued.lines_total, queued.lines_done) == ("queued", 3, 0)
    waiting = client.get(response["Location"])
    html = waiting.content.decode()
    assert 'http-equiv="refresh"' in html and "Waiting for a worker" in html
    assert '<progress max="3" value="0"' in html

    with celery_worker("default", name="undo"):
        wait_for(lambda: SavesUndo.objects.filter(pk=queued.pk, status="done").exists())
    done = SavesUndo.objects.get()
    assert (done.lines_done, done.last_line_id) == (3, lines[3].pk)
    assert sorted(done.reverted) == [lines[1].pk, lines[2].pk]
    assert done.requeued == [lines[2].pk]
    assert texts(lines)[1:] == ["I received your", "letter of the 3d", "inst and"]
    assert Line.objects.get(pk=lines[2].pk).status == S.NEEDS_REVIEW
    assert CollectionEvent.objects.filter(event_type=CollectionEvent.Type.SAVES_UNDONE).count() == 1

    shown = client.get(reverse("review_saves_undo", args=[letters.pk, done.pk]), follow=True)
    html = shown.content.decode()
    assert "2 lines put back" in html and "Left as they are (1)" in html
    assert "refresh" not in html


def test_the_worker_records_each_batch_as_it_commits_it_and_goes_on_after_the_last(
    alice, bob, letters, lines, bobs_saves, monkeypatch
):
    """A worker lost in its second batch: the next takes the undo over after the first."""
    monkeypatch.setattr(actions, "REVERT_BATCH", 1)
    total = actions.lines_saved_by(letters, bob, bobs_saves)
    undo_ = SavesUndo.objects.create(
        collection=letters, person=bob, since=bobs_saves, actor=alice, lines_total=total
    )

    class Lost(Exception):
        pass

    original = actions.do_revert_user_saves

    def lost_in_the_second_batch(*args, on_batch, **kwargs):
        batches = []

        def record(part, last):
            batches.append(last)
            on_batch(part, last)
            if len(batches) == 2:
                raise Lost

        return original(*args, on_batch=record, **kwargs)

    monkeypatch.setattr(actions, "do_revert_user_saves", lost_in_the_second_batch)
    with pytest.raises(Lost):
        saves_undo.run(undo_.pk)
    monkeypatch.setattr(actions, "do_revert_user_saves", original)
    # The first batch is committed and recorded; the second went with its transaction.
    lost = SavesUndo.objects.get()
    assert (lost.lines_done, lost.last_line_id, lost.reverted) == (1, lines[1].pk, [lines[1].pk])
    assert texts(lines)[1:3] == ["I received your", "LETTER OF THE 3D"]

    # A worker killed leaves it running, and its message comes back to another.
    SavesUndo.objects.filter(pk=undo_.pk).update(status="running", error="")
    saves_undo.run(undo_.pk)
    done = SavesUndo.objects.get()
    assert (done.status, done.lines_done, done.last_line_id) == ("done", 3, lines[3].pk)
    assert done.reverted == [lines[1].pk, lines[2].pk] and len(done.skipped) == 1
    assert texts(lines)[1:] == ["I received your", "letter of the 3d", "inst and"]
    # One event a batch: three batches of one line, one of them left alone.
    assert CollectionEvent.objects.filter(event_type=CollectionEvent.Type.SAVES_UNDONE).count() == 2


def test_an_undo_delivered_again_while_a_worker_runs_it_is_left_to_that_worker(
    alice, bob, letters, lines, bobs_saves
):
    """The broker gives the message to a second worker after its visibility timeout, while
    the first still undoes: the second does nothing, rather than count the lines the first
    undid as changed since by the coordinator."""
    total = actions.lines_saved_by(letters, bob, bobs_saves)
    undo_ = SavesUndo.objects.create(
        collection=letters, person=bob, since=bobs_saves, actor=alice, lines_total=total
    )
    first_worker = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    key = f"saves-undo:{undo_.pk}"
    with first_worker:
        first_worker.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        saves_undo.run(undo_.pk)
        again = SavesUndo.objects.get()
        assert (again.status, again.lines_done, again.skipped) == ("queued", 0, [])
        assert texts(lines)[1:] == ["I RECEIVED YOUR", "LETTER OF THE 3D", "inst and"]
        end_session(first_worker)
    saves_undo.run(undo_.pk)  # the first worker gone, its message comes back
    done = SavesUndo.objects.get()
    assert (done.status, done.lines_done) == ("done", total)


def test_with_the_broker_down_nothing_is_undone_and_the_coordinator_is_told(
    client, alice, bob, letters, lines, bobs_saves, large, broker_down
):
    client.force_login(alice)
    response = undo(client, letters, bob, bobs_saves)
    assert response.status_code == 503
    assert "the task queue is down" in response.content.decode()
    assert not SavesUndo.objects.exists()
    assert texts(lines)[1:] == ["I RECEIVED YOUR", "LETTER OF THE 3D", "inst and"]


def test_a_failed_undo_says_how_far_it_went(client, alice, bob, letters, bobs_saves):
    failed = SavesUndo.objects.create(
        collection=letters,
        person=bob,
        since=bobs_saves,
        actor=alice,
        lines_total=3,
        lines_done=1,
        status="failed",
        error="the database went away",
    )
    client.force_login(alice)
    html = client.get(reverse("review_saves_undo", args=[letters.pk, failed.pk])).content.decode()
    assert "stopped after 1 of 3 lines: the database went away" in html
    assert "refresh" not in html


def test_only_the_collections_admins_see_an_undo(
    client, alice, bob, charlie, letters, ledgers, bobs_saves
):
    running = SavesUndo.objects.create(
        collection=letters, person=bob, since=bobs_saves, actor=alice, lines_total=3
    )
    url = reverse("review_saves_undo", args=[letters.pk, running.pk])
    for reviewer in (bob, charlie):
        client.force_login(reviewer)
        assert client.get(url).status_code in (403, 404)
    client.force_login(alice)
    assert client.get(url).status_code == 200
    other = reverse("review_saves_undo", args=[ledgers.pk, running.pk])
    assert client.get(other).status_code == 404
    assert client.get(reverse("review_saves_undo", args=[letters.pk, 10**9])).status_code == 404


def test_saves_the_person_makes_after_the_undo_is_asked_for_are_kept(
    alice, bob, letters, lines, bobs_saves, large, broker
):
    """bob, told of the convention, saves line 3 again before a worker gets to the undo: the
    coordinator confirmed what the preview showed, not that."""
    queued = saves_undo.do_undo_saves(letters, bob, bobs_saves, alice)
    assert isinstance(queued, SavesUndo) and queued.until is not None
    version = Line.objects.get(pk=lines[2].pk).version
    actions.do_save_line(lines[2], bob, "letter of the third", expected_version=version)
    saves_undo.run(queued.pk)
    assert texts(lines)[1:] == ["I received your", "letter of the third", "inst and"]
    done = SavesUndo.objects.get()
    assert done.reverted == [lines[1].pk] and len(done.skipped) == 2

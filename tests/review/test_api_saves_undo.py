"""POST /api/collections/<id>/corrections/revert/ over more lines than a request should hold:
queued for a real Celery worker as the web's undo is (test_saves_undo.py), answered 202 with
the job, which GET .../corrections/revert/<job>/ follows; a small undo is answered at once, as
before (test_api_corrections_revert.py)."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import CollectionEvent, Line, Membership
from ocrreview.review.models import SavesUndo
from tests import factories
from tests.factories import post_json
from tests.factories import token_headers as auth
from tests.review.test_saves_undo import texts, wait_for
from tests.workers import celery_worker

S = Line.Status
UNDONE = ["I received your", "letter of the 3d", "inst and"]
NOT_UNDONE = ["I RECEIVED YOUR", "LETTER OF THE 3D", "inst and"]


def url(collection) -> str:
    return reverse("api_corrections_revert", args=[collection.pk])


def job_url(collection, job_id) -> str:
    return reverse("api_corrections_revert_job", args=[collection.pk, job_id])


def get(client, path: str, user):
    return client.get(path, headers=auth(user))


def undo(client, collection, admin, person, since):
    return post_json(
        client, url(collection), admin, {"user": person.pk, "since": since.isoformat()}
    )


def a_job(collection, person, since, actor, **fields) -> SavesUndo:
    return SavesUndo.objects.create(
        collection=collection, person=person, since=since, actor=actor, lines_total=3, **fields
    )


def test_a_small_undo_is_still_answered_with_what_it_did(
    client, alice, bob, letters, lines, bobs_saves
):
    answer = undo(client, letters, alice, bob, bobs_saves)
    assert answer.status_code == 200
    assert answer.json()["reverted"] == [lines[1].pk, lines[2].pk]
    assert not SavesUndo.objects.exists()
    assert texts(lines)[1:] == UNDONE


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_large_undo_is_queued_and_its_job_followed_until_done(
    client, alice, bob, letters, lines, bobs_saves, large, broker
):
    answer = undo(client, letters, alice, bob, bobs_saves)
    assert answer.status_code == 202
    job = answer.json()
    queued = SavesUndo.objects.get()
    assert job["url"] == f"http://testserver{job_url(letters, queued.pk)}"
    assert answer["Location"] == job["url"]
    assert (job["id"], job["state"], job["user"]) == (queued.pk, "queued", bob.pk)
    assert (job["lines_total"], job["lines_done"], job["result"]) == (3, 0, None)
    assert texts(lines)[1:] == NOT_UNDONE  # the worker will undo them
    assert get(client, job["url"], alice).json() == job

    with celery_worker("default", name="api-undo"):
        wait_for(lambda: SavesUndo.objects.filter(pk=queued.pk, status="done").exists())
    done = get(client, job["url"], alice)
    assert done.status_code == 200
    body = done.json()
    assert (body["state"], body["lines_done"], body["error"]) == ("done", 3, "")
    assert (body["reverted_count"], body["requeued_count"], body["skipped_count"]) == (2, 1, 1)
    assert body["finished_at"] is not None
    # What an undo within the request would have answered.
    result = body["result"]
    assert sorted(result["reverted"]) == [lines[1].pk, lines[2].pk]
    assert result["requeued"] == [lines[2].pk]
    (skipped,) = result["skipped"]
    assert (skipped["line"], skipped["changed_by"], skipped["reason"]) == (
        lines[3].pk,
        "dave",
        "changed",
    )
    assert texts(lines)[1:] == UNDONE
    assert Line.objects.get(pk=lines[2].pk).status == S.NEEDS_REVIEW
    assert CollectionEvent.objects.filter(event_type=CollectionEvent.Type.SAVES_UNDONE).count() == 1


def test_a_preview_of_a_large_undo_is_answered_at_once_and_queues_nothing(
    client, alice, bob, letters, lines, bobs_saves, large
):
    asked = {"user": bob.pk, "since": bobs_saves.isoformat(), "preview": True}
    answer = post_json(client, url(letters), alice, asked)
    assert answer.status_code == 200
    assert answer.json()["reverted"] == [lines[1].pk, lines[2].pk]
    assert not SavesUndo.objects.exists()


def test_with_the_broker_down_a_large_undo_is_a_503_and_nothing_is_stored(
    client, alice, bob, letters, lines, bobs_saves, large, broker_down
):
    answer = undo(client, letters, alice, bob, bobs_saves)
    assert answer.status_code == 503
    assert "the task queue is down" in answer.json()["error"]
    assert not SavesUndo.objects.exists()
    assert texts(lines)[1:] == NOT_UNDONE


def test_a_job_in_progress_and_a_failed_one(client, alice, bob, letters, lines, bobs_saves):
    running = a_job(
        letters,
        bob,
        bobs_saves,
        alice,
        status="running",
        lines_done=1,
        last_line_id=lines[1].pk,
        reverted=[lines[1].pk],
    )
    body = get(client, job_url(letters, running.pk), alice).json()
    assert (body["state"], body["lines_done"], body["reverted_count"]) == ("running", 1, 1)
    assert body["result"] is None  # what it did is answered once it ends

    SavesUndo.objects.filter(pk=running.pk).update(status="failed", error="the database went away")
    body = get(client, job_url(letters, running.pk), alice).json()
    assert (body["state"], body["error"]) == ("failed", "the database went away")
    # The lines undone before it stopped stay undone, and are listed.
    assert body["result"] == {"reverted": [lines[1].pk], "requeued": [], "skipped": []}


def test_only_the_collections_admins_read_a_job(
    client, alice, bob, charlie, staff, letters, bobs_saves
):
    job = a_job(letters, bob, bobs_saves, alice)
    path = job_url(letters, job.pk)
    assert get(client, path, alice).status_code == 200
    other_admin = factories.make_user("erin")
    factories.add_member(other_admin, letters, Membership.Role.ADMIN)
    assert get(client, path, other_admin).status_code == 200
    assert get(client, path, staff).status_code == 200  # site admins administer every one
    assert get(client, path, bob).status_code == 403  # a reviewer of the collection
    assert get(client, path, charlie).status_code == 404  # not in it
    # A former admin who started it no longer reads it.
    Membership.objects.filter(user=other_admin).update(role=Membership.Role.REVIEWER)
    started = a_job(letters, bob, bobs_saves, other_admin)
    assert get(client, job_url(letters, started.pk), other_admin).status_code == 403
    assert client.get(path).status_code in (401, 403)  # no token


def test_an_unknown_job_or_another_collections_is_not_found(
    client, alice, bob, letters, ledgers, bobs_saves
):
    factories.add_member(alice, ledgers, Membership.Role.ADMIN)
    theirs = a_job(ledgers, bob, bobs_saves, alice)
    ours = a_job(letters, bob, bobs_saves, alice)
    for path in (
        job_url(letters, theirs.pk),  # a job of a collection alice also administers
        job_url(ledgers, ours.pk),
        job_url(letters, 10**9),
        job_url(letters, 2**63),  # past any id
    ):
        answer = get(client, path, alice)
        assert (answer.status_code, answer.json()) == (404, {"error": "Not found."}), path
    malformed = url(letters) + "latest/"
    assert get(client, malformed, alice).status_code == 404


@pytest.mark.parametrize(
    "body",
    ['{"user": 1, "since": ', "[]", '"undo"', "null"],
    ids=["truncated", "a list", "a string", "null"],
)
def test_a_malformed_body_is_a_400_and_queues_nothing(
    client, alice, bob, letters, lines, bobs_saves, large, body
):
    answer = client.post(url(letters), body, content_type="application/json", headers=auth(alice))
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert not SavesUndo.objects.exists()
    assert texts(lines)[1:] == NOT_UNDONE


def test_a_job_is_read_only(client, alice, bob, letters, bobs_saves):
    job = a_job(letters, bob, bobs_saves, alice)
    for method in ("post", "put", "patch", "delete"):
        answer = getattr(client, method)(job_url(letters, job.pk), headers=auth(alice))
        assert answer.status_code == 405, method
    assert SavesUndo.objects.get().status == "queued"

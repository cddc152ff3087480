"""Segmentation bookkeeping: pages already segmented keep their lines, unreadable pages
fail alone. kraken itself runs in tests/pipeline/test_worker.py, on a worker as deployed."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus import claims, segmentation, tasks
from ocrreview.corpus.models import Document, Page
from ocrreview.corpus.segmentation import (
    PageUnreadable,
    claim_segmentation,
    do_segment_document,
    lost_segmentations,
    page_seconds,
)
from ocrreview.corpus.tasks import segment_document
from ocrreview.transcription.models import RecognitionRequest
from tests import factories


@pytest.mark.django_db
def test_segmenting_again_keeps_the_lines_of_segmented_pages(letters, tiny_model):

    document = factories.make_document(letters)
    page = factories.make_page(document)
    lines = [factories.make_line(page, order).pk for order in range(3)]
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SEGMENTED)
    do_segment_document(document.pk, "test")
    # The same message again, as if the worker had died before acknowledging it.
    Document.objects.filter(pk=document.pk).update(status=Document.Status.SEGMENTING)
    do_segment_document(document.pk, "test")
    assert list(document.lines.values_list("id", flat=True)) == lines
    assert RecognitionRequest.objects.filter(document=document).count() == 3
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING


@pytest.mark.django_db
@pytest.mark.parametrize("past", [Document.Status.RECOGNIZING, Document.Status.READY])
def test_a_message_for_a_document_past_segmentation_changes_nothing(letters, past):
    document = factories.make_document(letters, status=past)
    factories.make_page(document)
    do_segment_document(document.pk, "test")
    document.refresh_from_db()
    assert document.status == past and not document.lines.exists()


@pytest.mark.django_db
def test_documents_whose_segmentation_message_was_lost(letters, settings):
    settings.OCRREVIEW_SWEEP_SECONDS = 30
    long_ago = timezone.now() - timedelta(minutes=5)
    lost = factories.make_document(letters)
    just_uploaded = factories.make_document(letters)
    factories.make_document(letters, segmentation=Document.Segmentation.IMPORTED)
    with_lines = factories.make_document(letters)  # not from an upload: it has its lines
    factories.make_line(factories.make_page(with_lines))
    Document.objects.exclude(pk=just_uploaded.pk).update(uploaded_at=long_ago)
    assert lost_segmentations() == [lost.pk]
    # While one is being segmented, the queue is moving: the others are most likely in it.
    Document.objects.filter(pk=just_uploaded.pk).update(
        status=Document.Status.SEGMENTING, worked_by="alive", work_alive_at=timezone.now()
    )
    assert lost_segmentations() == []


def silent_for(document: Document, seconds: float) -> None:
    Document.objects.filter(pk=document.pk).update(
        work_alive_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.mark.django_db
def test_a_segmentation_silent_for_longer_than_a_page_may_take_was_lost(letters, settings):
    """Its worker died, or its message was lost (the embedded broker drops a message read by
    a worker that is then stopped): it no longer holds up the sweep, which queues it again."""
    settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT = 1800
    assert page_seconds() == 600 + 1800 + 60  # kraken's child started, run, and the page stored
    silent = factories.make_document(letters, status=Document.Status.SEGMENTING)
    never_marked = factories.make_document(letters, status=Document.Status.SEGMENTING)
    busy = factories.make_document(letters, status=Document.Status.SEGMENTING)
    lost = factories.make_document(letters)
    Document.objects.filter(pk=lost.pk).update(uploaded_at=timezone.now() - timedelta(hours=1))
    silent_for(silent, page_seconds() + 1)
    silent_for(busy, page_seconds() - 5)
    # The one alive keeps the sweep from queueing the uploads behind it, not the silent ones.
    assert sorted(lost_segmentations()) == sorted([silent.pk, never_marked.pk])
    silent_for(busy, page_seconds() + 1)
    assert sorted(lost_segmentations()) == sorted([silent.pk, never_marked.pk, busy.pk, lost.pk])


@pytest.mark.django_db
def test_one_segmentation_at_a_time_and_a_silent_one_is_taken_over(letters, tiny_model):
    document = factories.make_document(letters)
    factories.make_page(document)  # blank: segmented without kraken
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.SEGMENTING, worked_by="first", work_alive_at=timezone.now()
    )
    do_segment_document(document.pk, "second")
    document.refresh_from_db()
    assert (document.status, document.worked_by) == (Document.Status.SEGMENTING, "first")
    assert document.pages.get().status == Page.Status.PENDING

    silent_for(document, page_seconds() + 1)
    assert claim_segmentation(document.pk, "second")
    assert Document.objects.get(pk=document.pk).work_takeovers == 1
    do_segment_document(document.pk, "second")
    document.refresh_from_db()
    assert (document.status, document.worked_by) == (Document.Status.READY, "second")
    do_segment_document(document.pk, "first")  # back from its silence: nothing left to it
    assert Document.objects.get(pk=document.pk).status == Document.Status.READY


@pytest.mark.django_db
def test_a_run_that_lost_its_claim_while_segmenting_stores_nothing(letters, monkeypatch):
    document = factories.make_document(letters)
    page = factories.make_page(document)
    real_kraken_lines = segmentation.kraken_lines

    def taken_over_meanwhile(page):
        found = real_kraken_lines(page)
        Document.objects.filter(pk=document.pk).update(worked_by="sweep's")
        return [*found, segmentation.LineGeometry([10, 10, 200, 40], [], [])]

    monkeypatch.setattr(segmentation, "kraken_lines", taken_over_meanwhile)
    do_segment_document(document.pk, "first")
    page.refresh_from_db()
    assert page.status == Page.Status.SEGMENTING and not document.lines.exists()
    assert Document.objects.get(pk=document.pk).status == Document.Status.SEGMENTING


@pytest.mark.django_db
def test_a_segmented_page_never_goes_back_to_failed(letters):
    """A run that lags another (a message given again) passes over the pages the other
    finished, however it fares on them."""
    document = factories.make_document(letters)
    page = factories.make_page(document)
    factories.make_line(page)
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SEGMENTED)
    segmentation._page_failed(page, "kraken failed")
    page.refresh_from_db()
    assert (page.status, page.error, page.lines.count()) == (Page.Status.SEGMENTED, "", 1)


@pytest.mark.django_db
def test_a_segmentation_taken_over_three_times_fails_keeping_its_lines(letters):
    document = factories.make_document(letters, status=Document.Status.SEGMENTING)
    factories.make_line(factories.make_page(document))
    assert claim_segmentation(document.pk, "first")  # the upload's own message: no takeover
    for n in range(1, claims.MAX_TAKEOVERS + 1):
        silent_for(document, page_seconds() + 1)
        assert lost_segmentations() == [document.pk]
        assert claim_segmentation(document.pk, f"sweep's {n}")
    silent_for(document, page_seconds() + 1)
    assert lost_segmentations() == []
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "segmentation stopped without a word 4 times" in document.error
    assert document.lines.count() == 1


@pytest.mark.django_db
def test_a_page_whose_image_is_unreadable_fails_with_its_message(letters):
    document = factories.make_document(letters)
    page = factories.make_page(document)
    with open(page.image.path, "wb") as broken:
        broken.write(b"\x89PNG\r\n\x1a\n broken")
    do_segment_document(document.pk, "test")
    document.refresh_from_db()
    page.refresh_from_db()
    assert page.status == Page.Status.FAILED and "not an image" in page.error
    assert document.status == Document.Status.FAILED
    assert "page 1: the file is not an image" in document.error


def test_a_page_the_storage_does_not_give_now_is_segmented_on_the_next_try(letters, tiny_model):
    """A network share or a bucket that fails for a moment failed the page for good, and no
    action segments a failed page again."""
    document = factories.make_document(letters)
    page = factories.make_page(document)
    image = Path(page.image.path)
    kept = image.read_bytes()
    image.unlink()
    with pytest.raises(PageUnreadable):
        do_segment_document(document.pk, "first try")
    page.refresh_from_db()
    assert page.status != Page.Status.FAILED and page.error == ""
    image.write_bytes(kept)
    do_segment_document(document.pk, "first try")  # the task's retry keeps its claim
    page.refresh_from_db()
    assert page.status == Page.Status.SEGMENTED


def test_a_storage_that_stays_down_is_waited_for_then_named_as_the_reason(letters, monkeypatch):
    """It failed after three quick retries and four takeovers, an hour on, as a worker killed
    for memory, and no action segments a failed document again."""
    document = factories.make_document(letters)
    page = factories.make_page(document)
    Path(page.image.path).unlink()
    waits: list[int] = []
    real_wait = segmentation.wait_for_storage

    def recorded(document_id, task, exc, tries):
        seconds = real_wait(document_id, task, exc, tries)
        if seconds is not None:
            held = Document.objects.get(pk=document_id)
            assert held.status == Document.Status.SEGMENTING
            assert f"waiting for the storage, trying again in {seconds} s" in held.error
            # Postponed: the sweep does not take a wait for a lost worker.
            assert held.work_alive_at > timezone.now() + timedelta(seconds=seconds - 5)
            assert document_id not in lost_segmentations()
            waits.append(seconds)
        return seconds

    monkeypatch.setattr(tasks, "wait_for_storage", recorded)
    segment_document.apply(args=[document.pk])  # eager: each retry runs at once
    assert waits == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "the storage did not give a page's image after 10 tries" in document.error
    assert "stopped without a word" not in document.error


def test_segmentation_tasks_go_to_the_segment_queue_which_the_embedded_worker_serves():
    from ocrreview.celery import app
    from ocrreview.corpus.management.commands.serve import MAIN_WORKER_QUEUES

    route = app.amqp.router.route({}, "ocrreview.corpus.tasks.segment_document")
    assert route["queue"].name == "segment"
    assert "segment" in MAIN_WORKER_QUEUES.split(",")


@pytest.mark.django_db
def test_a_copy_of_the_message_finds_the_document_held_by_the_first_run(letters, tiny_model):
    """The broker gives a message again after an hour while its first run goes on; the copy,
    with the same task id, must not segment beside it."""
    document = factories.make_document(letters, status=Document.Status.SEGMENTING)
    factories.make_page(document)
    first = segment_document.apply(args=[document.pk], task_id="the-message")
    assert first.successful()
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    claimed_by = document.worked_by
    assert claimed_by and claimed_by != "the-message"
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.SEGMENTING, work_alive_at=timezone.now()
    )
    segment_document.apply(args=[document.pk], task_id="the-message")
    document.refresh_from_db()
    assert (document.status, document.worked_by) == (Document.Status.SEGMENTING, claimed_by)


@pytest.mark.django_db
def test_a_page_stored_clears_the_takeovers_counted_before_it(letters, tiny_model):
    """Workers restarted now and then over a long document: each run got on with it, so none
    of those takeovers counts towards failing it."""
    document = factories.make_document(letters, status=Document.Status.SEGMENTING)
    factories.make_page(document)  # blank: segmented without kraken
    assert claim_segmentation(document.pk, "first")
    for n in range(1, claims.MAX_TAKEOVERS):
        silent_for(document, page_seconds() + 1)
        assert claim_segmentation(document.pk, f"sweep's {n}")
    assert Document.objects.get(pk=document.pk).work_takeovers == claims.MAX_TAKEOVERS - 1
    do_segment_document(document.pk, f"sweep's {claims.MAX_TAKEOVERS - 1}")
    document.refresh_from_db()
    assert (document.status, document.work_takeovers) == (Document.Status.READY, 0)


@pytest.mark.django_db
def test_an_admin_segments_a_failed_document_again(
    client, alice, bob, letters, tiny_model, django_capture_on_commit_callbacks
):
    document = factories.make_document(letters, "Register")
    factories.make_page(document, 0)
    broken = factories.make_page(document, 1)
    image = Path(broken.image.path)
    scan = image.read_bytes()
    image.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    do_segment_document(document.pk, "first")
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "page 2: the file is not an image" in document.error
    image.write_bytes(scan)  # the scan put right

    url = reverse("segment_again", args=[document.pk])
    client.force_login(bob)
    assert client.post(url).status_code == 403
    assert "Segment Register again" not in (
        client.get(reverse("document_detail", args=[document.pk])).content.decode()
    )
    client.force_login(alice)
    # Where the failure is told: the collection's list, and the document's own page.
    for page in (
        reverse("collection_detail", args=[letters.pk]),
        reverse("document_detail", args=[document.pk]),
    ):
        assert "Segment Register again" in client.get(page).content.decode(), page
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(url, follow=True)
    assert "Register is queued to be segmented again." in response.content.decode()
    assert len(queued) == 1  # the segmentation's message
    document.refresh_from_db()
    broken.refresh_from_db()
    assert (document.status, document.error) == (Document.Status.UPLOADED, "")
    assert (broken.status, broken.error) == (Page.Status.PENDING, "")

    do_segment_document(document.pk, "second")  # as the segment worker runs it
    broken.refresh_from_db()
    document.refresh_from_db()
    assert broken.status == Page.Status.SEGMENTED
    assert document.status != Document.Status.FAILED and document.error == ""


@pytest.mark.django_db
def test_only_a_failed_document_is_segmented_again(client, alice, letters):
    document = factories.make_document(letters, "Register", status=Document.Status.READY)
    factories.make_page(document)
    client.force_login(alice)
    response = client.post(reverse("segment_again", args=[document.pk]), follow=True)
    assert "Register cannot be segmented again: The document is ready." in (
        response.content.decode()
    )
    document.refresh_from_db()
    assert document.status == Document.Status.READY

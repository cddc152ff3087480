"""Segmentation bookkeeping: pages already segmented keep their lines, unreadable pages
fail alone. kraken itself runs in tests/pipeline/test_worker.py, on a worker as deployed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ocrreview.corpus.models import Document, Page
from ocrreview.corpus.segmentation import do_segment_document, lost_segmentations
from ocrreview.transcription.models import RecognitionRequest
from tests import factories


@pytest.mark.django_db
def test_segmenting_again_keeps_the_lines_of_segmented_pages(letters, tiny_model):

    document = factories.make_document(letters)
    page = factories.make_page(document)
    lines = [factories.make_line(page, order).pk for order in range(3)]
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SEGMENTED)
    do_segment_document(document.pk)
    # The same message again, as if the worker had died before acknowledging it.
    Document.objects.filter(pk=document.pk).update(status=Document.Status.SEGMENTING)
    do_segment_document(document.pk)
    assert list(document.lines.values_list("id", flat=True)) == lines
    assert RecognitionRequest.objects.filter(document=document).count() == 3
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING


@pytest.mark.django_db
@pytest.mark.parametrize("past", [Document.Status.RECOGNIZING, Document.Status.READY])
def test_a_message_for_a_document_past_segmentation_changes_nothing(letters, past):
    document = factories.make_document(letters, status=past)
    factories.make_page(document)
    do_segment_document(document.pk)
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
    Document.objects.filter(pk=just_uploaded.pk).update(status=Document.Status.SEGMENTING)
    assert lost_segmentations() == []


@pytest.mark.django_db
def test_a_page_whose_image_is_unreadable_fails_with_its_message(letters):
    document = factories.make_document(letters)
    page = factories.make_page(document)
    with open(page.image.path, "wb") as broken:
        broken.write(b"\x89PNG\r\n\x1a\n broken")
    do_segment_document(document.pk)
    document.refresh_from_db()
    page.refresh_from_db()
    assert page.status == Page.Status.FAILED and "not an image" in page.error
    assert document.status == Document.Status.FAILED
    assert "page 1: the file is not an image" in document.error


def test_segmentation_tasks_go_to_the_segment_queue_which_the_embedded_worker_serves():
    from ocrreview.celery import app
    from ocrreview.corpus.management.commands.serve import MAIN_WORKER_QUEUES

    route = app.amqp.router.route({}, "ocrreview.corpus.tasks.segment_document")
    assert route["queue"].name == "segment"
    assert "segment" in MAIN_WORKER_QUEUES.split(",")

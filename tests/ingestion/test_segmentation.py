"""Segmentation: kraken's default baseline model on a real page, and what each method
leaves behind."""

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile

from ocrreview.corpus.models import Document, Page
from ocrreview.corpus.segmentation import do_segment_document
from ocrreview.transcription.models import RecognitionRequest
from tests import factories

DEMO_PAGE = django_settings.BASE_DIR / "demo" / "lathrop" / "SC0033B_s4_b01_f14_i080.jpg"


@pytest.mark.slow
@pytest.mark.django_db
def test_kraken_finds_lines_with_baselines_and_polygons_in_reading_order(letters, tiny_model):
    document = factories.make_document(letters)
    page = Page(document=document, index=0, width=1158, height=1500)
    page.image.save("p.jpg", ContentFile(DEMO_PAGE.read_bytes()), save=False)
    page.save()
    do_segment_document(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING
    lines = list(document.lines.order_by("order"))
    assert len(lines) >= 10  # the page has 16 transcribed lines
    for line in lines:
        assert len(line.baseline) >= 2 and len(line.polygon) >= 3
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= 1158 and 0 <= y0 < y1 <= 1500
    # Reading order runs down the page (a single column letter).
    tops = [line.bbox[1] for line in lines]
    assert tops[0] < tops[len(tops) // 2] < tops[-1]
    assert RecognitionRequest.objects.filter(document=document).count() == len(lines)
    page.refresh_from_db()
    assert page.status == Page.Status.SEGMENTED
    # Running it again neither duplicates nor replaces lines.
    do_segment_document(document.pk)
    assert document.lines.count() == len(lines)


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


def test_segmentation_tasks_go_to_the_default_queue():
    from ocrreview.celery import app

    route = app.amqp.router.route({}, "ocrreview.corpus.tasks.segment_document")
    assert route["queue"].name == "default"

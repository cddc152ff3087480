"""Lines cut and prepared in a pool of processes (OCRREVIEW_PREPARE_PROCESSES, for GPU
workers) are read exactly as those prepared in the worker's thread, and a pool process that
dies gives its claim back without losing a line."""

import io
import os
import signal

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from ocrreview.corpus.models import Document, Line, Page
from ocrreview.transcription import services
from ocrreview.transcription.models import Hypothesis, RecognitionRequest
from tests import factories

R = RecognitionRequest.Status
WORDS = ["Dear", "Sir", "received", "your", "letter", "of", "the", "3rd", "inst."]


@pytest.fixture(autouse=True)
def no_pool_left_behind():
    yield
    for pool in services._cutting_pools.values():
        pool.shutdown(cancel_futures=True)
    services._cutting_pools.clear()


def written_page(collection, lines: int = 9) -> Document:
    """A page of different handwriting-sized lines, and a line whose box is off the page."""
    document = factories.make_document(collection, status=Document.Status.RECOGNIZING)
    image = Image.new("RGB", (700, 40 * lines + 40), (236, 230, 218))
    draw = ImageDraw.Draw(image)
    for k in range(lines):
        draw.text((12, 40 * k + 14), " ".join(WORDS[k:] + WORDS[:k]), fill=(30, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    page = Page(document=document, index=0, width=image.width, height=image.height)
    page.image.save("written.jpg", ContentFile(buffer.getvalue()), save=False)
    page.save()
    for k in range(lines):
        factories.make_line(page, k, bbox=[4, 40 * k + 6, 690, 40 * k + 40])
    factories.make_line(page, lines, bbox=[800, 800, 900, 840])
    return document


def readings(document: Document) -> list[tuple]:
    return [
        (line.order, line.text, line.status, line.error)
        for line in document.lines.order_by("order")
    ] + [
        (h.line.order, h.rank, h.text, round(h.logprob, 4))
        for h in Hypothesis.objects.filter(line__document=document).order_by("line__order", "rank")
    ]


def drain() -> None:
    while services.do_recognize_pending("test-worker"):
        pass


@pytest.mark.django_db
def test_lines_prepared_in_processes_read_as_in_the_workers_thread(tiny_model, letters, settings):
    letters.nbest_size = 2
    letters.save()
    settings.OCRREVIEW_BATCH_SIZE = 3
    in_thread, in_processes = written_page(letters), written_page(letters)

    services.do_queue_recognition(in_thread.lines.all())
    drain()
    settings.OCRREVIEW_PREPARE_PROCESSES = 2
    services.do_queue_recognition(in_processes.lines.all())
    drain()

    assert readings(in_processes) == readings(in_thread)
    off_page = in_processes.lines.get(order=9)
    assert off_page.status == Line.Status.FAILED and "outside" in off_page.error
    assert len(services._cutting_pools) == 1


@pytest.mark.django_db
def test_a_preparing_process_that_dies_gives_the_claim_back(tiny_model, letters, settings):
    settings.OCRREVIEW_PREPARE_PROCESSES = 1
    first, second = written_page(letters), written_page(letters)
    services.do_queue_recognition(first.lines.all())
    drain()
    (pool,) = services._cutting_pools.values()
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)

    services.do_queue_recognition(second.lines.all())
    with pytest.raises(Exception, match="terminated abruptly"):
        services.do_recognize_pending("test-worker")
    assert set(
        RecognitionRequest.objects.filter(document=second).values_list("status", flat=True)
    ) == {R.QUEUED}
    assert not services._cutting_pools

    drain()  # a new pool
    assert readings(second) == readings(first)
    assert not RecognitionRequest.objects.exclude(status__in=[R.DONE, R.FAILED]).exists()

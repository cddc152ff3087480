"""kraken runs in a child process of the worker's, stopped past a CPU, wall-clock or memory
limit (tests/ingestion/test_segmentation_time.py has the time limits on a child of its own): the
page fails with a message naming the setting, the other pages go on, and the worker goes on
with a new child. Real kraken on small written pages (a 400 x 300 card needs some 2.7 GB and
tens of seconds, a 60 x 600 strip some 1.2 GB and a few seconds)."""

import io
import re

import psutil
import pytest
import redis
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.kraken_child import device_options
from ocrreview.corpus.models import Document, Page
from ocrreview.corpus.segmentation import do_segment_document
from tests import factories
from tests.pipeline.test_worker import wait_for, worker_settings
from tests.workers import celery_worker


def written(width: int, height: int, lines: int) -> bytes:
    image = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    for n in range(lines):
        top = 20 + n * (height - 40) // lines
        draw.text((10, top), "Received the sum of ten dollars " * 3, fill=(20, 20, 20))
    data = io.BytesIO()
    image.save(data, "PNG")
    return data.getvalue()


def card() -> bytes:
    return written(400, 300, 5)


def strip() -> bytes:
    return written(60, 600, 8)


def test_kraken_runs_on_the_gpu_when_its_process_has_one():
    assert device_options(cuda_available=True) == {"accelerator": "cuda", "device": 1}
    assert device_options(cuda_available=False) == {"accelerator": "cpu", "device": 1}


@pytest.mark.slow
@pytest.mark.django_db
def test_a_page_past_the_cpu_limit_fails_naming_the_setting_and_the_next_page_goes_on(
    letters, settings
):
    settings.OCRREVIEW_SEGMENTATION_TIMEOUT = 1
    document = factories.make_document(letters)
    page = Page(document=document, index=0, width=400, height=300)
    page.image.save("card.png", ContentFile(card()))
    factories.make_page(document, index=1)  # blank: segmented without kraken

    do_segment_document(document.pk, "test")

    pages = document.pages.order_by("index")
    assert [p.status for p in pages] == [Page.Status.FAILED, Page.Status.SEGMENTED]
    assert re.fullmatch(
        r"segmentation stopped: it used \d+ s of CPU on \d+ cores?, over 1 s a core "
        r"\(OCRREVIEW_SEGMENTATION_TIMEOUT\)",
        pages[0].error,
    ), pages[0].error
    assert pages[1].error == ""
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED  # no page has lines
    assert document.error == f"page 1: {pages[0].error}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_stops_kraken_past_the_memory_limit_and_segments_the_next_document(
    letters, tiny_model
):
    """On the embedded run's main worker (its queues, a prefork pool of one): a card that
    needs more memory than allowed fails, and a strip uploaded after it is segmented in a new
    child and read."""
    from ocrreview.corpus.management.commands.serve import MAIN_WORKER_QUEUES

    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    letters.nbest_size = 1
    letters.save()
    env = worker_settings(tiny_model, OCRREVIEW_SEGMENTATION_MEMORY_MB="1800")
    with celery_worker(MAIN_WORKER_QUEUES, name="main", pool="prefork", timeout=120, **env) as w:
        (heavy,) = do_ingest(letters, [Upload.from_bytes("card.png", card())])
        (light,) = do_ingest(letters, [Upload.from_bytes("strip.png", strip())])
        done = (Document.Status.READY, Document.Status.FAILED)
        wait_for(
            lambda: Document.objects.filter(status__in=done).count() == 2,
            300,
            interval=0.5,
            what="both documents to be segmented and read",
        )
        descendants = psutil.Process(w.process.pid).children(recursive=True)
        spawned = [p for p in descendants if "spawn_main" in " ".join(p.cmdline())]

    heavy_page = heavy.document.pages.get()
    assert heavy_page.status == Page.Status.FAILED
    assert re.fullmatch(
        r"segmentation stopped at \d+ MB of memory, over 1800 MB "
        r"\(OCRREVIEW_SEGMENTATION_MEMORY_MB\)",
        heavy_page.error,
    ), heavy_page.error
    assert Document.objects.get(pk=heavy.document.pk).status == Document.Status.FAILED
    assert Document.objects.get(pk=light.document.pk).status == Document.Status.READY
    assert light.document.lines.count() >= 1
    assert len(spawned) == 1, "the stopped child is gone, its successor serves"

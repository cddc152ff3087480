"""A solo worker busy reading a chunk answers no broadcast (ping, inspect) until the chunk is
read: the Queues page said no worker answered while one was reading. Its claim, whose lease it
renews after every batch under its name, says it is there and busy."""

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse

from ocrreview.celery import app
from ocrreview.transcription import ops, services
from ocrreview.transcription.models import RecognitionRequest
from tests import factories
from tests.pipeline.test_worker import (
    upload_lines,
    wait_for,
    wait_for_the_first_batches,
    worker_settings,
)
from tests.workers import celery_worker

R = RecognitionRequest.Status


def holds_lines(hostname: str) -> bool:
    return RecognitionRequest.objects.filter(status=R.RUNNING, worker=hostname).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_solo_worker_busy_reading_shows_on_the_queues_page(
    letters, tiny_model, settings, client, staff
):
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    settings.OCRREVIEW_MODEL = str(tiny_model)
    slow = worker_settings(
        tiny_model,
        OCRREVIEW_BATCH_SIZE="1",
        OCRREVIEW_RECOGNITION_CHUNK="100",
        OCRREVIEW_MAX_NEW_TOKENS="64",
    )
    # Queued before it starts, so that its first claim holds them all.
    upload_lines(letters, 60)
    client.force_login(staff)
    with celery_worker("gpu", name="busy", answers_first=False, **slow) as busy:
        wait_for_the_first_batches()
        # Asked while it held its claim before and after: it was reading all along.
        assert holds_lines(busy.hostname)
        answered = app.control.ping(destination=[busy.hostname], timeout=1.0)
        page = client.get(reverse("recognition_queues")).content.decode()
        found = {w["name"]: w for w in ops.workers()}
        still_reading = holds_lines(busy.hostname)
        wait_for(lambda: not holds_lines(busy.hostname), 300, 0.5, "the chunk to be read")
    if not still_reading:
        pytest.skip("the worker read its chunk before the page was asked; nothing was shown")
    assert not answered, "the busy solo worker answered a ping: the case this test is for"
    assert busy.hostname in page
    assert "No worker answered" not in page
    worker = found[busy.hostname]
    assert not worker["answered"] and worker["reading"] > 0 and worker["queues"] == ["gpu"]


@pytest.mark.django_db
def test_a_worker_whose_claim_is_live_shows_with_the_broker_down_and_a_dead_one_does_not(
    client, staff, broker_down, letters, settings
):
    settings.OCRREVIEW_MODEL = "microsoft/trocr-base-handwritten"
    page = factories.make_page(factories.make_document(letters))
    for order in range(4):
        factories.make_line(page, order)
    services.do_queue_recognition(page.lines.all())
    services.do_claim(3, "reading@gpu-1")
    dead = services.do_claim(1, "dead@gpu-2")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transcription_recognitionrequest SET lease_until = "
            "statement_timestamp() - interval '1 second' WHERE claim = %s",
            [dead.token],
        )
    client.force_login(staff)
    html = client.get(reverse("recognition_queues")).content.decode()
    assert "reading@gpu-1" in html and "<td>3</td>" in html
    assert "dead@gpu-2" not in html

"""The Queues page against the real Redis broker: a queue Redis holds no message for is empty,
not unreachable, and only a broker that cannot be reached says so."""

import pytest
from django.urls import reverse

from ocrreview.celery import app
from ocrreview.transcription import ops


@pytest.fixture
def three_in_segment():
    """Three messages in `segment`, which no worker consumes in these tests; every other queue
    emptied, so that Redis has no list for it."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in ops.QUEUES:
            channel.queue_purge(name)
        with app.producer_or_acquire() as producer:
            for document_id in range(3):
                app.send_task(
                    "ocrreview.corpus.tasks.segment_document", (document_id,), producer=producer
                )
        yield
        channel.queue_purge("segment")


def test_empty_queues_count_zero_and_a_queue_with_messages_its_count(three_in_segment):
    assert ops.queue_lengths() == {"default": 0, "segment": 3, "gpu": 0, "training": 0, "mail": 0}


@pytest.mark.django_db
def test_the_page_shows_the_counts(client, staff, three_in_segment):
    client.force_login(staff)
    page = client.get(reverse("recognition_queues")).content.decode()
    assert "<td>segment</td><td>3</td>" in page
    assert "<td>training</td><td>0</td>" in page
    assert "unreachable" not in page


@pytest.mark.django_db
def test_a_broker_down_is_said_once(client, staff, broker_down):
    assert ops.queue_lengths() is None
    client.force_login(staff)
    page = client.get(reverse("recognition_queues")).content.decode()
    assert page.count("unreachable") == 1
    assert "<td>segment</td>" not in page

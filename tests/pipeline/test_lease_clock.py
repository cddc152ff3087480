"""Recognition leases by the database's clock: a worker machine whose clock is off neither
takes a live claim nor keeps a dead one. The skew is the test process's Python clock only,
moved an hour either way; the database's clock is the real one every worker shares."""

from datetime import timedelta

import pytest
from django.db import connection

from ocrreview.corpus.models import Document
from ocrreview.db_clock import database_now
from ocrreview.transcription import services
from ocrreview.transcription.models import RecognitionRequest
from tests import factories

SKEW = timedelta(hours=1)
AHEAD, BEHIND = SKEW, -SKEW


@pytest.fixture
def queued(letters, settings):
    settings.OCRREVIEW_MODEL = "microsoft/trocr-base-handwritten"
    settings.OCRREVIEW_RECOGNITION_LEASE_SECONDS = 300
    document = factories.make_document(letters, status=Document.Status.RECOGNIZING)
    page = factories.make_page(document)
    for order in range(4):
        factories.make_line(page, order)
    services.do_queue_recognition(document.lines.all())


def expire(claim) -> None:
    """The claim's worker died a lease ago, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transcription_recognitionrequest SET lease_until = "
            "statement_timestamp() - interval '1 second' WHERE claim = %s",
            [claim.token],
        )


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [AHEAD, BEHIND], ids=["ahead", "behind"])
def test_a_lease_ends_a_lease_after_the_database_s_now_whatever_the_worker_s_clock(
    queued, clock, offset
):
    clock.set(clock.real() + offset)
    claimed = services.do_claim(2, "skewed")
    services.renew_lease(claimed.token)
    lease = timedelta(seconds=300)
    for request in RecognitionRequest.objects.filter(claim=claimed.token):
        left = request.lease_until - database_now()
        assert lease - timedelta(minutes=1) < left <= lease


@pytest.mark.django_db
def test_a_worker_whose_clock_is_ahead_takes_no_live_claim(queued, clock):
    live = services.do_claim(2, "live")
    clock.set(clock.real() + AHEAD)
    taken = services.do_claim(4, "ahead")
    assert {r.id for r in taken.requests}.isdisjoint(r.id for r in live.requests)
    assert RecognitionRequest.objects.filter(claim=live.token).count() == 2
    assert not services.unattended_work_exists()


@pytest.mark.django_db
def test_a_worker_whose_clock_is_behind_takes_a_dead_claim(queued, clock):
    dead = services.do_claim(4, "dead")
    expire(dead)
    clock.set(clock.real() + BEHIND)
    assert services.unattended_work_exists()
    taken = services.do_claim(4, "behind")
    assert {r.id for r in taken.requests} == {r.id for r in dead.requests}


@pytest.mark.django_db
def test_a_dead_claim_renewed_by_a_worker_whose_clock_was_ahead_is_taken_a_lease_later(
    queued, clock
):
    """The worker's last renewal before it died: by its own clock, the lease would have run an
    hour past its death."""
    clock.set(clock.real() + AHEAD)
    dead = services.do_claim(4, "ahead")
    services.renew_lease(dead.token)
    clock.set(None)
    with connection.cursor() as cursor:
        # A lease and a second pass, by the database's clock: the lease moves back as much.
        cursor.execute(
            "UPDATE transcription_recognitionrequest SET lease_until = lease_until - "
            "interval '300 seconds' - interval '1 second' WHERE claim = %s",
            [dead.token],
        )
    taken = services.do_claim(4, "rescuer")
    assert {r.id for r in taken.requests} == {r.id for r in dead.requests}

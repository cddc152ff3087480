"""A document's work (a IIIF fetch, a segmentation) claimed and found silent by the database's
clock: a sweeping worker whose clock is ahead takes no live work over, one whose clock is
behind still finds silent work. The skew is this process's Python clock, an hour either way."""

from datetime import timedelta

from django.db import connection

from ocrreview.corpus import claims
from ocrreview.corpus.models import Document
from ocrreview.db_clock import database_now
from tests import factories

SEGMENTING = Document.Status.SEGMENTING
STEP_S = 600
HOUR = timedelta(hours=1)


def working(letters) -> Document:
    document = factories.make_document(letters, status=SEGMENTING)
    assert claims.claim(document.pk, "first", SEGMENTING, STEP_S)
    return document


def test_a_worker_whose_clock_is_ahead_takes_over_no_live_work(clock, letters):
    document = working(letters)
    clock.set(clock.real() + HOUR)
    assert claims.lost(SEGMENTING, STEP_S, "gave up") == []
    assert not claims.claim(document.pk, "second", SEGMENTING, STEP_S)
    assert Document.objects.get(pk=document.pk).worked_by == "first"


def test_a_worker_whose_clock_is_behind_finds_silent_work(clock, letters):
    document = working(letters)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE corpus_document SET work_alive_at = statement_timestamp() - interval "
            "'601 seconds' WHERE id = %s",
            [document.pk],
        )
    clock.set(clock.real() - HOUR)
    assert claims.lost(SEGMENTING, STEP_S, "gave up") == [document.pk]
    assert claims.claim(document.pk, "second", SEGMENTING, STEP_S)


def test_signs_of_life_are_dated_by_the_database_s_clock(clock, letters):
    document = working(letters)
    clock.set(clock.real() + HOUR)
    claims.postpone(document.pk, "first", 60)
    alive_at = Document.objects.get(pk=document.pk).work_alive_at
    assert timedelta(seconds=50) < alive_at - database_now() <= timedelta(seconds=60)

"""The pipeline on real worker processes: Redis, PostgreSQL and `celery worker`, including a
worker killed with SIGKILL in the middle of a batch."""

import os
import signal
import time

import pytest
import redis
from django.conf import settings
from django.conf import settings as django_settings
from django.db.models import Count, Q

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document, Line, Page
from ocrreview.transcription import services
from ocrreview.transcription.models import Hypothesis, RecognitionRequest
from tests.ingestion import files
from tests.workers import celery_worker

R = RecognitionRequest.Status
DEMO_PAGE = django_settings.BASE_DIR / "demo" / "lathrop" / "SC0033B_s4_b01_f14_i080.jpg"


def worker_settings(model_dir, **extra) -> dict[str, str]:
    return {
        "OCRREVIEW_MODEL": str(model_dir),
        "OCRREVIEW_DEVICE": "cpu",
        "OCRREVIEW_MAX_NEW_TOKENS": "8",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def wait_for(condition, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def outstanding() -> int:
    return RecognitionRequest.objects.filter(status__in=[R.QUEUED, R.RUNNING]).count()


def assert_each_line_read_once(total: int) -> None:
    """Exactly one n-best list per line and model version (one best reading each, ranks
    without gaps or repeats), and every line routed once."""
    per_line = (
        Hypothesis.objects.values("line", "model_version")
        .annotate(best=Count("id", filter=Q(rank=0)))
        .order_by()
    )
    assert len(per_line) == total
    assert {row["best"] for row in per_line} == {1}
    for line in Line.objects.prefetch_related("hypotheses"):
        ranks = sorted(h.rank for h in line.hypotheses.all())
        assert ranks == list(range(len(ranks)))
        assert line.version == 2


@pytest.fixture
def broker():
    # This test run's own Redis database: start without leftovers of earlier runs.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def wait_for_the_first_batches() -> None:
    wait_for(
        lambda: RecognitionRequest.objects.filter(status=R.DONE).count() >= 4,
        60,
        interval=0.02,
        what="the first batches",
    )


def upload_lines(collection, count: int) -> list:
    uploads = [Upload.from_bytes(f"line-{i}.png", files.png(320, 48)) for i in range(count)]
    return do_ingest(collection, uploads, segmentation=Document.Segmentation.WHOLE_IMAGE)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_worker_told_to_stop_stores_its_batch_and_gives_the_rest_back_at_once(
    broker, letters, tiny_model, settings, pool
):
    """SIGTERM to a worker, as a container's stop or `make run`'s Ctrl+C sends it: the warm
    shutdown waited for the task to drain the whole queue, and whatever kills what is still
    running after its grace period left a chunk's lines to wait out their lease, charged an
    attempt. A prefork child never hears the signal; only its main process does."""
    settings.OCRREVIEW_MODEL = str(tiny_model)
    slow = worker_settings(
        tiny_model,
        OCRREVIEW_BATCH_SIZE="1",
        OCRREVIEW_RECOGNITION_CHUNK="100",
        OCRREVIEW_MAX_NEW_TOKENS="64",
    )
    # Every line queued before the worker starts, so that its first claim holds them all and
    # the signal comes in the middle of it. Uploaded while it ran, they trickled into claims
    # of a few, each of which a quick machine could finish before the signal: none given back.
    upload_lines(letters, 60)
    with celery_worker("gpu", name="stopping", pool=pool, answers_first=False, **slow) as stopping:
        wait_for_the_first_batches()
        stopping.process.send_signal(signal.SIGTERM)
        stopping.process.wait(timeout=30)
    assert not RecognitionRequest.objects.filter(status=R.RUNNING).exists()
    given_back = RecognitionRequest.objects.filter(status=R.QUEUED, error=services.STOPPED)
    assert given_back.exists(), "the worker read every line it had claimed before it stopped"
    # Lines uploaded after the worker's last claim were never claimed: queued, no error.
    waiting = RecognitionRequest.objects.filter(status=R.QUEUED)
    assert {(r.attempts, r.error) for r in waiting} <= {(0, services.STOPPED), (0, "")}
    done = RecognitionRequest.objects.filter(status=R.DONE)
    assert Hypothesis.objects.filter(rank=0).count() == done.count()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_document_whose_segmentation_message_was_lost_is_segmented_by_the_sweep(
    broker, letters, tiny_model
):
    (result,) = do_ingest(letters, [Upload.from_bytes("letter.jpg", DEMO_PAGE.read_bytes())])
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the broker lost the message
    document = result.document
    sweeping = worker_settings(tiny_model, OCRREVIEW_SWEEP_SECONDS="1")
    with celery_worker("segment", name="sweeper", timeout=120, **sweeping):
        wait_for(
            lambda: Document.objects.get(pk=document.pk).status == Document.Status.RECOGNIZING,
            150,
            interval=0.5,
            what="the sweep's segmentation",
        )
    assert document.lines.count() >= 10


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_uploaded_page_is_segmented_by_kraken_and_recognised_on_workers(
    broker, letters, tiny_model, settings
):
    """Upload -> kraken (segment queue) -> recognition (gpu queue), as deployed."""
    settings.OCRREVIEW_MODEL = str(tiny_model)
    letters.nbest_size = 1
    letters.save()
    with celery_worker("segment,gpu", name="pipeline", timeout=120, **worker_settings(tiny_model)):
        (result,) = do_ingest(letters, [Upload.from_bytes("letter.jpg", DEMO_PAGE.read_bytes())])
        assert result.ok and result.document.status == Document.Status.UPLOADED
        document = result.document
        wait_for(
            lambda: Document.objects.get(pk=document.pk).status == Document.Status.READY,
            150,
            interval=0.5,
            what="segmentation and recognition",
        )
    lines = list(document.lines.order_by("order"))
    assert len(lines) >= 10  # the page has 16 transcribed lines
    for line in lines:
        assert len(line.baseline) >= 2 and len(line.polygon) >= 3
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= 1158 and 0 <= y0 < y1 <= 1500
        assert line.status in (Line.Status.AUTO_ACCEPTED, Line.Status.NEEDS_REVIEW)
        assert line.hypotheses.filter(rank=0).count() == 1
    # Reading order runs down the page (a single column letter).
    tops = [line.bbox[1] for line in lines]
    assert tops[0] < tops[len(tops) // 2] < tops[-1]
    assert document.pages.get().status == Page.Status.SEGMENTED


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    broker, letters, tiny_model, settings
):
    settings.OCRREVIEW_MODEL = str(tiny_model)
    slow = worker_settings(
        tiny_model,
        OCRREVIEW_BATCH_SIZE="2",
        OCRREVIEW_RECOGNITION_CHUNK="60",
        OCRREVIEW_RECOGNITION_LEASE_SECONDS="3",
    )
    letters.nbest_size = 2
    letters.save()
    with celery_worker("gpu", name="doomed", **slow) as doomed:
        upload_lines(letters, 30)
        total = Line.objects.count()
        wait_for_the_first_batches()
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
    stranded = RecognitionRequest.objects.filter(status=R.RUNNING).count()
    done_before = RecognitionRequest.objects.filter(status=R.DONE).count()
    assert stranded > 0, "the worker died between batches; nothing was left mid-batch"
    assert done_before < total

    # The rescuer's start-up kick takes over what the dead worker held once its lease
    # runs out (a solo worker answers the readiness ping only after that first task).
    with celery_worker("gpu", name="rescuer", timeout=120, **slow):
        wait_for(lambda: outstanding() == 0, 60, interval=0.2, what="the rescue")

    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.DONE}
    assert RecognitionRequest.objects.count() == total
    assert_each_line_read_once(total)
    for line in Line.objects.all():
        assert line.status in (Line.Status.AUTO_ACCEPTED, Line.Status.NEEDS_REVIEW)
    # The lines the dead worker held were taken over: a second attempt each.
    assert RecognitionRequest.objects.filter(attempts=2).count() >= stranded
    assert set(Document.objects.values_list("status", flat=True)) == {Document.Status.READY}


def test_kicks_are_held_back_on_redis_over_tls_too(settings):
    """With REDIS_URL=rediss://, one upload of 200 files queued 200 recognition kicks."""
    from ocrreview.transcription import tasks

    settings.CELERY_BROKER_URL = "rediss://:secret@cache.example.org:6380/0"
    client = tasks._redis()
    assert client is not None
    assert client.connection_pool.connection_class is redis.SSLConnection

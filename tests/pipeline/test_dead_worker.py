"""Lines held by a worker killed with SIGKILL come back through the live workers' periodic
sweep, as issue 17 found them not to: the replacement started before the dead worker's
lease ran out, so its start-up found nothing to take, and the one message that would have
looked again later had died with the killed worker."""

import os
import signal
import time
from datetime import timedelta

import psutil
import pytest
import redis
from django.conf import settings
from django.utils import timezone

from ocrreview.corpus.models import Document, Line
from ocrreview.transcription.models import RecognitionRequest
from tests.pipeline.test_worker import (
    assert_each_line_read_once,
    outstanding,
    upload_lines,
    wait_for,
    worker_settings,
)
from tests.workers import celery_worker

R = RecognitionRequest.Status
# The doomed worker's lease outlasts any start-up of the replacement, however slow the
# machine; once the replacement is up, the test lets the stranded claims run out (the clock
# the scenario needs), so its start-up sweep has come too early and only the periodic one
# can bring the lines back.
DOOMED_LEASE_S = 600
EXPIRES_S = 2
SWEEP_S = 1
# The replacement's periodic sweep finding the run-out lease and giving the lines back, on a
# busy CPU.
RECLAIM_S = 15
# Reading the stranded lines once claimed again: the tiny model's speed on the machine, which
# the rescue does not depend on (four busy threads on two cores took over 30 s).
READ_S = 180


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_lines_of_a_worker_killed_with_its_pool_come_back_within_a_lease(letters, tiny_model):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    env = worker_settings(
        tiny_model,
        OCRREVIEW_BATCH_SIZE="2",
        OCRREVIEW_RECOGNITION_CHUNK="60",
        OCRREVIEW_RECOGNITION_LEASE_SECONDS=str(DOOMED_LEASE_S),
        OCRREVIEW_SWEEP_SECONDS=str(SWEEP_S),
    )
    letters.nbest_size = 2
    letters.save()
    # Every line queued before the worker starts, so that its first claim holds them all and
    # the kill comes in the middle of it. Uploaded while it ran, they trickled into claims of
    # a few, and a quick machine could be between two of them at the kill: nothing stranded.
    upload_lines(letters, 40)
    total = Line.objects.count()
    # `manage.py serve`'s main worker: a prefork main process with one pool child.
    with celery_worker(
        "default,gpu", name="doomed", pool="prefork", answers_first=False, **env
    ) as doomed:
        wait_for(
            lambda: RecognitionRequest.objects.filter(status=R.DONE).count() >= 2,
            60,
            interval=0.02,
            what="the first batches",
        )
        children = psutil.Process(doomed.process.pid).children()
        assert len(children) == 1, "the worker runs one pool child"
        os.killpg(doomed.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.process.wait()
        psutil.wait_procs(children, timeout=10)
    # The dead worker's claim: the lines it had not read yet.
    stranded = dict(RecognitionRequest.objects.filter(status=R.RUNNING).values_list("id", "claim"))
    assert stranded, "the worker died between batches; it held no claim"

    with celery_worker("default,gpu", name="replacement", pool="prefork", **env):
        held = RecognitionRequest.objects.filter(id__in=stranded)
        assert dict(held.values_list("id", "claim")) == stranded, (
            "the replacement's start-up sweep took lines whose lease had not run out"
        )
        ready_after = time.monotonic() - killed_at
        held.update(lease_until=timezone.now() + timedelta(seconds=EXPIRES_S))
        wait_for(
            lambda: held.exclude(claim__in=stranded.values()).count() == len(stranded),
            EXPIRES_S + SWEEP_S + RECLAIM_S,
            0.2,
            "the rescue",
        )
        back_after = time.monotonic() - killed_at - ready_after
        wait_for(lambda: outstanding() == 0, READ_S, 0.2, "the rescued lines to be read")
    print(
        f"replacement ready {ready_after:.1f} s after the kill; every stranded line given back "
        f"{back_after:.1f} s after that, the stranded lease running out after {EXPIRES_S} s"
    )

    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.DONE}
    assert RecognitionRequest.objects.count() == total
    assert_each_line_read_once(total)
    assert RecognitionRequest.objects.filter(attempts=2).count() == len(stranded)
    assert set(Document.objects.values_list("status", flat=True)) == {Document.Status.READY}

"""A line drawn in the page view is read by the model on a real Celery worker."""

import time

import pytest
import redis

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.transcription.models import Hypothesis
from tests import factories
from tests.workers import celery_worker


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_added_line_is_recognised_by_a_worker(bob, letters, tiny_model_dir, settings):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    settings.OCRREVIEW_MODEL = str(tiny_model_dir)
    settings.OCRREVIEW_MODEL_REVISION = None
    letters.nbest_size = 2
    letters.save()
    page = factories.make_page(factories.make_document(letters), width=600, height=200)
    env = {
        "OCRREVIEW_MODEL": str(tiny_model_dir),
        "OCRREVIEW_DEVICE": "cpu",
        "OCRREVIEW_MAX_NEW_TOKENS": "8",
        "HF_HUB_OFFLINE": "1",
    }
    with celery_worker("gpu", name="review", timeout=120, **env):
        line = actions.do_add_line(page, bob, [20, 40, 580, 90])
        deadline = time.monotonic() + 150
        while not Hypothesis.objects.filter(line=line).exists():
            assert time.monotonic() < deadline, "the worker did not read the new line"
            time.sleep(0.5)
    line = Line.objects.get(pk=line.pk)
    assert line.model_version is not None and line.confidence is not None
    assert line.status in ("needs_review", "auto_accepted")
    assert Hypothesis.objects.filter(line=line).count() == 2

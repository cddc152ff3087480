"""A queued run or export says why it may wait: no worker on its queue, or how many tasks wait
there, or that the broker cannot be asked. One real worker, on the queues
`default,segment,gpu` as an admin might start it: it takes exports, not training."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from ocrreview.training.models import DatasetExport, TrainingRun
from ocrreview.transcription import ops
from tests import factories
from tests.workers import celery_worker

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="module")
def worker_without_training(django_db_setup):
    with celery_worker("default,segment,gpu", name="waiting") as worker:
        yield worker


@pytest.fixture(autouse=True)
def _ask_the_workers_afresh():
    """The pages share the answer for a few seconds; each test asks its own."""
    cache.delete(ops.LISTENING_KEY)
    yield
    cache.delete(ops.LISTENING_KEY)


@pytest.fixture
def queued_export(letters):
    # Made with the ORM: no message is sent, so the worker cannot take it and it stays queued.
    return DatasetExport.objects.create(collection=letters)


@pytest.fixture
def queued_run(letters):
    done = DatasetExport.objects.create(collection=letters, status="done")
    return TrainingRun.objects.create(
        base_model=factories.make_model_version(), dataset=done, params={}
    )


@pytest.mark.slow
def test_a_queued_run_says_no_worker_listens_on_training(
    worker_without_training, client, alice, queued_run
):
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[queued_run.pk])).content.decode()
    assert "No worker is listening on the `training` queue" in page
    assert "celery -A ocrreview worker -Q training" in page
    # The polled fragment says it too.
    fragment = client.get(reverse("training_run", args=[queued_run.pk]), **HX).content.decode()
    assert "No worker is listening on the `training` queue" in fragment


@pytest.mark.slow
def test_a_queued_export_says_a_worker_listens_and_how_many_wait(
    worker_without_training, client, alice, queued_export
):
    client.force_login(alice)
    page = client.get(reverse("training_export", args=[queued_export.pk])).content.decode()
    assert "A worker is listening on the `default` queue; 0 tasks waiting in it." in page
    assert "No worker" not in page


def test_with_the_broker_down_the_pages_say_they_cannot_tell(
    client, alice, queued_run, queued_export, broker_down
):
    client.force_login(alice)
    for url in (
        reverse("training_run", args=[queued_run.pk]),
        reverse("training_export", args=[queued_export.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert "Cannot tell why it waits: the broker is unreachable." in response.content.decode()


def test_a_finished_export_says_nothing_of_queues(client, alice, letters):
    done = DatasetExport.objects.create(collection=letters, status="done")
    client.force_login(alice)
    page = client.get(reverse("training_export", args=[done.pk])).content.decode()
    assert 'id="export-waiting"' not in page

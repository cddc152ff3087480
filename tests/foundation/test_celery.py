"""The Celery wiring: routing by task, JSON only, late acks; a real worker on real Redis."""

import pytest
import torch

from ocrreview.celery import app
from tests.workers import celery_worker, worker_env, worker_that_stops_at_start


def test_tasks_are_routed_to_their_queues():
    route = app.amqp.router.route
    assert route({}, "ocrreview.transcription.tasks.recognize_pending")["queue"].name == "gpu"
    assert route({}, "ocrreview.training.tasks.train_model")["queue"].name == "training"
    assert route({}, "ocrreview.corpus.tasks.segment_document")["queue"].name == "segment"
    assert route({}, "ocrreview.corpus.tasks.fetch_iiif_images")["queue"].name == "default"
    assert route({}, "ocrreview.corpus.tasks.mail_password_reset")["queue"].name == "mail"
    assert route({}, "ocrreview.corpus.tasks.mail_password_reset_link")["queue"].name == "mail"
    assert route({}, "ocrreview.corpus.tasks.mail_invitation")["queue"].name == "mail"


def test_only_json_crosses_the_broker():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost


def test_a_worker_takes_a_task_only_for_a_process_that_is_free(settings):
    """Segmentation, IIIF fetching and exports are acknowledged on receipt, which freed their
    prefetch slot at once: worker-cpu went on taking queued documents that worker-gpu, idle,
    could have segmented."""
    assert settings.REDIS_URL.startswith("redis")
    assert app.conf.worker_disable_prefetch


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_consumes_all_four_queues():
    with celery_worker("default,segment,gpu,training", name="foundation") as worker:
        inspect = app.control.inspect(destination=[worker.hostname], timeout=5)
        queues = inspect.active_queues()[worker.hostname]
        assert {q["name"] for q in queues} == {"default", "segment", "gpu", "training"}
        assert worker.process.poll() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_worker_told_to_read_on_a_gpu_it_does_not_have_stops_at_start(db):
    finished = worker_that_stops_at_start(worker_env(OCRREVIEW_DEVICE="cuda"))
    assert "OCRREVIEW_DEVICE=cuda, but torch finds no usable GPU here" in finished.stderr

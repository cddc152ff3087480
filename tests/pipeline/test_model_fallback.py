"""A default model that cannot load: the worker that falls back to the starter records it in
the database, the collection, recognition progress and Queues pages say so to admins, and a
worker that loads the model again clears it."""

import os
import re

import pytest
import redis
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document
from ocrreview.transcription import services
from ocrreview.transcription.models import ModelFallback
from tests import factories
from tests.ingestion import files
from tests.pipeline.test_worker import wait_for, worker_settings
from tests.tiny_model import build_tiny_model
from tests.workers import celery_worker

NOTICE = "Lines are being read by the starter model"


@pytest.fixture
def garbage_model(settings, tmp_path):
    """A model directory with every file a checkpoint needs, none of them readable."""
    folder = tmp_path / "garbage-model"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json", "tokenizer.json"):
        (folder / name).write_text("{ this is not json")
    (folder / "model.safetensors").write_bytes(os.urandom(256))
    settings.OCRREVIEW_MODEL = str(folder)
    settings.OCRREVIEW_MODEL_REVISION = None
    settings.OCRREVIEW_MAX_NEW_TOKENS = 8
    settings.OCRREVIEW_DEVICE = "cpu"
    return folder


@pytest.fixture
def document(letters):
    document = factories.make_document(letters, status=Document.Status.RECOGNIZING)
    page = factories.make_page(document)
    for order in range(2):
        factories.make_line(page, order)
    return document


def drain(worker: str = "worker-1") -> None:
    while services.do_recognize_pending(worker):
        pass


def page_text(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_worker_that_falls_back_records_why_and_admins_pages_say_so(
    garbage_model, document, alice, bob, staff, client
):
    services.do_queue_recognition(document.lines.all())
    drain()
    fallback = ModelFallback.objects.get()
    assert fallback.model_version.name == str(garbage_model)
    assert fallback.stand_in.name == services.STARTER_MODEL_NAME
    assert str(garbage_model) in fallback.reason
    assert fallback.worker == "worker-1"
    assert fallback.since == fallback.failed_at
    assert set(document.lines.values_list("model_version__name", flat=True)) == {
        services.STARTER_MODEL_NAME
    }

    collection_page = page_text(
        client, alice, reverse("collection_detail", args=[document.collection_id])
    )
    assert NOTICE in collection_page
    assert f"{garbage_model} could not be loaded" in collection_page
    assert f"at {timezone.localtime(fallback.failed_at):%H:%M}" in collection_page
    assert "the workers retry every 10 min" in collection_page
    assert "cannot load model" in collection_page  # the reason
    progress = page_text(
        client, alice, reverse("recognition_progress", args=[document.collection_id])
    )
    assert NOTICE in progress
    queues = page_text(client, staff, reverse("recognition_queues"))
    assert NOTICE in queues and str(garbage_model) in queues
    # Reviewers are not told about workers.
    assert NOTICE not in page_text(
        client, bob, reverse("collection_detail", args=[document.collection_id])
    )
    # The list of collections names the model that reads, for everyone.
    home = page_text(client, bob, reverse("home"))
    assert "starter model (offline fallback)" in home and "—" not in home


@pytest.mark.django_db
def test_a_later_failure_keeps_when_the_fallback_began(garbage_model, document, monkeypatch):
    monkeypatch.setattr(services, "FALLBACK_RETRY_SECONDS", 0)
    services.do_queue_recognition(document.lines.all())
    drain()
    first = ModelFallback.objects.get()
    ModelFallback.objects.update(since=first.since.replace(year=first.since.year - 1))
    document.lines.update(model_version=None)
    services.do_queue_recognition(document.lines.all())
    drain("worker-2")
    again = ModelFallback.objects.get()
    assert again.since.year == first.since.year - 1
    assert again.failed_at > first.failed_at and again.worker == "worker-2"


@pytest.mark.django_db
def test_a_worker_still_reading_with_the_starter_restores_the_record_another_cleared(
    garbage_model, document
):
    services.do_queue_recognition(document.lines.all())
    drain()
    first = ModelFallback.objects.get()
    # A worker whose disk holds the model loads it and clears the record, while this one,
    # waiting out its retry, goes on reading with the starter.
    ModelFallback.objects.all().delete()
    document.lines.update(model_version=None)
    assert services.do_queue_recognition(document.lines.all()) == 2
    drain()
    again = ModelFallback.objects.get()
    assert (again.reason, again.since, again.failed_at, again.worker) == (
        first.reason,
        first.since,
        first.failed_at,
        "worker-1",
    )


@pytest.mark.django_db
def test_a_worker_that_loads_the_model_clears_the_record(
    garbage_model, document, alice, client, monkeypatch
):
    services.do_queue_recognition(document.lines.all())
    drain()
    assert ModelFallback.objects.exists()
    for name in os.listdir(garbage_model):
        os.remove(garbage_model / name)
    build_tiny_model(garbage_model)  # fixed: the model loads now
    monkeypatch.setattr(services, "FALLBACK_RETRY_SECONDS", 0)
    assert services.do_queue_recognition(document.lines.all()) == 2
    drain()
    assert not ModelFallback.objects.exists()
    assert set(document.lines.values_list("model_version__name", flat=True)) == {str(garbage_model)}
    page = page_text(client, alice, reverse("collection_detail", args=[document.collection_id]))
    assert NOTICE not in page


@pytest.mark.django_db
def test_a_collection_reading_with_another_model_is_not_told(
    garbage_model, document, ledgers, client
):
    services.do_queue_recognition(document.lines.all())
    drain()
    other_admin = factories.make_user("olga")
    factories.add_member(other_admin, ledgers, "admin")
    ledgers.model_version = factories.make_model_version()
    ledgers.save()
    assert NOTICE not in page_text(
        client, other_admin, reverse("collection_detail", args=[ledgers.pk])
    )


@pytest.mark.django_db
def test_the_home_page_names_the_model_that_reads_each_collection(
    settings, letters, ledgers, alice, client
):
    """The site default (no version chosen), a chosen version, and the starter reading in place
    of either, which the home page listed as "—" (the collection had no version of its own)."""
    factories.add_member(alice, ledgers)
    settings.OCRREVIEW_MODEL, settings.OCRREVIEW_MODEL_REVISION = "org/handwriting", "v2"
    ledgers.model_version = factories.make_model_version("ledgers-v3", "/models/ledgers-v3")
    ledgers.save()
    rows = home_rows(client, alice)
    assert rows == {"Letters": "org/handwriting@v2 (site default)", "Ledgers": "ledgers-v3"}

    starter = factories.make_model_version(services.STARTER_MODEL_NAME, "/starter")
    now = timezone.now()
    for version in (
        factories.make_model_version("org/handwriting@v2", "org/handwriting", revision="v2"),
        ledgers.model_version,
    ):
        ModelFallback.objects.create(
            model_version=version, stand_in=starter, reason="offline", since=now, failed_at=now
        )
    html = page_text(client, alice, reverse("home"))
    assert '<span title="org/handwriting@v2 could not be loaded">' in html
    rows = home_rows(client, alice)
    assert rows == {
        "Letters": "starter model (offline fallback)",
        "Ledgers": "starter model (offline fallback)",
    }


def home_rows(client, user) -> dict[str, str]:
    """Each collection's name on the home page and what its Model column says."""
    html = page_text(client, user, reverse("home"))
    rows = re.findall(r'<a href="/collections/\d+/">([^<]+)</a></td>\s*<td>(.*?)</td>', html)
    return {name: re.sub(r"<[^>]+>", "", model) for name, model in rows}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_records_the_fallback_where_the_pages_read_it(
    garbage_model, letters, alice, client
):
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    with celery_worker("gpu", name="fallback", **worker_settings(garbage_model)) as worker:
        do_ingest(
            letters,
            [Upload.from_bytes("line.png", files.png(320, 48))],
            segmentation=Document.Segmentation.WHOLE_IMAGE,
        )
        wait_for(
            lambda: Document.objects.filter(status=Document.Status.READY).exists(),
            120,
            interval=0.2,
            what="the line read by the starter",
        )
    fallback = ModelFallback.objects.get()
    assert (fallback.model_version.name, fallback.worker) == (str(garbage_model), worker.hostname)
    assert str(garbage_model) in fallback.reason
    page = page_text(client, alice, reverse("collection_detail", args=[letters.pk]))
    assert NOTICE in page

"""The import end to end on a real Celery worker (Redis, PostgreSQL, `celery worker`), and
in a real Chromium: an admin pastes a manifest URL on the upload page and the document comes
with its pages."""

import json
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from ocrreview.corpus.iiif import do_import_iiif
from ocrreview.corpus.models import Document
from tests.iiif.server import manifest_2, manifest_3, send
from tests.playwright_fixtures import log_in
from tests.workers import celery_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def broker():
    # This test run's own Redis database: start without leftovers of earlier runs.
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()


def allowed(server) -> dict[str, str]:
    return {"OCRREVIEW_IIIF_ALLOWED_HOSTS": f"127.0.0.1:{server.server_address[1]}"}


def wait_for_status(document: Document, status: str, timeout: float = 60) -> Document:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.status == status:
            return document
        time.sleep(0.2)
    raise AssertionError(f"document is {document.status} ({document.error}), not {status}")


@pytest.mark.django_db(transaction=True)
def test_a_worker_fetches_the_canvases_and_hands_the_document_on(broker, iiif_server, letters):
    services = [iiif_server.image_service(f"w{n}", 300 + n, 200) for n in range(3)]
    url = manifest_3(
        iiif_server, "/w.json", [(f"{n}", 300 + n, 200, s) for n, s in enumerate(services)]
    )
    with celery_worker("default", name="iiif", **allowed(iiif_server)):
        document, fetching = do_import_iiif(
            letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE
        )
        assert fetching
        document = wait_for_status(document, Document.Status.RECOGNIZING)
    pages = list(document.pages.order_by("index"))
    assert [(p.index, p.width, p.iiif_canvas) for p in pages] == [
        (n, 300 + n, f"{url}/canvas/{n + 1}") for n in range(3)
    ]
    assert document.lines.count() == 3
    assert all(iiif_server.hits[f"/iiif/w{n}/full/max/0/default.jpg"] == 1 for n in range(3))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_pastes_a_manifest_url_and_the_document_comes_with_its_pages(
    broker, iiif_server, new_page, alice, letters
):
    service = iiif_server.image_service("b1", 400, 300, version=2)
    plain = iiif_server.image("/static/b2.jpg", 420, 300)
    url = manifest_2(
        iiif_server, "/ledger", [("p. 1", 400, 300, service), ("p. 2", 420, 300, plain)]
    )
    page = new_page()
    log_in(page, "alice")
    with celery_worker("default", name="iiif-browser", **allowed(iiif_server)):
        page.goto(f"/collections/{letters.pk}/upload/")
        page.fill("input[name=manifest]", url)
        page.select_option("#iiif-form select[name=segmentation]", "whole_image")
        page.click("#iiif-form button[type=submit]")
        page.wait_for_url(f"**/collections/{letters.pk}/")
        assert "Ledger of the Lathrop farm" in page.inner_text(".messages")
        document = wait_for_status(Document.objects.get(), Document.Status.RECOGNIZING)
    page.goto(f"/collections/{letters.pk}/progress/")
    row = page.locator(f"tr[data-document='{document.pk}']")
    assert "Ledger of the Lathrop farm" in row.inner_text()
    assert "0 / 2" in row.inner_text()  # two pages, one line each, waiting to be read
    assert [p.iiif_canvas for p in document.pages.order_by("index")] == [
        f"{url}/canvas/1",
        f"{url}/canvas/2",
    ]
    page.goto(f"/documents/{document.pk}/iiif/manifest.json")
    manifest = json.loads(page.inner_text("body"))
    assert [c["id"] for c in manifest["items"]] == [f"{url}/canvas/1", f"{url}/canvas/2"]


@pytest.mark.django_db(transaction=True)
def test_a_fetch_whose_message_was_lost_is_queued_again_by_a_workers_sweep(
    broker, iiif_server, letters
):
    service = iiif_server.image_service("lost", 300, 200)
    url = manifest_3(iiif_server, "/lost.json", [("1", 300, 200, service)])
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()  # the message is lost
    Document.objects.filter(pk=document.pk).update(
        work_alive_at=timezone.now() - timedelta(hours=1)
    )
    # The server is busy at first: the swept fetch's retry, 10 s later, comes after the sweep's
    # message expired, and must run all the same.
    path = "/iiif/lost/full/max/0/default.jpg"
    image = iiif_server.routes[path]
    answers = iter([lambda h: send(h, b"busy", "text/plain", status=503)])
    iiif_server.routes[path] = lambda h: next(answers, image)(h)
    sweeps = {"OCRREVIEW_SWEEP_SECONDS": "2"}
    with celery_worker("default", name="sweeper", **sweeps, **allowed(iiif_server)):
        document = wait_for_status(document, Document.Status.RECOGNIZING)
    assert document.pages.count() == 1
    assert iiif_server.hits[path] == 2

"""The upload page in a real headless Chromium: files dropped on the page get a progress
bar each, and each file's result comes back without a page load."""

import base64
import json

import pytest

from ocrreview.corpus.models import Document
from tests.ingestion import files
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DROP = """([name, b64, name2, b64b]) => {
  const transfer = new DataTransfer();
  for (const [n, data] of [[name, b64], [name2, b64b]]) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], n));
  }
  const zone = document.getElementById("dropzone");
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
}"""


@pytest.mark.django_db(transaction=True)
def test_alice_drops_two_files_and_sees_their_results(new_page, alice, letters):

    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/upload/")
    payload = [
        "scan.jpg",
        base64.b64encode(files.jpeg()).decode(),
        "notes.txt",
        base64.b64encode(b"not an image").decode(),
    ]
    page.evaluate(DROP, payload)
    assert page.locator("#upload-files li").count() == 2
    page.select_option("select[name=segmentation]", "whole_image")
    page.click("button[type=submit]")
    page.wait_for_selector("table.upload-results")
    bars = page.eval_on_selector_all("#upload-files progress", "bars => bars.map(b => b.value)")
    assert bars == [100, 100], json.dumps(bars)
    rows = page.locator("table.upload-results tbody tr")
    assert rows.count() == 2
    text = page.inner_text("table.upload-results")
    assert "scan.jpg" in text and "1 page" in text
    assert "notes.txt" in text and "unsupported file type" in text
    assert Document.objects.get().segmentation == Document.Segmentation.WHOLE_IMAGE


@pytest.mark.django_db(transaction=True)
def test_more_files_than_one_request_may_carry_are_held_back_with_the_reason(
    new_page, alice, letters, settings
):
    # Django would refuse such a request before any view ran, with a bare "Bad Request".
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 1
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/upload/")
    jpeg = base64.b64encode(files.jpeg()).decode()
    page.evaluate(DROP, ["a.jpg", jpeg, "b.jpg", jpeg])
    page.click("button[type=submit]")
    message = page.inner_text("#upload-results")
    assert message.startswith("One upload takes at most 1 file:")
    assert page.locator("#upload-files li").count() == 2  # still chosen
    assert not Document.objects.exists()

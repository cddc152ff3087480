"""The training pages in a real headless Chromium, with a real worker: an export's progress
and a run's chart update in place (htmx polling, no page load), and Cancel stops the run."""

import pytest

from ocrreview.training.models import DatasetExport, TrainingRun
from tests.playwright_fixtures import log_in
from tests.training.conftest import worker_settings
from tests.workers import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Set once after the page loads; still there later means the page was updated, not reloaded.
MARK = "window.__notReloaded = true"
STILL_MARKED = "() => window.__notReloaded === true"


@pytest.mark.django_db(transaction=True)
def test_alice_exports_trains_watches_and_cancels(
    new_page, screenshot, letters, alice, tiny_version, reviewed_letters
):
    page = new_page()
    log_in(page, "alice")
    with celery_worker("default,training", name="training-browser", **worker_settings()):
        page.goto(f"/collections/{letters.pk}/")
        page.click("text=Datasets and training")
        page.fill("input[name=seed]", "2")
        page.fill("input[name=test_fraction]", "0.2")
        page.click("form[action$='/exports/'] button")
        page.wait_for_url("**/training/exports/*/")
        page.evaluate(MARK)
        page.wait_for_selector("text=Download the zip", timeout=60_000)
        assert page.evaluate(STILL_MARKED)
        export = DatasetExport.objects.get()
        assert export.checksum in page.inner_text("#export-status")
        screenshot(page, "training-export")
        with page.expect_download() as download:
            page.click("text=Download the zip")
        assert download.value.suggested_filename == f"Letters-export-{export.pk}.zip"

        page.click("text=Datasets and training")
        page.select_option("select[name=base]", str(tiny_version.pk))
        page.select_option("select[name=dataset]", str(export.pk))
        page.select_option("select[name=train_part]", "decoder")
        page.fill("input[name=max_steps]", "100000")
        page.fill("input[name=batch_size]", "4")
        page.fill("input[name=grad_accum]", "2")
        page.fill("input[name=eval_every]", "10")
        page.fill("input[name=patience]", "")
        page.click("form[action$='/runs/'] button")
        page.wait_for_url("**/training/runs/*/")
        page.evaluate(MARK)
        page.wait_for_selector(".training-chart polyline.loss[points*=',']", timeout=90_000)
        assert page.evaluate(STILL_MARKED)
        assert "step" in page.inner_text("#run-status")
        screenshot(page, "training-run")
        page.click("button:has-text('Cancel')")
        page.wait_for_selector("text=Cancelled", timeout=60_000)
        assert "cancelled at step" in page.inner_text(".training-log")
        page.click("text=Datasets and training")
        screenshot(page, "training-home")
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.CANCELLED and run.result_model is None
    assert run.params["grad_accum"] == 2 and run.params["train_part"] == "decoder"

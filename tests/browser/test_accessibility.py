"""What screen readers are told outside the review editor, in a real headless Chromium: errors
as alerts tied to their field, which upload each progress bar follows, and what becomes of a
training run or an export while its page polls."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from ocrreview.training.models import DatasetExport, TrainingRun
from tests import factories
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_search_the_server_refuses_says_why_on_the_field(new_page, bob, letters):
    page = new_page()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/search/?q=-draft")
    expect(page.get_by_role("alert")).to_contain_text("Add a word to find")
    words = page.locator("input[name=q]")
    expect(words).to_have_attribute("aria-invalid", "true")
    expect(words).to_have_accessible_description(re.compile("Add a word to find"))


def test_a_failed_log_in_is_an_alert(new_page, bob):
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("didn't match")


def test_each_upload_bar_is_named_after_its_file_and_the_results_are_announced(
    new_page, alice, letters
):
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/upload/")
    page.evaluate(
        """(names) => {
          const transfer = new DataTransfer();
          for (const name of names) transfer.items.add(new File([atob("AA==")], name));
          const zone = document.getElementById("dropzone");
          zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        ["scan.jpg", "notes.txt"],
    )
    expect(page.get_by_role("progressbar", name="scan.jpg", exact=True)).to_have_count(1)
    expect(page.get_by_role("progressbar", name="notes.txt", exact=True)).to_have_count(1)
    expect(page.locator("#upload-results")).to_have_attribute("aria-live", "polite")


def test_a_polled_training_run_keeps_the_focus_on_cancel_and_says_once_that_it_runs(
    new_page, alice, letters
):
    base = factories.make_model_version(name="base", source="/models/base", status="active")
    export = DatasetExport.objects.create(collection=letters, status="done", created_by=alice)
    run = TrainingRun.objects.create(base_model=base, dataset=export, created_by=alice)
    page = new_page()
    log_in(page, "alice")
    page.goto(reverse("training_run", args=[run.pk]))
    cancel = page.get_by_role("button", name="Cancel")
    cancel.focus()
    page.evaluate("window.polled = document.getElementById('run-status')")
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    page.wait_for_function("document.getElementById('run-said').textContent === 'Training running'")
    assert page.evaluate("window.polled !== document.getElementById('run-status')")
    assert page.evaluate("document.activeElement.textContent") == "Cancel"

    # The next poll finds it still running, and says nothing again.
    page.evaluate(
        """() => {
          window.said = document.getElementById('run-said').firstChild;
          window.polled = document.getElementById('run-status');
        }"""
    )
    page.wait_for_function("window.polled !== document.getElementById('run-status')")
    assert page.evaluate("window.said === document.getElementById('run-said').firstChild")
    assert page.evaluate("document.activeElement.textContent") == "Cancel"


def test_a_polled_export_says_how_it_ended(new_page, alice, letters):
    export = DatasetExport.objects.create(collection=letters, created_by=alice)
    page = new_page()
    log_in(page, "alice")
    page.goto(reverse("training_export", args=[export.pk]))
    DatasetExport.objects.filter(pk=export.pk).update(status=DatasetExport.Status.FAILED)
    page.wait_for_function("document.getElementById('export-said').textContent === 'Export failed'")

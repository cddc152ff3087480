"""What screen readers are told outside the review editor, in a real headless Chromium: errors
as alerts tied to their field, and which upload each progress bar follows."""

import re

import pytest
from playwright.sync_api import expect

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

"""Find and replace in a real headless Chromium: alice ticks a hit, previews the change, and
replaces it."""

import pytest

from ocrreview.corpus.models import Line
from tests import factories
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_alice_previews_and_replaces_a_misread_name(new_page, alice, letters):
    page_row = factories.make_page(factories.make_document(letters, title="Family letters"))
    chosen = factories.make_line(page_row, 0, text="Mr Stanfora called")
    left = factories.make_line(page_row, 1, text="at Stanfora mill")
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/search/?q=Stanfora")
    page.check(f'.search-hit[data-line-id="{chosen.pk}"] input[name=line_ids]')
    page.fill("#replace-form input[name=replacement]", "Stanford")
    page.click("#replace-form button[type=submit]")
    row = page.locator(f'.replace-changes tr[data-line-id="{chosen.pk}"]')
    row.wait_for()
    assert row.locator("del").inner_text().endswith("a")
    assert Line.objects.get(pk=chosen.pk).text == "Mr Stanfora called"
    page.get_by_role("button", name="Replace in 1 line").click()
    page.wait_for_selector("text=1 line changed")
    assert Line.objects.get(pk=chosen.pk).text == "Mr Stanford called"
    assert Line.objects.get(pk=left.pk).text == "at Stanfora mill"

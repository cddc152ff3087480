"""A coordinator, in a real headless Chromium, finds one volunteer's saves on the collection's
Corrections page, undoes them after being told how many lines that changes, and opens a line's
history from the list."""

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from tests import factories
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_alice_finds_bobs_saves_undoes_them_and_reads_a_lines_history(
    new_page, alice, bob, letters, model_version
):
    page_of_letter = factories.make_page(factories.make_document(letters, "Letter to Mr Hale"))
    lines = [
        factories.make_read_line(page_of_letter, n, [(text, 0.4)], model_version)
        for n, text in enumerate(["Dear Sir", "I recieved your", "letter of the 3d"])
    ]
    actions.do_save_line(lines[0], alice, "Dear Sir,", expected_version=1)
    since = timezone.now()
    actions.do_save_line(lines[1], bob, "I RECIEVED YOUR", expected_version=1)
    actions.do_save_line(lines[2], bob, "LETTER OF THE 3D", expected_version=1)

    page = new_page()
    log_in(page, "alice")
    page.goto(reverse("review_progress", args=[letters.pk]))
    page.get_by_role("link", name="Corrections, by volunteer and time").click()
    page.get_by_label("Who").select_option(label="bob")
    page.get_by_label("From").fill(timezone.localtime(since).strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.corrections tbody tr")).to_have_count(2)
    page.get_by_role("button", name="See what that changes").click()
    expect(page.locator("#undo-outcome")).to_contain_text("2 lines would go back")
    page.get_by_role("button", name="Undo 2 lines").click()
    expect(page.locator("#undo-outcome")).to_contain_text("2 lines put back")
    assert [line.text for line in Line.objects.order_by("order")] == [
        "Dear Sir,",
        "I recieved your",
        "letter of the 3d",
    ]

    page.goto(reverse("review_corrections", args=[letters.pk]))
    page.locator("table.corrections tbody tr").first.get_by_role("link", name="history").click()
    history = page.locator("#history .history-list")
    expect(history).to_contain_text("alice")
    expect(history).to_contain_text("Reverted")

"""Two reviewers on one page view, in two browser contexts: the first holds the page's
waiting lines, the second sees them as the first's, read-only, until the first leaves the
page, and then takes them on."""

import time

import pytest
from playwright.sync_api import expect

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction
from tests.browser import test_review_ui
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]
letter_lines = test_review_ui.letter_lines


def on_the_page(new_page, username, letters, line):
    page = new_page()
    log_in(page, username)
    page.goto(f"/collections/{letters.pk}/review/pages/{line.page_id}/")
    return page


def handed_back(line, timeout_s=15):
    """Waits for the beacon of the page left to be served."""
    deadline = time.monotonic() + timeout_s
    while Line.objects.filter(page_id=line.page_id, claimed_by__isnull=False).exists():
        assert time.monotonic() < deadline, "the page's lines were not handed back"
        time.sleep(0.05)


def test_a_colleagues_lines_are_read_only_until_they_leave_the_page(
    new_page, bob, alice, letters, letter_lines
):
    line = letter_lines[2]
    bobs = on_the_page(new_page, "bob", letters, line)
    expect(bobs.locator(f"#line-{line.pk} .pl-text")).to_be_editable()
    alices = on_the_page(new_page, "alice", letters, line)
    row = alices.locator(f"#line-{line.pk} .pl-text")
    expect(row).not_to_be_editable()
    expect(alices.locator(f"#held-{line.pk}")).to_contain_text("bob is working on this line")
    # The auto-accepted first line is in no queue: nobody holds it.
    expect(alices.locator(f"#line-{letter_lines[0].pk} .pl-text")).to_be_editable()

    row.focus()
    alices.keyboard.press("Control+Enter")  # would accept bob's line unseen
    alices.keyboard.type("x")
    expect(row).to_have_value("of the 3d inst. and")
    assert not Correction.objects.filter(line=line).exists()

    bobs.goto("/")  # the page's release goes as a beacon, answered to nobody
    handed_back(line)

    row.blur()
    row.focus()  # focusing a held row asks whether it is free now
    expect(row).to_be_editable()
    expect(alices.locator(f"#held-{line.pk}")).to_be_hidden()
    assert Line.objects.get(pk=line.pk).claimed_by == alice
    row.fill("of the 3rd inst. and")
    alices.keyboard.press("Enter")
    expect(alices.locator(f"#line-{line.pk} .pl-text")).to_have_attribute(
        "data-saved", "of the 3rd inst. and"
    )
    assert Line.objects.get(pk=line.pk).status == Line.Status.REVIEWED

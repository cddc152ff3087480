"""Two reviewers on one page view, in two browser contexts: the first holds the page's
waiting lines, the second sees them as the first's, read-only, until the first leaves the
page, and then takes them on."""

import time
import uuid

import pytest
from django.core.signals import request_started
from playwright.sync_api import expect

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction, Draft
from tests.browser import test_review_ui
from tests.playwright_fixtures import SERVED, log_in

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


@pytest.mark.parametrize("leaving", ["next page", "tab closed"])
def test_typing_left_within_the_draft_delay_reaches_the_server_and_keeps_the_line(
    new_page, bob, letters, letter_lines, leaving
):
    """The draft timer dies with the page: its typing goes as it goes, and the release leaves
    the line to the reviewer, or a colleague could claim it, or delete it, draft and all."""
    line = letter_lines[2]
    bobs = on_the_page(new_page, "bob", letters, line)
    row = bobs.locator(f"#line-{line.pk} .pl-text")
    row.press("End")
    bobs.keyboard.type(" x")
    if leaving == "next page":
        bobs.goto("/")
    else:
        bobs.close(run_before_unload=True)
    deadline = time.monotonic() + 15
    while not (
        Draft.objects.filter(line=line, text="of the 3d inst. and x").exists()
        and Line.objects.get(pk=letter_lines[1].pk).claimed_by is None
    ):
        assert time.monotonic() < deadline, "the typing or the release was not served"
        time.sleep(0.05)
    assert Line.objects.get(pk=line.pk).claimed_by == bob


def test_closing_the_page_view_leaves_the_line_open_in_the_editor_in_another_tab(
    new_page, bob, letters, letter_lines
):
    """bob has line 3 open in the line editor in one tab, opens its page in a second tab of
    the same browser, and closes that tab: the page view's release hands back the lines it
    claimed, not the editor's, and the editor's save goes through."""
    line = letter_lines[2]
    editor = test_review_ui.bob_on(new_page, letters, line)
    test_review_ui.wait_for_line(editor, line)
    page_view = editor.context.new_page()
    page_view.goto(f"/collections/{letters.pk}/review/pages/{line.page_id}/")
    expect(page_view.locator(f"#line-{line.pk} .pl-text")).to_be_editable()
    others = Line.objects.filter(page_id=line.page_id, claimed_by=bob).exclude(pk=line.pk)
    assert others.exists()  # the page view holds the page's other waiting lines

    page_view.close(run_before_unload=True)  # its release goes as a beacon
    deadline = time.monotonic() + 15
    while others.exists():
        assert time.monotonic() < deadline, "the page view's lines were not handed back"
        time.sleep(0.05)
    held = Line.objects.get(pk=line.pk)
    assert (held.status, held.claimed_by) == (Line.Status.IN_REVIEW, bob)

    test_review_ui.editor_text(editor).fill("of the 3rd inst. and")
    editor.keyboard.press("Enter")
    editor.wait_for_url(lambda url: f"/lines/{line.pk}/" not in url)
    saved = Line.objects.get(pk=line.pk)
    assert (saved.status, saved.text) == (Line.Status.REVIEWED, "of the 3rd inst. and")
    assert Correction.objects.get(line=line).user == bob


def claims_of(line) -> set:
    """The page view claims the page's lines that bob holds are under."""
    held = Line.objects.filter(page_id=line.page_id, claimed_by__username="bob")
    return set(held.values_list("page_view_claim", flat=True))


def claim_of(tab) -> uuid.UUID:
    return uuid.UUID(tab.locator("#page-view").get_attribute("data-claim"))


def test_two_tabs_of_one_page_the_later_keeps_the_lines_and_the_earlier_says_so(
    new_page, bob, letters, letter_lines
):
    """bob opens a page, then the same page in a second tab. The second keeps the lines; the
    first's renewals take none back (they took them turn about) and it shows them read-only
    with a notice, until "Work in this tab" takes them back to it. Closing the tab that no
    longer keeps them hands back nothing, and the other's save goes through."""
    line = letter_lines[2]
    url = f"/collections/{letters.pk}/review/pages/{line.page_id}/"
    first = new_page()
    first.clock.install()  # the tabs' renewals come when the test runs their clock
    log_in(first, "bob")
    first.goto(url)
    row = first.locator(f"#line-{line.pk} .pl-text")
    expect(row).to_be_editable()
    notice = first.locator("#pv-elsewhere")
    expect(notice).to_be_hidden()

    second = first.context.new_page()
    second.goto(url)
    expect(second.locator(f"#line-{line.pk} .pl-text")).to_be_editable()
    later = claim_of(second)
    assert claims_of(line) == {later}

    with first.expect_response("**/lease/"):
        first.clock.run_for(61_000)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("open in another tab of yours")
    expect(row).not_to_be_editable()
    expect(first.locator(f"#held-{line.pk}")).to_contain_text(
        "Your other tab of this page keeps this line"
    )
    first.keyboard.press("Shift")  # bob is busy in it: it renews, not idle
    with first.expect_response("**/lease/"):
        first.clock.run_for(61_000)
    assert claims_of(line) == {later}  # taken back by no renewal of the first tab
    expect(second.locator(f"#line-{line.pk} .pl-text")).to_be_editable()

    first.locator("#work-here").click()
    expect(notice).to_be_hidden()
    expect(row).to_be_editable()
    taken = claim_of(first)
    assert taken > later
    assert claims_of(line) == {taken}

    # bob goes back to the second tab, idle since it loaded: it renews as he comes back.
    with second.expect_response("**/lease/"):
        second.keyboard.press("Shift")
    expect(second.locator("#pv-elsewhere")).to_be_visible()
    expect(second.locator(f"#line-{line.pk} .pl-text")).not_to_be_editable()

    released = []

    def served(environ, **kwargs):
        if environ["PATH_INFO"].endswith("/release/"):
            released.append(environ["PATH_INFO"])

    request_started.connect(served)
    try:
        second.close(run_before_unload=True)  # its release goes as a beacon
        deadline = time.monotonic() + 15
        while not released or SERVED.count:
            assert time.monotonic() < deadline, "the closed tab's release was not served"
            time.sleep(0.05)
    finally:
        request_started.disconnect(served)
    assert claims_of(line) == {taken}

    row.fill("of the 3rd inst. and")
    row.press("Enter")
    expect(first.locator(f"#line-{line.pk} .pl-text")).to_have_attribute(
        "data-saved", "of the 3rd inst. and"
    )
    saved = Line.objects.get(pk=line.pk)
    assert (saved.status, saved.text) == (Line.Status.REVIEWED, "of the 3rd inst. and")


def test_a_tab_opened_before_a_deploy_asks_to_be_reloaded(new_page, bob, letters, letter_lines):
    """The page's scripts as an earlier deploy served them (their version in the page): a
    renewal answers the server's version now, and the page asks for a reload, which loads
    the new scripts."""
    line = letter_lines[2]
    tab = new_page()
    tab.clock.install()
    log_in(tab, "bob")
    tab.goto(f"/collections/{letters.pk}/review/pages/{line.page_id}/")
    now = tab.locator("#page-view").get_attribute("data-scripts")
    notice = tab.locator("#pv-updated")
    with tab.expect_response("**/lease/"):
        tab.clock.run_for(61_000)
    expect(notice).to_be_hidden()  # served by the same deploy

    tab.evaluate("document.getElementById('page-view').dataset.scripts = '0123456789abcdef'")
    tab.keyboard.press("Shift")
    with tab.expect_response("**/lease/"):
        tab.clock.run_for(61_000)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("ocrreview was updated since this page was opened")
    tab.locator("#reload-page").click()
    expect(tab.locator("#page-view")).to_have_attribute("data-scripts", now)
    expect(tab.locator("#pv-updated")).to_be_hidden()
    expect(tab.locator(f"#line-{line.pk} .pl-text")).to_be_editable()

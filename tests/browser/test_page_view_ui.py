"""The page view in a real headless Chromium: a split shown on the image before it is made,
taking the row's text as typed and cutting it where the preview did; text kept in the
browser over a version gone offered, not restored over it; Enter that goes on and Ctrl+Enter
that accepts; a second Enter before a row is emptied or loses most of its text; the focused
row's whole text; the list of its keys; a row moved in reading order with its typing."""

import time

import pytest
from PIL import ImageFont
from playwright.sync_api import expect

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.models import Correction, Draft
from tests.browser import test_review_ui
from tests.browser.test_review_ui import FONT, bbox_lines, bob_on_the_page_view

pytestmark = [pytest.mark.slow, pytest.mark.browser]
# The letter and its page as the review UI's tests have them.
letter_lines = test_review_ui.letter_lines

FOCUSED_ROW = "document.activeElement.closest('.page-line')?.id"


def local_copy(page, line):
    return page.evaluate(
        f"Object.keys(localStorage).filter(k => k.endsWith(':{line.pk}'))"
        ".map(k => JSON.parse(localStorage.getItem(k)))"
    )


def test_a_row_typed_in_is_split_at_the_caret_as_typed_once_the_cut_is_seen(
    new_page, bob, letters, letter_lines
):
    """The split used to cut the saved text, leave the typing in the browser over the old
    version, and every later edit of the line met "Someone changed this line", for good."""
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    page.wait_for_function("document.querySelector('.pv-canvas img').naturalWidth > 0")
    line = letter_lines[1]
    row = page.locator(f"#line-{line.pk} .pl-text")
    row.fill("I received your letter")
    row.evaluate("input => input.setSelectionRange(10, 10)")  # after "received"
    page.keyboard.press("Alt+s")
    status = page.locator("#seg-status")
    expect(status).to_contain_text("“I received” | “your letter”")
    assert page.locator("line.cut").count() == 1
    assert Line.objects.filter(page_id=line.page_id).count() == 5
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 6")

    left = Line.objects.get(pk=line.pk)
    right = Line.objects.get(page_id=line.page_id, order=2)
    assert (left.text, right.text) == ("I received", "your letter")
    assert left.human_text and right.human_text
    assert page.locator(f"#line-{line.pk} .pl-text").input_value() == "I received"
    assert page.locator(f"#line-{right.pk} .pl-text").input_value() == "your letter"
    assert local_copy(page, line) == []
    if FONT.exists():
        # The cut is in the gap between the words on the image, not in "your".
        font = ImageFont.truetype(str(FONT), 38)
        assert 40 + font.getlength("I received") - 2 <= left.bbox[2]
        assert left.bbox[2] <= 40 + font.getlength("I received y")

    # The line is the page's as it is: merged back at once, and no reload loop.
    page.locator(f"#line-{line.pk} .pl-text").focus()
    page.keyboard.press("Alt+j")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 5")
    assert Line.objects.get(pk=line.pk).text == "I received your letter"
    assert "changed" not in status.inner_text()


def test_a_split_after_characters_beyond_the_bmp_cuts_where_the_preview_did(
    new_page, bob, letters, letter_lines
):
    """The place was sent as a JS index, which counts 𝔏 twice, and the server counts it
    once: the preview said “… of” | “the 3d”, the halves were “… of th” | “e 3d”."""
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[1]
    row = page.locator(f"#line-{line.pk} .pl-text")
    row.fill("𝔏𝔢𝔱𝔱𝔢𝔯 of the 3d")
    row.evaluate("input => input.setSelectionRange(15, 15)")  # after "of"
    page.keyboard.press("Alt+s")
    expect(page.locator("#seg-status")).to_contain_text("“𝔏𝔢𝔱𝔱𝔢𝔯 of” | “the 3d”")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 6")
    right = Line.objects.get(page_id=line.page_id, order=2)
    assert (Line.objects.get(pk=line.pk).text, right.text) == ("𝔏𝔢𝔱𝔱𝔢𝔯 of", "the 3d")


def test_a_cut_is_moved_with_the_arrows_and_escape_leaves_the_line_whole(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)  # 60 px high: an arrow moves the cut 8 px
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    row = page.locator(f"#line-{letter_lines[2].pk} .pl-text")
    row.focus()
    page.keyboard.press("Alt+s")
    cut = page.locator("line.cut")
    before = float(cut.get_attribute("x1"))
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Alt+ArrowRight")  # the cut, not the box
    assert float(cut.get_attribute("x1")) == before + 16
    page.keyboard.press("Escape")
    assert cut.count() == 0
    expect(page.locator("#seg-status")).to_have_text("Not split.")
    page.wait_for_timeout(1000)
    assert Line.objects.filter(page_id=letter_lines[0].page_id).count() == 5
    assert Line.objects.get(pk=letter_lines[2].pk).bbox == [30, 172, 700, 232]
    assert page.evaluate(FOCUSED_ROW) == f"line-{letter_lines[2].pk}"


def test_text_kept_over_a_version_gone_is_offered_beside_the_lines_text(
    new_page, alice, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[3]
    page.locator(f"#line-{line.pk} .pl-text").fill("hasten to reply that!")
    actions.do_save_line(line, alice, "hasten to reply that", expected_version=1)
    page.reload()
    row = page.locator(f"#line-{line.pk}")
    text = row.locator(".pl-text")
    # The row keeps the version it shows; the copy waits for the person's word.
    assert text.input_value() == "hasten to reply that"
    assert row.get_attribute("data-version") == "2"
    expect(row.get_by_role("alert")).to_contain_text("hasten to reply that!")
    text.focus()
    page.keyboard.press("Alt+m")
    assert text.input_value() == "hasten to reply that!"
    text.press("Enter")
    page.wait_for_function(f"document.querySelector('#line-{line.pk}').dataset.version === '3'")
    assert Line.objects.get(pk=line.pk).text == "hasten to reply that!"


def test_enter_on_an_untouched_row_goes_on_and_ctrl_enter_accepts_it(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[2]
    text = page.locator(f"#line-{line.pk} .pl-text")
    text.press("Enter")
    assert page.evaluate(FOCUSED_ROW) == f"line-{letter_lines[3].pk}"
    page.wait_for_timeout(300)
    # Not saved: held by bob while the page is open.
    assert Line.objects.get(pk=line.pk).status == "in_review"

    # Over a change, Ctrl+Enter asks again: the change is dropped.
    text.fill("of the 3d inst. and so")
    text.press("Control+Enter")
    expect(page.locator(f"#line-{line.pk} .pl-msg")).to_contain_text("Ctrl+Enter again")
    assert Line.objects.get(pk=line.pk).status == "in_review"
    text.press("Control+Enter")
    page.wait_for_selector(f"#line-{line.pk}.band-reviewed")
    saved = Line.objects.get(pk=line.pk)
    assert saved.text == "of the 3d inst. and"
    assert Correction.objects.get(line=line).action == "accept"


def test_emptying_a_row_asks_for_a_second_enter_then_saves_it_empty(
    new_page, bob, letters, letter_lines
):
    """The page view sent no confirmation, so an emptied row was refused, with a message
    sending the person to the line editor."""
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[1]
    text = page.locator(f"#line-{line.pk} .pl-text")
    msg = page.locator(f"#line-{line.pk} .pl-msg")
    text.press("Control+a")
    text.press("Backspace")
    text.press("Enter")
    expect(msg).to_contain_text("The line is empty. Enter again saves it with no text")
    page.wait_for_timeout(300)
    assert not Correction.objects.exists()
    text.press("Control+z")
    assert text.input_value() == "I recieved your letter"

    # The undo was typing: emptied again, the row asks again, and the second Enter saves it.
    text.press("Control+a")
    text.press("Backspace")
    msg.evaluate("m => { m.textContent = ''; }")
    text.press("Enter")
    expect(msg).to_contain_text("Enter again saves it")
    text.press("Enter")
    page.wait_for_selector(f"#line-{line.pk}.band-reviewed")
    saved = Line.objects.get(pk=line.pk)
    assert (saved.text, saved.status) == ("", "reviewed")
    assert page.locator(f"#line-{line.pk} .pl-text").input_value() == ""


def test_a_save_that_drops_most_of_a_rows_text_asks_for_a_second_enter(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[1]
    text = page.locator(f"#line-{line.pk} .pl-text")
    msg = page.locator(f"#line-{line.pk} .pl-msg")
    text.press("Control+a")
    text.press_sequentially("I r")  # a word typed over the selected row
    text.press("Enter")
    expect(msg).to_contain_text("You removed most of the reading (3 of 22 characters left)")
    page.wait_for_timeout(300)
    assert not Correction.objects.exists()
    # Typing disarms it: Enter asks again rather than saving what the warning did not show.
    text.press_sequentially("e")
    text.press("Enter")
    expect(msg).to_contain_text("(4 of 22 characters left)")
    assert not Correction.objects.exists()
    text.press("Enter")
    page.wait_for_selector(f"#line-{line.pk}.band-reviewed")
    assert Line.objects.get(pk=line.pk).text == "I re"

    # A cut to a third or more (half of a line split in two) goes at once.
    other = letter_lines[3]
    text = page.locator(f"#line-{other.pk} .pl-text")
    text.fill("hasten to")
    text.press("Enter")
    page.wait_for_function(f"document.querySelector('#line-{other.pk}').dataset.version === '2'")
    assert Line.objects.get(pk=other.pk).text == "hasten to"


def test_the_focused_row_shows_its_whole_text(new_page, bob, letters, letter_lines):
    line = letter_lines[4]
    Line.objects.filter(pk=line.pk).update(text=" ".join(["the ſhip is expected"] * 8))
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    text = page.locator(f"#line-{line.pk} .pl-text")
    one_line = text.bounding_box()["height"]
    text.focus()
    grown = text.evaluate("t => [t.scrollHeight, t.clientHeight, t.scrollWidth, t.clientWidth]")
    assert grown[0] <= grown[1] and grown[2] <= grown[3]
    assert text.bounding_box()["height"] > 2 * one_line
    page.locator(f"#line-{letter_lines[3].pk} .pl-text").focus()
    assert text.bounding_box()["height"] == one_line


def test_f1_and_the_button_list_the_page_views_keys(new_page, bob, letters, letter_lines):
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    row = f"line-{letter_lines[0].pk}"
    assert page.evaluate(FOCUSED_ROW) == row
    page.keyboard.press("F1")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Ctrl+Enter")
    # Its keys are the dialog's while it is open.
    page.keyboard.press("Alt+Delete")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate(FOCUSED_ROW) == row
    assert Line.objects.filter(page_id=letter_lines[0].page_id).count() == 5
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(dialog).to_be_visible()


def test_alt_page_keys_move_the_row_in_reading_order_with_its_typing(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    moved, first = letter_lines[2], letter_lines[0]
    text = page.locator(f"#line-{moved.pk} .pl-text")
    saved = text.input_value()
    text.fill("of the 3rd inst. and so")
    text.evaluate("input => input.setSelectionRange(7, 9)")
    page.keyboard.press("Alt+PageUp")
    page.keyboard.press("Alt+PageUp")
    expect(page.locator(".page-line").first).to_have_id(f"line-{moved.pk}")
    expect(page.locator("#seg-status")).to_contain_text("place 1 of 5")

    # Focus, caret and unsaved typing stayed with the row, and the row is unsaved still.
    assert page.evaluate(FOCUSED_ROW) == f"line-{moved.pk}"
    assert text.evaluate("t => [t.selectionStart, t.selectionEnd]") == [7, 9]
    assert text.input_value() == "of the 3rd inst. and so"
    assert Line.objects.get(pk=moved.pk).text == saved
    # The numbers on the boxes and the rows' names follow the new order.
    assert page.locator(f'g[data-line-id="{moved.pk}"] text').text_content() == "1"
    assert page.locator(f'g[data-line-id="{first.pk}"] text').text_content() == "2"
    assert text.get_attribute("aria-label") == "Line 1"
    assert [line.pk for line in Line.objects.filter(page_id=moved.page_id).order_by("order")][
        :3
    ] == [moved.pk, first.pk, letter_lines[1].pk]

    # At the top it goes no further; Enter still saves the typing, on the line's version.
    page.keyboard.press("Alt+PageUp")
    expect(page.locator("#seg-status")).to_contain_text("first line already")
    text.press("Enter")
    page.wait_for_function(f"document.querySelector('#line-{moved.pk}').dataset.version === '2'")
    assert Line.objects.get(pk=moved.pk).text == "of the 3rd inst. and so"
    text.focus()  # Enter went on to the next row
    page.keyboard.press("Alt+PageDown")
    expect(page.locator(f'g[data-line-id="{moved.pk}"] text')).to_have_text("2")


def test_the_page_view_opened_on_a_line_from_the_editor_has_that_line_focused(
    new_page, bob, letters, letter_lines
):
    """The editor's Page view (Alt+G) links to #line-N: the browser's move to that row, after
    the page's script had focused its text, left the focus on the page itself."""
    line = letter_lines[2]
    page = test_review_ui.bob_on(new_page, letters, line)
    page.keyboard.press("Alt+g")
    page.wait_for_url(f"**/review/pages/{line.page_id}/#line-{line.pk}")
    page.wait_for_load_state("load")

    row = page.locator(f"#line-{line.pk} .pl-text")
    expect(row).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator(f"#line-{letter_lines[3].pk} .pl-text")).to_be_focused()


def test_a_draft_typed_elsewhere_is_shown_in_the_page_view_and_saved_from_it(
    new_page, bob, letters, letter_lines
):
    """Typed in the line editor on another computer (or in a browser whose storage was
    wiped): the page view showed the line's text, and a row's typing or save wrote over the
    draft unseen. The reading it started from (an alternative the editor took) goes with it."""
    bbox_lines(letter_lines)
    line = letter_lines[2]
    taken = line.hypotheses.get(text="of the 3rd inst. and")
    actions.do_save_draft(line, bob, "of the 3rd inst. and so", base_version=1, hypothesis=taken)
    page = bob_on_the_page_view(new_page, letters, line)
    row = page.locator(f"#line-{line.pk}")
    expect(row.locator(".pl-text")).to_have_value("of the 3rd inst. and so")
    expect(row.locator(".pl-msg")).to_have_text("Unsaved text restored; Enter saves it.")
    row.locator(".pl-text").press("Enter")
    expect(row.locator(".pl-text")).to_have_attribute("data-saved", "of the 3rd inst. and so")
    assert Line.objects.get(pk=line.pk).text == "of the 3rd inst. and so"
    assert Correction.objects.get(line=line).hypothesis == taken


def bob_on_a_draft_of_his_over_alices_save(new_page, alice, bob, letters, letter_lines):
    """bob typed into line 3 in the line editor, and alice saved it since: his page view, and
    the line."""
    bbox_lines(letter_lines)
    line = letter_lines[2]
    actions.do_save_draft(line, bob, "of the 3rd inst. and so", base_version=1)
    actions.do_save_line(line, alice, "of the third inst. and", expected_version=1)
    return bob_on_the_page_view(new_page, letters, line), line


def test_a_draft_typed_elsewhere_over_a_version_saved_since_offers_both_texts(
    new_page, alice, bob, letters, letter_lines
):
    page, line = bob_on_a_draft_of_his_over_alices_save(new_page, alice, bob, letters, letter_lines)
    row = page.locator(f"#line-{line.pk}")
    expect(row.locator(".conflict .mine")).to_have_text("of the 3rd inst. and so")
    expect(row.locator(".pl-text")).to_have_value("of the third inst. and")
    row.locator("[data-choose=mine]").click()
    expect(row.locator(".pl-text")).to_have_value("of the 3rd inst. and so")
    row.locator(".pl-text").press("Enter")
    expect(row.locator(".pl-text")).to_have_attribute("data-saved", "of the 3rd inst. and so")
    assert Line.objects.get(pk=line.pk).text == "of the 3rd inst. and so"


def test_a_draft_offered_and_not_chosen_outlives_the_page_view(
    new_page, alice, bob, letters, letter_lines
):
    """The row shows the line's text beside the draft offered; leaving it is no choice, and
    the page's last beacons must not discard the draft as typing undone."""
    page, line = bob_on_a_draft_of_his_over_alices_save(new_page, alice, bob, letters, letter_lines)
    expect(page.locator(f"#line-{line.pk} .conflict .mine")).to_have_text("of the 3rd inst. and so")
    page.goto("/")
    # The release, sent after any discard, is served: the lines bob did not type in go back.
    deadline = time.monotonic() + 15
    while Line.objects.filter(pk=letter_lines[1].pk, claimed_by__isnull=False).exists():
        assert time.monotonic() < deadline, "the page's release was not served"
        time.sleep(0.05)
    time.sleep(0.5)  # a discard sent beside it, had there been one
    assert Draft.objects.get(line=line, user=bob).text == "of the 3rd inst. and so"

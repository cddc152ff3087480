"""The review UI in a real headless Chromium: a reviewer works through the queue with the
keyboard alone, takes an alternative, reloads mid-edit and finds the draft; two reviewers
race for one line and nothing is lost; the page view edits text and segmentation."""

import io
import json
import re
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import expect

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction, Draft
from tests import factories
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf")
WRITTEN = [
    "Dear Sir",
    "I received your letter",
    "of the 3d inst. and",
    "hasten to reply that",
    "the ſhip is expected",
]
READINGS = [
    [("Dear Sir", 0.97)],
    [
        ("I recieved your letter", 0.41),
        ("I received your letter", 0.38),
        ("I reeived your letter", 0.1),
    ],
    [("of the 3d inst. and", 0.62), ("of the 3rd inst. and", 0.30)],
    [("hasten to reply tbat", 0.22), ("hasten to reply that", 0.20), ("hasten lo reply that", 0.1)],
    [("the fhip is expected", 0.35), ("the ſhip is expected", 0.33)],
]
UNSURE = {
    1: [{"start": 2, "end": 10, "prob": 0.31, "token": "recieved"}],
    3: [{"start": 16, "end": 20, "prob": 0.4, "token": "tbat"}],
}


def page_png(width=1000, height=420) -> bytes:
    image = Image.new("RGB", (width, height), (246, 240, 226))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 38) if FONT.exists() else ImageFont.load_default(38)
    for i, text in enumerate(WRITTEN):
        draw.text((40, 30 + i * 75), text, fill=(40, 30, 70), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def letter_lines(letters, model_version):
    document = factories.make_document(letters, "Letter to Mr Hale")
    page = factories.make_page(document, 0, width=1000, height=420)
    page.image.save("letter.png", ContentFile(page_png()), save=True)
    return [
        factories.make_read_line(
            page,
            i,
            readings,
            model_version,
            status="auto_accepted" if i == 0 else "needs_review",
            tokens=UNSURE.get(i, []),
        )
        for i, readings in enumerate(READINGS)
    ]


def bbox_lines(lines):
    for i, line in enumerate(lines):
        Line.objects.filter(pk=line.pk).update(bbox=[30, 22 + i * 75, 700, 82 + i * 75])


def bob_then_alice_on(new_page, url):
    """Two reviewers' browsers on one line, bob's first, so bob holds its lease."""
    first, second = new_page(), new_page()
    log_in(first, "bob")
    log_in(second, "alice")
    first.goto(url)
    second.goto(url)
    return first, second


def bob_saves_it_first(new_page, url, line):
    """bob and alice open the line and bob saves it: alice's page, where she still has it."""
    first, second = bob_then_alice_on(new_page, url)
    editor_text(first).fill("of the 3rd inst. and")
    first.keyboard.press("Enter")
    first.wait_for_url(lambda u: f"/lines/{line.pk}/" not in u)
    return second


def bob_on(new_page, letters, line):
    """bob's browser, logged in, on the line's editor."""
    page = new_page()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/lines/{line.pk}/")
    return page


def bob_on_the_page_view(new_page, letters, line):
    """bob's browser, logged in, on the page view of the line's page."""
    page = new_page()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/pages/{line.page_id}/")
    return page


def editor_text(page):
    return page.locator("#line-text")


def wait_for_line(page, line):
    try:
        page.wait_for_selector(f'#editor[data-line-id="{line.pk}"]')
    except Exception as exc:
        notice = page.locator("#notice").inner_text() if page.locator("#notice").count() else ""
        raise AssertionError(f"line {line.pk} did not open; the page says {notice!r}") from exc


def wait_for_draft(page, line, *, text=None, present=True, timeout_s=30.0):
    """Until the line's draft (with `text`, when given) has reached the server (or, with
    `present=False`, is gone from it): the editor sends drafts after a pause in typing, so a
    fixed wait is too short on a loaded machine."""
    drafts = Draft.objects.filter(line=line)
    if text is not None:
        drafts = drafts.filter(text=text)
    deadline = time.monotonic() + timeout_s
    while drafts.exists() != present:
        assert time.monotonic() < deadline, (
            f"line {line.pk}'s draft {'never came' if present else 'stayed'}"
        )
        page.wait_for_timeout(50)


def test_a_reviewer_works_through_the_queue_with_the_keyboard(
    new_page, bob, letters, letter_lines, screenshot
):
    bbox_lines(letter_lines)
    page = new_page()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/")
    # Lowest confidence first: line 4 (0.22), then 5 (0.35), 2 (0.41), 3 (0.62).
    wait_for_line(page, letter_lines[3])
    assert editor_text(page).input_value() == "hasten to reply tbat"
    assert page.locator(".marked .low").inner_text() == "tbat"
    page.wait_for_function("document.querySelector('.line-image img').naturalWidth > 0")
    screenshot(page, "review-editor")

    # Alt+2 takes the second reading, Enter saves it and opens the next line.
    page.keyboard.press("Alt+2")
    assert editor_text(page).input_value() == "hasten to reply that"
    page.keyboard.press("Enter")
    wait_for_line(page, letter_lines[4])
    assert f"/lines/{letter_lines[4].pk}/" in page.url

    # Typing a correction with the palette: select the wrong letter, Alt+Shift+1 puts ſ.
    def put_long_s():
        page.keyboard.press("Home")
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Alt+Shift+1")

    put_long_s()
    assert editor_text(page).input_value() == "the ſhip is expected"
    page.keyboard.press("Control+z")
    assert editor_text(page).input_value() == "the fhip is expected"
    put_long_s()
    page.keyboard.press("Enter")
    wait_for_line(page, letter_lines[1])

    # Esc skips; Ctrl+Enter accepts unchanged.
    page.keyboard.press("Escape")
    wait_for_line(page, letter_lines[2])
    page.keyboard.press("Control+Enter")
    # The skipped line stays out of this session's queue, so the queue is done.
    page.wait_for_selector(".queue-done")

    actions = list(Correction.objects.order_by("id").values_list("line_id", "action", "text_after"))
    assert actions == [
        (letter_lines[3].pk, "pick", "hasten to reply that"),
        (letter_lines[4].pk, "edit", "the ſhip is expected"),
        (letter_lines[1].pk, "skip", "I recieved your letter"),
        (letter_lines[2].pk, "accept", "of the 3d inst. and"),
    ]
    assert Line.objects.get(pk=letter_lines[3].pk).status == "reviewed"


def on_a_mac(page):
    page.add_init_script("Object.defineProperty(navigator, 'platform', {get: () => 'MacIntel'})")
    return page


def test_on_a_mac_option_types_characters_and_control_option_takes_the_shortcuts(
    new_page, bob, letters, letter_lines
):
    page = on_a_mac(new_page())
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/lines/{letter_lines[3].pk}/")
    text = editor_text(page)
    text.press("End")
    # Option+2 on a Mac types ™: the key comes as Alt+Digit2 bearing it, then the character.
    text.dispatch_event("keydown", {"key": "™", "code": "Digit2", "altKey": True, "bubbles": True})
    page.keyboard.insert_text("™")
    assert text.input_value() == "hasten to reply tbat™"
    # Control alone edits text on a Mac (Control+H deletes back): no shortcut.
    page.keyboard.press("Control+h")
    assert page.locator("#history").get_attribute("open") is None
    page.keyboard.press("Control+Alt+2")
    assert text.input_value() == "hasten to reply that"
    assert page.locator(".alternatives kbd").first.inner_text() == "⌃⌥+1"


def test_on_a_mac_the_page_view_leaves_option_delete_to_the_text(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = on_a_mac(new_page())
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/pages/{letter_lines[0].page_id}/")
    row = page.locator(f"#line-{letter_lines[1].pk} .pl-text")
    row.focus()
    # Option+Fn+Delete deletes the next word on a Mac; it used to delete the line's box.
    row.dispatch_event(
        "keydown", {"key": "Delete", "code": "Delete", "altKey": True, "bubbles": True}
    )
    # A segmentation edit says "Saving…" in the same event, before its request goes out.
    assert page.locator("#seg-status").inner_text() == ""
    assert Line.objects.filter(pk=letter_lines[1].pk).exists()
    assert page.locator("[data-seg=merge] kbd").inner_text() == "⌃⌥+J"
    page.keyboard.press("Control+Alt+j")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 4")
    assert not Line.objects.filter(pk=letter_lines[2].pk).exists()


def test_every_palette_character_is_reached_by_keyboard(new_page, bob, letters, letter_lines):
    """Alt+Shift+1 to 9 reach nine; a palette holds up to 500."""
    letters.special_characters = "ſæœ¹²³⁴⁵⁶⁷⁸ꝛ"
    letters.save()
    page = bob_on(new_page, letters, letter_lines[3])
    text = editor_text(page)
    text.press("End")

    def tab_to_the_palette():
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("!!document.activeElement.closest('.palette')"):
                return page.evaluate("document.activeElement.dataset.char")
        raise AssertionError("Tab never reached the palette")

    assert tab_to_the_palette() == "ſ"
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.char") == "⁸"
    page.keyboard.press("Enter")
    assert text.input_value() == "hasten to reply tbat⁸"
    assert page.evaluate("document.activeElement.id") == "line-text"
    # The palette is one Tab stop, at the character used last.
    assert tab_to_the_palette() == "⁸"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('.palette')") is None


def test_a_palette_key_puts_a_letter_with_its_combining_mark(new_page, bob, letters, letter_lines):
    """q̃ has no precomposed form: the key is the letter and its tilde, and puts both."""
    letters.special_characters = "q\u0303 p\u0304 ſ"
    letters.save()
    page = bob_on(new_page, letters, letter_lines[3])
    text = editor_text(page)
    text.press("End")
    page.keyboard.press("Alt+Shift+1")
    page.keyboard.press("Alt+Shift+3")
    assert text.input_value() == "hasten to reply tbatq\u0303ſ"


def test_help_history_and_the_page_around_the_line(
    new_page, bob, letters, letter_lines, screenshot
):
    bbox_lines(letter_lines)
    page = bob_on(new_page, letters, letter_lines[1])
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "Take alternative" in page.locator("#help").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()

    editor_text(page).focus()
    page.keyboard.press("Alt+p")
    viewer = page.locator("#page-viewer")
    assert viewer.is_visible()
    page.wait_for_function("document.querySelector('#page-viewer img').naturalWidth > 0")
    page.keyboard.press("+")
    screenshot(page, "review-page-around-line")
    page.keyboard.press("Escape")
    assert not viewer.is_visible()

    # Alt+Down opens the next line of the page, Alt+Up comes back.
    page.keyboard.press("Alt+ArrowDown")
    wait_for_line(page, letter_lines[2])
    page.keyboard.press("Alt+ArrowUp")
    wait_for_line(page, letter_lines[1])

    editor_text(page).fill("I received your letter")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/lines/{letter_lines[1].pk}/" not in url)
    page.goto(f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/")
    page.keyboard.press("Alt+h")
    page.wait_for_selector(".history-list")
    assert "bob" in page.locator(".history-list").inner_text()
    page.locator("[data-before]").click()
    page.wait_for_function(
        "document.querySelector('#line-text').value === 'I recieved your letter'"
    )
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I recieved your letter"
    assert Correction.objects.filter(line=letter_lines[1], action="revert").exists()


def test_tabbing_out_of_the_page_around_the_line_closes_it(new_page, bob, letters, letter_lines):
    bbox_lines(letter_lines)
    page = bob_on(new_page, letters, letter_lines[3])
    editor_text(page).focus()
    page.keyboard.press("Alt+p")
    viewer = page.locator("#page-viewer")
    assert viewer.is_visible()
    page.keyboard.press("Shift+Tab")
    assert not viewer.is_visible()
    editor_text(page).focus()
    page.keyboard.press("End")
    page.keyboard.type(" - at")
    assert editor_text(page).input_value() == "hasten to reply tbat - at"


def test_a_reload_mid_edit_finds_the_draft(new_page, bob, letters, letter_lines):
    page = new_page()
    log_in(page, "bob")
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/"
    page.goto(url)
    editor_text(page).press("End")
    page.keyboard.type(" (half typed")
    page.reload()
    assert editor_text(page).input_value() == "I recieved your letter (half typed"
    assert "restored" in page.locator("#notice").inner_text()

    # A fresh browser (no local storage) gets the draft from the server.
    page.wait_for_function(
        "fetch(document.querySelector('#editor').dataset.draftUrl, {method: 'HEAD'}) && true"
    )
    page.keyboard.type(")")
    wait_for_draft(page, letter_lines[1], text="I recieved your letter (half typed)")
    other = new_page()
    log_in(other, "bob")
    other.goto(url)
    assert editor_text(other).input_value() == "I recieved your letter (half typed)"
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I recieved your letter"


def test_a_draft_left_in_a_shared_browser_is_not_the_next_reviewers(
    new_page, alice, bob, letters, letter_lines
):
    page = new_page()
    log_in(page, "bob")
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/"
    page.goto(url)
    editor_text(page).press("End")
    page.keyboard.type(" (bob's half")
    page.context.clear_cookies()  # bob is gone; the browser's storage stays
    log_in(page, "alice")
    page.goto(url)
    assert editor_text(page).input_value() == "I recieved your letter"
    assert "restored" not in page.locator("#notice").inner_text()


def test_two_reviewers_racing_for_a_line_lose_nothing(
    new_page, alice, bob, letters, letter_lines, screenshot
):
    bbox_lines(letter_lines)
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[2].pk}/"
    first, second = bob_then_alice_on(new_page, url)
    assert "bob is working on this line" in second.locator(".line-meta").inner_text()

    editor_text(first).fill("of the 3rd inst. and")
    editor_text(second).fill("of the third inst. and")
    first.keyboard.press("Enter")
    first.wait_for_url(lambda u: f"/lines/{letter_lines[2].pk}/" not in u)
    second.keyboard.press("Enter")
    conflict = second.locator(".conflict")
    conflict.wait_for()
    assert "of the 3rd inst. and" in conflict.locator(".theirs").inner_text()
    assert "of the third inst. and" in conflict.locator(".mine").inner_text()
    screenshot(second, "review-conflict")
    assert Line.objects.get(pk=letter_lines[2].pk).text == "of the 3rd inst. and"

    second.keyboard.press("Alt+m")
    second.wait_for_url(lambda u: f"/lines/{letter_lines[2].pk}/" not in u)
    line = Line.objects.get(pk=letter_lines[2].pk)
    assert (line.text, line.version) == ("of the third inst. and", 3)
    trail = list(
        Correction.objects.filter(line=line)
        .order_by("id")
        .values_list("text_after", "user__username")
    )
    assert trail == [("of the 3rd inst. and", "bob"), ("of the third inst. and", "alice")]


def test_the_page_view_edits_text_and_segmentation(
    new_page, bob, letters, letter_lines, screenshot
):
    bbox_lines(letter_lines)
    page_id = letter_lines[0].page_id
    page = new_page(viewport=(1400, 900))
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/pages/{page_id}/")
    page.wait_for_function("document.querySelector('.pv-canvas img').naturalWidth > 0")
    assert page.locator(".page-line").count() == 5
    assert page.locator("g.box.band-low").count() == 3
    screenshot(page, "review-page-view")

    row = page.locator(f"#line-{letter_lines[3].pk} .pl-text")
    row.fill("hasten to reply that")
    row.press("Enter")
    page.wait_for_selector(f"#line-{letter_lines[3].pk}.band-reviewed")
    assert Line.objects.get(pk=letter_lines[3].pk).text == "hasten to reply that"

    # Split line 2 at its middle with the keyboard: the cut is shown, then made; the page
    # reloads with six lines.
    page.locator(f"#line-{letter_lines[1].pk} .pl-text").focus()
    page.keyboard.press("Alt+s")
    page.keyboard.press("Alt+s")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 6")
    assert Line.objects.filter(page_id=page_id).count() == 6
    # Move a box by dragging it on the image.
    box = page.locator(f'g.box[data-line-id="{letter_lines[4].pk}"] rect').first.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 16, steps=5)
    page.mouse.up()
    page.wait_for_function(
        f"document.querySelector('#line-{letter_lines[4].pk}').dataset.bbox !== '30,322,700,382'"
    )
    moved = Line.objects.get(pk=letter_lines[4].pk).bbox
    assert moved != [30, 322, 700, 382] and moved[2] - moved[0] == 670
    screenshot(page, "review-page-view-after-edits")


def test_permissions_in_the_browser(new_page, bob, charlie, letters, letter_lines):
    page = new_page()
    log_in(page, "charlie")
    response = page.goto(f"/collections/{letters.pk}/review/")
    assert response.status == 404
    page = new_page()
    log_in(page, "bob")
    response = page.goto(
        f"/collections/{letters.pk}/review/threshold-preview/?confidence_threshold=0.5"
    )
    assert response.status == 403
    assert page.goto(f"/collections/{letters.pk}/settings/").status == 403


def test_threshold_preview_and_progress(new_page, alice, bob, letters, letter_lines, screenshot):
    from ocrreview.review import actions

    actions.do_save_line(
        letter_lines[1], bob, "I received your letter", expected_version=1, time_spent_ms=7000
    )
    actions.do_accept_line(letter_lines[2], alice, expected_version=1, time_spent_ms=3000)
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/settings/")
    preview = page.locator(".threshold-preview")
    preview.wait_for()
    assert preview.get_attribute("data-to-humans") == "2"
    page.fill("#id_confidence_threshold", "0.3")
    page.wait_for_function("document.querySelector('.threshold-preview').dataset.toHumans === '1'")
    # 0.97 and 0.35 accepted: 0.03 + 0.65 errors expected among them.
    assert page.locator(".threshold-preview").get_attribute("data-expected-errors") == "0.7"
    screenshot(page, "review-threshold-preview")

    page.goto(f"/collections/{letters.pk}/review/progress/")
    assert page.locator("#p-reviewed").inner_text() == "2"
    reviewers = page.locator(".progress-reviewers").inner_text()
    assert "alice\t1\t1200\t0%" in reviewers and "bob\t1\t514\t100%" in reviewers
    screenshot(page, "review-progress")


def test_keeping_theirs_after_a_conflict(new_page, alice, bob, letters, letter_lines):
    from ocrreview.review.models import Draft

    url = f"/collections/{letters.pk}/review/lines/{letter_lines[2].pk}/"
    first, second = bob_then_alice_on(new_page, url)
    editor_text(second).fill("of the third inst. and")
    wait_for_draft(second, letter_lines[2])
    editor_text(first).fill("of the 3rd inst. and")
    first.keyboard.press("Enter")
    first.wait_for_url(lambda u: f"/lines/{letter_lines[2].pk}/" not in u)
    second.keyboard.press("Enter")
    second.locator(".conflict").wait_for()
    second.keyboard.press("Alt+t")
    second.wait_for_url(
        lambda u: f"/lines/{letter_lines[2].pk}/" not in u, wait_until="domcontentloaded"
    )
    # bob's save took the 0.22 line; alice gets the next least sure one.
    wait_for_line(second, letter_lines[4])
    assert Line.objects.get(pk=letter_lines[2].pk).text == "of the 3rd inst. and"
    assert not Draft.objects.filter(user=alice).exists()


def test_a_save_after_the_session_ended_keeps_the_text_and_says_why(
    new_page, bob, letters, letter_lines
):
    page = new_page()
    log_in(page, "bob")
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/"
    page.goto(url)
    editor_text(page).fill("I received your letter")
    page.context.clear_cookies(name="sessionid")  # the session ends (it expired, say)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('session')")
    assert "your session has ended" in page.locator("#notice").inner_text()
    assert editor_text(page).input_value() == "I received your letter"
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I recieved your letter"
    # As the notice says: log in again in another tab, then try again here.
    log_in(page.context.new_page(), "bob")
    editor_text(page).press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I received your letter"


def test_a_reload_within_the_draft_delay_keeps_the_words_typed_after_the_last_draft(
    new_page, bob, letters, letter_lines
):
    """The reload's page is made before the old page's beacon arrives, so the server's draft
    lacks the last words; its time, known to the second and counted from when the page ran
    rather than when it was made, could look the newer, and the older text won. A draft
    marked a few seconds later than it was stands for that here, on every run."""
    from datetime import timedelta

    from django.utils import timezone

    line = letter_lines[1]
    page = bob_on(new_page, letters, line)
    editor_text(page).press("End")
    page.keyboard.type(" and")
    wait_for_draft(page, line, text="I recieved your letter and")
    Draft.objects.filter(line=line).update(updated_at=timezone.now() + timedelta(seconds=3))
    page.keyboard.type(" the map")
    page.reload()
    wait_for_line(page, line)
    assert editor_text(page).input_value() == "I recieved your letter and the map"


def test_a_reload_after_the_session_ended_finds_the_text(new_page, bob, letters, letter_lines):
    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).fill("I received your letter")
    page.context.clear_cookies(name="sessionid")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('session')")
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/")
    assert editor_text(page).input_value() == "I received your letter"


@pytest.mark.parametrize("leave", ["Escape", "Alt+ArrowDown"])
def test_leaving_a_line_untouched_leaves_no_draft(new_page, bob, letters, letter_lines, leave):
    from ocrreview.review.models import Draft

    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).focus()
    page.keyboard.press(leave)
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    editor_text(page).wait_for()
    assert not Draft.objects.exists()


def test_typing_then_going_to_the_next_line_at_once_keeps_the_line_and_its_draft(
    new_page, bob, letters, letter_lines
):
    """Opening the next line hands back the lines left without a draft: the draft of the keys
    just typed must be on the server first."""
    page = bob_on(new_page, letters, letter_lines[1])
    text = editor_text(page)
    text.press("End")
    page.keyboard.type(" x")
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    editor_text(page).wait_for()
    left = Line.objects.get(pk=letter_lines[1].pk)
    assert (left.status, left.claimed_by) == ("in_review", bob)
    assert Draft.objects.get(line=left).text.endswith(" x")


def test_keeping_mine_after_an_accept_conflict_keeps_the_text_i_accepted(
    new_page, alice, bob, letters, letter_lines
):
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[2].pk}/"
    second = bob_saves_it_first(new_page, url, letter_lines[2])
    editor_text(second).focus()
    second.keyboard.press("Control+Enter")  # alice accepts the reading she sees
    conflict = second.locator(".conflict")
    conflict.wait_for()
    assert conflict.locator(".theirs").inner_text() == "of the 3rd inst. and"
    assert conflict.locator(".mine").inner_text() == "of the 3d inst. and"
    second.keyboard.press("Alt+m")
    second.wait_for_url(lambda u: f"/lines/{letter_lines[2].pk}/" not in u)
    assert Line.objects.get(pk=letter_lines[2].pk).text == "of the 3d inst. and"


def test_a_held_enter_saves_one_line_not_the_next_unseen(new_page, bob, letters, letter_lines):
    page = bob_on(new_page, letters, letter_lines[3])
    editor_text(page).focus()
    page.keyboard.down("Enter")
    wait_for_line(page, letter_lines[4])
    editor_text(page).focus()
    page.keyboard.down("Enter")  # the key is still held: the browser repeats it
    page.keyboard.up("Enter")
    page.wait_for_timeout(500)
    assert Line.objects.get(pk=letter_lines[3].pk).status == "reviewed"
    assert Line.objects.get(pk=letter_lines[4].pk).status != "reviewed"


def test_typing_in_the_page_view_keeps_a_colleague_from_deleting_the_line(
    new_page, alice, bob, letters, letter_lines
):
    from ocrreview.review import actions

    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    page.locator(f"#line-{letter_lines[4].pk} .pl-text").fill("Yours faithfully")
    wait_for_draft(page, letter_lines[4], text="Yours faithfully")
    doomed = Line.objects.get(pk=letter_lines[4].pk)
    with pytest.raises(actions.ReviewError, match="Someone is working on line"):
        actions.do_delete_line(doomed, alice, expected_version=doomed.version)
    page.locator(f"#line-{letter_lines[4].pk} .pl-text").press("Enter")
    page.wait_for_selector(f"#line-{letter_lines[4].pk} .status-reviewed")
    assert Line.objects.get(pk=letter_lines[4].pk).text == "Yours faithfully"
    assert not Draft.objects.filter(line=letter_lines[4]).exists()


def test_altgr_letters_in_the_page_view_are_typed_not_shortcuts(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    page.locator(f"#line-{letter_lines[1].pk} .pl-text").focus()
    page.keyboard.press("Control+Alt+s")  # AltGr+S: "ś" on a Polish keyboard
    page.keyboard.press("Alt+Backspace")  # delete the word before the caret
    page.wait_for_timeout(500)
    assert page.locator(".page-line").count() == 5
    assert Line.objects.filter(page_id=letter_lines[0].page_id).count() == 5


def test_enter_on_the_history_heading_opens_it_and_saves_nothing(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    page.locator("#history summary").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#history').open")
    page.wait_for_timeout(300)
    assert f"/lines/{letter_lines[1].pk}/" in page.url
    assert not Correction.objects.exists()


def test_keeping_theirs_right_after_typing_leaves_no_draft_of_mine(
    new_page, alice, bob, letters, letter_lines
):
    from ocrreview.review.models import Draft

    url = f"/collections/{letters.pk}/review/lines/{letter_lines[2].pk}/"
    second = bob_saves_it_first(new_page, url, letter_lines[2])
    editor_text(second).fill("of the third inst. and")
    second.keyboard.press("Enter")  # within the 0.8 s before the draft would be sent
    second.locator(".conflict").wait_for()
    second.keyboard.press("Alt+t")
    second.wait_for_url(
        lambda u: f"/lines/{letter_lines[2].pk}/" not in u, wait_until="domcontentloaded"
    )
    second.wait_for_timeout(500)
    assert not Draft.objects.filter(user=alice).exists()
    second.goto(url)
    assert editor_text(second).input_value() == "of the 3rd inst. and"


def test_a_revert_keeps_the_reviewers_document_filter(new_page, bob, letters, letter_lines):
    document = letter_lines[1].document_id
    page = new_page()
    log_in(page, "bob")
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/?document={document}"
    page.goto(url)
    editor_text(page).fill("I received your letter")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    page.goto(url)
    page.keyboard.press("Alt+h")
    page.wait_for_selector(".history-list")
    with page.expect_response(lambda r: "/revert/" in r.url) as reverted:
        page.locator("[data-before]").click()
    assert f"document={document}" in reverted.value.headers["x-line-url"]


def test_the_text_cannot_change_while_its_save_is_on_its_way(new_page, bob, letters, letter_lines):
    page = bob_on(new_page, letters, letter_lines[1])
    held = []
    page.route("**/save/**", lambda route: held.append(route))  # a slow network
    editor_text(page).fill("I received your letter")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#line-text').readOnly")
    page.keyboard.type(" and more")  # would have gone with the line swapped in
    assert editor_text(page).input_value() == "I received your letter"
    page.wait_for_timeout(100)
    held[0].continue_()
    wait_for_line(page, letter_lines[3])
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I received your letter"


def test_in_the_page_view_keys_typed_during_a_save_are_neither_lost_nor_moved(
    new_page, bob, letters, letter_lines
):
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    held = []
    page.route("**/save/**", lambda route: held.append(route))  # a slow network
    row = page.locator(f"#line-{letter_lines[1].pk} .pl-text")
    row.fill("I received your letter")
    row.press("Enter")
    page.wait_for_function(
        f"document.querySelector('#line-{letter_lines[1].pk} .pl-text').readOnly"
    )
    page.keyboard.type(" and more")  # would have gone with the row the answer replaces
    assert row.input_value() == "I received your letter"
    # The reviewer goes on two rows down and types there while the save is on its way.
    below = page.locator(f"#line-{letter_lines[3].pk} .pl-text")
    below.focus()
    below.press("End")
    page.keyboard.type(" (to")
    held[0].continue_()
    page.wait_for_selector(f"#line-{letter_lines[1].pk}.band-reviewed")
    page.keyboard.type(" be")
    assert below.input_value() == "hasten to reply tbat (to be"
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I received your letter"


def test_escape_right_after_typing_keeps_the_last_keys_on_the_server(
    new_page, bob, letters, letter_lines
):
    from ocrreview.review.models import Draft

    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).press("End")
    page.keyboard.type(" (to")
    page.keyboard.press("Escape")  # before the draft would have been sent
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    assert Draft.objects.get(line=letter_lines[1]).text == "I recieved your letter (to"


def test_a_browser_clock_behind_the_servers_does_not_bring_back_an_older_draft(
    new_page, bob, letters, letter_lines
):
    from datetime import datetime, timedelta

    from django.utils import timezone

    from ocrreview.review import actions
    from ocrreview.review.models import Draft

    page = new_page()
    page.clock.install(time=datetime.now() - timedelta(hours=1))
    log_in(page, "bob")
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/"
    actions.do_save_draft(letter_lines[1], bob, "older, from another device", base_version=1)
    Draft.objects.update(updated_at=timezone.now() - timedelta(minutes=10))
    page.goto(url)
    editor_text(page).fill("I received your letter, typed last")
    Draft.objects.update(text="older, from another device")  # this browser's send is late
    Draft.objects.update(updated_at=timezone.now() - timedelta(minutes=10))
    page.reload()
    assert editor_text(page).input_value() == "I received your letter, typed last"


def test_ctrl_enter_after_taking_an_alternative_warns_again(new_page, bob, letters, letter_lines):
    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).fill("I received your letter!")
    page.keyboard.press("Control+Enter")  # warns: the change would be dropped
    page.keyboard.press("Alt+2")  # takes the second reading instead
    page.keyboard.press("Control+Enter")  # must warn again, not accept
    page.wait_for_timeout(300)
    assert "Ctrl+Enter again" in page.locator("#notice").inner_text()
    assert not Correction.objects.exists()


def test_undo_takes_back_a_word_at_a_time_and_redo_brings_it_back(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    text = editor_text(page)
    text.press("End")
    before = text.input_value()
    page.keyboard.type(" and so")
    # Each word goes with the space typed before it, as in text editors (the space was left).
    page.keyboard.press("Control+z")
    assert text.input_value() == before + " and"
    page.keyboard.press("Control+z")
    assert text.input_value() == before
    page.keyboard.press("Control+Shift+z")
    assert text.input_value() == before + " and"
    page.keyboard.press("Control+y")
    assert text.input_value() == before + " and so"
    page.keyboard.press("Alt+2")  # a new change: nothing is left to redo
    page.keyboard.press("Control+y")
    assert text.input_value() == "I received your letter"
    page.keyboard.press("Control+z")
    assert text.input_value() == before + " and so"
    page.keyboard.press("Control+Shift+z")
    assert text.input_value() == "I received your letter"
    assert page.locator(".alternatives li.taken").count() == 1


def test_undo_of_words_typed_after_spaces_takes_their_spaces_along(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    text = editor_text(page)
    text.press("End")
    before = text.input_value()
    page.keyboard.type("  sent  twice")  # runs of spaces go with the word after them
    page.keyboard.press("Control+z")
    assert text.input_value() == before + "  sent"
    page.keyboard.press("Control+z")
    assert text.input_value() == before
    # Deleting, and typing again after it, are runs of their own.
    page.keyboard.type(" ok")
    page.keyboard.press("Backspace")
    page.keyboard.type("n")
    page.keyboard.press("Control+z")
    assert text.input_value() == before + " o"
    page.keyboard.press("Control+z")
    assert text.input_value() == before + " ok"
    page.keyboard.press("Control+z")
    assert text.input_value() == before


def test_undoing_a_taken_alternative_also_forgets_its_reading(new_page, bob, letters, letter_lines):
    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).focus()
    page.keyboard.press("Alt+2")
    assert editor_text(page).input_value() == "I received your letter"
    page.keyboard.press("Control+z")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    saved = Correction.objects.get(line=letter_lines[1])
    assert saved.text_after == "I recieved your letter"
    assert saved.hypothesis == letter_lines[1].hypotheses.get(rank=0)


def test_a_short_lease_is_renewed_before_it_runs_out(
    new_page, bob, letters, letter_lines, settings
):
    from datetime import timedelta

    from django.utils import timezone

    settings.OCRREVIEW_LEASE_SECONDS = 30
    line = letter_lines[1]
    page = new_page()
    page.clock.install()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/review/lines/{line.pk}/")
    editor_text(page).wait_for()
    almost_out = timezone.now() + timedelta(seconds=5)
    Line.objects.filter(pk=line.pk).update(claimed_until=almost_out)
    page.clock.run_for(11_000)
    renewed = Line.objects.filter(pk=line.pk, claimed_by=bob, claimed_until__gt=almost_out)
    deadline = time.monotonic() + 10
    while not renewed.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert renewed.exists(), "no renewal reached the server within a third of the lease"


def test_keeping_mine_keeps_what_i_typed_after_the_conflict_appeared(
    new_page, alice, bob, letters, letter_lines
):
    url = f"/collections/{letters.pk}/review/lines/{letter_lines[2].pk}/"
    second = bob_saves_it_first(new_page, url, letter_lines[2])
    editor_text(second).fill("of the third inst. and")
    second.keyboard.press("Enter")
    conflict = second.locator(".conflict")
    conflict.wait_for()
    editor_text(second).press("End")
    second.keyboard.type(" so")  # alice goes on correcting before she chooses
    assert conflict.locator(".mine").inner_text() == "of the third inst. and so"
    second.keyboard.press("Alt+m")
    second.wait_for_url(lambda u: f"/lines/{letter_lines[2].pk}/" not in u)
    assert Line.objects.get(pk=letter_lines[2].pk).text == "of the third inst. and so"


@pytest.mark.parametrize("key", ["Enter", "Escape"])
def test_keys_that_confirm_or_cancel_an_input_methods_candidate_neither_save_nor_skip(
    new_page, bob, letters, letter_lines, key
):
    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).fill("I received your letter")
    # Chromium's key event while a Japanese or Chinese input method composes.
    page.locator("#line-text").dispatch_event(
        "keydown", {"key": key, "code": key, "isComposing": True, "bubbles": True}
    )
    page.wait_for_timeout(500)
    assert f"/lines/{letter_lines[1].pk}/" in page.url
    assert not Correction.objects.exists()
    assert Line.objects.get(pk=letter_lines[1].pk).status == "in_review"


def test_a_draft_held_up_on_the_network_does_not_overwrite_a_later_one(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    held, sent, answered = [], [], []
    page.on("request", lambda r: "/draft/" in r.url and sent.append(r))
    page.on("requestfinished", lambda r: "/draft/" in r.url and answered.append(r))
    page.route("**/draft/", lambda route: route.continue_() if held else held.append(route))
    editor_text(page).fill("I received")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held
    editor_text(page).fill("I received your letter")  # its draft goes 0.8 s later
    page.wait_for_timeout(1500)
    held[0].continue_()
    for _ in range(200):
        page.wait_for_timeout(50)
        if len(answered) == len(sent) == 2:
            break
    draft = Draft.objects.get(line=letter_lines[1], user=bob)
    assert draft.text == "I received your letter"


def test_a_skip_overtaken_by_a_save_does_not_skip_the_next_line_unseen(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    held = []
    page.route("**/draft/", lambda route: held.append(route))  # a slow network
    editor_text(page).fill("I received your letter")
    page.keyboard.press("Escape")  # the skip first sends the draft, which is held
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held
    page.keyboard.press("Enter")  # the reviewer saves after all
    wait_for_line(page, letter_lines[3])
    held[0].continue_()
    page.wait_for_timeout(800)
    assert f"/lines/{letter_lines[3].pk}/" in page.url
    assert not Correction.objects.filter(line=letter_lines[3]).exists()
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I received your letter"


def test_a_revert_over_unsaved_typing_asks_first(new_page, bob, letters, letter_lines):
    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).fill("I received your letter")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    page.goto(f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/")
    editor_text(page).fill("I received your letters")
    page.keyboard.press("Alt+h")
    page.wait_for_selector(".history-list")
    page.locator("[data-before]").click()
    assert "Click again to revert" in page.locator("#notice").inner_text()
    assert editor_text(page).input_value() == "I received your letters"
    assert not Correction.objects.filter(action="revert").exists()
    page.locator("[data-before]").click()
    page.wait_for_function(
        "document.querySelector('#line-text').value === 'I recieved your letter'"
    )
    assert Correction.objects.filter(line=letter_lines[1], action="revert").exists()


def test_a_draft_the_server_no_longer_keeps_is_said_to_be_in_this_browser_only(
    new_page, bob, letters, letter_lines
):
    from ocrreview.review import actions

    page = bob_on(new_page, letters, letter_lines[1])
    # bob saves the line in another tab; this one still has it at the version before.
    actions.do_save_line(letter_lines[1], bob, "I received your letter", expected_version=1)
    editor_text(page).press("End")
    page.keyboard.type(" (to")
    page.wait_for_function(
        "document.querySelector('#notice').textContent.includes('only this browser')"
    )
    page.keyboard.press("Enter")
    page.locator(".conflict").wait_for()


def test_the_page_view_does_not_merge_away_a_line_with_unsaved_text(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    below = page.locator(f"#line-{letter_lines[2].pk} .pl-text")
    below.fill("of the 3d inst. and so")
    page.locator(f"#line-{letter_lines[1].pk} .pl-text").focus()
    page.keyboard.press("Alt+j")
    page.wait_for_timeout(500)
    assert "unsaved text" in page.locator("#seg-status").inner_text()
    assert Line.objects.filter(page_id=letter_lines[0].page_id).count() == 5
    assert below.input_value() == "of the 3d inst. and so"


def test_after_keeping_theirs_in_the_page_view_the_row_has_nothing_unsaved(
    new_page, alice, bob, letters, letter_lines
):
    from ocrreview.review import actions

    bbox_lines(letter_lines)
    # Typed in the editor first, then taken to the page view: a draft on the server.
    actions.do_save_draft(letter_lines[2], bob, "of the 3d inst. and so", base_version=1)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    actions.do_save_line(letter_lines[2], alice, "of the 3rd inst. and", expected_version=1)
    row = page.locator(f"#line-{letter_lines[2].pk}")
    row.locator(".pl-text").fill("of the third inst. and")
    row.locator(".pl-text").press("Enter")
    row.locator("[data-choose=theirs]").click()
    assert row.locator(".pl-text").input_value() == "of the 3rd inst. and"
    page.locator(f"#line-{letter_lines[1].pk} .pl-text").focus()
    page.keyboard.press("Alt+j")
    # Alice's save is history, which keeps line 3; the merge is refused for that alone.
    page.wait_for_selector("#seg-status:has-text('review history')")
    assert not Draft.objects.filter(user=bob).exists()


def test_a_screen_reader_hears_the_save_the_next_line_and_the_end_of_the_queue(
    new_page, bob, letters, letter_lines
):
    """The status region stays while lines come and go: one replaced with the line would be
    new each time, and what it says unheard."""
    from ocrreview.review import actions

    Line.objects.filter(pk__in=[letter_lines[1].pk, letter_lines[2].pk]).update(status="reviewed")
    actions.do_save_draft(letter_lines[4], bob, "the ſhip is expected", base_version=1)
    page = bob_on(new_page, letters, letter_lines[3])
    page.evaluate("window.region = document.getElementById('notice')")
    page.keyboard.press("Enter")
    wait_for_line(page, letter_lines[4])
    page.wait_for_function("document.getElementById('notice').textContent !== ''")
    assert page.evaluate("window.region === document.getElementById('notice')")
    assert page.locator("#notice").inner_text() == "Saved. Your unsaved text was restored."
    # The field's description says which line it is, as the sighted see above the image.
    expect(editor_text(page)).to_have_accessible_description(
        re.compile(
            r"^Letter to Mr Hale · page 1 · line 5 of 5 · line confidence \(calibrated\) 35%"
        )
    )

    page.keyboard.press("Enter")
    page.wait_for_selector(".queue-done")
    assert page.evaluate("document.activeElement.textContent") == "Nothing left to review here"
    page.wait_for_function("document.getElementById('notice').textContent === 'Saved.'")


def test_a_conflict_in_the_page_view_is_heard_and_answered_from_the_keyboard(
    new_page, alice, bob, letters, letter_lines
):
    from ocrreview.review import actions

    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[2]
    row = page.locator(f"#line-{line.pk}")
    # The row's status region is there to screen readers while empty, so what it says is heard.
    assert row.get_by_role("status").count() == 1
    text = row.locator(".pl-text")
    focused_row = "document.activeElement.closest('.page-line')?.id"

    actions.do_save_line(line, alice, "of the 3rd inst. and", expected_version=1)
    text.fill("of the third inst. and")
    text.press("Enter")
    row.locator("[data-choose=theirs]").click()
    assert text.input_value() == "of the 3rd inst. and"
    assert page.evaluate("document.activeElement.classList.contains('pl-text')")
    assert page.evaluate(focused_row) == f"line-{line.pk}"

    line.refresh_from_db()
    actions.do_save_line(line, alice, "of the 3rd inst. and so", expected_version=line.version)
    text.fill("of the third inst. and")
    text.press("Enter")
    row.locator(".conflict").wait_for()
    page.keyboard.press("Alt+m")
    page.wait_for_function(f"!document.querySelector('#line-{line.pk} .conflict')")
    assert Line.objects.get(pk=line.pk).text == "of the third inst. and"


def test_the_history_marks_its_changes_by_more_than_colour(new_page, bob, letters, letter_lines):
    from ocrreview.review import actions

    actions.do_save_line(
        letter_lines[1], bob, "I received your letter", expected_version=1, time_spent_ms=1000
    )
    page = bob_on(new_page, letters, letter_lines[1])
    page.keyboard.press("Alt+h")
    page.wait_for_selector(".history-list")
    deleted = page.locator(".history-list del").first
    inserted = page.locator(".history-list ins").first
    assert deleted.text_content().startswith("deleted: ")
    assert inserted.text_content().startswith("inserted: ")
    assert inserted.evaluate("e => getComputedStyle(e).textDecorationLine") == "underline"
    assert deleted.evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
    # Heard, not seen: the words take no room beside the text.
    assert deleted.locator(".visually-hidden").bounding_box()["width"] <= 1


def test_the_editor_and_the_page_view_are_named_for_screen_readers(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    expect(page.get_by_role("heading", level=1)).to_have_text("Review · Letters")
    for name in ("Main", "Account", "Lines"):
        expect(page.get_by_role("navigation", name=name)).to_have_count(1)
    around = page.get_by_role("region", name="The page around the line", include_hidden=True)
    expect(around).to_have_count(1)
    page.keyboard.press("F1")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")

    page.goto(f"/collections/{letters.pk}/review/pages/{letter_lines[0].page_id}/")
    expect(page.get_by_role("navigation", name="Pages")).to_have_count(1)
    # The boxes' numbers and the legend's swatches are not read out: the rows say it all.
    assert page.locator(".pv-canvas").aria_snapshot() == '- img "The page"'
    assert "■" not in page.locator(".legend").aria_snapshot()


def test_a_box_is_moved_resized_split_and_added_with_the_keyboard_alone(
    new_page, bob, letters, letter_lines
):
    bbox_lines(letter_lines)  # 60 px high: each arrow is an eighth of that, 8 px (7.5 rounded)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[4]
    page.locator(f"#line-{line.pk} .pl-text").focus()
    # Alt+Left is the browser's Back elsewhere: here it moves the box.
    for key in ["Alt+ArrowRight", "Alt+ArrowLeft", "Alt+ArrowRight", "Alt+ArrowRight"] + [
        "Alt+ArrowUp",
        "Alt+Shift+ArrowLeft",
    ]:
        page.keyboard.press(key)
    # One move is sent once the keys pause, and the page comes back on the line.
    page.wait_for_function(
        f"document.querySelector('#line-{line.pk}').dataset.bbox === '46,314,708,374'"
    )
    assert Line.objects.get(pk=line.pk).bbox == [46, 314, 708, 374]
    assert page.evaluate("document.activeElement.closest('.page-line').id") == f"line-{line.pk}"

    # Escape puts a box back before it is sent.
    page.keyboard.press("Alt+ArrowDown")
    page.keyboard.press("Escape")
    assert "back where it was" in page.locator("#seg-status").inner_text()
    page.wait_for_timeout(1200)
    assert Line.objects.get(pk=line.pk).bbox == [46, 314, 708, 374]
    assert page.locator(f'g.box[data-line-id="{line.pk}"] rect').first.get_attribute("y") == "314"

    # Split at the caret: after "I", the first space.
    row = page.locator(f"#line-{letter_lines[1].pk} .pl-text")
    row.focus()
    row.evaluate("input => input.setSelectionRange(1, 1)")
    page.keyboard.press("Alt+s")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 6")
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I"

    # Add mode, then Enter: a box of the selected line's size right under it.
    page.locator(f"#line-{line.pk} .pl-text").focus()
    page.keyboard.press("Alt+a")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 7")
    # Under it, that is, as far down as the page lets a box of that height go.
    added = Line.objects.filter(page_id=line.page_id).order_by("-id").first()
    assert added.bbox == [46, 360, 708, 420]


def test_typing_a_box_move_and_enter_at_once_keep_both(new_page, bob, letters, letter_lines):
    """The move used to be sent after the save, on the version the save had replaced: the
    reviewer's own move came back as someone else's change and was lost."""
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[3]
    elsewhere = page.locator(f"#line-{letter_lines[4].pk} .pl-text")
    elsewhere.fill("the ship is expected")
    page.evaluate("window.notReloaded = true")
    row = page.locator(f"#line-{line.pk} .pl-text")
    row.fill("hasten to reply that")
    page.keyboard.press("Alt+ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#line-{line.pk}.band-reviewed")
    for _ in range(100):
        if Line.objects.get(pk=line.pk).bbox != [30, 247, 700, 307]:
            break
        page.wait_for_timeout(50)
    saved = Line.objects.get(pk=line.pk)
    assert (saved.text, saved.bbox) == ("hasten to reply that", [30, 255, 700, 315])
    assert "changed" not in page.locator("#seg-status").inner_text()
    # The page stayed (no reload): the other row holds its unsaved text, a field the focus.
    assert page.evaluate("window.notReloaded === true")
    assert elsewhere.input_value() == "the ship is expected"
    assert page.evaluate("document.activeElement.classList.contains('pl-text')")


def test_after_a_keyboard_delete_the_next_line_has_the_focus(new_page, bob, letters, letter_lines):
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    page.locator(f"#line-{letter_lines[2].pk} .pl-text").focus()
    page.keyboard.press("Alt+Delete")
    page.wait_for_function("document.querySelectorAll('.page-line').length === 4")
    page.wait_for_function(
        f"document.activeElement.closest('.page-line')?.id === 'line-{letter_lines[3].pk}'"
    )


def test_add_mode_is_left_when_another_row_takes_the_focus(new_page, bob, letters, letter_lines):
    """Enter there saves that row; it added a line under the row add mode was entered from."""
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    page.locator(f"#line-{letter_lines[1].pk} .pl-text").focus()
    page.keyboard.press("Alt+a")
    other = page.locator(f"#line-{letter_lines[3].pk} .pl-text")
    other.fill("hasten to reply that")
    other.press("Enter")
    page.wait_for_selector(f"#line-{letter_lines[3].pk}.band-reviewed")
    assert Line.objects.filter(page_id=letter_lines[0].page_id).count() == 5


def test_text_typed_before_a_keyboard_move_saves_after_a_reload(
    new_page, bob, letters, letter_lines
):
    """Kept in the browser over the version the move replaced, the text came back after a
    reload as a conflict with the reviewer's own move."""
    bbox_lines(letter_lines)
    page = bob_on_the_page_view(new_page, letters, letter_lines[0])
    line = letter_lines[3]
    row = page.locator(f"#line-{line.pk} .pl-text")
    row.fill("hasten to reply that")
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_selector("#seg-status:has-text('Box saved.')")
    page.reload()
    row = page.locator(f"#line-{line.pk} .pl-text")
    assert row.input_value() == "hasten to reply that"
    row.press("Enter")
    page.wait_for_selector(f"#line-{line.pk}.band-reviewed")
    assert Line.objects.get(pk=line.pk).text == "hasten to reply that"


def test_emptying_a_line_asks_for_a_second_enter_and_ctrl_z_brings_the_text_back(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    text = editor_text(page)
    text.press("Control+a")
    text.press("Backspace")
    text.press("Enter")
    expect(page.locator("#notice")).to_contain_text("The line is empty. Enter again")
    assert not Correction.objects.exists()
    text.press("Control+z")
    assert text.input_value() == "I recieved your letter"

    text.press("Control+a")
    text.press("Backspace")
    text.press("Enter")
    expect(page.locator("#notice")).to_contain_text("Enter again saves it")
    text.press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    line = Line.objects.get(pk=letter_lines[1].pk)
    assert (line.text, line.status) == ("", "reviewed")


def test_a_save_that_drops_most_of_the_reading_asks_for_a_second_enter(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    text = editor_text(page)
    text.press("Control+a")
    text.press_sequentially("I r")  # a word typed over the selected line
    text.press("Enter")
    expect(page.locator("#notice")).to_contain_text("removed most of the reading (3 of 22")
    assert not Correction.objects.exists()
    # A cut to a third or more (half of a line split in two) goes at once.
    text.fill("I recieved")
    text.press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I recieved"


def test_search_and_fix_goes_from_hit_to_hit_and_back_to_the_results(
    new_page, bob, letters, letter_lines
):
    page = new_page()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/search/?q=the")
    hits = page.locator(".search-hit")
    expect(hits).to_have_count(2)
    first = int(hits.nth(0).get_attribute("data-line-id"))
    second = int(hits.nth(1).get_attribute("data-line-id"))
    hits.nth(0).get_by_role("link", name="open in the editor").click()
    expect(page.locator(".trail a")).to_have_text("← results (1 of 2)")
    editor_text(page).press("End")
    editor_text(page).press_sequentially(".")
    editor_text(page).press("Enter")
    page.wait_for_selector(f'#editor[data-line-id="{second}"]')
    expect(page.locator(".trail a")).to_have_text("← results (2 of 2)")
    editor_text(page).press("End")
    editor_text(page).press_sequentially(".")
    editor_text(page).press("Enter")
    page.wait_for_url(re.compile(r"/search/\?q=the$"))
    expect(page.locator(".search-hit.fixed")).to_have_count(2)
    texts = dict(Line.objects.filter(pk__in=[first, second]).values_list("pk", "text"))
    assert all(text.endswith(".") for text in texts.values())


def test_alt_u_marks_a_line_unclear_with_a_note_and_a_save_keeps_the_mark(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    editor_text(page).press("Alt+u")
    note = page.get_by_label("What cannot be read? (optional)")
    expect(note).to_be_focused()
    note.press_sequentially("can't read the second word")
    note.press("Enter")  # marks it, and saves nothing
    expect(page.locator(".unclear-mark")).to_contain_text("can't read the second word")
    expect(editor_text(page)).to_be_focused()
    line = Line.objects.get(pk=letter_lines[1].pk)
    assert (line.unclear, line.status) == (True, "in_review")
    editor_text(page).press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    line.refresh_from_db()
    assert (line.unclear, line.status) == (True, "reviewed")

    page.goto(f"/collections/{letters.pk}/review/lines/{line.pk}/")
    editor_text(page).press("Alt+u")  # again: the mark goes
    expect(page.locator("[data-unclear=open]")).to_be_visible()
    assert not Line.objects.get(pk=line.pk).unclear
    assert list(Correction.objects.filter(line=line).values_list("action", flat=True)) == [
        "unclear",
        "accept",  # Enter on the text as it was
        "clear",
    ]


def test_an_unclear_mark_refused_with_a_page_rather_than_json_says_so(
    new_page, bob, letters, letter_lines
):
    """A CSRF failure (the cookie gone), a proxy's 502, a 404 answer with a page: reading it
    as JSON threw, and the reviewer was told nothing while the mark was not set."""
    page = bob_on(new_page, letters, letter_lines[1])
    wait_for_line(page, letter_lines[1])
    page.context.clear_cookies(name="csrftoken")
    editor_text(page).press("Alt+u")
    note = page.get_by_label("What cannot be read? (optional)")
    note.press_sequentially("second word")
    note.press("Enter")
    expect(page.locator("#notice")).to_have_text(
        "Not changed: The server refused the request (403)."
    )
    assert not Line.objects.get(pk=letter_lines[1].pk).unclear


def test_the_history_of_a_line_after_the_session_ended_says_why_it_is_not_shown(
    new_page, bob, letters, letter_lines
):
    page = bob_on(new_page, letters, letter_lines[1])
    wait_for_line(page, letter_lines[1])
    page.context.clear_cookies(name="sessionid")
    page.keyboard.press("Alt+h")
    expect(page.locator("#history .history-body")).to_contain_text(
        "The history could not be loaded: your session has ended."
    )


def test_a_log_in_by_someone_else_in_another_tab_does_not_make_an_open_tab_theirs(
    new_page, bob, alice, letters, letter_lines
):
    """On a browser people share, alice logs in in another tab while bob's line is open: bob's
    save, drafts and beacons went to the server as hers, and his unsaved text came back to
    her as her own."""
    line = letter_lines[1]
    page = bob_on(new_page, letters, line)
    wait_for_line(page, line)
    other = page.context.new_page()
    log_in(other, "alice")
    editor_text(page).press("End")
    page.keyboard.type(" (bob's)")
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_contain_text(
        "Not saved: alice has logged in on this browser since this page was opened"
    )
    page.close(run_before_unload=True)  # its draft goes as a beacon, refused too
    other.goto(f"/collections/{letters.pk}/review/lines/{line.pk}/")
    wait_for_line(other, line)
    assert editor_text(other).input_value() == "I recieved your letter"
    assert not Correction.objects.filter(line=line).exists()
    assert not Draft.objects.filter(line=line).exists()
    kept = other.evaluate(f"localStorage.getItem('ocrreview:draft:{bob.pk}:{line.pk}')")
    assert "I recieved your letter (bob's)" in kept


def open_a_second_tab(first, how):
    if how == "opened by the first":
        with first.context.expect_page() as opened:
            first.evaluate("window.open(location.href)")
        return opened.value
    second = first.context.new_page()
    second.goto(first.url)
    return second


@pytest.mark.parametrize("how", ["new", "opened by the first"])
def test_a_save_in_one_tab_keeps_what_another_tab_typed_into_the_line(
    new_page, bob, letters, letter_lines, how
):
    """Two tabs of one browser share its drafts: a save in one must not drop the text the
    other typed into the same line, which a reload of the other then finds gone. A tab opened
    by a script, or duplicated, starts with a copy of its opener's sessionStorage, where a tab
    keeps the id its drafts are stored by: it must keep them apart all the same."""
    first = bob_on(new_page, letters, letter_lines[2])
    second = open_a_second_tab(first, how)
    wait_for_line(second, letter_lines[2])
    editor_text(second).press("End")
    second.keyboard.type(" (second tab")
    wait_for_draft(second, letter_lines[2])
    editor_text(first).fill("of the 3rd inst. and")
    first.keyboard.press("Enter")
    first.wait_for_url(lambda u: f"/lines/{letter_lines[2].pk}/" not in u)
    second.reload()
    assert editor_text(second).input_value() == "of the 3d inst. and (second tab"
    assert "has changed since you typed it" in second.locator("#notice").inner_text()
    second.keyboard.press("Enter")
    conflict = second.locator(".conflict")
    conflict.wait_for()
    assert "of the 3rd inst. and" in conflict.locator(".theirs").inner_text()
    assert "of the 3d inst. and (second tab" in conflict.locator(".mine").inner_text()


def test_a_reload_keeps_the_tab_its_drafts_are_kept_by(new_page, bob, letters, letter_lines):
    """A tab's drafts are stored by an id a live copy of the tab would find stamped as taken;
    its own reload must find the stamp cleared, or every reload would leave its drafts to a
    tab that no longer exists, for another tab's older text to be taken for the newest."""
    line = letter_lines[2]
    page = bob_on(new_page, letters, line)
    wait_for_line(page, line)
    tab = page.evaluate("sessionStorage.getItem('ocrreview:tab')")
    editor_text(page).press("End")
    page.keyboard.type(" x")
    wait_for_draft(page, line)
    page.reload()
    wait_for_line(page, line)
    assert page.evaluate("sessionStorage.getItem('ocrreview:tab')") == tab
    stored = page.evaluate(f"localStorage.getItem('ocrreview:draft:{bob.pk}:{line.pk}')")
    assert list(json.loads(stored)) == [tab]
    assert editor_text(page).input_value() == "of the 3d inst. and x"


def test_typing_undone_back_to_the_saved_text_leaves_no_draft(new_page, bob, letters, letter_lines):
    """A draft of the line's own text keeps the line held by the reviewer who moved on, bars
    colleagues from deleting or merging it, and brings the machine's text back over a
    colleague's later correction as unsaved."""
    page = bob_on(new_page, letters, letter_lines[1])
    text = editor_text(page)
    text.press("End")
    page.keyboard.type(" x")
    wait_for_draft(page, letter_lines[1])
    page.keyboard.press("Control+z")
    assert text.input_value() == "I recieved your letter"
    wait_for_draft(page, letter_lines[1], present=False)
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    editor_text(page).wait_for()
    assert not Draft.objects.filter(line=letter_lines[1]).exists()
    left = Line.objects.get(pk=letter_lines[1].pk)
    assert (left.status, left.claimed_by) == ("needs_review", None)
    assert (
        page.evaluate(f"Object.keys(localStorage).filter(k => k.endsWith(':{letter_lines[1].pk}'))")
        == []
    )


def test_a_tab_that_only_shows_a_line_takes_no_draft_from_the_tab_typing_it(
    new_page, bob, letters, letter_lines
):
    """Showing another tab's draft must not move it away from that tab: the typing tab's save
    then dropped only its own copy, and the one moved stayed to be restored, stale, later."""
    line = letter_lines[2]
    typing = bob_on(new_page, letters, line)
    editor_text(typing).press("End")
    typing.keyboard.type(" x")
    wait_for_draft(typing, line)
    showing = typing.context.new_page()
    showing.goto(f"/collections/{letters.pk}/review/pages/{line.page_id}/")
    expect(showing.locator(f"#line-{line.pk} .pl-text")).to_have_value("of the 3d inst. and x")
    typing.keyboard.type("y")
    typing.keyboard.press("Enter")
    typing.wait_for_url(lambda u: f"/lines/{line.pk}/" not in u)
    showing.close()
    later = typing.context.new_page()
    later.goto(f"/collections/{letters.pk}/review/lines/{line.pk}/")
    wait_for_line(later, line)
    assert editor_text(later).input_value() == "of the 3d inst. and xy"
    assert "restored" not in later.locator("#notice").inner_text()


def test_typing_undone_in_the_page_view_leaves_no_draft(new_page, bob, letters, letter_lines):
    """As in the editor: a draft of the line's own text would keep colleagues from deleting or
    merging the line as if something were unsaved in it."""
    line = letter_lines[4]
    page = bob_on_the_page_view(new_page, letters, line)
    row = page.locator(f"#line-{line.pk} .pl-text")
    saved = row.input_value()
    row.press("End")
    page.keyboard.type(" x")
    wait_for_draft(page, line)
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    assert row.input_value() == saved
    wait_for_draft(page, line, present=False)
    assert page.evaluate(f"Object.keys(localStorage).filter(k => k.endsWith(':{line.pk}'))") == []


def test_leaving_right_after_undoing_the_typing_leaves_no_draft(
    new_page, bob, letters, letter_lines
):
    """The discard waits for a pause in typing, as drafts do; a tab left before it (closed, or
    a link followed) still sends it."""
    line = letter_lines[1]
    page = bob_on(new_page, letters, line)
    editor_text(page).press("End")
    page.keyboard.type(" x")
    wait_for_draft(page, line)
    page.keyboard.press("Control+z")
    page.goto(f"/collections/{letters.pk}/")
    wait_for_draft(page, line, present=False)

"""A final document's lines in a real headless Chromium: opened directly, the line editor and
the page view say that the document is final, take no typing and send no change, and the
keys still move between lines; reopened by an admin, the line is editable again."""

import pytest
from playwright.sync_api import expect

from ocrreview.corpus import workflow
from ocrreview.corpus.models import Document, Line
from tests.browser import test_review_ui
from tests.browser.test_review_ui import bob_on, bob_on_the_page_view, editor_text, wait_for_line

pytestmark = [pytest.mark.slow, pytest.mark.browser]
letter_lines = test_review_ui.letter_lines
R = Document.ReviewState


def changes_sent(page) -> list[str]:
    """The URLs of the POSTs the page sends from now on: every change is one."""
    sent = []
    page.on("request", lambda r: r.method == "POST" and sent.append(r.url))
    return sent


def test_a_final_documents_line_is_shown_read_only_until_an_admin_reopens_it(
    new_page, alice, bob, letters, letter_lines
):
    document = Document.objects.get(pk=letter_lines[1].document_id)
    workflow.do_set_review_state(document, R.FINAL, actor=alice)
    before = list(Line.objects.order_by("id").values_list("text", "version", "bbox", "order"))

    page = bob_on(new_page, letters, letter_lines[1])
    sent = changes_sent(page)
    expect(page.locator("#final-banner")).to_contain_text("'Letter to Mr Hale' is final")
    text = editor_text(page)
    expect(text).to_have_attribute("readonly", "")
    expect(text).to_be_focused()
    assert page.locator(".line-buttons, .palette, [data-unclear]").count() == 0
    page.keyboard.type("xyz")
    expect(text).to_have_value("I recieved your letter")
    page.keyboard.press("Enter")
    page.keyboard.press("Control+Enter")
    page.keyboard.press("Alt+2")  # an alternative
    expect(page.locator("#notice")).to_contain_text("is final")
    expect(text).to_have_value("I recieved your letter")
    page.keyboard.press("Alt+ArrowDown")
    wait_for_line(page, letter_lines[2])
    expect(page.locator("#final-banner")).to_be_visible()

    view = bob_on_the_page_view(new_page, letters, letter_lines[1])
    sent_there = changes_sent(view)
    expect(view.locator("#final-banner")).to_contain_text("is final")
    expect(view.locator(".seg-toolbar")).to_be_hidden()
    assert view.locator(".pl-order").count() == 0
    row = view.locator(f"#line-{letter_lines[0].pk} .pl-text")
    expect(row).to_be_focused()
    expect(row).to_have_attribute("readonly", "")
    view.keyboard.type("xyz")
    view.keyboard.press("Alt+s")  # split
    view.keyboard.press("Alt+PageDown")  # later in reading order
    view.keyboard.press("Alt+ArrowDown")  # the box moved down
    view.keyboard.press("Control+Enter")
    view.keyboard.press("Enter")  # goes on to the next row
    expect(view.locator(f"#line-{letter_lines[1].pk} .pl-text")).to_be_focused()
    expect(row).to_have_value("Dear Sir")

    page.wait_for_timeout(1500)  # a draft's or a box's timer would have fired by now
    assert (sent, sent_there) == ([], [])
    assert (
        list(Line.objects.order_by("id").values_list("text", "version", "bbox", "order")) == before
    )

    workflow.do_set_review_state(document, R.IN_QA, actor=alice)
    page.goto(f"/collections/{letters.pk}/review/lines/{letter_lines[1].pk}/")
    expect(page.locator("#final-banner")).to_have_count(0)
    text = editor_text(page)
    expect(text).not_to_have_attribute("readonly", "")
    text.fill("I received your letter")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: f"/lines/{letter_lines[1].pk}/" not in u)
    assert Line.objects.get(pk=letter_lines[1].pk).text == "I received your letter"

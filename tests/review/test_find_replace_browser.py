"""Find and replace in a real headless Chromium: alice ticks a hit, previews the change, and
replaces it; she previews every hit, unticks one from the keyboard, and replaces the others;
lines ticked on two pages of results go to one preview; she ticks Match inside words from the
keyboard to fix a misreading inside words the search does not list."""

import pytest

from ocrreview.corpus.models import Line
from tests import factories
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def text(line: Line) -> str:
    return Line.objects.get(pk=line.pk).text


@pytest.mark.django_db(transaction=True)
def test_alice_previews_and_replaces_a_misread_name(new_page, alice, letters):
    page_row = factories.make_page(factories.make_document(letters, title="Family letters"))
    chosen = factories.make_line(page_row, 0, text="Mr Stanfora called")
    left = factories.make_line(page_row, 1, text="at Stanfora mill")
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/search/?q=Stanfora")
    page.check(f'.search-hit[data-line-id="{chosen.pk}"] input[name=line_ids]')
    # Ticking a line is choosing lines, not all hits.
    assert not page.is_checked("#replace-form input[name=all]")
    page.fill("#replace-form input[name=replacement]", "Stanford")
    page.click("#replace-form button[type=submit]")
    row = page.locator(f'.replace-changes tr[data-line-id="{chosen.pk}"]')
    row.wait_for()
    assert row.locator("del").inner_text().endswith("Stanfora")
    assert text(chosen) == "Mr Stanfora called"
    page.get_by_role("button", name="Replace the ticked hits").click()
    page.wait_for_selector("text=1 line changed")
    assert text(chosen) == "Mr Stanford called"
    assert text(left) == "at Stanfora mill"


@pytest.mark.django_db(transaction=True)
def test_alice_unticks_a_false_hit_from_the_keyboard_and_replaces_the_rest(
    new_page, alice, letters
):
    page_row = factories.make_page(factories.make_document(letters, title="Letter"))
    lines = [
        factories.make_line(page_row, 0, text="Mr Stanfora called"),
        factories.make_line(page_row, 1, text="Stanfora mill, Stanfora lane"),
    ]
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/search/?q=Stanfora")
    assert page.is_checked("#replace-form input[name=all]")  # every hit, by default
    page.fill("#replace-form input[name=replacement]", "Stanford")
    page.click("#replace-form button[type=submit]")
    page.wait_for_selector("#replace-confirm")
    assert page.inner_text("#replace-count") == "3 of 3 ticked"
    # Tab reaches each hit's checkbox (past the line's history link), named for its line;
    # space unticks it.
    first = page.get_by_role("checkbox", name="Replace in line 1 of Letter p. 1")
    first.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    lane = page.get_by_role(
        "checkbox", name="Replace hit 1 of 2 (“Stanfora”) in line 2 of Letter p. 1"
    )
    assert lane.evaluate("box => box === document.activeElement")
    page.keyboard.press("Space")
    assert not lane.is_checked()
    assert page.inner_text("#replace-count") == "2 of 3 ticked"
    page.get_by_role("button", name="Replace the ticked hits").click()
    page.wait_for_selector("text=2 lines changed")
    assert [text(line) for line in lines] == ["Mr Stanford called", "Stanfora mill, Stanford lane"]


@pytest.mark.django_db(transaction=True)
def test_lines_ticked_on_two_pages_of_results_are_previewed_together(new_page, alice, letters):
    page_row = factories.make_page(factories.make_document(letters, title="Ledger"))
    lines = [factories.make_line(page_row, i, text=f"Stanfora {i}") for i in range(25)]
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/search/?q=Stanfora")
    first_page = page.locator(".search-hit").first.get_attribute("data-line-id")
    page.check(f'.search-hit[data-line-id="{first_page}"] input[name=line_ids]')
    page.click("a[rel=next]")
    page.wait_for_selector("#replace-carried:has-text('1 line ticked on other pages')")
    second_page = page.locator(".search-hit").first.get_attribute("data-line-id")
    assert second_page != first_page
    page.check(f'.search-hit[data-line-id="{second_page}"] input[name=line_ids]')
    page.fill("#replace-form input[name=replacement]", "Stanford")
    page.click("#replace-form button[type=submit]")
    page.wait_for_selector("#replace-confirm")
    previewed = page.locator(".replace-changes tr[data-line-id]")
    assert sorted(previewed.evaluate_all("rows => rows.map(r => r.dataset.lineId)")) == sorted(
        [first_page, second_page]
    )
    page.get_by_role("button", name="Replace the ticked hits").click()
    page.wait_for_selector("text=2 lines changed")
    changed = {str(line.pk) for line in lines if text(line).startswith("Stanford ")}
    assert changed == {first_page, second_page}


@pytest.mark.django_db(transaction=True)
def test_alice_fixes_a_misreading_inside_words_from_the_keyboard(new_page, alice, letters):
    page_row = factories.make_page(factories.make_document(letters, title="Letter"))
    inside = factories.make_line(page_row, 0, text="tbey saw tbem, Meſſieurs")
    whole = factories.make_line(page_row, 1, text="Tbe end")
    page = new_page()
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/search/?q=tbe")
    # The search lists the whole word only.
    assert page.locator(".search-hit").count() == 1
    page.fill("#replace-form input[name=replacement]", "the")
    # Tab from the replacement reaches the option, by its label; space ticks it.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    option = page.get_by_role("checkbox", name="Match inside words")
    assert option.evaluate("box => box === document.activeElement")
    page.keyboard.press("Space")
    assert option.is_checked()
    page.click("#replace-form button[type=submit]")
    page.wait_for_selector("#replace-confirm")
    assert "inside words" in page.inner_text("h1")
    assert page.inner_text("#replace-count") == "3 of 3 ticked"
    # The preview marks the parts of words the replace takes.
    row = page.locator(f'.replace-changes tr[data-line-id="{inside.pk}"]')
    assert row.locator(".replace-hit del").all_text_contents() == ["found: tbe", "found: tbe"]
    page.get_by_role("button", name="Replace the ticked hits").click()
    page.wait_for_selector("text=2 lines changed")
    assert (text(inside), text(whole)) == ("they saw them, Meſſieurs", "the end")

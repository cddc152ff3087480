"""Where things sit on the page, in a real headless Chromium at common screen widths."""

import pytest

from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_transcripts_checkbox_sits_beside_its_button(
    new_page, screenshot, alice, letters, width
):
    """The collection page's action row squeezed "reviewed lines only" above "All transcripts
    (zip)" (its form, a flex item, shrank to the width of the button)."""
    page = new_page(viewport=(width, 900))
    log_in(page, "alice")
    page.goto(f"/collections/{letters.pk}/")
    label = page.get_by_text("reviewed lines only").bounding_box()
    checkbox = page.get_by_role("checkbox", name="reviewed lines only").bounding_box()
    button = page.get_by_role("button", name="All transcripts (zip)").bounding_box()
    screenshot(page, f"collection-actions-{width}")
    assert label is not None and checkbox is not None and button is not None
    # One row: the label's and the checkbox's middles within the button's height, left of it.
    for box in (label, checkbox):
        middle = box["y"] + box["height"] / 2
        assert button["y"] <= middle <= button["y"] + button["height"], (box, button)
    assert label["x"] + label["width"] <= button["x"], (label, button)
    # The label on one line, not wrapped under its checkbox.
    assert label["height"] <= button["height"], (label, button)

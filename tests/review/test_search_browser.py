"""Search in a real headless Chromium: from the collection page's search box, a name typed
with a typo finds its line among similar words, its image loads, and the hit opens the line
in the editor."""

import pytest

from ocrreview.corpus.models import Line
from ocrreview.review.search import trigram_search_available
from tests import factories
from tests.playwright_fixtures import log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_bob_finds_a_misspelt_name_and_opens_its_line_in_the_editor(
    new_page, bob, letters, model_version
):
    if not trigram_search_available():
        pytest.fail("the test database has no pg_trgm, which similar-word search needs")
    page_row = factories.make_page(factories.make_document(letters, title="Family letters"))
    factories.make_read_line(page_row, 0, [("Dear Mrs Whitman", 0.8)], model_version)
    wanted = factories.make_read_line(
        page_row, 1, [("Mr Babcock called on Tuesday", 0.4)], model_version
    )
    page = new_page()
    log_in(page, "bob")
    page.goto(f"/collections/{letters.pk}/")
    page.fill("form.search-box input[name=q]", "Babcok")
    page.press("form.search-box input[name=q]", "Enter")
    hit = page.locator(f'.search-hit[data-line-id="{wanted.pk}"]')
    hit.wait_for()
    assert page.locator(".search-hit").count() == 1
    assert "similar words" in hit.inner_text()
    # decode() waits for the (lazy) image to load, and fails if it cannot be shown.
    assert hit.locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    hit.get_by_role("link", name="open in the editor").click()
    page.wait_for_selector(f'#editor[data-line-id="{wanted.pk}"]')
    assert page.input_value("#line-text") == "Mr Babcock called on Tuesday"
    opened = Line.objects.get(pk=wanted.pk)  # the editor holds it for bob, as from the queue
    assert (opened.status, opened.claimed_by) == (Line.Status.IN_REVIEW, bob)

"""Both progress pages link each document's title to its page."""

import pytest
from django.urls import reverse

from tests import factories


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["recognition_progress", "review_progress"])
def test_document_titles_link_to_the_document_page(client, alice, letters, page):
    document = factories.make_document(letters, title="Letter <1>")
    factories.make_line(factories.make_page(document), 0)
    client.force_login(alice)
    html = client.get(reverse(page, args=[letters.pk])).content.decode()
    assert f'<a href="/documents/{document.pk}/">Letter &lt;1&gt;</a>' in html

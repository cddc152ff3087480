"""A document's own page: reached from the collection page's title, it lists the document's
pages in order with their line counts, each linking to the page view."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ocrreview.corpus.models import DocumentAssignment, Line
from tests import factories


def _document(letters, pages: int):
    document = factories.make_document(letters, title="Letter to Ada", status="ready")
    for index in reversed(range(pages)):  # made out of order: the page shows them in order
        page = factories.make_page(document, index=index)
        factories.make_line(page, status=Line.Status.REVIEWED, text="read")
        factories.make_line(page, order=1, status=Line.Status.NEEDS_REVIEW, text="unread")
    return document


def test_the_collection_page_links_each_title_to_its_document_page(client, letters, bob):
    document = _document(letters, pages=2)
    client.force_login(bob)
    html = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert f'<a href="{reverse("document_detail", args=[document.pk])}">Letter to Ada</a>' in html
    assert "2 pages" in html
    # The transcript form moved to the document page.
    assert reverse("document_transcript", args=[document.pk]) not in html


def test_the_document_page_lists_its_pages_in_order_linking_to_the_page_view(
    client, letters, alice, bob
):
    document = _document(letters, pages=3)
    DocumentAssignment.objects.create(document=document, user=bob, assigned_by=alice)
    client.force_login(bob)
    response = client.get(reverse("document_detail", args=[document.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    pages = list(document.pages.order_by("index"))
    links = [html.index(reverse("review_page", args=[letters.pk, p.pk])) for p in pages]
    assert links == sorted(links)
    assert "Page 1</a>" in html and "Page 3</a>" in html
    assert "2 lines" in html and "6 lines" in html  # a page's, the document's
    assert "Ready" in html and "Open" in html
    assert "<dt>Assigned to</dt><dd>you</dd>" in html
    assert reverse("document_transcript", args=[document.pk]) in html

    client.force_login(alice)
    html = client.get(reverse("document_detail", args=[document.pk])).content.decode()
    assert "<dt>Assigned to</dt><dd>bob</dd>" in html


@pytest.mark.parametrize("persona", ["charlie", "dave"])
def test_the_document_page_is_for_the_collection_s_members(client, letters, persona, request):
    document = _document(letters, pages=1)
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("document_detail", args=[document.pk])).status_code == 404


def test_the_document_page_costs_the_same_queries_however_many_pages(client, letters, bob):
    small, large = _document(letters, pages=1), _document(letters, pages=6)
    client.force_login(bob)
    counts = []
    for document in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("document_detail", args=[document.pk])).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]

"""The search page (/collections/{id}/search/) and the search box that leads to it."""

import lxml.html
import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from tests import factories


@pytest.fixture
def hit(letters):
    page = factories.make_page(factories.make_document(letters, title="Babcock letters"))
    return factories.make_line(
        page, 0, text='Babcock <script>alert("x")</script>', status=Line.Status.REVIEWED,
        confidence=0.95,
    )  # fmt: skip


@pytest.mark.django_db
def test_the_collection_page_has_a_search_box(client, bob, letters):
    client.force_login(bob)
    html = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert f'action="{reverse("collection_search", args=[letters.pk])}"' in html


@pytest.mark.django_db
def test_a_hit_shows_its_escaped_snippet_image_and_links(client, bob, letters, hit):
    client.force_login(bob)
    response = client.get(reverse("collection_search", args=[letters.pk]), {"q": "Babcock"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "<mark>Babcock</mark> &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    # The crop is cached for good, so its address names the version (a moved box is new).
    image = reverse("review_line_image", args=[letters.pk, hit.pk])
    assert f"{image}?v={hit.version}" in html
    assert reverse("review_line", args=[letters.pk, hit.pk]) in html
    assert reverse("review_page", args=[letters.pk, hit.page_id]) + f"#line-{hit.pk}" in html


@pytest.mark.django_db
def test_the_document_filter_left_empty_says_every_document(client, bob, letters, hit):
    client.force_login(bob)
    response = client.get(reverse("collection_search", args=[letters.pk]), {"q": "Babcock"})
    options = lxml.html.fromstring(response.content).xpath("//select[@name='document']/option")
    assert [(o.get("value"), o.text) for o in options] == [
        ("", "every document"),
        (str(hit.page.document_id), "Babcock letters"),
    ]


@pytest.mark.django_db
def test_a_query_too_long_is_explained(client, bob, letters):
    client.force_login(bob)
    response = client.get(reverse("collection_search", args=[letters.pk]), {"q": "a" * 201})
    assert response.status_code == 400
    assert "Ensure this value has at most 200 characters" in response.content.decode()


@pytest.mark.django_db
def test_an_outsider_gets_a_404(client, charlie, letters, hit):
    client.force_login(charlie)
    response = client.get(reverse("collection_search", args=[letters.pk]), {"q": "Babcock"})
    assert response.status_code == 404
    assert "Babcock" not in response.content.decode()


@pytest.mark.django_db
def test_a_hit_found_without_its_accents_says_so(client, bob, letters, hit):
    factories.make_line(hit.page, 1, text="Messieurs de l'église", status=Line.Status.REVIEWED)
    client.force_login(bob)
    response = client.get(reverse("collection_search", args=[letters.pk]), {"q": "eglise"})
    html = response.content.decode()
    assert "Messieurs de l&#x27;<mark>église</mark>" in html
    assert "other accents or ſ" in html and "similar words</span>" not in html

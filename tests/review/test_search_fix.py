"""Search and fix: a line opened from the search results carries the way back to them, and a
save or a skip opens the next hit (then the results again), not the next line of the queue;
the results mark the hits already fixed. A return address that is not this site's search
page is ignored."""

from urllib.parse import unquote, urlencode

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from tests import factories

S = Line.Status
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture
def hits(letters):
    """Three lines naming Stanford, misread, among others; one in the queue besides."""
    page = factories.make_page(factories.make_document(letters, title="Stanford papers"))
    texts = ["Mr stanfords house", "the stanfords farm", "to stanfords mill", "Dear Sir"]
    return [
        factories.make_line(page, i, text=text, status=S.NEEDS_REVIEW, confidence=0.3 + i / 10)
        for i, text in enumerate(texts)
    ][:3]


def results_url(collection) -> str:
    return reverse("collection_search", args=[collection.pk]) + "?q=stanfords"


def trail(collection, lines, back=None) -> dict:
    return {
        "back": results_url(collection) if back is None else back,
        "hits": ",".join(str(line.pk) for line in lines),
    }


def editor(collection, line, query: dict) -> str:
    return reverse("review_line", args=[collection.pk, line.pk]) + "?" + urlencode(query)


def save(client, collection, line, text, **data):
    url = reverse("review_save", args=[collection.pk, line.pk])
    return client.post(url, {"text": text, "expected_version": line.version, **data}, **FETCH)


@pytest.mark.django_db
def test_the_results_link_to_the_editor_with_the_way_back_and_the_hits(client, bob, letters, hits):
    client.force_login(bob)
    response = client.get(results_url(letters))
    found = [hit.line for hit in response.context["results"].hits]
    assert sorted(line.pk for line in found) == [line.pk for line in hits]
    link = editor(letters, found[0], trail(letters, found)).replace("&", "&amp;")
    assert f'href="{link}"' in response.content.decode()


@pytest.mark.django_db
def test_the_editor_shows_the_way_back_and_where_the_line_is_among_the_hits(
    client, bob, letters, hits
):
    client.force_login(bob)
    html = client.get(editor(letters, hits[1], trail(letters, hits))).content.decode()
    assert f'<a href="{results_url(letters)}">← results (2 of 3)</a>' in html
    assert 'name="back"' in html and f'value="{",".join(str(h.pk) for h in hits)}"' in html


@pytest.mark.django_db
def test_a_save_opens_the_next_hit_and_after_the_last_goes_back_to_the_results(
    client, bob, letters, hits
):
    client.force_login(bob)
    way = trail(letters, hits)
    client.get(editor(letters, hits[0], way))
    line_url = {"order": "confidence", **way}
    response = save(client, letters, hits[0], "Mr Stanford's house", **way)
    assert response.status_code == 200
    assert response["X-Line-Url"] == editor(letters, hits[1], line_url)
    assert 'value="the stanfords farm"' in response.content.decode()
    # The next hit is leased to the reviewer, as opening it from the results does.
    assert Line.objects.get(pk=hits[1].pk).claimed_by == bob

    # Esc passes a hit by, to the next one.
    skip = reverse("review_skip", args=[letters.pk, hits[1].pk]) + "?" + urlencode(way)
    response = client.post(skip, **FETCH)
    assert response["X-Line-Url"] == editor(letters, hits[2], line_url)

    response = save(client, letters, hits[2], "to Stanford's mill", **way)
    assert response.status_code == 204
    assert response["X-Leave-To"] == way["back"]
    # Without the editor's script, a redirect.
    response = client.post(
        reverse("review_save", args=[letters.pk, hits[1].pk]),
        {"text": "the Stanford's farm", "expected_version": 1, **way},
    )
    assert response.status_code == 302 and response["Location"] == editor(
        letters, hits[2], line_url
    )


@pytest.mark.django_db
def test_the_results_mark_the_hits_already_fixed(client, bob, alice, letters, hits):
    client.force_login(bob)
    save(client, letters, hits[0], "Mr stanfords house.", **trail(letters, hits))
    # alice's save of a hit is hers: bob has not fixed it.
    client.force_login(alice)
    save(client, letters, hits[1], "the stanfords farm.")
    client.force_login(bob)
    response = client.get(results_url(letters))
    assert response.context["fixed"] == {hits[0].pk}
    assert response.content.decode().count("✓ fixed by you") == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "back",
    [
        "//evil.example/collections/1/search/?q=x",
        "https://evil.example/collections/1/search/?q=x",
        "javascript:alert(1)//collections/1/search/",
        "/\\evil.example/collections/1/search/",
        "/collections/1/review/",  # this site, but no search results
    ],
)
def test_a_return_address_other_than_this_sites_search_page_is_ignored(
    client, bob, letters, hits, back
):
    client.force_login(bob)
    way = trail(letters, hits, back=back.replace("/1/", f"/{letters.pk}/"))
    html = client.get(editor(letters, hits[0], way)).content.decode()
    assert "← results" not in html and "evil" not in html and "javascript" not in html
    response = save(client, letters, hits[0], "Mr Stanford's house", **way)
    # The next line of the queue, lowest confidence first, with no way back.
    assert "X-Leave-To" not in response
    assert response["X-Line-Url"].startswith(reverse("review_line", args=[letters.pk, hits[1].pk]))
    assert "back" not in response["X-Line-Url"]


@pytest.mark.django_db
@pytest.mark.parametrize("crafted", ["%0A", "%0D", "%09", "%C3%A9"])
def test_a_return_address_with_control_characters_or_not_ascii_is_ignored(
    client, bob, letters, hits, crafted
):
    """urlsplit drops a newline or a tab, so such an address passed for the search page; as
    X-Leave-To, a newline made a save that had committed answer 500 ("Not saved"), and "é"
    was MIME-encoded into an address the browser could not follow."""
    client.force_login(bob)
    way = trail(letters, hits, back=results_url(letters) + unquote(crafted) + "Set-Cookie:x")
    response = save(client, letters, hits[2], "to Stanford's mill", **way)
    assert response.status_code == 200 and "X-Leave-To" not in response
    assert response["X-Line-Url"].startswith(reverse("review_line", args=[letters.pk, hits[0].pk]))
    assert Line.objects.get(pk=hits[2].pk).text == "to Stanford's mill"
    html = client.get(editor(letters, hits[1], way)).content.decode()
    assert "← results" not in html


@pytest.mark.django_db
def test_malformed_hits_keep_the_way_back_only(client, bob, letters, hits):
    client.force_login(bob)
    way = {"back": results_url(letters), "hits": "1,x"}
    html = client.get(editor(letters, hits[0], way)).content.decode()
    assert f'<a href="{results_url(letters)}">← results</a>' in html
    assert save(client, letters, hits[0], "Mr Stanford's house", **way)["X-Leave-To"]

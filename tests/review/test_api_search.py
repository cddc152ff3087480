"""GET /api/collections/{id}/search/: hits with their snippet, filters, cursor pages, the
collection's visibility, and bad input answered with a 400 naming the field."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from tests import factories
from tests.factories import token_headers as auth


@pytest.fixture
def page(letters):
    return factories.make_page(factories.make_document(letters, title="Babcock letters"))


def line(page, order, text, **kwargs):
    kwargs.setdefault("status", Line.Status.REVIEWED)
    kwargs.setdefault("confidence", 0.95)
    return factories.make_line(page, order, text=text, **kwargs)


def get(client, user, collection, **params):
    return client.get(reverse("api_search", args=[collection.pk]), params, headers=auth(user))


@pytest.mark.django_db
def test_a_reviewer_finds_a_name_and_its_misreading(client, bob, letters, page):
    exact = line(page, 0, "Received of Mr Babcock <ten> shillings")
    misread = line(page, 1, "Mr Babcoek at the mill", status=Line.Status.NEEDS_REVIEW)
    line(page, 2, "Paid to the carrier")
    response = get(client, bob, letters, q="Babcock")
    assert response.status_code == 200
    body = response.json()
    assert [(h["id"], h["match"]) for h in body["results"]] == [
        (exact.pk, "exact"),
        (misread.pk, "similar"),
    ]
    first = body["results"][0]
    assert first["snippet"] == "Received of Mr <mark>Babcock</mark> &lt;ten&gt; shillings"
    assert first["document_title"] == "Babcock letters" and first["page"] == page.pk
    assert body["fuzzy"] is True and body["next"] is None and body["previous"] is None


@pytest.mark.django_db
def test_a_decomposed_query_finds_the_composed_text(client, bob, letters, page):
    """Every line's text is NFC; a query typed with combining accents is made so too."""
    deceased = line(page, 0, "Madame Lefèvre décédée à Paris")
    body = get(client, bob, letters, q="de\u0301ce\u0301de\u0301e").json()
    assert [(h["id"], h["match"]) for h in body["results"]] == [(deceased.pk, "exact")]
    assert body["results"][0]["snippet"] == "Madame Lefèvre <mark>décédée</mark> à Paris"


@pytest.mark.django_db
def test_a_word_found_with_other_accents_is_a_folded_match(client, bob, letters, page):
    church = line(page, 0, "Baptisé en l'église de Saint-Jean")
    body = get(client, bob, letters, q="eglise").json()
    assert [(h["id"], h["match"]) for h in body["results"]] == [(church.pk, "folded")]


@pytest.mark.django_db
def test_filters(client, bob, letters, page):
    line(page, 0, "Babcock paid", confidence=0.99)
    unsure = line(page, 1, "Babcock owes", status=Line.Status.NEEDS_REVIEW, confidence=0.4)
    for params in (
        {"status": "needs_review"},
        {"confidence_below": "0.5"},
        {"confidence_at_least": "0.3", "confidence_below": "0.5"},
    ):
        body = get(client, bob, letters, q="Babcock", **params).json()
        assert [h["id"] for h in body["results"]] == [unsure.pk], params


@pytest.mark.django_db
def test_pages_follow_the_cursor(client, bob, letters, page):
    for i in range(5):
        line(page, i, f"Babcock entry {i}")
    first = get(client, bob, letters, q="Babcock", page_size="2").json()
    second = client.get(first["next"], headers=auth(bob)).json()
    third = client.get(second["next"], headers=auth(bob)).json()
    ids = [h["id"] for body in (first, second, third) for h in body["results"]]
    assert len(ids) == len(set(ids)) == 5 and third["next"] is None
    back = client.get(third["previous"], headers=auth(bob)).json()
    assert [h["id"] for h in back["results"]] == [h["id"] for h in second["results"]]


@pytest.mark.django_db
def test_an_outsider_gets_a_404_and_never_a_line(client, charlie, letters, ledgers, page):
    line(page, 0, "Babcock in the letters")
    assert get(client, charlie, letters, q="Babcock").status_code == 404
    theirs = get(client, charlie, ledgers, q="Babcock")
    assert theirs.status_code == 200 and theirs.json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "?!"}, "q"),
        ({"q": "a" * 201}, "q"),
        ({"q": "Babcock", "status": "lost"}, "status"),
        ({"q": "Babcock", "document": "abc"}, "document"),
        ({"q": "Babcock", "document": "99999999999999999999"}, "document"),
        ({"q": "Babcock", "confidence_below": "2"}, "confidence_below"),
        ({"q": "Babcock", "confidence_at_least": "high"}, "confidence_at_least"),
        ({"q": "Babcock", "page_size": "0"}, "page_size"),
        ({"q": "Babcock", "cursor": "forged"}, "cursor"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, bob, letters, params, field):
    response = get(client, bob, letters, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid search." and list(body["fields"]) == [field]


@pytest.mark.django_db
def test_a_document_of_another_collection_is_refused(client, bob, letters, ledgers):
    theirs = factories.make_document(ledgers)
    response = get(client, bob, letters, q="Babcock", document=str(theirs.pk))
    assert response.status_code == 400 and list(response.json()["fields"]) == ["document"]

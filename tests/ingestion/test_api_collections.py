"""GET /api/collections/ and /api/collections/<id>/: the collections a token's user may see."""

import base64

import pytest
from django.urls import reverse

from tests import factories
from tests.factories import token_headers as auth


@pytest.mark.django_db
def test_a_reviewer_lists_only_their_collections(client, bob, letters, ledgers):
    response = client.get(reverse("api_collections"), headers=auth(bob))
    assert response.status_code == 200
    body = response.json()
    assert [c["name"] for c in body["results"]] == ["Letters"]
    assert body["next"] is None
    assert body["results"][0]["confidence_threshold"] == letters.confidence_threshold


@pytest.mark.django_db
def test_staff_pages_through_every_collection_with_a_cursor(client, staff):
    for n in range(5):
        factories.make_collection(f"Box {n}")
    headers = auth(staff)
    names, url = [], reverse("api_collections") + "?page_size=2"
    while url:
        body = client.get(url, headers=headers).json()
        assert len(body["results"]) <= 2
        names += [c["name"] for c in body["results"]]
        url = body["next"]
    assert names == [f"Box {n}" for n in range(5)]


@pytest.mark.django_db
def test_a_collection_not_yours_is_a_404_and_a_bad_cursor_a_404(client, bob, ledgers):
    headers = auth(bob)
    response = client.get(reverse("api_collection", args=[ledgers.pk]), headers=headers)
    assert response.status_code == 404 and response.json() == {"error": "Not found."}
    response = client.get(reverse("api_collections") + "?cursor=garbage", headers=headers)
    assert response.status_code == 404 and "error" in response.json()


@pytest.mark.django_db
def test_without_a_token_it_is_a_401_that_says_how_to_authenticate(client, alice, letters):
    client.force_login(alice)  # a browser session is not enough
    response = client.get(reverse("api_collection", args=[letters.pk]))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"error": "Send a valid API token: 'Authorization: Token <key>'."}


@pytest.mark.django_db
def test_the_collection_detail_gives_its_review_policy(client, alice, letters):
    response = client.get(reverse("api_collection", args=[letters.pk]), headers=auth(alice))
    assert response.status_code == 200
    assert response.json()["nbest_size"] == letters.nbest_size


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["page_size=0", "page_size=1001", "page_size=x", "page_size=1&page_size=2"]
)
def test_a_page_size_that_cannot_be_taken_is_a_400(client, bob, letters, query):
    response = client.get(reverse("api_collections") + "?" + query, headers=auth(bob))
    assert response.status_code == 400
    assert response.json()["fields"]["page_size"]


@pytest.mark.django_db
def test_an_api_url_with_an_id_that_is_no_number_is_a_json_404(client, bob):
    response = client.get("/api/collections/null,null/", headers=auth(bob))
    assert response.status_code == 404 and response.json() == {"error": "Not found."}
    assert client.get("/no-such-page/").status_code == 404


@pytest.mark.django_db
def test_a_cursor_made_up_by_the_client_is_a_404(client, bob, letters):
    forged = base64.b64encode(b"p=abc").decode()
    response = client.get(reverse("api_collections") + f"?cursor={forged}", headers=auth(bob))
    assert response.status_code == 404 and response.json() == {"error": "Not found."}

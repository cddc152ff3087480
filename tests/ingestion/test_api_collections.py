"""GET /api/collections/ and /api/collections/<id>/: the collections a token's user may see."""

import base64

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Membership
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
def test_a_collection_not_yours_is_a_404_and_a_bad_cursor_a_400_naming_it(client, bob, ledgers):
    headers = auth(bob)
    response = client.get(reverse("api_collection", args=[ledgers.pk]), headers=headers)
    assert response.status_code == 404 and response.json() == {"error": "Not found."}
    url = reverse("api_lines", args=[ledgers.pk]) + "?cursor=garbage"
    assert client.get(url, headers=headers).status_code == 404  # the collection first
    response = client.get(reverse("api_collections") + "?cursor=garbage", headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid request.",
        "fields": {"cursor": [{"message": "Invalid cursor", "code": "invalid"}]},
    }


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
def test_a_cursor_made_up_by_the_client_is_a_400_naming_it(client, bob, letters):
    forged = base64.b64encode(b"p=abc").decode()
    response = client.get(reverse("api_collections") + f"?cursor={forged}", headers=auth(bob))
    assert response.status_code == 400 and list(response.json()["fields"]) == ["cursor"]


def patch(client, collection, user, body, **kwargs):
    return client.patch(
        reverse("api_collection", args=[collection.pk]),
        body,
        content_type=kwargs.pop("content_type", "application/json"),
        headers=auth(user),
    )


@pytest.mark.django_db
def test_an_admin_changes_some_settings_and_the_others_keep_their_values(client, alice, letters):
    letters.description = "Family letters"
    letters.save()
    response = patch(
        client,
        letters,
        alice,
        {"confidence_threshold": 0.75, "nbest_size": 3, "confirm_uncalibrated": True},
    )
    assert response.status_code == 200
    assert response.json()["confidence_threshold"] == 0.75
    letters.refresh_from_db()
    assert (letters.confidence_threshold, letters.nbest_size) == (0.75, 3)
    assert letters.description == "Family letters"


@pytest.mark.django_db
def test_a_change_of_model_marks_the_new_one_active_and_the_old_one_ready_once_unused(
    client, alice, letters, ledgers
):
    """A version's status says whether a collection reads with it, whoever chose it."""
    factories.add_member(alice, ledgers, Membership.Role.ADMIN)
    old, new = factories.make_model_version("old"), factories.make_model_version("new")
    for collection in (letters, ledgers):
        assert (
            patch(
                client, collection, alice, {"model_version": old.pk, "confirm_uncalibrated": True}
            ).status_code
            == 200
        )
    old.refresh_from_db()
    assert old.status == "active"

    assert (
        patch(
            client, letters, alice, {"model_version": new.pk, "confirm_uncalibrated": True}
        ).status_code
        == 200
    )
    old.refresh_from_db(), new.refresh_from_db()
    assert (old.status, new.status) == ("active", "active")  # the ledgers still read with it

    assert (
        patch(
            client, ledgers, alice, {"model_version": None, "confirm_uncalibrated": True}
        ).status_code
        == 200
    )
    old.refresh_from_db()
    assert old.status == "ready"


@pytest.mark.django_db
def test_a_reviewer_may_not_change_settings_and_an_outsider_does_not_see_them(
    client, bob, charlie, letters
):
    assert patch(client, letters, bob, {"nbest_size": 2}).status_code == 403
    assert patch(client, letters, charlie, {"nbest_size": 2}).status_code == 404
    letters.refresh_from_db()
    assert letters.nbest_size == 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"nbest_size": 0}, "nbest_size"),
        ({"nbest_size": [3]}, "nbest_size"),
        ({"description": {"text": "x"}}, "description"),
        ({"model_version": 999999}, "model_version"),
    ],
)
def test_invalid_settings_are_a_400_naming_the_field_and_change_nothing(
    client, alice, letters, body, field
):
    response = patch(client, letters, alice, body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    letters.refresh_from_db()
    assert (letters.confidence_threshold, letters.nbest_size) == (0.9, 5)


@pytest.mark.django_db
def test_a_model_of_another_collection_cannot_be_chosen(client, alice, letters, ledgers):
    from ocrreview.training.models import DatasetExport, TrainingRun

    base = factories.make_model_version("base")
    theirs = factories.make_model_version("ledgers-ft", status="ready")
    export = DatasetExport.objects.create(collection=ledgers)
    TrainingRun.objects.create(base_model=base, dataset=export, result_model=theirs)
    response = patch(client, letters, alice, {"model_version": theirs.pk})
    assert response.status_code == 400 and "model_version" in response.json()["fields"]
    response = patch(
        client, letters, alice, {"model_version": base.pk, "confirm_uncalibrated": True}
    )
    assert response.status_code == 200
    letters.refresh_from_db()
    assert letters.model_version == base


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"name": "Renamed"}, "application/json"),
        ("[1, 2]", "application/json"),
        ("{not json", "application/json"),
        ("nbest_size=3", "application/x-www-form-urlencoded"),
    ],
)
def test_what_is_not_a_json_object_of_settings_is_refused(
    client, alice, letters, body, content_type
):
    response = patch(client, letters, alice, body, content_type=content_type)
    assert response.status_code in (400, 415)
    assert "error" in response.json()
    letters.refresh_from_db()
    assert (letters.name, letters.nbest_size) == ("Letters", 5)

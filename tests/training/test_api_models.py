"""GET /api/collections/<id>/training/models/, GET /api/training/models/<id>/ and POST
.../promote/: the models a collection may use, their numbers, and the audited override."""

import pytest
from django.urls import reverse

from ocrreview.training.models import PromotionEvent
from tests.factories import post_json
from tests.factories import token_headers as auth


def promote(client, version, user, body):
    return post_json(client, reverse("api_model_promote", args=[version.pk]), user, body)


@pytest.mark.django_db
def test_an_admin_lists_shared_and_own_models_with_their_numbers(
    client, alice, letters, finished_run
):
    body = client.get(reverse("api_model_versions", args=[letters.pk]), headers=auth(alice)).json()
    by_name = {v["name"]: v for v in body["results"]}
    assert set(by_name) == {"tiny", "tiny-run"}
    child = by_name["tiny-run"]
    assert child["metrics"]["cer"] == 0.61234 and child["training_run"] == finished_run.pk
    assert [p["kind"] for p in child["promotions"]] == ["rejected"]


@pytest.mark.django_db
def test_an_admin_overrides_the_gate_with_a_reason_that_is_recorded(
    client, alice, letters, finished_run
):
    version = finished_run.result_model
    assert promote(client, version, alice, {"reason": ""}).status_code == 400
    response = promote(client, version, alice, {"reason": "  reads the ledgers' dates better  "})
    assert response.status_code == 201
    assert response.json()["actor"] == "alice"
    event = PromotionEvent.objects.get(kind=PromotionEvent.Kind.OVERRIDDEN)
    assert event.reason == "reads the ledgers' dates better"
    letters.refresh_from_db()
    assert letters.model_version == version
    again = promote(client, version, alice, {"reason": "twice"})
    assert again.status_code == 409 and "already promoted" in again.json()["error"]
    detail = client.get(reverse("api_model_version", args=[version.pk]), headers=auth(alice))
    assert detail.json()["status"] == "active"


@pytest.mark.django_db
def test_a_shared_model_has_no_gate_to_override(client, alice, tiny_version):
    response = promote(client, tiny_version, alice, {"reason": "why not"})
    assert response.status_code == 409 and "shared model" in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("who, code", [("bob", 403), ("charlie", 404)])
def test_models_of_a_collection_are_closed_to_reviewers_and_outsiders(
    client, bob, charlie, letters, finished_run, who, code
):
    user = {"bob": bob, "charlie": charlie}[who]
    version = finished_run.result_model
    listed = client.get(reverse("api_model_versions", args=[letters.pk]), headers=auth(user))
    assert listed.status_code == code
    detail = client.get(reverse("api_model_version", args=[version.pk]), headers=auth(user))
    assert detail.status_code == code
    assert promote(client, version, user, {"reason": "mine now"}).status_code == code
    assert not PromotionEvent.objects.filter(kind=PromotionEvent.Kind.OVERRIDDEN).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [["reason"], {"reason": ["a", "b"]}, {"why": "x"}])
def test_a_promotion_request_that_is_not_a_reason_is_a_400(client, alice, finished_run, body):
    response = promote(client, finished_run.result_model, alice, body)
    assert response.status_code == 400
    assert not PromotionEvent.objects.filter(kind=PromotionEvent.Kind.OVERRIDDEN).exists()

"""A threshold that accepts lines on an uncalibrated model's confidences is an admin's explicit
choice: the settings page, the settings API and applying a threshold ask for it."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Collection
from tests import factories
from tests.factories import token_headers

CALIBRATION = {"method": "platt-logit", "a": 1.0, "b": 0.0}
ASKED = "are not calibrated"


def settings_form(client, collection) -> dict:
    """The settings page's form as a browser posts it, each value beside the one it showed."""
    form = client.get(reverse("collection_settings", args=[collection.pk])).context["form"]
    data = {name: form[name].value() for name in form.fields if name != "confirm_uncalibrated"}
    data = {name: value for name, value in data.items() if value is not None}
    return {**data, **{f"initial-{name}": value for name, value in data.items()}}


def patch(client, collection, user, body):
    return client.patch(
        reverse("api_collection", args=[collection.pk]),
        body,
        content_type="application/json",
        headers=token_headers(user),
    )


@pytest.mark.django_db
def test_the_settings_page_asks_before_a_threshold_for_the_uncalibrated_default_model(
    client, alice, letters
):
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    shown = settings_form(client, letters)
    response = client.post(url, {**shown, "confidence_threshold": "0.8"})
    assert response.status_code == 200
    error = response.context["form"].errors["confirm_uncalibrated"][0]
    assert ASKED in error and "0.80" in error
    assert "Accept lines automatically although" in response.content.decode()
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.9

    response = client.post(
        url, {**shown, "confidence_threshold": "0.8", "confirm_uncalibrated": "on"}
    )
    assert response.status_code == 302
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.8


@pytest.mark.django_db
def test_choosing_an_uncalibrated_model_asks_and_a_calibrated_one_does_not(client, alice, letters):
    raw = factories.make_model_version("raw")
    calibrated = factories.make_model_version("calibrated", calibration=CALIBRATION)
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    shown = settings_form(client, letters)
    response = client.post(url, {**shown, "model_version": raw.pk})
    assert response.status_code == 200 and "raw are not calibrated" in response.content.decode()
    assert Collection.objects.get(pk=letters.pk).model_version is None
    assert client.post(url, {**shown, "model_version": calibrated.pk}).status_code == 302
    assert Collection.objects.get(pk=letters.pk).model_version == calibrated


@pytest.mark.django_db
def test_other_settings_are_saved_without_asking(client, alice, letters):
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    response = client.post(url, {**settings_form(client, letters), "description": "Family"})
    assert response.status_code == 302
    assert patch(client, letters, alice, {"licence": "CC-BY-4.0"}).status_code == 200
    letters.refresh_from_db()
    assert (letters.description, letters.licence) == ("Family", "CC-BY-4.0")


@pytest.mark.django_db
@pytest.mark.parametrize("confirm", [None, False])
def test_the_api_answers_400_until_confirmed(client, alice, letters, confirm):
    body = {"confidence_threshold": 0.7}
    if confirm is not None:
        body["confirm_uncalibrated"] = confirm
    response = patch(client, letters, alice, body)
    assert response.status_code == 400
    [message] = response.json()["fields"]["confirm_uncalibrated"]
    assert ASKED in message["message"] and "confirm_uncalibrated: true" in message["message"]
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.9

    response = patch(client, letters, alice, {**body, "confirm_uncalibrated": True})
    assert response.status_code == 200 and response.json()["confidence_threshold"] == 0.7


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["yes", 1, None, ["true"]])
def test_a_confirmation_that_is_not_a_boolean_is_refused(client, alice, letters, value):
    body = {"confidence_threshold": 0.7, "confirm_uncalibrated": value}
    response = patch(client, letters, alice, body)
    assert response.status_code == 400
    assert "confirm_uncalibrated" in str(response.json())
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.9


@pytest.mark.django_db
def test_a_calibrated_collection_model_needs_no_confirmation(client, alice, letters):
    letters.model_version = factories.make_model_version("calibrated", calibration=CALIBRATION)
    letters.save()
    assert patch(client, letters, alice, {"confidence_threshold": 0.7}).status_code == 200


@pytest.mark.django_db
def test_applying_a_threshold_to_lines_an_uncalibrated_model_read_asks_first(
    client, alice, letters, lines, model_version
):
    client.force_login(alice)
    url = reverse("review_apply_threshold", args=[letters.pk])
    statuses = sorted(letters.lines.values_list("id", "status"))
    response = client.post(url, {"confidence_threshold": "0.5"}, follow=True)
    page = response.content.decode()
    assert "Nothing was changed" in page and ASKED in page
    assert sorted(letters.lines.values_list("id", "status")) == statuses
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.9

    # The lines' model and the collection's calibrated, nothing is asked.
    model_version.calibration = CALIBRATION
    model_version.save()
    letters.model_version = model_version
    letters.save()
    response = client.post(url, {"confidence_threshold": "0.5"}, follow=True)
    assert "1 accepted" in response.content.decode()
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.5

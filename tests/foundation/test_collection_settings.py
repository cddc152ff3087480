"""Saving a collection's settings writes what the admin changed onto the collection as it is
then: a model promoted, or a threshold applied, while the settings page was open stands."""

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from ocrreview.corpus.actions import do_save_collection_settings, do_set_collection_model
from ocrreview.corpus.forms import CollectionSettingsForm
from ocrreview.corpus.models import Collection
from tests import factories

FIELDS = CollectionSettingsForm._meta.fields


def as_the_browser_sends_it(form, **typed) -> dict:
    """The page's form as a browser posts it: every field's value, and the value it showed,
    with what the admin typed in place of the former."""
    shown = {name: form[name].value() for name in FIELDS}
    data = {name: value for name, value in shown.items() if value is not None}
    data.update({f"initial-{name}": value for name, value in data.items()})
    return {**data, **typed}


@pytest.mark.django_db
def test_a_model_promoted_while_the_page_was_open_stands(client, alice, letters):
    parent, child = factories.make_model_version("parent"), factories.make_model_version("child")
    do_set_collection_model(letters, parent, actor=None)
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    opened = client.get(url).context["form"]

    do_set_collection_model(letters, child, actor=None)  # a training run's gate promotes its model
    response = client.post(url, as_the_browser_sends_it(opened, description="Family letters"))

    assert response.status_code == 302
    saved = Collection.objects.get(pk=letters.pk)
    assert (saved.model_version, saved.description) == (child, "Family letters")
    child.refresh_from_db()
    assert child.status == "active"


@pytest.mark.django_db
def test_the_admins_own_change_of_the_same_setting_is_saved(client, alice, letters):
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    opened = client.get(url).context["form"]
    Collection.objects.filter(pk=letters.pk).update(confidence_threshold=0.8)
    client.post(
        url, as_the_browser_sends_it(opened, confidence_threshold="0.6", confirm_uncalibrated="on")
    )
    assert Collection.objects.get(pk=letters.pk).confidence_threshold == 0.6


@pytest.mark.django_db
def test_an_api_change_writes_only_the_settings_it_names(letters):
    """The API binds the collection as read before its lock; what another request wrote in
    between stands."""
    version = factories.make_model_version()
    read = Collection.objects.get(pk=letters.pk)
    do_set_collection_model(letters, version, actor=None)
    Collection.objects.filter(pk=letters.pk).update(confidence_threshold=0.8)
    form = CollectionSettingsForm({**model_to_dict(read, FIELDS), "nbest_size": 3}, instance=read)
    assert form.is_valid(), form.errors
    do_save_collection_settings(form, ["nbest_size"], actor=None)
    saved = Collection.objects.get(pk=letters.pk)
    assert (saved.model_version, saved.confidence_threshold, saved.nbest_size) == (
        version,
        0.8,
        3,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tag, status", [("fr", 200), ("en-GB", 200), ("la-Latn", 200), ("", 200), ("French!", 400)]
)
def test_the_language_is_a_language_tag(client, alice, letters, tag, status):
    response = client.patch(
        reverse("api_collection", args=[letters.pk]),
        {"language": tag},
        headers=factories.token_headers(alice),
        content_type="application/json",
    )
    assert response.status_code == status, response.content
    expected = tag if status == 200 else ""
    assert Collection.objects.get(pk=letters.pk).language == expected


@pytest.mark.django_db
def test_special_characters_are_kept_composed(client, alice, letters):
    """As the lines' text is: a palette key typed decomposed would put in an "é" that
    searches and exports do not compare equal to the lines' own."""
    response = client.patch(
        reverse("api_collection", args=[letters.pk]),
        {"special_characters": "e\u0301 q\u0303 ſ"},
        headers=factories.token_headers(alice),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert Collection.objects.get(pk=letters.pk).special_characters == "\u00e9 q\u0303 ſ"

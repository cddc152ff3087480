"""Names are stored as they are shown (names.NameField): a collection's, a document's, a model
version's or an API token's name typed on a page, sent to the API, changed in the admin or set
by an import loses its bidi controls and control characters; one that is nothing else is
refused, saying so, and nothing is stored."""

import lxml.html
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from ocrreview.corpus.models import ApiToken, Collection, Document
from tests import factories
from tests.factories import token_headers as auth

# Shown as "Letters 1873 exe.jpg"-like tricks: U+202E turns what follows around.
TYPED = "Diaries\u202e 1850\x07\x1b\t1870"
STORED = "Diaries 1850 1870"
ONLY_CONTROLS = "\x07\u202e\t\u2067\x0b"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- The New collection page and the API ------------------------------------------------


def test_the_page_stores_a_collection_s_name_cleaned(client, staff):
    client.force_login(staff)
    assert client.post(reverse("new_collection"), {"name": TYPED}).status_code == 302
    assert list(Collection.objects.values_list("name", flat=True)) == [STORED]


def test_the_page_refuses_a_name_of_only_control_characters(client, staff, letters):
    client.force_login(staff)
    response = client.post(reverse("new_collection"), {"name": ONLY_CONTROLS})
    assert response.status_code == 200
    errors = response.context["form"].errors.as_data()
    assert [e.code for e in errors["name"]] == ["no_visible_characters"]
    assert "only control characters" in errors["name"][0].message
    assert list(Collection.objects.values_list("name", flat=True)) == ["Letters"]


def test_a_name_taken_once_cleaned_is_refused(client, staff, letters):
    client.force_login(staff)
    response = client.post(reverse("new_collection"), {"name": "Let\u202eters\x00"})
    assert [e.code for e in response.context["form"].errors.as_data()["name"]] == ["unique"]
    assert Collection.objects.count() == 1


def post(client, user, body):
    return client.post(
        reverse("api_collections"), body, content_type="application/json", headers=auth(user)
    )


def test_the_api_stores_a_collection_s_name_cleaned(client, staff):
    response = post(client, staff, {"name": TYPED})
    assert response.status_code == 201
    assert response.json()["name"] == STORED
    assert Collection.objects.get(pk=response.json()["id"]).name == STORED


def test_the_api_refuses_a_name_of_only_control_characters_with_a_400(client, staff, letters):
    response = post(client, staff, {"name": ONLY_CONTROLS, "description": "kept?"})
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["fields"]["name"]] == ["no_visible_characters"]
    assert list(Collection.objects.values_list("name", flat=True)) == ["Letters"]


# --- The Django admin -------------------------------------------------------------------


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", "pw")


def opened(client, url: str) -> dict[str, str]:
    return dict(lxml.html.fromstring(client.get(url).content).forms[-1].form_values())


def test_the_admin_stores_a_document_s_title_cleaned(client, superuser, letters):
    document = factories.make_document(letters, "Letter")
    client.force_login(superuser)
    url = reverse("admin:corpus_document_change", args=[document.pk])
    response = client.post(url, {**opened(client, url), "title": "Letter to\u202e Anna gpj.exe"})
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.title == "Letter to Anna gpj.exe"


@pytest.mark.parametrize("model", ["document", "collection", "modelversion"])
def test_the_admin_refuses_a_name_of_only_control_characters(client, superuser, letters, model):
    named = {
        "document": lambda: factories.make_document(letters, "Letter"),
        "collection": lambda: letters,
        "modelversion": lambda: factories.make_model_version("shared"),
    }[model]()
    field = "title" if model == "document" else "name"
    before = getattr(named, field)
    client.force_login(superuser)
    url = reverse(f"admin:corpus_{model}_change", args=[named.pk])
    response = client.post(url, {**opened(client, url), field: ONLY_CONTROLS})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert [e.code for e in errors[field]] == ["no_visible_characters"]
    named.refresh_from_db()
    assert getattr(named, field) == before


# --- API tokens -------------------------------------------------------------------------


def test_a_token_s_name_is_stored_cleaned(client, dave):
    client.force_login(dave)
    page = opened(client, reverse("api_tokens"))
    response = client.post(reverse("api_tokens"), {**page, "name": "note\u202ebook\x07"})
    assert response.status_code == 200
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["notebook"]


def test_a_token_named_by_only_control_characters_is_refused(client, dave):
    client.force_login(dave)
    page = opened(client, reverse("api_tokens"))
    response = client.post(reverse("api_tokens"), {**page, "name": ONLY_CONTROLS})
    assert response.status_code == 400
    assert [e.code for e in response.context["form"].errors.as_data()["name"]] == [
        "no_visible_characters"
    ]
    assert not ApiToken.objects.exists()


def test_the_command_refuses_a_token_named_by_only_control_characters(dave):
    with pytest.raises(CommandError, match="Name the token"):
        call_command("create_api_token", "dave", "--name", ONLY_CONTROLS)
    assert not ApiToken.objects.exists()


# --- Names set by code ------------------------------------------------------------------


def test_a_title_an_import_sets_is_stored_cleaned(letters):
    document = Document.objects.create(collection=letters, title="\u2066Akte\u2069\r\n12 ")
    assert document.title == "Akte 12"
    assert Document.objects.get(pk=document.pk).title == "Akte 12"

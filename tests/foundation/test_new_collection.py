"""Creating a collection: site staff do it on the New collection page, through the API or in
the Django admin, all through `do_create_collection`, which gives it its first admin (the staff
member unless another account is named) and records both in its events. Names are unique."""

import lxml.html
import pytest
from django.urls import reverse

from ocrreview.corpus.actions import NameTaken, do_create_collection
from ocrreview.corpus.audit import sentence
from ocrreview.corpus.models import Collection, CollectionEvent, Membership, ModelVersion
from tests import factories
from tests.factories import token_headers as auth

ADMIN = Membership.Role.ADMIN
T = CollectionEvent.Type


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def roles(collection) -> dict[str, str]:
    memberships = Membership.objects.filter(collection=collection).select_related("user")
    return {m.user.username: m.role for m in memberships}


def recorded(collection) -> list[tuple[str, str]]:
    events = CollectionEvent.objects.filter(collection=collection).order_by("id")
    return [(e.event_type, e.acting_user.username) for e in events]


def test_the_action_creates_the_collection_with_its_admin_and_records_both(staff, dave):
    collection = do_create_collection(Collection(name="Diaries"), dave, actor=staff)
    assert roles(collection) == {"dave": ADMIN}
    assert recorded(collection) == [(T.COLLECTION_CREATED, "staff"), (T.MEMBER_ADDED, "staff")]
    created = CollectionEvent.objects.get(collection=collection, event_type=T.COLLECTION_CREATED)
    assert sentence(created) == "staff created the collection as 'Diaries'"


def test_the_action_refuses_a_name_taken_and_leaves_nothing_behind(staff, letters):
    with pytest.raises(NameTaken, match="A collection named “Letters” already exists"):
        do_create_collection(Collection(name="Letters"), staff, actor=staff)
    assert Collection.objects.filter(name="Letters").count() == 1


# --- The page ---------------------------------------------------------------------------


def test_staff_see_the_link_and_create_a_collection_they_administer(client, staff):
    client.force_login(staff)
    assert reverse("new_collection").encode() in client.get(reverse("home")).content
    response = client.post(
        reverse("new_collection"),
        {"name": "Diaries", "description": "Kept 1850-1870", "language": "en-GB", "licence": "CC0"},
    )
    collection = Collection.objects.get(name="Diaries")
    assert response.status_code == 302
    assert response["Location"] == reverse("collection_detail", args=[collection.pk])
    assert (collection.description, collection.language, collection.licence) == (
        "Kept 1850-1870",
        "en-GB",
        "CC0",
    )
    assert roles(collection) == {"staff": ADMIN}


def test_staff_name_another_account_as_its_admin(client, staff, dave):
    client.force_login(staff)
    client.post(reverse("new_collection"), {"name": "Diaries", "admin": "dave"})
    assert roles(Collection.objects.get(name="Diaries")) == {"dave": ADMIN}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "Letters"}, "name", "A collection named “Letters” already exists."),
        ({"name": "Diaries", "language": "not a tag"}, "language", ""),
        ({"name": "Diaries", "admin": "nobody"}, "admin", "No account is named “nobody”"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_the_page_refuses_bad_input_and_says_why(client, staff, letters, fields, field, message):
    client.force_login(staff)
    response = client.post(reverse("new_collection"), fields)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert Collection.objects.count() == 1


def test_an_inactive_account_cannot_be_made_its_admin(client, staff, dave):
    dave.is_active = False
    dave.save()
    client.force_login(staff)
    response = client.post(reverse("new_collection"), {"name": "Diaries", "admin": "dave"})
    assert "deactivated" in response.context["form"].errors["admin"][0]


@pytest.mark.parametrize("persona", ["alice", "dave"])
def test_others_get_no_link_and_a_403(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    assert reverse("new_collection").encode() not in client.get(reverse("home")).content
    assert client.get(reverse("new_collection")).status_code == 403
    assert client.post(reverse("new_collection"), {"name": "Diaries"}).status_code == 403
    assert not Collection.objects.filter(name="Diaries").exists()


# --- The API ----------------------------------------------------------------------------


def post(client, user, body):
    return client.post(
        reverse("api_collections"), body, content_type="application/json", headers=auth(user)
    )


def test_staff_create_a_collection_through_the_api(client, staff, dave):
    response = post(client, staff, {"name": "Diaries", "language": "la", "admin": "dave"})
    assert response.status_code == 201
    collection = Collection.objects.get(name="Diaries")
    assert response.json()["id"] == collection.pk
    assert response.json()["language"] == "la"
    assert roles(collection) == {"dave": ADMIN}
    assert recorded(collection) == [(T.COLLECTION_CREATED, "staff"), (T.MEMBER_ADDED, "staff")]


def test_left_out_the_admin_is_the_staff_member(client, staff):
    assert post(client, staff, {"name": "Diaries"}).status_code == 201
    assert roles(Collection.objects.get(name="Diaries")) == {"staff": ADMIN}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"description": "no name"}, "name", "required"),
        ({"name": "Letters"}, "name", "unique"),
        ({"name": "Diaries", "language": "not a tag"}, "language", "invalid"),
        ({"name": "Diaries", "admin": "nobody"}, "admin", "unknown_user"),
    ],
)
def test_the_api_answers_400_to_bad_input(client, staff, letters, body, field, code):
    response = post(client, staff, body)
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["fields"][field]] == [code]
    assert Collection.objects.count() == 1


def test_others_get_403_from_the_api(client, alice):
    assert post(client, alice, {"name": "Diaries"}).status_code == 403
    assert not Collection.objects.filter(name="Diaries").exists()


# --- The Django admin -------------------------------------------------------------------


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", "pw")


def test_the_admin_add_form_offers_the_finished_shared_models(client, superuser):
    ready = factories.make_model_version("shared")
    factories.make_model_version("still-training", status=ModelVersion.Status.TRAINING)
    client.force_login(superuser)
    response = client.get(reverse("admin:corpus_collection_add"))
    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields["model_version"].queryset) == [ready]


def test_the_staff_member_adding_a_collection_in_the_admin_is_its_admin(client, superuser):
    version = factories.make_model_version("shared")
    client.force_login(superuser)
    url = reverse("admin:corpus_collection_add")
    shown = dict(lxml.html.fromstring(client.get(url).content).forms[-1].form_values())
    response = client.post(url, {**shown, "name": "Diaries", "model_version": str(version.pk)})
    assert response.status_code == 302
    collection = Collection.objects.get(name="Diaries")
    assert collection.model_version == version
    assert ModelVersion.objects.get(pk=version.pk).status == ModelVersion.Status.ACTIVE
    assert roles(collection) == {"root": ADMIN}
    assert recorded(collection) == [(T.COLLECTION_CREATED, "root"), (T.MEMBER_ADDED, "root")]

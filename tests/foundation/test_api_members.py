"""/api/collections/<id>/members/ and /api/collections/<id>/members/<user id>/: a collection's
admins list, add, re-role and remove its members through the API, validated by the members
page's own forms and refused as the page refuses."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line, Membership
from ocrreview.review import actions as review
from ocrreview.review.models import Draft
from tests import factories
from tests.factories import token_headers as auth

ADMIN, REVIEWER = Membership.Role.ADMIN, Membership.Role.REVIEWER


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def members_url(collection) -> str:
    return reverse("api_members", args=[collection.pk])


def member_url(collection, user) -> str:
    return reverse("api_member", args=[collection.pk, user.pk])


def send(client, method: str, url: str, user, body=None):
    return getattr(client, method)(url, body, content_type="application/json", headers=auth(user))


def roles(collection) -> dict[str, str]:
    memberships = Membership.objects.filter(collection=collection).select_related("user")
    return {m.user.username: m.role for m in memberships}


def test_alice_lists_the_members(client, alice, bob, letters):
    bob.first_name, bob.last_name = "Bob", "Hale"
    bob.save()
    response = client.get(members_url(letters), headers=auth(alice))
    assert response.status_code == 200
    members = response.json()["results"]
    assert [(m["user"], m["username"], m["name"], m["active"], m["role"]) for m in members] == [
        (alice.pk, "alice", "", True, ADMIN),
        (bob.pk, "bob", "Bob Hale", True, REVIEWER),
    ]
    assert all(m["joined_at"] for m in members)
    response = client.get(member_url(letters, bob), headers=auth(alice))
    assert response.json() == members[1]


def test_alice_adds_dave_changes_his_role_and_removes_him(
    client, alice, bob, dave, letters, model_version
):
    collection_url = reverse("api_collection", args=[letters.pk])
    assert client.get(collection_url, headers=auth(dave)).status_code == 404

    response = send(client, "post", members_url(letters), alice, {"username": "dave"})
    assert response.status_code == 201, response.content
    assert response.json()["user"] == dave.pk and response.json()["role"] == REVIEWER
    assert client.get(collection_url, headers=auth(dave)).status_code == 200
    assert client.get(members_url(letters), headers=auth(dave)).status_code == 403

    response = send(client, "put", member_url(letters, dave), alice, {"role": ADMIN})
    assert response.status_code == 200 and response.json()["role"] == ADMIN
    assert client.get(members_url(letters), headers=auth(dave)).status_code == 200
    response = send(client, "put", member_url(letters, dave), alice, {"role": REVIEWER})
    assert response.json()["role"] == REVIEWER

    page = factories.make_page(factories.make_document(letters))
    line = factories.make_read_line(page, 0, [("Dear Sir", 0.4)], model_version)
    assert review.do_claim_line(line, dave)
    review.do_save_draft(line, dave, "Dear Sr", base_version=1)

    response = client.delete(member_url(letters, dave), headers=auth(alice))
    assert response.status_code == 204
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}
    assert client.get(collection_url, headers=auth(dave)).status_code == 404
    assert not Draft.objects.filter(user=dave).exists()
    line.refresh_from_db()
    assert (line.status, line.claimed_by) == (Line.Status.NEEDS_REVIEW, None)


def test_a_reviewer_can_do_none_of_it(client, alice, bob, charlie, dave, letters):
    before = roles(letters)
    for user, code in ((bob, 403), (charlie, 404)):
        assert client.get(members_url(letters), headers=auth(user)).status_code == code
        assert client.get(member_url(letters, alice), headers=auth(user)).status_code == code
        response = send(client, "post", members_url(letters), user, {"username": "dave"})
        assert response.status_code == code
        response = send(client, "put", member_url(letters, bob), user, {"role": ADMIN})
        assert response.status_code == code
        response = send(client, "put", member_url(letters, alice), user, {"role": REVIEWER})
        assert response.status_code == code
        assert client.delete(member_url(letters, alice), headers=auth(user)).status_code == code
    forbidden = client.delete(member_url(letters, alice), headers=auth(bob)).json()
    assert forbidden == {"error": "Only the collection's admins may do this."}
    assert roles(letters) == before


def test_without_a_token_it_is_a_401(client, alice, letters):
    client.force_login(alice)  # a browser session is not enough
    assert client.delete(member_url(letters, alice)).status_code == 401


def test_the_last_admin_can_be_neither_removed_nor_demoted(client, alice, bob, letters):
    refusal = {"error": "alice is the only admin of Letters; make another member an admin first."}
    response = client.delete(member_url(letters, alice), headers=auth(alice))
    assert (response.status_code, response.json()) == (409, refusal)
    response = send(client, "put", member_url(letters, alice), alice, {"role": REVIEWER})
    assert (response.status_code, response.json()) == (409, refusal)
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}
    # Making her admin again, which she is, changes nothing and is no error.
    response = send(client, "put", member_url(letters, alice), alice, {"role": ADMIN})
    assert response.status_code == 200


def test_someone_who_is_no_member_is_a_404(client, alice, dave, letters):
    for method in ("get", "put", "delete"):
        response = send(client, method, member_url(letters, dave), alice, {"role": ADMIN})
        assert (response.status_code, response.json()) == (404, {"error": "Not found."})


def field_error(name: str, message: str, code: str) -> dict:
    return {name: [{"message": message, "code": code}]}


@pytest.mark.parametrize(
    "body, answer",
    [
        (
            {"username": "nobody"},
            {
                "error": "Invalid member.",
                "fields": field_error(
                    "username",
                    "No account is named “nobody” (usernames are case-sensitive).",
                    "unknown_user",
                ),
            },
        ),
        (
            {"username": "erin"},
            {
                "error": "Invalid member.",
                "fields": field_error(
                    "username",
                    "erin's account is deactivated; a site admin can reactivate it.",
                    "inactive_user",
                ),
            },
        ),
        (
            {"username": "bob", "role": ADMIN},
            {
                "error": "bob is already a member of Letters (reviewer).",
                "fields": field_error(
                    "username", "bob is already a member of Letters (reviewer).", "already_member"
                ),
            },
        ),
        (
            {"username": "dave", "role": "owner"},
            {
                "error": "Invalid member.",
                "fields": field_error(
                    "role",
                    "Select a valid choice. owner is not one of the available choices.",
                    "invalid_choice",
                ),
            },
        ),
        (
            {"role": ADMIN},
            {
                "error": "Invalid member.",
                "fields": field_error("username", "This field is required.", "required"),
            },
        ),
        (
            {"username": ["dave"]},
            {
                "error": "Invalid request.",
                "fields": field_error("username", "a string, a number or null", "invalid"),
            },
        ),
        (
            {"username": "dave", "rights": "all"},
            {
                "error": "Invalid request.",
                "fields": field_error("rights", "not a field of this request", "invalid"),
            },
        ),
        (
            ["dave"],
            {
                "error": "Invalid request.",
                "fields": field_error("__all__", "Send a JSON object.", "invalid"),
            },
        ),
        (
            '{"username": "dave"',
            {"error": "JSON parse error - Expecting ',' delimiter: line 1 column 20 (char 19)"},
        ),
    ],
    ids=[
        "unknown",
        "inactive",
        "already a member",
        "bad role",
        "no username",
        "a list",
        "unknown key",
        "no object",
        "malformed JSON",
    ],
)
def test_a_member_that_cannot_be_added_is_a_400_saying_why(
    client, alice, bob, dave, letters, body, answer
):
    erin = factories.make_user("erin")
    erin.is_active = False
    erin.save()
    response = send(client, "post", members_url(letters), alice, body)
    assert response.status_code == 400
    assert response.json() == answer
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}


@pytest.mark.parametrize(
    "body, answer",
    [
        (
            {"role": "owner"},
            {
                "error": "Invalid role.",
                "fields": field_error(
                    "role",
                    "Select a valid choice. owner is not one of the available choices.",
                    "invalid_choice",
                ),
            },
        ),
        (
            {},
            {
                "error": "Invalid role.",
                "fields": field_error("role", "This field is required.", "required"),
            },
        ),
        (None, {"error": "JSON parse error - Expecting value: line 1 column 1 (char 0)"}),
        (
            '{"role": admin}',
            {"error": "JSON parse error - Expecting value: line 1 column 10 (char 9)"},
        ),
    ],
    ids=["bad role", "empty object", "no body", "malformed JSON"],
)
def test_a_role_that_cannot_be_set_is_a_400_saying_why(client, alice, bob, letters, body, answer):
    response = send(client, "put", member_url(letters, bob), alice, body)
    assert response.status_code == 400
    assert response.json() == answer
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}

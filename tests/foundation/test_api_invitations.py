"""POST /api/collections/<id>/members/invitations/: a collection's admin invites an address
with an API token, through the members page's own form and service (do_invite_member): the
same rules, limits and history. The answer says the mail is queued; the members list follows
it. Mail goes through a real SMTP server, its queued messages run here (workers.run_queued)."""

import json

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from ocrreview.corpus import invitations
from ocrreview.corpus.models import CollectionEvent
from tests import factories
from tests.factories import token_headers as auth

# The members page's tests' personas, helpers and cache hygiene (autouse fixtures).
from tests.foundation.test_invitations import (  # noqa: F401 (autouse fixtures)
    ADMIN,
    REVIEWER,
    User,
    _fast_passwords,
    _forget_invitation_counts,
    _no_mail_queued,
    account_of,
    link_in,
    logs_in,
    roles,
)
from tests.foundation.test_invitations import choose_password as _choose_password
from tests.workers import run_queued


def invitations_url(collection) -> str:
    return reverse("api_member_invitations", args=[collection.pk])


def invite(client, collection, user, body, deliver=True):
    """The request, then (`deliver`) the mail it queued, as a worker sends it."""
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post(
        invitations_url(collection), data, content_type="application/json", headers=auth(user)
    )
    if deliver:
        run_queued("mail")
    return response


def member_invitation(client, collection, user, username: str) -> dict | None:
    """The member's `invitation` in the members list."""
    members = client.get(reverse("api_members", args=[collection.pk]), headers=auth(user)).json()[
        "results"
    ]
    (member,) = [m for m in members if m["username"] == username]
    return member["invitation"]


def choose_password(link: str) -> None:
    *_, done = _choose_password(link)
    assert "Password set" in done.content.decode()


def test_alice_invites_an_address_no_account_uses(client, alice, letters, smtp_server):
    response = invite(
        client,
        letters,
        alice,
        {"email": "Jane.Doe@Example.ORG", "name": "Jane Doe", "role": ADMIN},
        deliver=False,
    )
    assert response.status_code == 201, response.content
    answer = response.json()
    jane = User.objects.get(username="Jane.Doe")
    assert answer["member"]["user"] == jane.pk
    assert (answer["member"]["username"], answer["member"]["name"]) == ("Jane.Doe", "Jane Doe")
    assert answer["member"]["role"] == ADMIN
    assert answer["outcome"] == "invited"
    assert answer["mail"] == {
        "email": "Jane.Doe@example.org",
        "state": "queued",
        "error": "",
        "created_at": answer["mail"]["created_at"],
        "sent_at": None,
    }
    assert answer["member"]["invitation"] == answer["mail"]
    assert "no-store" in response["Cache-Control"]
    assert smtp_server.received == []  # a worker sends it
    run_queued("mail")
    (mail,) = smtp_server.to("Jane.Doe@example.org")
    assert account_of(answer["link"]) == account_of(link_in(mail.body))
    followed = member_invitation(client, letters, alice, "Jane.Doe")
    assert followed["state"] == "sent" and followed["sent_at"]
    (event,) = CollectionEvent.objects.filter(
        collection=letters, event_type=CollectionEvent.Type.MEMBER_ADDED, acting_user=alice
    )
    assert event.extra_data["invited"] == {"email": "Jane.Doe@example.org", "new_account": True}
    choose_password(answer["link"])
    assert logs_in("Jane.Doe")


def test_an_address_an_account_uses_adds_that_account_and_mails_nothing(
    client, alice, dave, letters, smtp_server
):
    dave.email = "dave@example.org"
    dave.save()
    response = invite(client, letters, alice, {"email": "DAVE@example.org"})
    assert response.status_code == 201
    answer = response.json()
    assert answer["member"]["username"] == "dave" and answer["member"]["role"] == REVIEWER
    assert (answer["outcome"], answer["link"], answer["mail"]) == ("added", None, None)
    assert answer["member"]["invitation"] is None
    assert smtp_server.received == []


def test_a_pending_member_is_sent_again_by_mail_alone_at_most_every_ten_minutes(
    client, alice, letters, smtp_server
):
    invite(client, letters, alice, {"email": "slow@example.org"})
    too_soon = invite(client, letters, alice, {"email": "slow@example.org", "role": ADMIN})
    assert too_soon.status_code == 429
    assert too_soon["Retry-After"] == str(invitations.RESEND_SECONDS)
    assert too_soon.json() == {
        "error": "An invitation was sent to slow@example.org less than 10 minutes ago; "
        "try again later."
    }
    cache.delete(invitations.rate_key("account", User.objects.get(username="slow").pk))
    again = invite(client, letters, alice, {"email": "slow@example.org", "role": ADMIN})
    assert again.status_code == 200
    answer = again.json()
    assert (answer["outcome"], answer["link"]) == ("sent_again", None)
    assert answer["mail"]["state"] == "queued"
    assert answer["member"]["role"] == REVIEWER  # roles change in the members list
    first, second = smtp_server.to("slow@example.org")
    assert (
        "This link no longer works"
        in Client().get(link_in(first.body), follow=True).content.decode()
    )
    choose_password(link_in(second.body))
    assert logs_in("slow")


def test_the_mail_server_down_keeps_the_member_and_answers_the_link(
    client, alice, letters, smtp_down
):
    response = invite(client, letters, alice, {"email": "kim@example.org"})
    assert response.status_code == 201
    answer = response.json()
    assert answer["outcome"] == "invited"
    followed = member_invitation(client, letters, alice, "kim")
    assert followed["state"] == "failed" and "Connection refused" in followed["error"]
    assert roles(letters)["kim"] == REVIEWER
    choose_password(answer["link"])
    assert logs_in("kim")


def field_error(name: str, message: str, code: str) -> dict:
    return {name: [{"message": message, "code": code}]}


@pytest.mark.parametrize(
    "body, answer",
    [
        (
            '{"email": "jane@example.org"',
            {"error": "JSON parse error - Expecting ',' delimiter: line 1 column 29 (char 28)"},
        ),
        (
            ["jane@example.org"],
            {
                "error": "Invalid request.",
                "fields": field_error("__all__", "Send a JSON object.", "invalid"),
            },
        ),
        (
            {"email": ["jane@example.org"]},
            {
                "error": "Invalid request.",
                "fields": field_error("email", "a string, a number or null", "invalid"),
            },
        ),
        (
            {"email": "jane@example.org", "name": {"first": "Jane"}},
            {
                "error": "Invalid request.",
                "fields": field_error("name", "a string, a number or null", "invalid"),
            },
        ),
        (
            {"email": "jane@example.org", "admin": True},
            {
                "error": "Invalid request.",
                "fields": field_error("admin", "not a field of this request", "invalid"),
            },
        ),
        (
            {"email": "jane at example.org"},
            {
                "error": "Invalid invitation.",
                "fields": field_error("email", "Enter a valid email address.", "invalid"),
            },
        ),
        (
            {"name": "Jane"},
            {
                "error": "Invalid invitation.",
                "fields": field_error("email", "This field is required.", "required"),
            },
        ),
        (
            {"email": "jane@example.org", "role": "owner"},
            {
                "error": "Invalid invitation.",
                "fields": field_error(
                    "role",
                    "Select a valid choice. owner is not one of the available choices.",
                    "invalid_choice",
                ),
            },
        ),
        (
            {"email": "jane@example.org", "name": "Jane\r\nBcc: all@example.org"},
            {
                "error": "Invalid invitation.",
                "fields": field_error(
                    "name",
                    "A name cannot hold line breaks, control characters or bidi controls.",
                    "control_character",
                ),
            },
        ),
        (
            {"email": "erin@example.org"},
            {
                "error": "erin@example.org cannot be invited; add the person by their "
                "username, or ask a site admin.",
                "fields": field_error(
                    "email",
                    "erin@example.org cannot be invited; add the person by their username, "
                    "or ask a site admin.",
                    "not_invitable",
                ),
            },
        ),
        (
            {"email": "bob@example.org"},
            {
                "error": "bob@example.org is already a member of Letters.",
                "fields": field_error(
                    "email", "bob@example.org is already a member of Letters.", "already_member"
                ),
            },
        ),
    ],
    ids=[
        "malformed JSON",
        "no object",
        "a list",
        "an object",
        "unknown key",
        "bad email",
        "no email",
        "bad role",
        "line break in the name",
        "deactivated account",
        "a member already",
    ],
)
def test_an_invitation_that_cannot_be_made_is_a_400_saying_why(
    client, alice, bob, letters, smtp_server, body, answer
):
    erin = factories.make_user("erin")
    erin.email, erin.is_active = "erin@example.org", False
    erin.save()
    bob.email = "bob@example.org"
    bob.save()
    accounts = User.objects.count()
    response = invite(client, letters, alice, body)
    assert response.status_code == 400
    assert response.json() == answer
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}
    assert User.objects.count() == accounts
    assert smtp_server.received == []


def test_only_the_collections_admins_invite(client, bob, charlie, letters, smtp_server):
    body = {"email": "jane@example.org"}
    assert invite(client, letters, bob, body).status_code == 403
    assert invite(client, letters, charlie, body).status_code == 404
    anonymous = client.post(invitations_url(letters), body, content_type="application/json")
    assert anonymous.status_code == 401
    assert not User.objects.filter(email="jane@example.org").exists()
    assert smtp_server.received == []


def test_an_admin_sends_a_bounded_number_of_invitations(
    client, alice, letters, smtp_server, monkeypatch
):
    """The members page's limit: both count against one."""
    monkeypatch.setattr(invitations, "INVITATIONS_PER_ADMIN", 2)
    assert invite(client, letters, alice, {"email": "one@example.org"}).status_code == 201
    assert invite(client, letters, alice, {"email": "nobody"}).status_code == 400  # not counted
    browser = Client()
    browser.force_login(alice)
    page = browser.post(
        reverse("invite_member", args=[letters.pk]),
        {"email": "two@example.org", "name": "", "role": REVIEWER},
    )
    assert page.status_code == 302
    refused = invite(client, letters, alice, {"email": "three@example.org"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(invitations.INVITATIONS_PER_ADMIN_SECONDS)
    assert refused.json() == {
        "error": "You sent many invitations in the last hour; try again later."
    }
    assert not User.objects.filter(email="three@example.org").exists()
    assert len(smtp_server.received) == 2


def test_with_the_broker_down_the_invitation_is_made_and_says_its_mail_was_not_queued(
    client, alice, letters, smtp_server, broker_down
):
    response = invite(client, letters, alice, {"email": "kim@example.org"}, deliver=False)
    assert response.status_code == 201
    answer = response.json()
    assert answer["outcome"] == "invited" and answer["link"]
    assert (answer["mail"]["state"], answer["mail"]["error"]) == (
        "not_queued",
        "our mail queue could not be reached",
    )
    assert roles(letters)["kim"] == REVIEWER
    assert member_invitation(client, letters, alice, "kim")["state"] == "not_queued"

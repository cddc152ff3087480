"""The members page (/collections/<id>/members/): a collection's admins add accounts by
username, change their roles and remove them; a collection keeps at least one admin, and a
member removed leaves no claim or draft behind in it."""

import re
import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus import actions
from ocrreview.corpus.models import Line, Membership
from ocrreview.review import actions as review
from ocrreview.review.models import Draft
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

ADMIN, REVIEWER = Membership.Role.ADMIN, Membership.Role.REVIEWER


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def members_url(collection) -> str:
    return reverse("collection_members", args=[collection.pk])


def role_url(collection, user) -> str:
    return reverse("set_member_role", args=[collection.pk, user.pk])


def remove_url(collection, user) -> str:
    return reverse("remove_member", args=[collection.pk, user.pk])


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def roles(collection) -> dict[str, str]:
    memberships = Membership.objects.filter(collection=collection).select_related("user")
    return {m.user.username: m.role for m in memberships}


def test_alice_adds_dave_who_can_then_open_the_collection(client, alice, bob, dave, letters):
    client.force_login(dave)
    assert client.get(reverse("collection_detail", args=[letters.pk])).status_code == 404
    assert "your username is <strong>dave</strong>" in client.get(reverse("home")).content.decode()

    client.force_login(alice)
    response = client.post(members_url(letters), {"username": "dave", "role": REVIEWER})
    assert response.status_code == 302
    assert said(response) == ["dave added as reviewer."]
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER, "dave": REVIEWER}
    page = client.get(members_url(letters)).content.decode()
    assert "dave" in page and "bob" in page

    client.force_login(dave)
    assert client.get(reverse("collection_detail", args=[letters.pk])).status_code == 200
    assert client.get(members_url(letters)).status_code == 403


def test_alice_changes_daves_role(client, alice, dave, letters):
    factories.add_member(dave, letters, REVIEWER)
    client.force_login(alice)
    response = client.post(role_url(letters, dave), {"role": ADMIN})
    assert response.status_code == 302 and response["Location"] == members_url(letters)
    assert roles(letters)["dave"] == ADMIN
    client.force_login(dave)
    assert client.get(members_url(letters)).status_code == 200

    client.force_login(alice)
    client.post(role_url(letters, dave), {"role": REVIEWER})
    assert roles(letters)["dave"] == REVIEWER


def test_removing_dave_hands_back_his_lines_and_deletes_his_drafts_here_alone(
    client, alice, bob, dave, letters, ledgers, model_version
):
    factories.add_member(dave, letters, REVIEWER)
    factories.add_member(dave, ledgers, REVIEWER)
    page = factories.make_page(factories.make_document(letters))
    claimed, drafted = (
        factories.make_read_line(page, order, [("Dear Sir", 0.4)], model_version)
        for order in (0, 1)
    )
    ledger_page = factories.make_page(factories.make_document(ledgers))
    ledger_line = factories.make_read_line(ledger_page, 0, [("To cash", 0.3)], model_version)
    review.do_save_draft(drafted, dave, "Dear Sr", base_version=1)
    review.do_save_draft(drafted, bob, "Dear Sir,", base_version=1)
    review.do_save_draft(ledger_line, dave, "To cash.", base_version=1)
    assert review.do_claim_line(claimed, dave)
    assert review.do_claim_line(ledger_line, dave)

    client.force_login(alice)
    response = client.post(remove_url(letters, dave))
    assert response.status_code == 302
    assert said(response) == ["dave removed from Letters."]

    assert "dave" not in roles(letters)
    claimed.refresh_from_db()
    assert (claimed.status, claimed.claimed_by, claimed.claimed_until) == (
        Line.Status.NEEDS_REVIEW,
        None,
        None,
    )
    assert not Draft.objects.filter(user=dave, line__collection=letters).exists()
    # Bob's draft of the same line, and what dave holds in Ledgers, stay.
    assert Draft.objects.filter(user=bob, line=drafted).exists()
    assert Draft.objects.filter(user=dave, line=ledger_line).exists()
    assert Line.objects.get(pk=ledger_line.pk).claimed_by == dave

    client.force_login(dave)
    assert client.get(reverse("collection_detail", args=[letters.pk])).status_code == 404
    assert client.get(reverse("collection_detail", args=[ledgers.pk])).status_code == 200


def test_removing_dave_asks_first_saying_what_goes_with_him(
    client, alice, bob, dave, letters, model_version
):
    factories.add_member(dave, letters, REVIEWER)
    page = factories.make_page(factories.make_document(letters))
    claimed, drafted, other = (
        factories.make_read_line(page, order, [("Dear Sir", 0.4)], model_version)
        for order in (0, 1, 2)
    )
    review.do_save_draft(drafted, dave, "Dear Sr", base_version=1)
    review.do_save_draft(other, bob, "Dear Sir,", base_version=1)  # bob's: not counted
    assert review.do_claim_line(claimed, dave)
    # A claim whose lease ran out: the line is back in the queue, whatever it still says.
    lapsed = factories.make_read_line(page, 3, [("Yours", 0.4)], model_version)
    Line.objects.filter(pk=lapsed.pk).update(
        status=Line.Status.IN_REVIEW, claimed_by=dave, claimed_until=timezone.now()
    )
    client.force_login(alice)
    members = client.get(members_url(letters)).content.decode()
    assert f'href="{remove_url(letters, dave)}"' in members

    asked = client.get(remove_url(letters, dave))
    assert asked.status_code == 200
    text = " ".join(asked.content.decode().split())
    assert "Remove dave from Letters?" in text
    assert "The 1 line dave holds goes back to the queue." in text
    assert "What dave typed but did not save in 1 line is deleted." in text
    assert roles(letters)["dave"] == REVIEWER  # asking changed nothing
    assert Draft.objects.filter(user=dave).exists()


def test_removing_the_last_admin_is_refused_before_it_is_asked(client, alice, bob, letters):
    client.force_login(alice)
    asked = client.get(remove_url(letters, alice)).content.decode()
    assert "alice is the only admin of Letters" in asked
    assert "<form" not in asked.split("<main", 1)[-1]


def test_bob_a_reviewer_is_not_asked_to_remove_anyone(client, alice, bob, letters):
    client.force_login(bob)
    assert client.get(remove_url(letters, alice)).status_code == 403


def test_staff_removing_dave_in_the_django_admin_hands_back_what_he_held(
    admin_client, dave, letters, model_version
):
    membership = factories.add_member(dave, letters, REVIEWER)
    page = factories.make_page(factories.make_document(letters))
    claimed, drafted = (
        factories.make_read_line(page, order, [("Dear Sir", 0.4)], model_version)
        for order in (0, 1)
    )
    review.do_save_draft(drafted, dave, "Dear Sr", base_version=1)
    assert review.do_claim_line(claimed, dave)
    url = reverse("admin:corpus_membership_delete", args=[membership.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    claimed.refresh_from_db()
    assert (claimed.status, claimed.claimed_by) == (Line.Status.NEEDS_REVIEW, None)
    assert not Draft.objects.filter(user=dave).exists()


def test_a_reviewer_can_do_none_of_it(client, alice, bob, charlie, dave, letters):
    before = roles(letters)
    client.force_login(bob)
    assert client.get(members_url(letters)).status_code == 403
    assert client.post(members_url(letters), {"username": "dave"}).status_code == 403
    assert client.post(role_url(letters, bob), {"role": ADMIN}).status_code == 403
    assert client.post(role_url(letters, alice), {"role": REVIEWER}).status_code == 403
    assert client.post(remove_url(letters, alice)).status_code == 403
    # The collection page does not offer it either.
    page = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert members_url(letters) not in page
    # Nor may anyone who is not a member know the collection is there.
    client.force_login(charlie)
    assert client.get(members_url(letters)).status_code == 404
    assert client.post(remove_url(letters, bob)).status_code == 404
    assert roles(letters) == before


def test_the_collection_page_links_the_members_page_for_its_admins(client, alice, letters):
    client.force_login(alice)
    page = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert f'href="{members_url(letters)}"' in page


def test_the_last_admin_can_be_neither_removed_nor_demoted(client, alice, bob, letters):
    client.force_login(alice)
    for url, data in (
        (remove_url(letters, alice), {}),
        (role_url(letters, alice), {"role": REVIEWER}),
    ):
        response = client.post(url, data, follow=True)
        assert response.redirect_chain == [(members_url(letters), 302)]
        assert said(response) == [
            "alice is the only admin of Letters; make another member an admin first."
        ]
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}

    # With a second admin, alice may step down, and is sent where she may still go.
    client.post(role_url(letters, bob), {"role": ADMIN})
    response = client.post(role_url(letters, alice), {"role": REVIEWER})
    assert response["Location"] == reverse("collection_detail", args=[letters.pk])
    assert roles(letters) == {"alice": REVIEWER, "bob": ADMIN}


def test_a_deactivated_admin_does_not_count_as_the_collection_s_admin(client, alice, bob, letters):
    Membership.objects.filter(user=bob, collection=letters).update(role=ADMIN)
    bob.is_active = False
    bob.save()
    client.force_login(alice)
    response = client.post(role_url(letters, alice), {"role": REVIEWER}, follow=True)
    assert said(response) == [
        "alice is the only admin of Letters; make another member an admin first."
    ]
    assert roles(letters)["alice"] == ADMIN


def test_an_admin_who_leaves_is_sent_home(client, alice, bob, letters):
    Membership.objects.filter(user=bob).update(role=ADMIN)
    client.force_login(alice)
    response = client.post(remove_url(letters, alice))
    assert response["Location"] == reverse("home")
    assert roles(letters) == {"bob": ADMIN}


@pytest.mark.parametrize(
    "data, error",
    [
        ({"username": "nobody"}, "No account is named “nobody” (usernames are case-sensitive)."),
        ({"username": "Dave"}, "No account is named “Dave” (usernames are case-sensitive)."),
        (
            {"username": "erin"},
            "erin's account is deactivated; a site admin can reactivate it.",
        ),
        ({"username": "bob"}, "bob is already a member of Letters (reviewer)."),
        ({"username": ""}, "This field is required."),
    ],
)
def test_an_account_that_cannot_be_added_is_refused_on_its_field(
    client, alice, bob, dave, letters, data, error
):
    erin = factories.make_user("erin")
    erin.is_active = False
    erin.save()
    before = roles(letters)
    client.force_login(alice)
    response = client.post(members_url(letters), {**data, "role": ADMIN})
    assert response.status_code == 400
    assert response.context["form"].errors == {"username": [error]}
    assert roles(letters) == before


def test_a_role_that_is_none_is_refused(client, alice, bob, dave, letters):
    client.force_login(alice)
    response = client.post(members_url(letters), {"username": "dave", "role": "owner"})
    assert response.status_code == 400
    assert response.context["form"].errors["role"]
    response = client.post(role_url(letters, bob), {"role": "owner"})
    assert said(response) == [
        "Role of bob: Select a valid choice. owner is not one of the available choices."
    ]
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}


def test_someone_who_is_no_member_cannot_be_changed_or_removed(client, alice, dave, letters):
    client.force_login(alice)
    assert client.post(role_url(letters, dave), {"role": ADMIN}).status_code == 404
    assert client.post(remove_url(letters, dave)).status_code == 404


def test_the_forms_need_a_post_with_its_csrf_token(alice, bob, letters):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(role_url(letters, bob)).status_code == 405
    assert client.get(remove_url(letters, bob)).status_code == 200  # asks first
    assert client.post(remove_url(letters, bob)).status_code == 403
    assert client.post(members_url(letters), {"username": "bob"}).status_code == 403
    assert roles(letters) == {"alice": ADMIN, "bob": REVIEWER}


def test_staff_manage_a_collection_that_has_no_admin(client, staff, charlie, ledgers):
    client.force_login(staff)
    assert client.post(remove_url(ledgers, charlie)).status_code == 302
    assert roles(ledgers) == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["remove", "demote"])
def test_two_admins_cannot_both_step_down_at_once(alice, bob, letters, change):
    """Each sees two admins; the one that waited for the other's lock sees one, and refuses."""
    Membership.objects.filter(user=bob).update(role=ADMIN)

    def step_down(user):
        if change == "remove":
            actions.do_remove_member(letters, user, actor=user)
        else:
            actions.do_set_member_role(letters, user, REVIEWER, actor=user)

    outcome = {}

    def bob_steps_down():
        try:
            step_down(bob)
        except actions.LastAdmin as exc:
            outcome["refused"] = str(exc)
        finally:
            connection.close()

    other = threading.Thread(target=bob_steps_down)
    with transaction.atomic():
        step_down(alice)
        other.start()
        wait_until_another_session_waits_for_a_lock()
    other.join()
    assert (
        outcome["refused"]
        == "bob is the only admin of Letters; make another member an admin first."
    )
    assert roles(letters)["bob"] == ADMIN


@pytest.mark.django_db(transaction=True)
def test_an_account_added_twice_at_once_is_added_once(alice, dave, letters):
    """The second waits for the first's lock, and then meets its row in the unique index."""
    outcome = {}

    def add_again():
        try:
            actions.do_add_member(letters, dave, REVIEWER, actor=alice)
        except actions.AlreadyAMember as exc:
            outcome["refused"] = str(exc)
        finally:
            connection.close()

    other = threading.Thread(target=add_again)
    with transaction.atomic():
        actions.do_add_member(letters, dave, ADMIN, actor=alice)
        other.start()
        wait_until_another_session_waits_for_a_lock()
    other.join()
    assert outcome["refused"] == "dave is already a member of Letters."
    assert roles(letters) == {"alice": ADMIN, "dave": ADMIN}


def test_the_add_and_invite_forms_fields_have_ids_of_their_own_with_their_labels(
    client, alice, letters
):
    """Both forms have a role: with Django's default ids both would be id_role, and a label
    would name the first of them alone."""
    client.force_login(alice)
    page = client.get(members_url(letters)).content.decode()
    ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for field in ("add_username", "add_role", "invite_email", "invite_name", "invite_role"):
        assert f'id="{field}"' in page
        assert f'<label for="{field}"' in page

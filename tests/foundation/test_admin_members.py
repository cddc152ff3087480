"""Memberships in the Django admin, as staff change them: through the app's actions, as on the
members page. The last admin of a collection is neither demoted nor removed, a removed member's
claims go back to the queue, and each change is in the collection's events."""

import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from ocrreview.corpus.models import CollectionEvent, Line, Membership
from ocrreview.review.actions import do_claim_line
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

T = CollectionEvent.Type


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.org", "pw")


def change(client, membership, role):
    url = reverse("admin:corpus_membership_change", args=[membership.pk])
    return client.post(url, {"role": role})


@pytest.mark.django_db
def test_the_only_admin_is_not_demoted(client, staff, alice, letters):
    client.force_login(staff)
    membership = Membership.objects.get(user=alice, collection=letters)
    response = change(client, membership, Membership.Role.REVIEWER)
    assert response.status_code == 200
    assert "alice is the only admin of Letters" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Membership.Role.ADMIN
    assert not CollectionEvent.objects.exists()


@pytest.mark.django_db
def test_a_role_changed_here_is_recorded_with_who_changed_it(client, staff, alice, bob, letters):
    client.force_login(staff)
    membership = Membership.objects.get(user=bob, collection=letters)
    assert change(client, membership, Membership.Role.ADMIN).status_code == 302
    membership.refresh_from_db()
    assert membership.role == Membership.Role.ADMIN
    event = CollectionEvent.objects.get()
    assert (event.event_type, event.acting_user) == (T.MEMBER_ROLE_CHANGED, staff)


@pytest.mark.django_db
def test_the_person_and_collection_of_a_membership_stay(client, staff, bob, letters):
    client.force_login(staff)
    membership = Membership.objects.get(user=bob, collection=letters)
    form = client.get(reverse("admin:corpus_membership_change", args=[membership.pk]))
    html = form.content.decode()
    assert 'name="user"' not in html and 'name="collection"' not in html


@pytest.mark.django_db
def test_a_member_added_here_is_recorded(client, staff, alice, letters):
    dave = factories.make_user("dave")
    client.force_login(staff)
    response = client.post(
        reverse("admin:corpus_membership_add"),
        {"user": dave.pk, "collection": letters.pk, "role": Membership.Role.REVIEWER},
    )
    assert response.status_code == 302
    assert Membership.objects.filter(user=dave, collection=letters).exists()
    assert CollectionEvent.objects.get().event_type == T.MEMBER_ADDED


@pytest.mark.django_db
def test_the_only_admin_is_not_deleted(client, staff, alice, letters):
    client.force_login(staff)
    membership = Membership.objects.get(user=alice, collection=letters)
    url = reverse("admin:corpus_membership_delete", args=[membership.pk])
    asked = client.get(url).content.decode()
    assert "alice is the only admin of Letters" in asked
    client.post(url, {"post": "yes"})
    assert Membership.objects.filter(pk=membership.pk).exists()


@pytest.mark.django_db
def test_every_admin_at_once_is_not_deleted(client, staff, alice, bob, letters):
    carol = factories.make_user("carol")
    factories.add_member(carol, letters, Membership.Role.ADMIN)
    client.force_login(staff)
    admins = Membership.objects.filter(collection=letters, role=Membership.Role.ADMIN)
    response = client.post(
        reverse("admin:corpus_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [m.pk for m in admins], "post": "yes"},
    )
    assert "alice, carol are the only admins of Letters" in response.content.decode()
    assert admins.count() == 2


@pytest.mark.django_db
def test_a_member_deleted_here_hands_back_their_lines_and_is_recorded(
    client, staff, alice, bob, letters
):
    page = factories.make_page(factories.make_document(letters))
    line = factories.make_line(page, 0)
    Line.objects.filter(pk=line.pk).update(status=Line.Status.NEEDS_REVIEW)
    assert do_claim_line(line, bob)
    client.force_login(staff)
    membership = Membership.objects.get(user=bob, collection=letters)
    url = reverse("admin:corpus_membership_delete", args=[membership.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    line.refresh_from_db()
    assert line.claimed_by_id is None
    event = CollectionEvent.objects.get()
    assert (event.event_type, event.acting_user) == (T.MEMBER_REMOVED, staff)


@pytest.mark.django_db
def test_the_collection_shows_its_members_without_changing_them(client, staff, alice, letters):
    client.force_login(staff)
    html = client.get(reverse("admin:corpus_collection_change", args=[letters.pk])).content
    assert b"alice" in html
    assert b'name="memberships-0-role"' not in html


@pytest.mark.django_db(transaction=True)
def test_a_demotion_that_came_first_is_said_not_undone(staff, alice, letters):
    """Two admins; alice is demoted on the members page while staff demote carol here. The
    form counted two admins; the action, waiting on the lock, finds alice demoted."""
    carol = factories.make_user("carol")
    factories.add_member(carol, letters, Membership.Role.ADMIN)
    membership = Membership.objects.get(user=carol, collection=letters)
    answer = {}

    def staff_demotes_carol():
        try:
            client = Client()
            client.force_login(staff)
            answer["response"] = change(client, membership, Membership.Role.REVIEWER)
        finally:
            connection.close()

    other = threading.Thread(target=staff_demotes_carol)
    with transaction.atomic():
        locked = list(Membership.objects.select_for_update().filter(collection=letters))
        other.start()
        wait_until_another_session_waits_for_a_lock()
        Membership.objects.filter(pk__in=[m.pk for m in locked], user=alice).update(
            role=Membership.Role.REVIEWER
        )
    other.join()
    response = answer["response"]
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:corpus_membership_changelist")
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == ["carol is the only admin of Letters; make another member an admin first."]
    assert Membership.objects.get(user=carol, collection=letters).role == Membership.Role.ADMIN

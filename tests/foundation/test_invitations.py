"""Inviting by email on the members page (/collections/<id>/members/invite/): an address no
account uses gets an account, its membership and an email, through a real SMTP server, with a
link to choose a password that works once; the admin is shown such a link too. An address an
account uses adds that account, as adding it by username does. The request queues the mail on
the `mail` queue; here its messages are run in the test's process and transaction
(workers.run_queued); test_invitation_mail.py has a real worker send them."""

import re
import threading

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from ocrreview.corpus import actions, invitations, tasks
from ocrreview.corpus.models import Collection, CollectionEvent, Invitation, Membership
from ocrreview.corpus.tokens import do_create_api_token
from tests import factories
from tests.workers import run_queued

User = get_user_model()
ADMIN, REVIEWER = Membership.Role.ADMIN, Membership.Role.REVIEWER
PASSWORD = "quill and vellum 1848"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _forget_invitation_counts(db):
    """The counts of invitations outlive a test in the cache, and the next test database
    numbers its accounts from 1 again."""
    yield
    forget_invitation_counts()


def forget_invitation_counts() -> None:
    cache.delete_many(
        invitations.rate_key(kind, pk)
        for pk in User.objects.values_list("pk", flat=True)
        for kind in ("admin", "account")
    )


def invite_url(collection) -> str:
    return reverse("invite_member", args=[collection.pk])


def members_url(collection) -> str:
    return reverse("collection_members", args=[collection.pk])


def invite(client, collection, email, role=REVIEWER, name="", deliver=True):
    """The admin's request, then (`deliver`) the mail it queued, as a worker sends it."""
    response = client.post(invite_url(collection), {"email": email, "name": name, "role": role})
    if deliver:
        run_queued("mail")
    return response


@pytest.fixture(autouse=True)
def _no_mail_queued():
    """Messages of earlier tests, whose rows were rolled back, would be run with this one's."""
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete("mail")


def account_of(link: str) -> str:
    """The account a link to choose a password is for (its uidb64): the mailed link and the
    one the admin is shown are made apart, each with a token of its own."""
    return link.split("/")[-3]


def link_in(text: str) -> str:
    (link,) = re.findall(r"http://testserver/accounts/password/reset/[^/\s]+/[^/\s]+/", text)
    return link


def shown_link(page: str) -> str:
    found = re.search(r'id="invitation-link" readonly value="([^"]+)"', page)
    assert found, "no link shown"
    return found.group(1)


def choose_password(link: str, password: str = PASSWORD):
    """What the invitee does: open the link, type a password twice."""
    browser = Client()
    opened = browser.get(link, follow=True)
    assert opened.status_code == 200
    form_url = opened.redirect_chain[-1][0] if opened.redirect_chain else link
    return (
        browser,
        opened,
        browser.post(form_url, {"new_password1": password, "new_password2": password}, follow=True),
    )


def logs_in(username: str, password: str = PASSWORD) -> bool:
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def roles(collection) -> dict[str, str]:
    memberships = Membership.objects.filter(collection=collection).select_related("user")
    return {m.user.username: m.role for m in memberships}


def test_an_invitee_gets_the_email_chooses_a_password_and_opens_the_collection(
    client, alice, bob, letters, smtp_server
):
    client.force_login(alice)
    response = invite(client, letters, "Jane.Doe@Example.ORG", name="Jane Doe")
    assert response.status_code == 302 and response["Location"] == members_url(letters)

    jane = User.objects.get(email="Jane.Doe@example.org")  # the domain is case-insensitive
    assert jane.username == "Jane.Doe" and jane.get_full_name() == "Jane Doe"
    assert jane.is_active and not jane.has_usable_password()
    assert roles(letters)["Jane.Doe"] == REVIEWER

    (mail,) = smtp_server.received
    assert mail.recipients == ["Jane.Doe@example.org"]
    assert mail.message["Subject"] == 'alice invites you to transcribe "Letters"'
    assert "Your username is Jane.Doe" in mail.body
    link = link_in(mail.body)

    page = client.get(response["Location"]).content.decode()
    assert "Invitation to Jane.Doe@example.org made: Jane.Doe, reviewer." in page
    assert account_of(shown_link(page)) == account_of(link)
    assert 'data-state="sent">mail sent' in page
    # Shown once: the link is not left in the session for the next look at the page.
    assert 'id="invitation-link"' not in client.get(members_url(letters)).content.decode()

    browser, opened, done = choose_password(link)
    assert "For the account <strong>Jane.Doe</strong>" in opened.content.decode()
    assert "Password set" in done.content.decode()
    assert logs_in("Jane.Doe")
    browser.force_login(User.objects.get(pk=jane.pk))
    assert browser.get(reverse("collection_detail", args=[letters.pk])).status_code == 200

    # The link works once.
    again = Client().get(link, follow=True).content.decode()
    assert "This link no longer works" in again

    (event,) = CollectionEvent.objects.filter(
        collection=letters, event_type=CollectionEvent.Type.MEMBER_ADDED
    )
    assert event.acting_user == alice
    assert event.extra_data["invited"] == {"email": "Jane.Doe@example.org", "new_account": True}
    history = client.get(reverse("collection_history", args=[letters.pk])).content.decode()
    assert "invited Jane.Doe (Jane.Doe@example.org, a new account) as a reviewer" in history


def test_an_address_an_account_uses_adds_that_account_and_mails_nothing(
    client, alice, dave, staff, letters, smtp_server
):
    dave.email = "dave@example.org"
    dave.save()
    client.force_login(alice)
    response = invite(client, letters, "DAVE@example.org", role=ADMIN)
    assert response.status_code == 302
    # A collection's admin is not told which account the address is (the list shows the
    # member they added); a site admin is.
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "DAVE@example.org is now a member, as admin."
    ]
    assert roles(letters)["dave"] == ADMIN
    assert smtp_server.received == []  # dave has a password: no link to set one is made
    assert User.objects.filter(email__iexact="dave@example.org").count() == 1
    (event,) = CollectionEvent.objects.filter(collection=letters, acting_user=alice)
    assert event.extra_data["invited"]["new_account"] is False

    fay = factories.make_user("fay")
    fay.email = "fay@example.org"
    fay.save()
    site_admin = Client()
    site_admin.force_login(staff)
    factories.add_member(staff, letters, ADMIN)
    response = invite(site_admin, letters, "fay@example.org")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "fay@example.org is the address of fay: added as reviewer."
    ]


def test_a_name_taken_gets_a_number(client, alice, letters, smtp_server):
    factories.make_user("jane")
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    invite(client, letters, "JANE2@example.net")
    assert {"jane2", "JANE22"} <= set(roles(letters))


def test_the_link_works_once_and_not_after_it_expires(
    client, alice, letters, settings, smtp_server
):
    client.force_login(alice)
    invite(client, letters, "old@example.org")
    link = link_in(smtp_server.received[0].body)
    settings.PASSWORD_RESET_TIMEOUT = -1  # the link's days have passed
    assert "This link no longer works" in Client().get(link, follow=True).content.decode()


def test_a_pending_invitee_is_invited_again_with_a_new_link_by_mail_alone(
    client, alice, letters, smtp_server
):
    client.force_login(alice)
    invite(client, letters, "slow@example.org")
    first = shown_link(client.get(members_url(letters)).content.decode())
    slow = User.objects.get(email="slow@example.org")

    # At most one mail per account every RESEND_SECONDS: the admin's text in their mailbox.
    response = invite(client, letters, "slow@example.org", role=ADMIN)
    assert response.status_code == 429
    assert response.context["invite_form"].errors["email"] == [
        "An invitation was sent to slow@example.org less than 10 minutes ago; try again later."
    ]
    assert len(smtp_server.to("slow@example.org")) == 1

    cache.delete(invitations.rate_key("account", slow.pk))  # the minutes have passed
    # Sent again, not re-roled: a role is changed in the members list.
    response = invite(client, letters, "slow@example.org", role=ADMIN)
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "The invitation to slow@example.org is queued to be sent again; the links sent before "
        "no longer work."
    ]
    # The account was not made by this invitation: its link goes to its mailbox alone.
    assert 'id="invitation-link"' not in client.get(members_url(letters)).content.decode()
    assert roles(letters)["slow"] == REVIEWER
    assert len(smtp_server.to("slow@example.org")) == 2
    assert (
        Membership.objects.filter(collection=letters, user__email="slow@example.org").count() == 1
    )
    # No second event, the sending again kept in the first: nothing changed in the collection.
    (event,) = CollectionEvent.objects.filter(collection=letters)
    (again,) = event.extra_data["invited"]["sent_again"]
    assert again["actor"]["username"] == "alice"
    # The new link makes the earlier one fail: whoever was shown it cannot use it now.
    assert "This link no longer works" in Client().get(first, follow=True).content.decode()
    _, _, done = choose_password(link_in(smtp_server.received[1].body))
    assert logs_in("slow")


def test_the_mail_server_down_keeps_the_member_and_the_page_says_the_mail_failed(
    client, alice, letters, smtp_down
):
    """The account and membership are made before the mail is sent, and stay: the admin has
    the link the mail would have carried, and re-sends it. Rolling them back would throw away
    a good membership because of a mail server."""
    client.force_login(alice)
    response = invite(client, letters, "kim@example.org", deliver=False)
    assert response.status_code == 302
    page = client.get(members_url(letters)).content.decode()
    assert 'data-state="queued">mail queued' in page
    link = shown_link(page)

    run_queued("mail")  # every try refused (a worker's tries come some 40 minutes apart)
    page = client.get(members_url(letters)).content.decode()
    assert 'data-state="failed">mail failed: [Errno 111] Connection refused' in page
    (invitation,) = Invitation.objects.filter(user__username="kim")
    assert invitation.mail_tries == tasks.MAIL_RETRIES + 1
    assert 'aria-label="Re-send the invitation to kim"' in page
    assert roles(letters)["kim"] == REVIEWER
    choose_password(link)
    assert logs_in("kim")
    # A member who chose a password is no longer shown an invitation.
    assert 'data-state="failed"' not in client.get(members_url(letters)).content.decode()


def test_without_a_mail_server_the_mail_is_a_file_and_the_page_says_to_pass_the_link_on(
    client, alice, letters, settings, tmp_path
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "outbox"
    client.force_login(alice)
    invite(client, letters, "lee@example.org")
    page = client.get(members_url(letters)).content.decode()
    assert "This site sends no mail" in page
    (written,) = (tmp_path / "outbox").iterdir()
    assert f"/accounts/password/reset/{account_of(shown_link(page))}/" in written.read_text()


@pytest.mark.parametrize(
    "email, error",
    [
        ("not an address", "Enter a valid email address."),
        ("a@b@example.org", "Enter a valid email address."),
        ("eve@example.org\nBcc: all@example.org", "Enter a valid email address."),
        ("", "This field is required."),
        ("x" * 250 + "@example.org", "Ensure this value has at most 254 characters"),
    ],
    ids=["no at", "two ats", "header injection", "empty", "too long"],
)
def test_a_malformed_address_is_refused_and_nothing_is_made(
    client, alice, letters, smtp_server, email, error
):
    client.force_login(alice)
    users = User.objects.count()
    response = invite(client, letters, email)
    assert response.status_code == 400
    assert error in response.context["invite_form"].errors["email"][0]
    assert User.objects.count() == users and smtp_server.received == []
    assert 'id="invite_email"' in response.content.decode()


def test_a_bad_role_is_refused(client, alice, letters, smtp_server):
    client.force_login(alice)
    response = invite(client, letters, "ok@example.org", role="owner")
    assert response.status_code == 400
    assert response.context["invite_form"].errors["role"]
    assert not User.objects.filter(email="ok@example.org").exists()


def test_a_member_with_an_account_in_use_is_refused_as_a_member_already(
    client, alice, bob, letters, smtp_server
):
    bob.email = "bob@example.org"
    bob.save()
    client.force_login(alice)
    response = invite(client, letters, "bob@example.org", role=ADMIN)
    assert response.status_code == 400
    assert response.context["invite_form"].errors["email"] == [
        "bob@example.org is already a member of Letters."
    ]
    assert roles(letters)["bob"] == REVIEWER and smtp_server.received == []


def test_a_deactivated_account_or_an_address_of_two_accounts_is_refused_naming_no_account(
    client, alice, dave, letters, staff, smtp_server
):
    dave.email, dave.is_active = "dave@example.org", False
    dave.save()
    twin = factories.make_user("twin1")
    twin.email = "twin@example.org"
    twin.save()
    other = factories.make_user("twin2")
    other.email = "Twin@example.org"
    other.save()
    client.force_login(alice)
    # To a collection's admin, one answer, which names no account and no account's state.
    for address in ("dave@example.org", "twin@example.org"):
        refused = invite(client, letters, address).context["invite_form"].errors["email"]
        assert refused == [
            f"{address} cannot be invited; add the person by their username, or ask a site admin."
        ]
    # A site admin is told why.
    client.force_login(staff)
    factories.add_member(staff, letters, ADMIN)
    refused = invite(client, letters, "dave@example.org").context["invite_form"].errors["email"]
    assert refused == [
        "dave@example.org is the address of dave, whose account is deactivated; a site admin "
        "can reactivate it."
    ]
    refused = invite(client, letters, "twin@example.org").context["invite_form"].errors["email"]
    assert refused == [
        "Several accounts use twin@example.org (twin1, twin2); add the one you mean by its "
        "username."
    ]
    assert set(roles(letters)) == {"alice", "staff"} and smtp_server.received == []


def test_an_account_in_use_is_never_handed_a_link(client, alice, letters, staff, smtp_server):
    """An admin of a collection may let in an account nobody has used, not take over one: a
    staff account made without a password, or one that has logged in, is only added."""
    staff.email = "staff@example.org"
    staff.set_unusable_password()
    staff.save()
    client.force_login(alice)
    invite(client, letters, "staff@example.org")
    assert roles(letters)["staff"] == REVIEWER
    assert smtp_server.received == []
    assert 'id="invitation-link"' not in client.get(members_url(letters)).content.decode()


@pytest.mark.parametrize("who", ["bob", "charlie", "anonymous"])
def test_only_the_collections_admins_invite(client, bob, charlie, letters, smtp_server, who):
    if who != "anonymous":
        client.force_login({"bob": bob, "charlie": charlie}[who])
    response = invite(client, letters, "mallory@example.org", role=ADMIN)
    expected = {"bob": 403, "charlie": 404, "anonymous": 302}[who]
    assert response.status_code == expected
    assert not User.objects.filter(email="mallory@example.org").exists()
    assert smtp_server.received == []


def test_a_get_is_not_an_invitation(client, alice, letters):
    client.force_login(alice)
    assert client.get(invite_url(letters)).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_two_invitations_of_one_new_address_at_once_make_one_account(alice, letters):
    """Each would find no account and make one; the lock on the address makes the second wait
    and find the first's."""
    barrier = threading.Barrier(2)
    results: list = []

    def invite_in_a_thread() -> None:
        try:
            barrier.wait()
            results.append(
                invitations.do_invite_member(
                    letters,
                    "pat@example.org",
                    "",
                    REVIEWER,
                    actor=alice,
                    domain="testserver",
                    use_https=False,
                )
            )
        except invitations.Throttled as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=invite_in_a_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert User.objects.filter(email="pat@example.org").count() == 1
    # The second finds the first's pending member, and its mail sent a moment ago.
    (invited,) = [result for result in results if isinstance(result, invitations.Invited)]
    (throttled,) = [result for result in results if isinstance(result, invitations.Throttled)]
    assert invited.added and invited.created
    assert Membership.objects.filter(collection=letters, user__email="pat@example.org").count() == 1


def mallory_admin_of_her_own_collection():
    """An admin of a collection that has nothing to do with Letters."""
    mallory = factories.make_user("mallory")
    hers = factories.make_collection("Mallory's")
    factories.add_member(mallory, hers, ADMIN)
    browser = Client()
    browser.force_login(mallory)
    return browser, hers


def test_a_pending_invitee_of_another_collection_gets_the_link_by_mail_and_no_admin_sees_it(
    client, alice, letters, smtp_server
):
    """Jane, invited to Letters as its admin, has not chosen her password yet. Mallory invites
    her address to her own collection: Jane is added there and mailed a new link; Mallory is
    shown none (with it she would be Jane, and an admin of Letters), and the link Alice was
    shown stops working."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org", role=ADMIN)
    alices_link = shown_link(client.get(members_url(letters)).content.decode())
    jane = User.objects.get(email="jane@example.org")
    cache.delete(invitations.rate_key("account", jane.pk))

    mallory, hers = mallory_admin_of_her_own_collection()
    response = invite(mallory, hers, "jane@example.org")
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "jane@example.org is now a member, as reviewer."
    ]
    assert 'id="invitation-link"' not in mallory.get(members_url(hers)).content.decode()
    assert roles(hers)["jane"] == REVIEWER

    first, second = smtp_server.to("jane@example.org")
    assert "This link no longer works" in Client().get(alices_link, follow=True).content.decode()
    choose_password(link_in(second.body))
    assert logs_in("jane")
    (event,) = CollectionEvent.objects.filter(collection=hers, acting_user__username="mallory")
    assert event.extra_data["invited"] == {"email": "jane@example.org", "new_account": False}


def test_a_pending_invitee_mailed_minutes_ago_is_added_without_a_mail(
    client, alice, letters, smtp_server
):
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    mallory, hers = mallory_admin_of_her_own_collection()
    response = invite(mallory, hers, "jane@example.org")
    # The same answer as for an account in use: nothing told of Jane's mailbox.
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "jane@example.org is now a member, as reviewer."
    ]
    assert roles(hers)["jane"] == REVIEWER
    assert len(smtp_server.to("jane@example.org")) == 1


def test_a_pending_invitee_mailed_minutes_ago_loses_the_link_alice_was_shown(
    client, alice, letters, smtp_server
):
    """Added to Mallory's collection without a mail, Jane keeps no link that works: Alice's
    would let Alice in as Jane, a member of Mallory's collection now. Jane's way in is a
    password reset."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    alices_link = shown_link(client.get(members_url(letters)).content.decode())
    mallory, hers = mallory_admin_of_her_own_collection()
    assert invite(mallory, hers, "jane@example.org").status_code == 302
    assert "This link no longer works" in Client().get(alices_link, follow=True).content.decode()
    assert invitations.is_pending(User.objects.get(username="jane"))


@pytest.mark.parametrize("where", ["members page", "API", "new collection"])
def test_a_pending_invitee_added_by_username_loses_the_link_alice_was_shown(
    client, alice, letters, staff, smtp_server, where
):
    """Another admin adds Jane by her username, as the members page, the API or a new
    collection's first admin: the link Alice was shown would let Alice in as Jane, a member of
    the other collection, so it stops working. The other admin is shown none and no mail is
    sent: Jane's way in is a password reset, at her own address."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    alices_link = shown_link(client.get(members_url(letters)).content.decode())
    mallory, hers = mallory_admin_of_her_own_collection()
    if where == "members page":
        response = mallory.post(members_url(hers), {"username": "jane", "role": ADMIN})
        assert response.status_code == 302
        assert 'id="invitation-link"' not in mallory.get(members_url(hers)).content.decode()
    elif where == "API":
        response = mallory.post(
            reverse("api_members", args=[hers.pk]),
            {"username": "jane", "role": ADMIN},
            content_type="application/json",
            headers=factories.token_headers(User.objects.get(username="mallory")),
        )
        assert response.status_code == 201
        assert "link" not in response.json()
    else:
        staff_browser = Client()
        staff_browser.force_login(staff)
        response = staff_browser.post(
            reverse("new_collection"),
            {"name": "Jane's own", "language": "en", "licence": "", "admin": "jane"},
        )
        assert response.status_code == 302, response.content
        hers = Collection.objects.get(name="Jane's own")
    assert roles(hers)["jane"] == ADMIN
    assert "This link no longer works" in Client().get(alices_link, follow=True).content.decode()
    assert len(smtp_server.to("jane@example.org")) == 1  # Alice's invitation alone


def test_a_link_mailed_before_links_were_void_on_promotion_still_works(client, alice, letters):
    """Links made with Django's own generator, before account_links, stay good for an
    ordinary account: an upgrade voids no invitation on its way."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    jane = User.objects.get(username="jane")
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(jane.pk)),
            "token": default_token_generator.make_token(jane),
        },
    )
    choose_password(f"http://testserver{path}")
    assert logs_in("jane")


@pytest.mark.parametrize("made", ["is_staff", "is_superuser"])
def test_the_link_alice_was_shown_stops_working_once_jane_is_made_a_site_admin(
    client, alice, letters, smtp_server, made
):
    """A site admin promotes Jane before she chose her password: Alice's link must not let
    Alice in as a site admin."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    alices_link = shown_link(client.get(members_url(letters)).content.decode())
    User.objects.filter(username="jane").update(**{made: True})
    assert "This link no longer works" in Client().get(alices_link, follow=True).content.decode()
    choose_password(alices_link)
    assert not logs_in("jane")


def test_an_account_in_use_added_by_username_keeps_its_password(client, alice, bob, smtp_server):
    mallory, hers = mallory_admin_of_her_own_collection()
    assert mallory.post(members_url(hers), {"username": "bob", "role": REVIEWER}).status_code == 302
    assert logs_in("bob", "password")


@pytest.mark.parametrize("used_by", ["api token", "a login"])
def test_an_account_without_a_password_but_in_use_is_added_and_mailed_no_link(
    client, letters, smtp_server, used_by
):
    """An account made without a password for the API (whose requests set no last login),
    or one that has logged in (by a link, then its password made unusable), is its owner's:
    a password reset lets them in, an invitation does not."""
    bot = User.objects.create_user("ingestbot", email="bot@example.org", password=None)
    factories.add_member(bot, letters, ADMIN)
    if used_by == "api token":
        do_create_api_token(bot, "cli")
    else:
        bot.last_login = timezone.now()
        bot.save()
    mallory, hers = mallory_admin_of_her_own_collection()
    response = invite(mallory, hers, "bot@example.org")
    assert response.status_code == 302
    assert roles(hers)["ingestbot"] == REVIEWER
    assert smtp_server.received == []
    assert 'id="invitation-link"' not in mallory.get(members_url(hers)).content.decode()
    assert not User.objects.get(pk=bot.pk).has_usable_password()


def test_line_breaks_in_the_inviters_or_the_collections_name_make_a_one_line_subject(
    client, alice, letters, smtp_server
):
    """They made the mail a header injection, refused after the membership was made: a 500."""
    # Stored as before names were cleaned on saving (corpus 0031), by a version still running.
    Collection.objects.filter(pk=letters.pk).update(name="Letters\nBcc: all@example.org")
    alice.first_name, alice.last_name = "Alice\r\nBcc: all@example.org", "Smith"
    alice.save()
    client.force_login(alice)
    response = invite(client, letters, "jane@example.org")
    assert response.status_code == 302
    (mail,) = smtp_server.received
    assert mail.recipients == ["jane@example.org"]
    assert mail.message["Subject"] == (
        'AliceBcc: all@example.org Smith invites you to transcribe "LettersBcc: all@example.org"'
    )
    page = client.get(members_url(letters)).content.decode()
    assert "Invitation to jane@example.org made" in page and 'data-state="sent"' in page


@pytest.mark.parametrize(
    "name",
    ["Eve\r\nBcc: all@example.org", "Eve\nX", "Eve\x1b[2J", "Eve\u2028X", "Eve\u202eX", "Eve\tX"],
)
def test_a_name_with_a_line_break_control_character_or_bidi_control_is_refused(
    client, alice, letters, smtp_server, name
):
    client.force_login(alice)
    response = invite(client, letters, "eve@example.org", name=name)
    assert response.status_code == 400
    assert response.context["invite_form"].errors["name"] == [
        "A name cannot hold line breaks, control characters or bidi controls."
    ]
    assert not User.objects.filter(email="eve@example.org").exists()


def test_an_admin_sends_a_bounded_number_of_invitations(
    client, alice, letters, smtp_server, monkeypatch
):
    monkeypatch.setattr(invitations, "INVITATIONS_PER_ADMIN", 2)
    client.force_login(alice)
    assert invite(client, letters, "one@example.org").status_code == 302
    assert invite(client, letters, "nobody").status_code == 400  # refused by the form: not counted
    assert invite(client, letters, "two@example.org").status_code == 302
    response = invite(client, letters, "three@example.org")
    assert response.status_code == 429
    assert response.context["invite_form"].errors["email"] == [
        "You sent many invitations in the last hour; try again later."
    ]
    assert not User.objects.filter(email="three@example.org").exists()
    assert len(smtp_server.received) == 2


def test_with_the_broker_down_the_member_is_made_and_the_page_says_the_mail_was_not_queued(
    client, alice, letters, smtp_server, broker_down
):
    """As with a mail server that is down: the membership stands, the admin has the link and
    re-sends the mail once the queue is back, not held back as a mail sent minutes ago is. A
    503 would throw the membership away for a mail, and the link the admin can pass on."""
    client.force_login(alice)
    response = invite(client, letters, "kim@example.org", deliver=False)
    assert response.status_code == 302
    page = client.get(members_url(letters)).content.decode()
    assert (
        "The invitation to kim@example.org could not be sent: our mail queue could not be "
        "reached. kim is a member all the same" in page
    )
    assert 'data-state="not_queued">mail not sent: our mail queue could not be reached' in page
    assert roles(letters)["kim"] == REVIEWER
    # The re-send it offers is not held back as a mail sent minutes ago would be.
    again = invite(client, letters, "kim@example.org", deliver=False)
    assert again.status_code == 302
    assert [str(m) for m in get_messages(again.wsgi_request)] == [
        "The invitation to kim@example.org could not be sent again: our mail queue could not "
        "be reached; try again in a few minutes."
    ]
    states = Invitation.objects.filter(user__username="kim").values_list("mail_state", flat=True)
    assert list(states) == ["not_queued", "not_queued"]
    assert smtp_server.received == []


def test_a_resent_invitation_cancels_the_older_mail_still_queued(
    client, alice, letters, smtp_server
):
    """The older mail's link would be void; it is not sent at all, and the page shows the
    newer one's state."""
    client.force_login(alice)
    invite(client, letters, "slow@example.org", deliver=False)
    cache.delete(invitations.rate_key("account", User.objects.get(username="slow").pk))
    invite(client, letters, "slow@example.org", deliver=False)
    assert run_queued("mail") == 2
    (mail,) = smtp_server.to("slow@example.org")
    first, second = Invitation.objects.filter(user__username="slow").order_by("pk")
    assert (first.mail_state, second.mail_state) == ("cancelled", "sent")
    page = client.get(members_url(letters)).content.decode()
    assert page.count('class="invitation-mail"') == 1 and 'data-state="sent"' in page
    choose_password(link_in(mail.body))
    assert logs_in("slow")


def test_a_mail_refused_as_a_header_injection_fails_at_once(client, alice, letters, smtp_server):
    """An address with a line break (an account made so in the Django admin, which the invite
    form would refuse) is refused at every try: it is not tried again."""
    client.force_login(alice)
    invite(client, letters, "jane@example.org", deliver=False)
    User.objects.filter(username="jane").update(email="jane@example.org\nBcc: all@example.org")
    assert run_queued("mail") == 1
    (invitation,) = Invitation.objects.filter(user__username="jane")
    assert (invitation.mail_state, invitation.mail_tries) == ("failed", 1)
    assert "Invalid address" in invitation.mail_error
    assert smtp_server.received == []


def test_an_address_whose_password_was_chosen_through_a_shown_link_adds_no_account_until_mailed(
    client, alice, letters, smtp_server
):
    """Mallory invites Jane's address to her own collection and, with the link she is shown,
    chooses Jane's password herself. Alice then invites Jane to Letters as an admin: the
    account that would be added is Mallory's. Once Jane resets her password, by a link mailed
    to her address, the address is hers and Alice's invitation adds her."""
    mallory, hers = mallory_admin_of_her_own_collection()
    invite(mallory, hers, "jane@example.org")
    choose_password(shown_link(mallory.get(members_url(hers)).content.decode()))
    assert logs_in("jane")
    again = invite(mallory, hers, "jane@example.org")
    assert again.context["invite_form"].errors["email"] == [
        "jane@example.org is already a member of Mallory's."
    ]

    client.force_login(alice)
    refused = invite(client, letters, "jane@example.org", role=ADMIN)
    assert refused.context["invite_form"].errors["email"] == [
        "jane@example.org cannot be invited; add the person by their username, or ask a site admin."
    ]
    assert "jane" not in roles(letters)

    Client().post(reverse("password_reset"), {"email": "jane@example.org"})
    run_queued("mail")
    choose_password(link_in(smtp_server.to("jane@example.org")[-1].body), "jane's own 1848")
    invite(client, letters, "jane@example.org", role=ADMIN)
    assert roles(letters)["jane"] == ADMIN


def test_an_invitee_who_chose_a_password_through_the_mailed_link_is_added_by_address(
    client, alice, letters, smtp_server
):
    mallory, hers = mallory_admin_of_her_own_collection()
    invite(mallory, hers, "jane@example.org")
    choose_password(link_in(smtp_server.to("jane@example.org")[0].body))
    client.force_login(alice)
    invite(client, letters, "jane@example.org")
    assert roles(letters)["jane"] == REVIEWER


@pytest.mark.parametrize("how", ["removed", "made a reviewer"])
def test_an_admin_removed_or_demoted_loses_the_links_they_were_shown_and_the_invitee_gets_one(
    client, alice, dave, letters, smtp_server, django_capture_on_commit_callbacks, how
):
    """Alice invited Jane as an admin and kept the link she was shown; dave then removes
    Alice. With the link she would be back in, as Jane, an admin of Letters."""
    factories.add_member(dave, letters, ADMIN)
    client.force_login(alice)
    invite(client, letters, "jane@example.org", role=ADMIN)
    alices_link = shown_link(client.get(members_url(letters)).content.decode())
    with django_capture_on_commit_callbacks(execute=True):
        if how == "removed":
            actions.do_remove_member(letters, alice, actor=dave)
        else:
            actions.do_set_member_role(letters, alice, REVIEWER, actor=dave)
    run_queued("mail")
    assert "This link no longer works" in Client().get(alices_link, follow=True).content.decode()
    first, second = smtp_server.to("jane@example.org")
    assert (
        "This link no longer works"
        in Client().get(link_in(first.body), follow=True).content.decode()
    )
    choose_password(link_in(second.body))
    assert logs_in("jane") and roles(letters)["jane"] == ADMIN

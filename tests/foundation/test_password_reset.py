"""/accounts/password/reset/: a user who forgot their password asks for a link by email (sent
through a real SMTP server here), chooses a new password with it, and logs in. An unknown
address gets the same answer and no mail; asking too often is refused as failed logins are."""

import re
import uuid

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from ocrreview.corpus.logins import failure_key
from tests import factories

NEW = "quill and vellum 1848"


@pytest.fixture(autouse=True)
def _logins(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Counts outlive a test in Redis: the failed logins of earlier runs from this machine's
    # address would add up to its limit.
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 1_000_000
    settings.OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS = 1_000_000


@pytest.fixture
def address():
    """A client address no earlier run has counted requests from (the counts outlive a test)."""
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    cache.delete(failure_key("address", address)[0])
    return address


@pytest.fixture
def erin(db):
    """An account with an address of its own (counts per address asked for outlive a test)."""
    user = factories.make_user(f"erin-{uuid.uuid4().hex[:8]}")
    user.email = f"{user.username}@example.org"
    user.save()
    return user


def ask(client, email, address):
    return client.post(reverse("password_reset"), {"email": email}, REMOTE_ADDR=address)


def link_in(text: str) -> str:
    (link,) = re.findall(r"http://testserver/accounts/password/reset/[^/\s]+/[^/\s]+/", text)
    return link


def logs_in(username: str, password: str) -> bool:
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def test_the_login_page_links_to_the_reset(client):
    page = client.get(reverse("login")).content.decode()
    assert f'<a href="{reverse("password_reset")}">Forgot your password?</a>' in page
    assert "Forgot your password?" in client.get(reverse("password_reset")).content.decode()


def test_erin_resets_her_password_by_email_and_logs_in_with_the_new_one(
    client, erin, address, smtp_server
):
    response = ask(client, erin.email.upper(), address)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert "Check your email" in client.get(response["Location"]).content.decode()

    (mail,) = smtp_server.received
    assert mail.recipients == [erin.email]
    assert mail.message["Subject"] == "Your password on testserver"
    assert f"Your username is {erin.username}." in mail.body
    link = link_in(mail.body)

    browser = Client()
    opened = browser.get(link, follow=True)
    assert f"For the account <strong>{erin.username}</strong>" in opened.content.decode()
    done = browser.post(
        opened.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW}, follow=True
    )
    assert "Password set" in done.content.decode()
    assert logs_in(erin.username, NEW)
    assert not logs_in(erin.username, "password")
    # Once: the link dies with the password it replaced.
    assert "This link no longer works" in Client().get(link, follow=True).content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, erin, address, smtp_server):
    known = ask(client, erin.email, address)
    unknown = ask(client, "nobody-here@example.org", address)
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert len(smtp_server.received) == 1 and smtp_server.to(erin.email)


def test_a_deactivated_account_gets_no_mail(client, erin, address, smtp_server):
    erin.is_active = False
    erin.save()
    assert ask(client, erin.email, address).status_code == 302
    assert smtp_server.received == []


def test_a_malformed_address_is_refused(client, db, address, smtp_server):
    response = ask(client, "not an address", address)
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Enter a valid email address."]
    assert smtp_server.received == []


def test_the_new_passwords_are_checked(client, erin, address, smtp_server):
    ask(client, erin.email, address)
    browser = Client()
    opened = browser.get(link_in(smtp_server.received[0].body), follow=True)
    refused = browser.post(
        opened.redirect_chain[-1][0], {"new_password1": "erin", "new_password2": "erin"}
    )
    assert refused.status_code == 200
    assert refused.context["form"].errors["new_password2"]
    assert logs_in(erin.username, "password")


def test_a_mail_server_that_is_down_is_not_told_to_the_asker(client, erin, address, smtp_down):
    """Django logs the failure; an answer that differed would say which addresses exist."""
    response = ask(client, erin.email, address)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")


def test_asking_too_often_is_refused_for_the_address_asked_for(
    client, erin, address, settings, smtp_server
):
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 2
    for _ in range(2):
        assert ask(client, erin.email, address).status_code == 302
    refused = ask(client, erin.email, "203.0.113.9")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many attempts from your address or for this email" in refused.content.decode()
    assert len(smtp_server.received) == 2
    # Logins with erin's username are not held by it.
    assert logs_in(erin.username, "password")


def test_asking_too_often_is_refused_for_the_client_address(
    client, db, address, settings, smtp_server
):
    settings.OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        assert ask(client, f"guess{n}-{uuid.uuid4().hex}@example.org", address).status_code == 302
    refused = ask(client, f"guess-{uuid.uuid4().hex}@example.org", address)
    assert refused.status_code == 429

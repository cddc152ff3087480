"""/accounts/password/reset/: a user who forgot their password asks for a link by email,
chooses a new password with it, and logs in. The request only queues the address; a real
Celery worker looks for its accounts and mails them, through a real SMTP server here. An
unknown address gets the same answer, and no mail; asking too often is refused as failed
logins are; a broker that is down gets a clear answer, the same for every address."""

import re
import time
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from ocrreview.corpus.logins import failure_key
from tests import factories
from tests.workers import celery_worker

NEW = "quill and vellum 1848"
# A refused mail is tried again a second later, not the ten seconds the setting defaults to.
RETRY_SOON = {"OCRREVIEW_MAIL_RETRY_SECONDS": "1"}


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


@pytest.fixture
def broker():
    """The test's Redis database, empty: no message of an earlier test waits in it."""
    connection = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    connection.flushdb()
    return connection


def queued(broker) -> int:
    """Messages waiting on the `mail` queue (kombu's Redis transport keeps it in a list)."""
    return broker.llen("mail")


def wait_for(found, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(0.1)
    raise TimeoutError("not there in time")


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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_erin_resets_her_password_by_email_and_logs_in_with_the_new_one(
    client, erin, address, smtp_server, broker
):
    response = ask(client, erin.email.upper(), address)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert "Check your email" in client.get(response["Location"]).content.decode()
    # The request itself sent nothing: the mail waits for a worker.
    assert smtp_server.received == [] and queued(broker) == 1

    with celery_worker("mail", name="reset", EMAIL_URL=smtp_server.url):
        (mail,) = wait_for(lambda: smtp_server.received)
    assert mail.recipients == [erin.email]
    assert mail.message["Subject"] == "Your password on testserver"
    assert f"Your username is {erin.username}." in mail.body
    link = link_in(mail.body)

    browser = Client()
    opened = browser.get(link, follow=True)
    assert f"For the account <strong>{erin.username}</strong>" in opened.content.decode()
    form_url = opened.redirect_chain[-1][0]
    refused = browser.post(form_url, {"new_password1": "erin", "new_password2": "erin"})
    assert refused.status_code == 200 and refused.context["form"].errors["new_password2"]
    done = browser.post(form_url, {"new_password1": NEW, "new_password2": NEW}, follow=True)
    assert "Password set" in done.content.decode()
    assert logs_in(erin.username, NEW)
    assert not logs_in(erin.username, "password")
    # Once: the link dies with the password it replaced.
    assert "This link no longer works" in Client().get(link, follow=True).content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_unknown_or_deactivated_address_gets_the_same_answer_and_no_mail(
    client, erin, address, broker, tmp_path
):
    """Each is queued as a known one is, so the answer and the time it takes are the same;
    the worker finds no account to mail. Without EMAIL_URL its mail goes to var/outbox."""
    dormant = factories.make_user(f"dormant-{uuid.uuid4().hex[:8]}")
    dormant.email, dormant.is_active = f"{dormant.username}@example.org", False
    dormant.save()
    answers = [
        ask(client, email, address)
        for email in (f"nobody-{uuid.uuid4().hex}@example.org", dormant.email, erin.email)
    ]
    assert {(a.status_code, a["Location"], a.content) for a in answers} == {
        (302, reverse("password_reset_done"), b"")
    }
    assert queued(broker) == 3

    outbox = tmp_path / "var" / "outbox"
    with celery_worker("mail", name="reset", EMAIL_URL="", OCRREVIEW_VAR_DIR=str(outbox.parent)):
        # One worker takes the queue in order: erin's mail comes after the other two's turns.
        wait_for(lambda: [f for f in outbox.glob("*.log") if f"To: {erin.email}" in f.read_text()])
    (mail,) = outbox.iterdir()
    assert "Your password on testserver" in mail.read_text()
    assert queued(broker) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_fails_is_tried_again(client, erin, address, smtp_server, broker):
    """The asker is told nothing of it (the answer would differ from an unknown address's)."""
    smtp_server.refusals = 1
    response = ask(client, erin.email, address)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    with celery_worker("mail", name="reset", EMAIL_URL=smtp_server.url, **RETRY_SOON):
        (mail,) = wait_for(lambda: smtp_server.received)
    assert smtp_server.refused == 1
    assert mail.recipients == [erin.email]
    opened = Client().get(link_in(mail.body), follow=True)
    assert f"For the account <strong>{erin.username}</strong>" in opened.content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_mail_refused_for_one_of_two_accounts_of_an_address_is_sent_again_alone(
    client, erin, address, smtp_server, broker
):
    """Two accounts share the address: each is mailed once, whichever mail the server
    refused first, and no earlier mail is sent again with the retry."""
    twin = factories.make_user(f"{erin.username}-twin")
    twin.email = erin.email.upper()
    twin.save()
    smtp_server.refusals = 1
    ask(client, erin.email, address)
    with celery_worker("mail", name="reset", EMAIL_URL=smtp_server.url, **RETRY_SOON):
        mails = wait_for(lambda: len(smtp_server.received) >= 2 and list(smtp_server.received))
    assert smtp_server.refused == 1
    mailed = sorted(link_in(mail.body).split("/")[-3] for mail in mails)
    assert mailed == sorted(urlsafe_base64_encode(force_bytes(user.pk)) for user in (erin, twin))


def test_with_the_broker_down_every_address_gets_the_same_clear_answer(
    client, erin, address, broker_down
):
    for email in (erin.email, f"nobody-{uuid.uuid4().hex}@example.org"):
        answer = ask(client, email, address)
        assert answer.status_code == 503
        assert answer.context["form"].non_field_errors() == [
            "The link cannot be sent just now (our mail queue is down); try again in a few minutes."
        ]


def test_a_malformed_address_is_refused(client, db, address, broker):
    response = ask(client, "not an address", address)
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Enter a valid email address."]
    assert queued(broker) == 0


def test_asking_too_often_is_refused_for_the_address_asked_for(
    client, erin, address, settings, broker
):
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 2
    for _ in range(2):
        assert ask(client, erin.email, address).status_code == 302
    refused = ask(client, erin.email, "203.0.113.9")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many attempts from your address or for this email" in refused.content.decode()
    assert queued(broker) == 2
    # Logins with erin's username are not held by it.
    assert logs_in(erin.username, "password")


def test_asking_too_often_is_refused_for_the_client_address(client, db, address, settings, broker):
    settings.OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        assert ask(client, f"guess{n}-{uuid.uuid4().hex}@example.org", address).status_code == 302
    refused = ask(client, f"guess-{uuid.uuid4().hex}@example.org", address)
    assert refused.status_code == 429
    assert queued(broker) == 3

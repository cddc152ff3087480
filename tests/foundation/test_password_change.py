"""/accounts/password/: any signed-in user changes the password they were given."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories

NEW = "quill and vellum 1848"


@pytest.fixture(autouse=True)
def _logins(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Failed logins are counted in Redis beyond the test that made them: the old password's
    # refusals here would add up, run after run, to bob's limit, and the new one be refused.
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 1_000_000
    settings.OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS = 1_000_000


def logs_in(username: str, password: str) -> bool:
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def test_bob_changes_his_password_and_the_old_one_no_longer_logs_in(client, bob):
    client.force_login(bob)
    page = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("password_change")}"' in page
    response = client.post(
        reverse("password_change"),
        {"old_password": "password", "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert "Password changed" in client.get(response["Location"]).content.decode()
    assert client.get(reverse("home")).status_code == 200  # still signed in here
    assert not logs_in("bob", "password")
    assert logs_in("bob", NEW)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"old_password": "guess", "new_password1": NEW, "new_password2": NEW}, "old_password"),
        (
            {"old_password": "password", "new_password1": NEW, "new_password2": NEW + "!"},
            "new_password2",
        ),
        (
            {"old_password": "password", "new_password1": "bob", "new_password2": "bob"},
            "new_password2",
        ),
    ],
    ids=["wrong old password", "two new ones", "too weak"],
)
def test_a_change_that_cannot_be_made_says_why_and_keeps_the_password(client, bob, data, field):
    client.force_login(bob)
    response = client.post(reverse("password_change"), data)
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert logs_in("bob", "password")


def test_only_a_signed_in_user_has_a_password_to_change(client, bob):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_guesses_of_the_current_password_count_as_failed_logins(client, settings, db):
    """A session left open in a reading room must not be a way to find the password."""
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 3
    eve = factories.make_user(f"eve-{uuid.uuid4().hex[:8]}")  # counts outlive a test
    client.force_login(eve)
    url = reverse("password_change")
    for guess in ("guess1", "guess2", "guess3"):
        wrong = client.post(
            url, {"old_password": guess, "new_password1": NEW, "new_password2": NEW}
        )
        assert wrong.status_code == 200
    refused = client.post(
        url, {"old_password": "password", "new_password1": NEW, "new_password2": NEW}
    )
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed logins" in refused.content.decode()
    eve.refresh_from_db()
    assert eve.check_password("password")
    assert not logs_in(eve.get_username(), "password")  # the login page counts them too


def test_the_admins_password_page_is_the_sites_which_limits_guesses(client, settings, db):
    """A stolen site admin's session guessing on the Django admin's own page, which counts
    nothing."""
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 2
    root = factories.make_user(f"root-{uuid.uuid4().hex[:8]}", staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)
    url = reverse("admin:password_change")
    assert client.get(url)["Location"] == reverse("password_change")
    wrong = {"old_password": "guess", "new_password1": NEW, "new_password2": NEW}
    for _ in range(2):
        client.post(client.post(url, wrong)["Location"], wrong)
    right = {**wrong, "old_password": "password"}
    assert client.post(reverse("password_change"), right).status_code == 429

"""The limit on failed logins (ocrreview/corpus/logins.py), per username and per client
address, counted in the real cache (Redis in the tests), on the site's and the admin's login
pages."""

import uuid

import pytest
from django.core.cache import cache
from django.urls import reverse

from ocrreview.corpus.logins import client_address, failure_key
from tests import factories


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 3
    settings.OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS = 5
    settings.OCRREVIEW_LOGIN_FAILURE_WINDOW = 900


def window_passes(kind, identity):
    cache.delete(failure_key(kind, identity)[0])


def stranger():
    """A username no test has counted failures for: the counts outlive a test in the cache."""
    return f"nobody-{uuid.uuid4().hex}"


@pytest.fixture
def address():
    address = "198.51.100.1"
    window_passes("address", address)
    return address


@pytest.fixture
def users(db):
    return [factories.make_user(stranger(), password="right-password") for _ in range(2)]


def log_in(client, username, password, address, url=None, **headers):
    return client.post(
        url or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        headers=headers,
    )


@pytest.mark.django_db
def test_a_username_that_failed_too_often_is_refused_even_its_password_until_the_window_ends(
    client, users, address
):
    dora = users[0].username
    for _ in range(3):
        assert log_in(client, dora, "guess", address).status_code == 200
    refused = log_in(client, dora, "right-password", address)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 15 * 60  # the end of the 15-minute window
    page = refused.content.decode()
    assert "Too many failed logins with this username: try again in " in page
    assert "_auth_user_id" not in client.session

    window_passes("username", dora)
    logged_in = log_in(client, dora, "right-password", address)
    assert logged_in.status_code == 302 and logged_in["Location"] == reverse("home")


@pytest.mark.django_db
def test_a_refused_login_checks_no_password(client, users, address, django_assert_num_queries):
    dora = users[0].username
    for _ in range(3):
        log_in(client, dora, "guess", address)
    # Neither is the user looked up nor is the password hashed (which takes some 0.1 s).
    with django_assert_num_queries(0):
        assert log_in(client, dora, "right-password", address).status_code == 429


@pytest.mark.django_db
def test_below_the_limit_the_right_password_logs_in(client, users, address):
    dora = users[0].username
    for _ in range(2):
        log_in(client, dora, "guess", address)
    assert log_in(client, dora, "right-password", address).status_code == 302


@pytest.mark.django_db
def test_another_username_from_the_same_address_is_held_to_the_address_limit_only(
    client, users, address
):
    dora, emil = (user.username for user in users)
    for _ in range(3):
        log_in(client, dora, "guess", address)
    assert log_in(client, dora, "right-password", address).status_code == 429
    # Dora's failures count against the address too: 3 of its 5.
    assert log_in(client, emil, "right-password", address).status_code == 302
    client.logout()
    log_in(client, emil, "guess", address)
    log_in(client, emil, "guess", address)
    refused = log_in(client, emil, "right-password", address)
    assert refused.status_code == 429
    assert "Too many failed logins from your address" in refused.content.decode()
    # From elsewhere, Emil (under his own limit) still logs in; Dora waits out hers.
    elsewhere = "203.0.113.7"
    window_passes("address", elsewhere)
    assert log_in(client, emil, "right-password", elsewhere).status_code == 302
    client.logout()
    assert log_in(client, dora, "right-password", elsewhere).status_code == 429


@pytest.mark.django_db
def test_the_admin_login_page_keeps_the_same_limit(client, users, address):
    staff = users[0]
    staff.is_staff = True
    staff.save()
    admin_login = reverse("admin:login")
    for _ in range(3):
        log_in(client, staff.username, "guess", address, url=admin_login)
    refused = log_in(client, staff.username, "right-password", address, url=admin_login)
    assert "Too many failed logins with this username" in refused.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_client_is_not_what_it_writes_in_x_forwarded_for_unless_proxies_are_counted(
    client, settings, users, address
):
    emil = users[1].username
    for n in range(5):
        log_in(client, stranger(), "guess", address, x_forwarded_for=f"192.0.2.{n}")
    refused = log_in(client, emil, "right-password", address, x_forwarded_for="192.0.2.99")
    assert refused.status_code == 429

    # Behind one proxy (at `address`), the client is the address it appended, whatever the
    # client wrote before it.
    settings.OCRREVIEW_PROXY_COUNT = 1
    behind = "203.0.113.20"
    window_passes("address", behind)
    for n in range(5):
        log_in(client, stranger(), "guess", address, x_forwarded_for=f"10.0.0.{n}, {behind}")
    assert (
        log_in(client, emil, "right-password", address, x_forwarded_for=behind).status_code == 429
    )
    other = "203.0.113.21"
    window_passes("address", other)
    assert log_in(client, emil, "right-password", address, x_forwarded_for=other).status_code == 302


@pytest.mark.django_db
def test_an_ipv6_client_counts_as_its_64(client, users):
    emil = users[1].username
    network = f"2001:db8:{uuid.uuid4().int % 65535:x}:1"
    window_passes("address", f"{network}::/64")
    for n in range(5):
        log_in(client, stranger(), "guess", f"{network}::{n + 1:x}")
    assert log_in(client, emil, "right-password", f"{network}:ffff::1").status_code == 429


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "client"),
    [
        (0, "198.51.100.1", "192.0.2.1", "198.51.100.1"),
        (1, "198.51.100.1", "192.0.2.1, 192.0.2.2", "192.0.2.2"),
        (2, "198.51.100.1", "192.0.2.1, 192.0.2.2", "192.0.2.1"),
        # Not through both proxies: the peer sent it, whatever it wrote.
        (2, "198.51.100.1", "192.0.2.1", "198.51.100.1"),
        (1, "198.51.100.1", None, "198.51.100.1"),
        (0, "::ffff:198.51.100.1", None, "198.51.100.1"),
        (0, "2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
    ],
)
def test_client_address(settings, rf, proxies, remote, forwarded, client):
    settings.OCRREVIEW_PROXY_COUNT = proxies
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    request = rf.get("/", REMOTE_ADDR=remote, headers=headers)
    assert client_address(request) == client

"""Reviewers see only their collections (404 elsewhere) and cannot change settings (403)."""

import io
import logging

import pytest
from django.urls import reverse


def test_anonymous_users_are_sent_to_the_login_page(client, letters):
    response = client.get(reverse("collection_detail", args=[letters.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_scripts_request_without_a_session_is_a_401_not_the_login_page(client, letters):
    url = reverse("collection_settings", args=[letters.pk])
    response = client.post(url, {}, headers={"X-Requested-With": "fetch"})
    assert response.status_code == 401
    assert "your session has ended" in response.json()["error"]
    assert client.get(url).status_code == 302  # a person's page load still goes to log in


def test_login_page_logs_in(client, bob):
    response = client.post(reverse("login"), {"username": "bob", "password": "password"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_home_lists_only_my_collections(client, bob, charlie, letters, ledgers):
    client.force_login(bob)
    page = client.get(reverse("home")).content.decode()
    assert "Letters" in page and "Ledgers" not in page


def test_reviewer_gets_404_on_a_collection_not_theirs(client, bob, ledgers):
    client.force_login(bob)
    assert client.get(reverse("collection_detail", args=[ledgers.pk])).status_code == 404
    assert client.get(reverse("collection_settings", args=[ledgers.pk])).status_code == 404


def test_reviewer_gets_403_on_admin_actions(client, bob, letters):
    client.force_login(bob)
    assert client.get(reverse("collection_detail", args=[letters.pk])).status_code == 200
    url = reverse("collection_settings", args=[letters.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"confidence_threshold": "0.1", "nbest_size": "3"})
    assert response.status_code == 403
    letters.refresh_from_db()
    assert letters.confidence_threshold == 0.9


def test_collection_admin_changes_the_review_policy(client, alice, letters):
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    response = client.post(
        url,
        {
            "confidence_threshold": "0.75",
            "nbest_size": "4",
            "special_characters": "ſ",
            "confirm_uncalibrated": "on",
        },
    )
    assert response.status_code == 302
    letters.refresh_from_db()
    assert (letters.confidence_threshold, letters.nbest_size) == (0.75, 4)


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "high"])
def test_bad_threshold_is_refused_with_a_message(client, alice, letters, threshold):
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    response = client.post(url, {"confidence_threshold": threshold, "nbest_size": "4"})
    assert response.status_code == 200
    assert response.context["form"].errors["confidence_threshold"]
    letters.refresh_from_db()
    assert letters.confidence_threshold == 0.9


def test_staff_see_every_collection(client, staff, letters, ledgers):
    client.force_login(staff)
    assert client.get(reverse("collection_settings", args=[ledgers.pk])).status_code == 200


def test_every_model_is_in_the_django_admin():
    from django.apps import apps
    from django.contrib import admin

    ours = [m for m in apps.get_models() if m.__module__.startswith("ocrreview.")]
    assert ours
    assert [m for m in ours if m not in admin.site._registry] == []


def test_a_refused_request_is_one_line_in_the_log(client, bob, letters):
    """A 403 is an answer, not a fault: the console log says so in one line, no traceback."""
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    written = io.StringIO()
    previous = console.setStream(written)
    try:
        client.force_login(bob)
        assert client.get(reverse("collection_settings", args=[letters.pk])).status_code == 403
    finally:
        console.setStream(previous)
    assert written.getvalue().splitlines() == [
        f"Forbidden (Permission denied): /collections/{letters.pk}/settings/"
    ]

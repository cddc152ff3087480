"""Redis down or restarting: the site goes on without its cache (ocrreview/cache.py). Pages,
logins and the API answer; sessions come from PostgreSQL; the limits counted in the cache
are not enforced meanwhile. Redis is made unreachable by pointing the cache at a closed port
of this machine, which refuses connections as a stopped Redis does."""

import logging
import math

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

import ocrreview.cache
from ocrreview.corpus.tokens import do_create_api_token

UNREACHABLE = {
    "default": {
        "BACKEND": "ocrreview.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}


@pytest.fixture
def redis_down(settings):
    settings.CACHES = UNREACHABLE  # Django drops its cache connections when CACHES changes


@pytest.mark.django_db
def test_a_signed_in_reviewer_keeps_working(client, bob, letters, redis_down):
    client.force_login(bob)
    page = client.get(reverse("collection_detail", args=[letters.pk]))
    assert page.status_code == 200
    assert "Letters" in page.content.decode()


@pytest.mark.django_db
def test_logins_are_answered_and_the_outage_is_logged(client, bob, redis_down, caplog, monkeypatch):
    monkeypatch.setattr(ocrreview.cache, "_last_warning", -math.inf)
    url = reverse("login")
    with caplog.at_level(logging.WARNING, logger="ocrreview.cache"):
        wrong = client.post(url, {"username": "bob", "password": "not-this"})
    assert wrong.status_code == 200
    assert wrong.context["form"].errors
    # The failure is counted in the cache, several calls: said once, not once a call.
    assert caplog.text.count("The Redis cache cannot be reached") == 1
    right = client.post(url, {"username": "bob", "password": "password"})
    assert right.status_code == 302
    assert client.get(reverse("home")).status_code == 200  # the session, read from its row


@pytest.mark.django_db
def test_the_api_answers_token_clients(client, alice, redis_down):
    key = do_create_api_token(alice, "scanner")
    response = client.get(reverse("api_collections"), headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["Letters"]


@pytest.mark.django_db
def test_an_unreachable_cache_answers_as_an_empty_one(redis_down):
    assert cache.get("anything", "fallback") == "fallback"
    assert cache.get_many(["a", "b"]) == {}
    assert cache.add("count", 0) is False
    assert cache.incr("count") == 0
    cache.set("kept", 1)
    assert cache.get("kept") is None


@pytest.mark.django_db
def test_a_logout_while_redis_is_down_stays_a_logout_once_it_is_back(client, bob, settings):
    client.force_login(bob)
    assert client.get(reverse("home")).status_code == 200
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    kept = settings.CACHES
    settings.CACHES = UNREACHABLE
    client.post(reverse("logout"))
    settings.CACHES = kept  # Redis back, with whatever it held before
    stolen = Client()
    stolen.cookies[django_settings.SESSION_COOKIE_NAME] = cookie
    response = stolen.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))

"""Redis down or restarting: the site goes on without its cache (ocrreview/cache.py). Pages,
logins and the API answer; sessions come from PostgreSQL; the limits counted in the cache
are not enforced meanwhile. Redis is made unreachable by pointing the cache at a closed port
of this machine, which refuses connections as a stopped Redis does."""

import logging

import pytest
from django.core.cache import cache
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
def test_a_signed_in_reviewer_keeps_working_and_the_outage_is_logged(
    client, bob, letters, redis_down, caplog, monkeypatch
):
    monkeypatch.setattr(ocrreview.cache, "_last_warning", 0.0)
    client.force_login(bob)
    with caplog.at_level(logging.WARNING, logger="ocrreview.cache"):
        page = client.get(reverse("collection_detail", args=[letters.pk]))
    assert page.status_code == 200
    assert "Letters" in page.content.decode()
    assert caplog.text.count("The Redis cache cannot be reached") == 1  # not once a call


@pytest.mark.django_db
def test_logins_are_answered(client, bob, redis_down):
    url = reverse("login")
    wrong = client.post(url, {"username": "bob", "password": "not-this"})
    assert wrong.status_code == 200
    assert wrong.context["form"].errors
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

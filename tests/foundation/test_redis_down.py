"""Redis down or restarting: the site goes on without it (ocrreview/cache.py). Pages, logins
and the API answer; sessions come from PostgreSQL; the limits are counted in each process's
memory meanwhile. Redis is made unreachable by pointing the cache at a closed port of this
machine, which refuses connections as a stopped Redis does, or at a server that takes
connections and never answers, as a hung one does."""

import logging
import math
import socket
import threading

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
def redis_down(settings, monkeypatch):
    monkeypatch.setattr(ocrreview.cache, "_down_until", {})
    settings.CACHES = UNREACHABLE  # Django drops its cache connections when CACHES changes
    cache.local.clear()  # the process's memory outlives a test


@pytest.fixture
def silent_redis(settings, monkeypatch):
    """A server that takes connections and never answers; yields the connections it took."""
    monkeypatch.setattr(ocrreview.cache, "_down_until", {})
    listener = socket.create_server(("127.0.0.1", 0))
    taken: list[socket.socket] = []

    def take() -> None:
        while True:
            try:
                taken.append(listener.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=take, daemon=True).start()
    settings.CACHES = {
        "default": {
            "BACKEND": "ocrreview.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{listener.getsockname()[1]}/0",
            "OPTIONS": {"socket_timeout": 0.2},
        }
    }
    cache.local.clear()
    yield taken
    listener.close()
    for connection in taken:
        connection.close()


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
def test_an_unreachable_cache_is_stood_in_for_by_the_process_memory(redis_down):
    assert cache.get("anything", "fallback") == "fallback"
    assert cache.add("count", 0) is True
    assert cache.incr("count") == 1
    assert cache.incr("count") == 2
    cache.set("kept", 1)
    assert cache.get_many(["kept", "count"]) == {"kept": 1, "count": 2}
    cache.delete("kept")
    assert cache.has_key("kept") is False


@pytest.mark.django_db
def test_failed_logins_are_still_limited_while_redis_is_down(client, bob, redis_down, settings):
    settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = 3
    for _ in range(3):
        assert (
            client.post(reverse("login"), {"username": "bob", "password": "x"}).status_code == 200
        )
    refused = client.post(reverse("login"), {"username": "bob", "password": "password"})
    assert refused.status_code == 429


@pytest.mark.django_db
def test_a_silent_redis_is_waited_for_once_then_left_alone_for_a_while(silent_redis, monkeypatch):
    assert cache.add("count", 0) is True  # waited 0.2 s for an answer, then counted here
    tries = len(silent_redis)
    assert tries >= 1
    for _ in range(20):
        cache.incr("count")
    assert cache.get("count") == 20
    assert len(silent_redis) == tries  # no call went to Redis: none waited for its timeout


@pytest.mark.django_db
def test_redis_is_tried_again_once_the_wait_is_over(silent_redis, monkeypatch):
    cache.get("a")
    tries = len(silent_redis)
    monkeypatch.setattr(ocrreview.cache, "_down_until", {})  # the wait is over
    cache.get("a")
    assert len(silent_redis) > tries


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


@pytest.mark.django_db
@pytest.mark.parametrize("redis_was", ["down, then back", "up, then down"])
def test_a_count_started_on_one_side_of_an_outage_goes_on_on_the_other(monkeypatch, redis_was):
    """The login limit adds its key, then counts: an outage starting or ending between the two
    put them in different stores, and the count raised (a 500 on the login page)."""
    down = {cache.location: math.inf}
    monkeypatch.setattr(ocrreview.cache, "_down_until", down if redis_was[:4] == "down" else {})
    cache.local.clear()
    cache.delete("failures")
    assert cache.add("failures", 0) is True
    monkeypatch.setattr(ocrreview.cache, "_down_until", {} if redis_was[:4] == "down" else down)
    assert cache.incr("failures") == 1
    assert cache.incr("failures") == 2

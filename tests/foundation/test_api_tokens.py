"""/account/tokens/ and the token commands: several named tokens per user, the key shown once
and stored as a hash, revoked by their owner only; and the rate limits on tokens."""

import hashlib
import secrets

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse

from ocrreview.corpus.models import ApiToken
from ocrreview.corpus.tokens import MAX_TOKENS_PER_USER, do_create_api_token


@pytest.fixture(autouse=True)
def _fresh_counters(alice, bob):
    """The counters live in the shared cache, keyed by user id, which a database made anew
    hands out again."""
    for user in (alice, bob):
        cache.delete_many([f"token-creations:{user.pk}", f"throttle_api_{user.pk}"])


def create(client, name, once=None):
    """As the page sends it: each form rendered has a nonce of its own."""
    return client.post(reverse("api_tokens"), {"name": name, "once": once or secrets.token_hex()})


@pytest.mark.django_db
def test_a_user_creates_named_tokens_sees_each_key_once_and_only_its_hash_is_kept(client, alice):
    client.force_login(alice)
    first = create(client, "scanner")
    assert first.status_code == 200
    key = first.context["key"]
    assert key in first.content.decode()
    assert "no-store" in first["Cache-Control"]  # kept by no cache, the back button's included
    create(client, "notebook")
    page = client.get(reverse("api_tokens")).content.decode()
    assert "scanner" in page and "notebook" in page and key not in page
    stored = ApiToken.objects.get(name="scanner")
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest() and stored.prefix == key[:8]
    assert not ApiToken.objects.filter(key_hash=key).exists()
    response = client.get(reverse("api_collections"), headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert ApiToken.objects.get(name="scanner").last_used_at is not None


@pytest.mark.django_db
def test_reloading_the_answer_that_shows_a_key_makes_no_second_token(client, alice):
    """The form's nonce is kept with its token, not in a cache a web process keeps alone."""
    client.force_login(alice)
    once = client.get(reverse("api_tokens")).context["form"]["once"].value()
    assert create(client, "scanner", once).status_code == 200
    again = create(client, "scanner", once)  # the browser's "send the form again?"
    assert again.status_code == 409 and again.context["key"] is None
    assert "made its token already" in again.content.decode()
    assert alice.api_tokens.count() == 1
    # The page answering it makes the next token.
    fresh = again.context["form"]["once"].value()
    assert fresh != once and create(client, "notebook", fresh).status_code == 200
    assert alice.api_tokens.count() == 2


@pytest.mark.django_db
def test_a_form_refused_for_the_rate_may_be_sent_again_later(client, alice, settings):
    settings.OCRREVIEW_TOKEN_CREATION_RATE = 1
    client.force_login(alice)
    assert create(client, "scanner", "form-1").status_code == 200  # the hour's one
    assert create(client, "notebook", "form-2").status_code == 429
    cache.delete(f"token-creations:{alice.pk}")  # an hour later
    assert create(client, "notebook", "form-2").status_code == 200
    assert alice.api_tokens.count() == 2


@pytest.mark.django_db
def test_a_revoked_key_is_refused_and_nobody_revokes_anothers_token(client, alice, bob):
    key = do_create_api_token(alice, "scanner")
    token = ApiToken.objects.get(user=alice)
    client.force_login(bob)
    client.post(reverse("revoke_api_token", args=[token.pk]))
    assert ApiToken.objects.filter(pk=token.pk).exists()
    client.force_login(alice)
    response = client.post(reverse("revoke_api_token", args=[token.pk]), follow=True)
    assert "revoked" in response.content.decode()
    refused = client.get(reverse("api_collections"), headers={"Authorization": f"Token {key}"})
    assert refused.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_token_needs_a_name_that_fits(client, alice, name):
    client.force_login(alice)
    response = create(client, name)
    assert response.status_code == 400 and response.context["key"] is None
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_user_may_hold_a_bounded_number_of_tokens(client, alice, settings):
    settings.OCRREVIEW_TOKEN_CREATION_RATE = 1000
    for n in range(MAX_TOKENS_PER_USER):
        do_create_api_token(alice, f"t{n}")
    client.force_login(alice)
    response = create(client, "one more")
    assert response.status_code == 400 and "revoke one" in response.content.decode()
    assert alice.api_tokens.count() == MAX_TOKENS_PER_USER


@pytest.mark.django_db
def test_creating_tokens_from_the_page_is_rate_limited(client, alice, settings):
    settings.OCRREVIEW_TOKEN_CREATION_RATE = 2
    client.force_login(alice)
    assert [create(client, f"t{n}").status_code for n in range(3)] == [200, 200, 429]
    assert alice.api_tokens.count() == 2


@pytest.mark.django_db
def test_api_requests_past_the_rate_are_a_429_with_retry_after(client, alice, bob, settings):
    settings.OCRREVIEW_API_RATE = "3/min"
    alice_key = do_create_api_token(alice, "a")
    second_key = do_create_api_token(alice, "b")
    url = reverse("api_collections")
    codes = [
        client.get(url, headers={"Authorization": f"Token {key}"}).status_code
        for key in (alice_key, second_key, alice_key, second_key)
    ]
    assert codes == [200, 200, 200, 429]  # one budget for all of a user's tokens
    limited = client.get(url, headers={"Authorization": f"Token {alice_key}"})
    assert int(limited["Retry-After"]) > 0 and "throttled" in limited.json()["error"]
    bobs = client.get(url, headers={"Authorization": f"Token {do_create_api_token(bob, 'b')}"})
    assert bobs.status_code == 200


@pytest.mark.django_db
def test_the_command_revokes_a_token_named_by_the_start_of_its_key(alice, capsys):
    key = do_create_api_token(alice, "scanner")
    do_create_api_token(alice, "other")
    with pytest.raises(CommandError, match="at least the key's first 4"):
        call_command("revoke_api_token", "alice", key[:3])
    with pytest.raises(CommandError, match="0 tokens"):
        call_command("revoke_api_token", "alice", "zzzzzzzz")
    call_command("revoke_api_token", "alice", key[:6])
    assert "Revoked scanner" in capsys.readouterr().out
    assert list(alice.api_tokens.values_list("name", flat=True)) == ["other"]
    with pytest.raises(CommandError, match="No user"):
        call_command("revoke_api_token", "nobody", key)


@pytest.mark.django_db
def test_a_key_never_starts_with_a_dash_which_the_command_would_take_for_an_option(
    alice, monkeypatch
):
    drawn = iter(["-nTjACvp" + "a" * 35, "xnTjACvp" + "b" * 35])
    monkeypatch.setattr("ocrreview.corpus.tokens.secrets.token_urlsafe", lambda n: next(drawn))
    assert do_create_api_token(alice, "scanner") == "xnTjACvp" + "b" * 35


@pytest.mark.django_db
def test_a_token_made_before_that_whose_key_starts_with_a_dash_is_revoked_after_two_dashes(
    alice, capsys
):
    ApiToken.objects.create(user=alice, name="old", prefix="-nTjACvp", key_hash="0" * 64)
    with pytest.raises(CommandError, match="prefix"):
        call_command("revoke_api_token", "alice", "-nTj")
    call_command("revoke_api_token", "alice", "--", "-nTj")
    assert "Revoked old" in capsys.readouterr().out and not alice.api_tokens.exists()

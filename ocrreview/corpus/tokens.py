"""API tokens: minted once and shown once, then recognised by their hash."""

import hashlib
import secrets

from django.utils import timezone

from ocrreview.corpus.models import ApiToken


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def do_create_api_token(user, name: str) -> str:
    """Returns the key; it cannot be recovered later."""
    key = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name=name, prefix=key[:8], key_hash=_hash(key))
    return key


def user_for_key(key: str):
    """The active user a key belongs to, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(key), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user

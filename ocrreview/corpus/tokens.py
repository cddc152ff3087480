"""API tokens: minted once and shown once, then recognised by their hash."""

import hashlib
import logging
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ocrreview.corpus.models import ApiToken
from ocrreview.corpus.names import entered_name

logger = logging.getLogger(__name__)

MAX_TOKENS_PER_USER = 20


class TokenError(ValueError):
    """The token cannot be made or revoked as asked; the message says why."""


class FormSentAgain(TokenError):
    """The page's form made its token already: this is the browser sending it again."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    # A key starting with "-" would be taken for an option when its start is given to
    # `manage.py revoke_api_token`.
    while (key := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return key


def do_create_api_token(user, name: str, form_nonce: str = "") -> str:
    """Returns the key; it cannot be recovered later. A form_nonce makes one token at most."""
    name = entered_name(name)
    if not name:
        raise TokenError("Name the token, so you can tell it from your others.")
    with transaction.atomic():
        # Locking the user's row makes two concurrent creations count each other.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if user.api_tokens.count() >= MAX_TOKENS_PER_USER:
            raise TokenError(
                f"You have {MAX_TOKENS_PER_USER} tokens; revoke one you no longer use first."
            )
        if form_nonce and user.api_tokens.filter(form_nonce=form_nonce).exists():
            raise FormSentAgain(
                "This form made its token already (a reload sends it again). Its key was shown "
                "once, when it was made: if you did not copy it, revoke that token below and "
                "make another."
            )
        key = _new_key()
        ApiToken.objects.create(
            user=user, name=name, prefix=key[:8], key_hash=_hash(key), form_nonce=form_nonce
        )
    logger.info("API token %r (%s…) created for %s", name, key[:8], user)
    return key


def new_form_nonce() -> str:
    return secrets.token_urlsafe(16)


def take_creation_slot(user) -> bool:
    """Whether the user may create another token now: at most OCRREVIEW_TOKEN_CREATION_RATE
    an hour from the web page, so a script gone wrong (or a stolen session) cannot mint keys
    in a loop."""
    key = f"token-creations:{user.pk}"
    cache.add(key, 0, timeout=3600)
    return cache.incr(key) <= settings.OCRREVIEW_TOKEN_CREATION_RATE


def do_revoke_api_token(user, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens; a request with its key is refused from now on."""
    token = user.api_tokens.filter(pk=token_id).first()
    if token is None:
        raise TokenError("You have no such token.")
    token.delete()
    logger.info("API token %r (%s…) of %s revoked", token.name, token.prefix, user)
    return token


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

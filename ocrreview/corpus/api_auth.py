"""The HTTP API's authentication: `Authorization: Token <key>` only (see `manage.py
create_api_token`): a browser session must not be usable cross-site without CSRF.

Kept apart from api_base.py: REST framework imports its authentication classes while its
own views module loads, so this module may import nothing of that module."""

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.throttling import UserRateThrottle

from ocrreview.corpus.tokens import user_for_key

TOKEN_HELP = "Send a valid API token: 'Authorization: Token <key>'."


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != self.keyword:
            return None
        user = user_for_key(key.strip()) if key.strip() else None
        if user is None:
            raise exceptions.AuthenticationFailed(TOKEN_HELP)
        return user, None

    def authenticate_header(self, request) -> str:
        return self.keyword


class TokenUserRateThrottle(UserRateThrottle):
    """OCRREVIEW_API_RATE per user over all their tokens, read per request (REST framework's
    own setting is read once at import) so that a test or an operator can change it."""

    scope = "api"

    def get_rate(self) -> str:
        return settings.OCRREVIEW_API_RATE

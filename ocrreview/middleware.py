"""Project-wide request handling."""

from urllib.parse import urlparse

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import resolve_url


class ScriptLoginRequired:
    """A script's request (X-Requested-With) once the session has ended gets a 401 with a
    message instead of the redirect to the login page: fetch follows redirects, so the editor
    took the login page for a saved line and dropped the reviewer's text."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 302
            and request.headers.get("X-Requested-With")
            and urlparse(response["Location"]).path == resolve_url(settings.LOGIN_URL)
        ):
            return JsonResponse(
                {
                    "error": "your session has ended. Log in again in another tab, then try "
                    "again: your text is kept here."
                },
                status=401,
            )
        return response

"""Project-wide request handling."""

import logging
from urllib.parse import urlparse

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import resolve_url

from ocrreview.db_errors import connection_lost

logger = logging.getLogger(__name__)

# Long enough for PostgreSQL to restart or fail over.
DATABASE_RETRY_AFTER_S = 30


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


class PageUserChanged:
    """A script's request names the user its page was made for (the X-Ocrreview-User header,
    or a beacon's as_user query parameter, since a beacon sends no header): refused with a
    403 when someone else is logged in now. On a browser people share, a log-in in another
    tab made an open tab's drafts, saves and beacons the newcomer's, and its unsaved text came
    back to them as theirs; refused, the text stays in the browser under its typist's name.
    The body is not read here: an upload's would be parsed, and its files written, before
    any view refused it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        named = request.headers.get("X-Ocrreview-User", request.GET.get("as_user"))
        if named is not None and self._someone_else(request, named):
            return JsonResponse(
                {
                    "error": f"{request.user.get_username()} has logged in on this browser "
                    "since this page was opened, so nothing was sent for them. Reload the "
                    "page to work as them; what was typed here is kept for who typed it."
                },
                status=403,
            )
        return self.get_response(request)

    @staticmethod
    def _someone_else(request, named: str) -> bool:
        try:
            return request.user.is_authenticated and named != str(request.user.pk)
        except Exception as exc:
            if not connection_lost(exc):
                raise
            # The view meets the same loss, and DatabaseUnavailable answers it with a 503.
            return False


class DatabaseUnavailable:
    """A request that loses the database (a restart, a failover) is answered 503 with
    Retry-After, not 500: a script retries, and a person knows that nothing they sent was
    refused (an upload's files already added are known as duplicates when sent again)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not connection_lost(exception):
            return None  # a deadlock, a timeout: a server error, with its traceback
        logger.warning("%s %s lost the database: %s", request.method, request.path, exception)
        message = "The database cannot be reached for the moment; try again in a minute."
        if request.path.startswith("/api/") or request.headers.get("X-Requested-With"):
            response = JsonResponse({"error": message}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response

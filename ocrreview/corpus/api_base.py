"""How the HTTP API pages lists, answers errors and describes its authentication in the
schema, for every app's API views. Errors keep the API's own shape, `{"error": message}` with
`fields` for invalid input, which clients of the first API rely on."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler

from ocrreview.corpus.api_auth import TOKEN_HELP, ApiTokenAuthentication


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; create keys on your API tokens page.",
        }


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.data = {"error": TOKEN_HELP}
    elif response.status_code == status.HTTP_404_NOT_FOUND:
        # The same answer whether the object is missing or not yours, naming no model.
        response.data = {"error": "Not found."}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "Invalid request.", "fields": _fields(exc.detail)}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"])}
    return response


def _fields(detail) -> dict:
    """DRF's error lists in the shape Django forms give (`errors.get_json_data()`)."""
    if not isinstance(detail, dict):
        detail = {"__all__": detail}
    return {
        name: [
            {"message": str(error), "code": getattr(error, "code", "invalid")}
            for error in (errors if isinstance(errors, list) else [errors])
        ]
        for name, errors in detail.items()
    }


def error(message: str, code: int = status.HTTP_400_BAD_REQUEST, **extra) -> Response:
    return Response({"error": message, **extra}, status=code)


class IdCursorPagination(CursorPagination):
    """Stable under inserts: a client paging through a growing collection misses nothing."""

    ordering = "id"
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"

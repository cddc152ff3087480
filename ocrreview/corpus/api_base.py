"""How the HTTP API reads JSON bodies, pages lists and answers errors, for every app's API
views. Errors keep the API's own shape, `{"error": message}` with `fields` for invalid input,
which clients of the first API rely on. (The schema's side of both: api_schema.py.)"""

import re
import sys
from collections.abc import Mapping

from django import forms
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.views.defaults import bad_request, page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.mediatypes import media_type_matches
from rest_framework.views import exception_handler

from ocrreview.corpus.api_auth import TOKEN_HELP
from ocrreview.corpus.json_text import unstorable


class TextJSONParser(JSONParser):
    """JSON whose strings can all be stored: any other is a 400 here rather than a 500 from
    the database, whichever form or serializer reads it."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
        if problem := unstorable(data):
            raise exceptions.ParseError(f"JSON parse error - a string holds {problem}.")
        return data


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


LIST_FIELDS = (forms.MultipleChoiceField, forms.ModelMultipleChoiceField)
UNKNOWN_FIELD = "not a field of this request"


def bind_form(form_class: type[forms.BaseForm], data, *, defaults: dict | None = None, **kwargs):
    """The web's form for the same action, bound to a JSON object: fields left out take the
    form's initial values (or `defaults`), so the API and the web validate alike. A body that
    is no object, names no field of the form, or gives a field a value of the wrong JSON
    type is a 400 here: a form would read a list or an object as its text."""
    if not isinstance(data, dict):
        raise exceptions.ValidationError("Send a JSON object.")
    unbound = form_class(**kwargs)
    problems = {}
    for name, value in data.items():
        field = unbound.fields.get(name)
        if field is None:
            problems[name] = [UNKNOWN_FIELD]
        elif not _fits(field, value):
            problems[name] = [_expected(field)]
    if problems:
        raise exceptions.ValidationError(problems)
    if defaults is None:
        defaults = {n: f.initial for n, f in unbound.fields.items() if f.initial is not None}
    return form_class({**defaults, **data}, **kwargs)


# A request body read by a serializer rather than a form: a key it has no field for is
# refused, as bind_form refuses it and as the schema says (`additionalProperties: false`).
# REST framework would drop it, and carry out the request without what a misspelt or misplaced
# field asked for. (Not a docstring: the schema would describe every subclass with it.)
class RequestSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = {name: [UNKNOWN_FIELD] for name in data if name not in self.fields}
            if unknown:
                raise serializers.ValidationError(unknown)
        return super().to_internal_value(data)


def _scalar(value) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _fits(field: forms.Field, value) -> bool:
    if isinstance(field, LIST_FIELDS):
        return isinstance(value, list) and all(_scalar(v) for v in value)
    if isinstance(field, forms.BooleanField):
        return isinstance(value, bool)
    if (
        isinstance(field, forms.FloatField)
        and isinstance(value, int)
        and not isinstance(value, bool)
    ):
        # JSON's integers have no bound; past a float's, the form's float() raises an
        # OverflowError, which it does not catch.
        return abs(value) <= sys.float_info.max
    return _scalar(value)


def _expected(field: forms.Field) -> str:
    if isinstance(field, LIST_FIELDS):
        return "a list of strings or numbers"
    if isinstance(field, forms.BooleanField):
        return "true or false"
    if isinstance(field, forms.FloatField):
        return f"a string, a number of at most {sys.float_info.max:.1e} or null"
    return "a string, a number or null"


class ServesFile:
    """For an APIView that answers with a file of `file_media_type` (a wildcard such as
    `image/*` allowed), and with JSON for its errors: an Accept header that only the file
    satisfies (an <img>'s `image/webp,image/*`, a download's `application/zip`) is no cause
    for a 406, which REST framework, negotiating with the JSON renderer alone, gave. Errors
    are JSON all the same."""

    file_media_type: str

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except exceptions.NotAcceptable:
            accepted = self.get_content_negotiator().get_accept_list(request)
            if not any(media_type_matches(self.file_media_type, a) for a in accepted):
                raise
            renderer = JSONRenderer()
            return renderer, renderer.media_type


def error(message: str, code: int = status.HTTP_400_BAD_REQUEST, **extra) -> Response:
    return Response({"error": message, **extra}, status=code)


class IdCursorPagination(CursorPagination):
    """Keyset pages by id: inserts and deletes shift no page. Ids are handed out at insert,
    not at commit, so a row committed late (a long upload's) may be behind a cursor already."""

    ordering = "id"
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"

    def get_page_size(self, request):
        """REST framework quietly falls back to the default for a bad page_size; a client that
        asked for one should learn it was not taken."""
        asked = request.query_params.getlist(self.page_size_query_param)
        if not asked:
            return self.page_size
        size = asked[0] if len(asked) == 1 and re.fullmatch("[0-9]{1,9}", asked[0]) else ""
        if not size or not 1 <= int(size) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"a whole number from 1 to {self.max_page_size}"]}
            )
        return int(size)

    def decode_cursor(self, request):
        """A cursor that is none of ours (cut short, made up) is a 400 naming it: a 404 would
        say the collection is missing, and a position that is no id would be a 500."""
        refused = exceptions.ValidationError(
            {self.cursor_query_param: [self.invalid_cursor_message]}
        )
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise refused from None
        position = None if cursor is None else cursor.position
        if position is not None and not re.fullmatch("[0-9]{1,18}", str(position)):
            raise refused
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


def refused_request(request, exception=None) -> JsonResponse | HttpResponse:
    """Django's own refusals (a body past DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, a bad
    Host): JSON under /api/, as every other API answer, and the usual page elsewhere."""
    if not request.path.startswith("/api/"):
        return bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return JsonResponse({"error": f"The request body is over {limit:,} bytes."}, status=413)
    return JsonResponse({"error": "Bad request."}, status=400)


def server_error(request) -> JsonResponse | HttpResponse:
    """A fault is logged with its traceback either way; the client under /api/ gets JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Server error; it has been logged."}, status=500)
    return django_server_error(request)


def not_found(request, exception=None) -> JsonResponse | HttpResponse:
    """Django's 404 for a URL that matches no route (an id that is not a number): JSON under
    /api/, as every other API answer, and the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Not found."}, status=404)
    return page_not_found(request, exception)

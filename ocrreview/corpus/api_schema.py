"""What the OpenAPI schema says beyond what drf-spectacular reads from the views: the token
scheme and the error answers every operation may give.

Apart from api_base.py: drf-spectacular's schema module imports REST framework's generic views,
which import the pagination class from api_base.py."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from ocrreview.corpus.api_auth import ApiTokenAuthentication


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; `manage.py create_api_token USER` prints a key.",
        }


class FieldErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    fields = serializers.DictField(
        child=FieldErrorSerializer(many=True), required=False, help_text="per invalid field"
    )


class ApiAutoSchema(AutoSchema):
    """Every operation may answer with an error: 400 for invalid input, 401 without a valid
    token, 403 for an action the collection's role does not allow, 404 for what is missing or
    not yours, 429 past the rate limit (with Retry-After). The schema says so, so that clients
    (and schemathesis) expect them."""

    error_codes = ("400", "401", "403", "404", "429")

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self.error_codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    ErrorSerializer, code, direction=direction
                )
        return responses


def refuse_unknown_fields(result, generator, request, public):
    """drf-spectacular's postprocessing hook: JSON request bodies are bound to the web's
    forms, which refuse a field they do not have (api_base.bind_form), or read by serializers
    that refuse it as well (api_base.RequestSerializer), and the schema says so. An upload's
    multipart form, as the web's, passes over fields it does not know."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request") or component.get("type") != "object":
            continue
        properties = component.get("properties", {}).values()
        if any("binary" in (p.get("format"), p.get("items", {}).get("format")) for p in properties):
            continue
        component.setdefault("additionalProperties", False)
    return result

"""The API's OpenAPI schema and its documentation page, served without a token; the
committed openapi.yaml is compared with the generated one by `make test`."""

from urllib.parse import urlsplit

import lxml.html
import yaml
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import spectacular_settings

from ocrreview.urls import GeneratedOnce


def test_the_schema_describes_every_api_route_and_the_token(client, db):
    response = client.get(reverse("api_schema"))
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/collections/",
        "/api/collections/{id}/",
        "/api/collections/{id}/documents/",
        "/api/collections/{id}/recognize/",
        "/api/documents/{id}/",
    } <= schema["paths"].keys()
    assert schema["components"]["securitySchemes"]["token"]["name"] == "Authorization"


def test_the_documentation_page_uses_the_apps_own_swagger_files(client, db):
    response = client.get(reverse("api_docs"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    # Where the page's scripts and styles come from, not its text: the CSRF token written in
    # it is random, and held "cdn" in about one run of a thousand.
    document = lxml.html.fromstring(page)
    sources = document.xpath("//script/@src | //link/@href")
    assert sources and all(urlsplit(source).netloc == "" for source in sources), sources


def test_the_schema_is_generated_once_and_names_no_version_it_was_asked_for(
    client, db, monkeypatch
):
    generated = []
    generate = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        generated.append(self.api_version)
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    monkeypatch.setattr(GeneratedOnce, "schema", None)
    url = reverse("api_schema")

    first = yaml.safe_load(client.get(url, {"version": "9", "lang": "fr"}).content)
    as_json = client.get(url, {"format": "json"})
    again = yaml.safe_load(client.get(url).content)

    assert generated == [None]
    assert first == as_json.json() == again
    assert first["info"]["version"] == "1"
    assert first["paths"]["/api/collections/"]["get"]["parameters"][0]["description"] == (
        "The pagination cursor value."
    )
    assert as_json["Content-Disposition"] == 'inline; filename="ocrreview API.json"'


def test_the_schema_is_the_same_whoever_asked_first(client, db, monkeypatch):
    def asked_from(result, generator, request, public):
        # Stands for any part of the schema drf-spectacular would make from the request that
        # asked first: its views are given requests copied from it, Host and all.
        result["info"]["x-asked-from"] = request.get_host() if request else None
        return result

    hooks = [*spectacular_settings.POSTPROCESSING_HOOKS, asked_from]
    monkeypatch.setattr(spectacular_settings, "POSTPROCESSING_HOOKS", hooks)
    schemas = []
    for host in ("localhost", "127.0.0.1"):
        monkeypatch.setattr(GeneratedOnce, "schema", None)
        response = client.get(reverse("api_schema"), {"format": "json"}, HTTP_HOST=host)
        assert response.status_code == 200
        schemas.append(response.json())
    assert schemas[0] == schemas[1]
    assert schemas[0]["info"]["x-asked-from"] is None

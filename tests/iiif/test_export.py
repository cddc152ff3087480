"""A document's transcription as a IIIF Presentation 3 manifest: valid, its annotations on
the right canvases at the right places, pointing back to the archive it came from."""

import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ocrreview.corpus.iiif import do_fetch_iiif_images, do_import_iiif
from ocrreview.corpus.iiif_export import IIIF_JSON, PRESENTATION_3
from ocrreview.corpus.models import Document, Line
from tests import factories
from tests.factories import token_headers as auth
from tests.iiif.presentation3 import SCHEMA
from tests.iiif.server import manifest_3

XYWH = re.compile(r"^(?P<canvas>[^#]+)#xywh=(\d+),(\d+),(\d+),(\d+)$")


def regions(manifest: dict) -> list[tuple[str, list[tuple[int, int]]]]:
    """Every line annotation's canvas and its points, checked to lie on that canvas."""
    canvases = {c["id"]: (c["width"], c["height"]) for c in manifest["items"]}
    found = []
    for canvas in manifest["items"]:
        for page in canvas["annotations"]:
            for annotation in page["items"]:
                target = annotation["target"]
                if isinstance(target, str):
                    match = XYWH.match(target)
                    x, y, w, h = map(int, match.groups()[1:])
                    source, points = match["canvas"], [(x, y), (x + w, y + h)]
                else:
                    source = target["source"]["id"]
                    svg = ET.fromstring(target["selector"]["value"])
                    polygon = svg.find("{http://www.w3.org/2000/svg}polygon")
                    points = [tuple(map(int, p.split(","))) for p in polygon.get("points").split()]
                assert source == canvas["id"]
                width, height = canvases[source]
                assert all(0 <= x <= width and 0 <= y <= height for x, y in points), points
                found.append((source, points))
    return found


@pytest.fixture
def imported(iiif_server, letters):
    """A manifest whose canvases are twice the size of the images its service gives."""
    first = iiif_server.image_service("e1", 640, 480)
    second = iiif_server.image_service("e2", 320, 400)
    url = manifest_3(
        iiif_server, "/e.json", [("f. 1r", 1280, 960, first), ("f. 1v", 640, 800, second)]
    )
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    do_fetch_iiif_images(document.pk, "test")
    document.refresh_from_db()
    document.lines.all().delete()
    first_page, second_page = document.pages.order_by("index")
    factories.make_line(
        first_page,
        0,
        text="Dear Sir, your letter",
        status=Line.Status.REVIEWED,
        confidence=0.55,
        polygon=[[10, 10], [630, 10], [630, 50], [10, 50]],
        bbox=[10, 10, 631, 51],
    )
    factories.make_line(
        first_page, 1, text="of the 3rd inst.", status=Line.Status.NEEDS_REVIEW, confidence=0.42
    )
    factories.make_line(first_page, 2, text="", status=Line.Status.PENDING)
    factories.make_line(
        second_page,
        0,
        text="Yours truly",
        status=Line.Status.AUTO_ACCEPTED,
        confidence=0.97,
        bbox=[0, 300, 320, 400],
    )
    return document, url


@pytest.mark.django_db
def test_a_rights_statement_written_with_https_is_published_as_its_registry_writes_it(
    client, imported, bob
):
    document, _ = imported
    document.iiif_descriptive["rights"] = "https://creativecommons.org/licenses/by/4.0/"
    document.save(update_fields=["iiif_descriptive"])
    response = client.get(reverse("api_document_iiif", args=[document.pk]), headers=auth(bob))
    manifest = response.json()
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["rights"] == "http://creativecommons.org/licenses/by/4.0/"


@pytest.mark.django_db
def test_an_imported_document_exports_its_lines_on_the_source_canvases(
    client, imported, bob, letters
):
    document, source = imported
    letters.licence = "CC BY 4.0"
    letters.save()
    response = client.get(reverse("api_document_iiif", args=[document.pk]), headers=auth(bob))
    assert response.status_code == 200
    manifest = response.json()
    jsonschema.validate(manifest, SCHEMA)

    assert manifest["id"] == f"http://testserver/api/documents/{document.pk}/iiif/manifest.json"
    assert manifest["label"] == {"en": ["Letters of Rebecca Lathrop"]}
    assert manifest["rights"] == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert manifest["seeAlso"][0]["id"] == source
    assert manifest["metadata"][-1] == {
        "label": {"en": ["Transcription licence"]},
        "value": {"none": ["CC BY 4.0"]},
    }
    canvases = manifest["items"]
    assert [c["id"] for c in canvases] == [f"{source}/canvas/1", f"{source}/canvas/2"]
    assert [(c["width"], c["height"]) for c in canvases] == [(1280, 960), (640, 800)]
    image = canvases[0]["items"][0]["items"][0]["body"]
    assert image["service"] == [
        {
            "id": "http://" + source.split("/")[2] + "/iiif/e1",
            "type": "ImageService3",
            "profile": "level1",
        }
    ]

    reviewed, unsure = canvases[0]["annotations"][0]["items"]
    assert reviewed["body"] == {
        "type": "TextualBody",
        "value": "Dear Sir, your letter",
        "format": "text/plain",
    }
    assert reviewed["label"] == {"en": ["line 1, reviewed"]}
    assert "ocrreview:confidence" not in reviewed
    assert unsure["body"]["value"] == "of the 3rd inst."
    assert unsure["ocrreview:confidence"] == 0.42
    assert unsure["label"] == {"en": ["line 2, not reviewed, model confidence 0.42"]}
    (accepted,) = canvases[1]["annotations"][0]["items"]
    assert accepted["ocrreview:status"] == "auto_accepted"

    # Page pixels scaled onto the canvases, twice as large as the images fetched.
    assert regions(manifest) == [
        (f"{source}/canvas/1", [(20, 20), (1260, 20), (1260, 100), (20, 100)]),
        (f"{source}/canvas/1", [(20, 100), (1000, 160)]),
        (f"{source}/canvas/2", [(0, 600), (640, 800)]),
    ]


@pytest.mark.django_db
def test_an_uploaded_document_exports_with_this_sites_images(client, letters, bob):
    document = factories.make_document(letters)
    page = factories.make_page(document, 0, 600, 400)
    factories.make_line(page, 0, text="Hello", status=Line.Status.NEEDS_REVIEW, confidence=0.5)
    client.force_login(bob)
    response = client.get(reverse("document_iiif_manifest", args=[document.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/ld+json")
    manifest = response.json()
    jsonschema.validate(manifest, SCHEMA)
    (canvas,) = manifest["items"]
    base = f"http://testserver/collections/{letters.pk}/review/pages/{page.pk}/"
    assert canvas["id"] == base
    assert canvas["items"][0]["items"][0]["body"]["id"] == f"{base}image/"
    assert manifest["label"] == {"none": ["Letter"]}
    assert regions(manifest) == [(base, [(10, 10), (500, 40)])]


@pytest.mark.django_db
def test_a_line_marked_unclear_is_published_as_a_guess_with_its_note(client, letters, bob):
    document = factories.make_document(letters)
    page = factories.make_page(document, 0, 600, 400)
    factories.make_line(page, 0, text="Hello", status=Line.Status.REVIEWED)
    Line.objects.filter(page=page).update(unclear=True, unclear_note="ink faded")
    factories.make_line(page, 1, text="World", status=Line.Status.REVIEWED)
    client.force_login(bob)
    manifest = client.get(reverse("document_iiif_manifest", args=[document.pk])).json()
    jsonschema.validate(manifest, SCHEMA)
    guess, sure = manifest["items"][0]["annotations"][0]["items"]
    assert guess["label"] == {"en": ["line 1, reviewed, marked unclear: ink faded"]}
    assert (guess["ocrreview:unclear"], guess["ocrreview:unclearNote"]) == (True, "ink faded")
    assert sure["label"] == {"en": ["line 2, reviewed"]} and "ocrreview:unclear" not in sure


@pytest.mark.django_db
def test_the_apis_manifest_points_at_images_its_token_fetches(client, letters, bob):
    """The web's image route wants a session: a token client got a redirect to the login."""
    document = factories.make_document(letters)
    page = factories.make_page(document, 0, 600, 400)
    factories.make_line(page, 0, text="Hello", status=Line.Status.REVIEWED)
    response = client.get(reverse("api_document_iiif", args=[document.pk]), headers=auth(bob))
    manifest = response.json()
    jsonschema.validate(manifest, SCHEMA)
    image = manifest["items"][0]["items"][0]["items"][0]["body"]["id"]
    assert image == f"http://testserver/api/pages/{page.pk}/image/"
    fetched = client.get(image, headers=auth(bob))
    assert fetched.status_code == 200 and fetched["Content-Type"].startswith("image/")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "accept, content_type",
    [
        (f'application/ld+json;profile="{PRESENTATION_3}"', IIIF_JSON),
        ("application/ld+json", IIIF_JSON),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
    ],
)
def test_the_apis_manifest_is_served_as_the_media_type_asked_for(
    client, letters, bob, accept, content_type
):
    document = factories.make_document(letters)
    factories.make_line(factories.make_page(document), 0, text="Hi", status="reviewed")
    headers = {**auth(bob), "Accept": accept}
    response = client.get(reverse("api_document_iiif", args=[document.pk]), headers=headers)
    assert response.status_code == 200 and response["Content-Type"] == content_type
    jsonschema.validate(response.json(), SCHEMA)


@pytest.mark.django_db
def test_the_schema_refuses_what_the_specification_does(client, letters, bob):
    """The check can fail: a manifest with a canvas id holding a fragment, a line without
    text or an unknown top-level property is refused."""
    document = factories.make_document(letters)
    factories.make_line(factories.make_page(document), 0, text="Hi", status="reviewed")
    client.force_login(bob)
    manifest = client.get(reverse("document_iiif_manifest", args=[document.pk])).json()
    for spoil in (
        lambda m: m["items"][0].update(id=m["items"][0]["id"] + "#p1"),
        lambda m: m["items"][0]["annotations"][0]["items"][0]["body"].update(value=""),
        lambda m: m.update(transcription="x"),
        lambda m: m["items"][0]["annotations"][0]["items"][0].update(motivation="commenting"),
    ):
        spoilt = client.get(reverse("document_iiif_manifest", args=[document.pk])).json()
        spoil(spoilt)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(spoilt, SCHEMA)
    jsonschema.validate(manifest, SCHEMA)


@pytest.mark.django_db
def test_a_document_without_pages_has_no_manifest_to_export(client, letters, bob):
    """Presentation 3 wants a canvas at least: "items": [] was served as a manifest."""
    document = factories.make_document(letters, title="Register", status="fetching")
    response = client.get(reverse("api_document_iiif", args=[document.pk]), headers=auth(bob))
    assert response.status_code == 409
    assert response.json() == {
        "error": "Register has no page yet (fetching images), so no IIIF manifest"
    }
    client.force_login(bob)
    assert client.get(reverse("document_iiif_manifest", args=[document.pk])).status_code == 409
    page = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert reverse("document_iiif_manifest", args=[document.pk]) not in page


@pytest.mark.django_db
def test_the_collection_page_counts_an_imported_register_s_canvases_without_reading_them(
    client, letters, bob
):
    canvases = [
        {"id": f"https://archive.example/c{n}", "width": 10, "height": 10} for n in range(3)
    ]
    document = factories.make_document(letters, status="fetching", iiif_canvases=canvases)
    factories.make_page(document)
    client.force_login(bob)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert "1 / 3 images" in page
    assert not [q for q in queries.captured_queries if '"iiif_canvases",' in q["sql"]]


@pytest.mark.django_db
def test_a_document_of_a_collection_you_cannot_see_is_not_found(client, letters, charlie):
    document = factories.make_document(letters)
    factories.make_page(document)
    response = client.get(reverse("api_document_iiif", args=[document.pk]), headers=auth(charlie))
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}
    client.force_login(charlie)
    assert client.get(reverse("document_iiif_manifest", args=[document.pk])).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", ""])
def test_the_texts_are_in_the_collections_language_where_it_names_one(
    client, letters, bob, language
):
    letters.language = language
    letters.save()
    document = factories.make_document(letters)
    page = factories.make_page(document, 0, 600, 400)
    factories.make_line(page, 0, text="Monsieur", status=Line.Status.REVIEWED)
    client.force_login(bob)
    manifest = client.get(reverse("document_iiif_manifest", args=[document.pk])).json()
    jsonschema.validate(manifest, SCHEMA)
    (annotation,) = manifest["items"][0]["annotations"][0]["items"]
    assert annotation["body"].get("language") == (language or None)


def test_an_attribution_in_html_goes_into_a_dataset_as_plain_text_on_one_line():
    """IIIF lets a requiredStatement hold some HTML; a data set's column would show the markup,
    and the text comes from someone else's server (a bidi override, a line break)."""
    from ocrreview.corpus.iiif_export import attribution_of

    statement = {
        "label": {"en": ["<b>Attribution</b>"]},
        "value": {
            "en": [
                '<span>Provided by <a href="https://library.example.org/">Stanford &amp; Co'
                "</a>\n\u202eLibraries</span>"
            ]
        },
    }
    assert attribution_of({"requiredStatement": statement}) == (
        "Attribution: Provided by Stanford & Co Libraries"
    )

"""The upload page's IIIF form and the API take a manifest URL as the import does, with the
upload's permissions; a refused manifest says why and stores nothing."""

import pytest
from django.urls import reverse

from ocrreview.corpus.iiif import do_fetch_iiif_images
from ocrreview.corpus.models import Document
from tests.factories import post_json
from tests.factories import token_headers as auth
from tests.iiif.server import manifest_3, send


def post(client, collection, user, body):
    return post_json(client, reverse("api_iiif", args=[collection.pk]), user, body)


@pytest.mark.django_db
def test_the_api_imports_a_manifest_once(client, iiif_server, letters, alice):
    service = iiif_server.image_service("a1", 200, 100)
    url = manifest_3(iiif_server, "/api.json", [("1", 200, 100, service), ("2", 200, 100, service)])
    response = post(client, letters, alice, {"manifest": url, "segmentation": "whole_image"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "fetching" and body["status_display"] == "Fetching images"
    assert (body["pages"], body["pages_expected"]) == (0, 2)
    assert body["title"] == "Letters of Rebecca Lathrop"

    do_fetch_iiif_images(body["id"], "test")
    detail = client.get(reverse("api_document", args=[body["id"]]), headers=auth(alice)).json()
    assert (detail["pages"], detail["pages_expected"], detail["lines_total"]) == (2, 2, 2)

    again = post(client, letters, alice, {"manifest": url})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert Document.objects.count() == 1


@pytest.mark.django_db
def test_the_api_says_why_a_manifest_is_refused_and_stores_nothing(
    client, iiif_server, letters, alice
):
    url = iiif_server.serve("/x.html", "<html></html>", "text/html")
    response = post(client, letters, alice, {"manifest": url})
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("the manifest is not JSON")
    assert body["fields"]["manifest"][0]["message"] == body["error"]
    for bad in ({"manifest": "not a url"}, {"manifest": url, "files": []}, {}, ["x"]):
        assert post(client, letters, alice, bad).status_code == 400
    response = post(client, letters, alice, {"manifest": url, "segmentation": "imported"})
    assert "segmentation" in response.json()["fields"]
    assert not Document.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["server-that-is-not.example", "unanswering"])
def test_the_api_says_a_manifest_server_that_cannot_be_reached_is_a_bad_gateway(
    client, iiif_server, letters, alice, settings, host
):
    """Not the request's fault, and perhaps not for good: a 502, where a manifest that
    answers wrongly is a 400."""
    if host == "unanswering":
        iiif_server.routes["/down.json"] = lambda h: send(h, b"down", "text/plain", status=503)
        url = iiif_server.url("/down.json")
    else:
        url = f"https://{host}/manifest.json"
    response = post(client, letters, alice, {"manifest": url})
    assert response.status_code == 502
    assert response.json()["fields"]["manifest"][0]["message"] == response.json()["error"]
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_only_the_collections_admins_import(client, iiif_server, letters, bob, charlie):
    url = iiif_server.serve("/m.json", {"hello": "world"})
    assert post(client, letters, bob, {"manifest": url}).status_code == 403
    assert post(client, letters, charlie, {"manifest": url}).status_code == 404
    assert iiif_server.hits["/m.json"] == 0


@pytest.mark.django_db
def test_the_upload_page_imports_a_manifest(client, iiif_server, letters, alice):
    service = iiif_server.image_service("w1", 200, 100)
    url = manifest_3(iiif_server, "/web.json", [("1", 200, 100, service)])
    client.force_login(alice)
    page = client.get(reverse("upload", args=[letters.pk])).content.decode()
    assert 'name="manifest"' in page and "IIIF manifest URL" in page
    response = client.post(
        reverse("import_iiif", args=[letters.pk]), {"manifest": url, "segmentation": "kraken"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("collection_detail", args=[letters.pk])
    detail = client.get(response["Location"]).content.decode()
    assert "fetching 1 images from the manifest" in detail
    assert "0 / 1 images" in detail
    document = Document.objects.get()
    assert document.segmentation == Document.Segmentation.KRAKEN

    again = client.post(
        reverse("import_iiif", args=[letters.pk]),
        {"manifest": url, "segmentation": "kraken"},
        follow=True,
    )
    assert "already in the collection" in again.content.decode()


@pytest.mark.django_db
def test_the_upload_page_shows_why_a_manifest_is_refused(client, iiif_server, letters, alice):
    url = iiif_server.serve("/no.json", {"hello": "world"})
    client.force_login(alice)
    response = client.post(
        reverse("import_iiif", args=[letters.pk]), {"manifest": url, "segmentation": "kraken"}
    )
    assert response.status_code == 400
    assert "not a IIIF Presentation manifest" in response.content.decode()
    assert not Document.objects.exists()

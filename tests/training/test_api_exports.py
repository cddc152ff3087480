"""POST/GET /api/collections/<id>/training/exports/, GET /api/training/exports/<id>/ and its
download: a collection's admins export its ground truth; reviewers get 403, outsiders 404."""

import io
import zipfile

import pytest
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from ocrreview.training.models import DatasetExport
from tests.factories import post_json
from tests.factories import token_headers as auth


def start(client, collection, user, body):
    return post_json(client, reverse("api_exports", args=[collection.pk]), user, body)


@pytest.mark.django_db
def test_an_admin_starts_an_export_with_the_forms_defaults(
    client, alice, letters, reviewed_letters, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = start(client, letters, alice, {"formats": ["imagefolder", "text"]})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["download_url"] is None
    assert body["formats"] == ["imagefolder", "text"]
    assert len(queued) == 1  # the build is handed to a worker once the row is committed
    export = DatasetExport.objects.get(pk=body["id"])
    assert export.filters["unit"] == "document" and export.created_by == alice


@pytest.mark.django_db
def test_a_done_export_is_listed_with_its_counts_and_downloads_as_a_zip(
    client, alice, letters, done_export
):
    headers = auth(alice)
    listed = client.get(reverse("api_exports", args=[letters.pk]), headers=headers).json()
    assert [e["id"] for e in listed["results"]] == [done_export.pk]
    detail = client.get(reverse("api_export", args=[done_export.pk]), headers=headers).json()
    assert detail["status"] == "done" and detail["counts"]["train"] > 0
    done_export.refresh_from_db()
    assert done_export.heartbeat_at is not None
    assert parse_datetime(detail["heartbeat_at"]) == done_export.heartbeat_at
    response = client.get(detail["download_url"], headers=headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "export.json" in archive.namelist()


@pytest.mark.django_db
def test_a_download_asked_for_as_a_zip_is_one(client, alice, done_export):
    headers = {**auth(alice), "Accept": "application/zip"}
    response = client.get(reverse("api_export_download", args=[done_export.pk]), headers=headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"


@pytest.mark.django_db
def test_an_unfinished_export_is_a_409_to_download(client, alice, letters):
    export = DatasetExport.objects.create(collection=letters, created_by=alice)
    response = client.get(reverse("api_export_download", args=[export.pk]), headers=auth(alice))
    assert response.status_code == 409 and response.json()["error"] == "The export is queued."


@pytest.mark.django_db
@pytest.mark.parametrize("who, code", [("bob", 403), ("charlie", 404)])
def test_exports_are_closed_to_reviewers_and_outsiders(
    client, bob, charlie, letters, done_export, who, code
):
    user = {"bob": bob, "charlie": charlie}[who]
    headers = auth(user)
    assert (
        client.get(reverse("api_exports", args=[letters.pk]), headers=headers).status_code == code
    )
    assert (
        client.get(reverse("api_export", args=[done_export.pk]), headers=headers).status_code
        == code
    )
    download = reverse("api_export_download", args=[done_export.pk])
    assert client.get(download, headers=headers).status_code == code
    assert start(client, letters, user, {}).status_code == code
    assert DatasetExport.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"formats": ["pdf"]}, "formats"),
        ({"formats": "text"}, "formats"),
        ({"min_confidence": 2}, "min_confidence"),
        ({"unit": "chapter"}, "unit"),
        ({"include_auto_accepted": "yes"}, "include_auto_accepted"),
        ({"documents": [999999]}, "documents"),
        ({"colour": "red"}, "colour"),
        ({"seed": 3_000_000_000}, "seed"),
        ({"seed": -3_000_000_000}, "seed"),
    ],
)
def test_a_bad_export_request_is_a_400_naming_the_field(client, alice, letters, body, field):
    response = start(client, letters, alice, body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not DatasetExport.objects.exists()


@pytest.mark.django_db
def test_another_collections_document_cannot_be_exported(client, alice, letters, ledgers):
    from tests import factories

    theirs = factories.make_document(ledgers, "Ledger")
    response = start(client, letters, alice, {"documents": [theirs.pk]})
    assert response.status_code == 400 and "documents" in response.json()["fields"]

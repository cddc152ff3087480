"""Exports in storage: built on S3 (moto's server over HTTP) the zip goes to the bucket and
nothing to MEDIA_ROOT; downloads are a presigned redirect there, a stream on the local disk,
and the permission is checked before either; training reads a split back from the bucket."""

import hashlib
from pathlib import Path

import pytest
import requests
from django.core.files.storage import default_storage
from django.urls import reverse

from ocrreview.training import splits
from ocrreview.training.exports import read_split
from tests.factories import token_headers
from tests.training.test_exports import export_now


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def s3_export(s3_storage, letters, alice, reviewed_letters):
    """An export built with the page images and the zip in the bucket (s3_storage comes
    first, so the pages are stored there too)."""
    return export_now(letters, alice)


def test_an_export_on_s3_is_stored_in_the_bucket_and_nothing_under_media_root(
    s3_storage, settings, s3_export
):
    assert s3_export.status == "done", s3_export.error
    assert s3_export.path == f"exports/{s3_export.pk}-{s3_export.claim.hex[:8]}.zip"
    client = s3_storage.client()
    listing = client.list_objects_v2(Bucket=settings.OCRREVIEW_S3_BUCKET, Prefix="exports/")
    assert [item["Key"] for item in listing["Contents"]] == [s3_export.path]
    body = client.get_object(Bucket=settings.OCRREVIEW_S3_BUCKET, Key=s3_export.path)["Body"]
    assert hashlib.sha256(body.read()).hexdigest() == s3_export.checksum
    assert files_under(Path(settings.MEDIA_ROOT)) == []


def test_the_download_on_s3_is_a_redirect_to_a_presigned_url_of_the_zip(
    client, s3_export, alice, letters
):
    client.force_login(alice)
    response = client.get(reverse("training_export_download", args=[s3_export.pk]))
    assert response.status_code == 302
    fetched = requests.get(response["Location"], timeout=30)
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == s3_export.checksum
    assert fetched.headers["Content-Type"] == "application/zip"
    assert (
        f'filename="{letters.name}-export-{s3_export.pk}.zip"'
        in fetched.headers["Content-Disposition"]
    )


def test_the_api_download_on_s3_is_a_redirect_too(client, s3_export, alice):
    url = reverse("api_export_download", args=[s3_export.pk])
    response = client.get(url, headers=token_headers(alice))
    assert response.status_code == 302
    fetched = requests.get(response["Location"], timeout=30)
    assert hashlib.sha256(fetched.content).hexdigest() == s3_export.checksum


@pytest.mark.parametrize("who, status", [("bob", 403), ("charlie", 404)])
def test_the_permission_is_checked_before_any_link_is_made(
    client, s3_export, bob, charlie, who, status
):
    user = {"bob": bob, "charlie": charlie}[who]
    client.force_login(user)
    response = client.get(reverse("training_export_download", args=[s3_export.pk]))
    assert response.status_code == status and "Location" not in response
    response = client.get(
        reverse("api_export_download", args=[s3_export.pk]), headers=token_headers(user)
    )
    assert response.status_code == status and "Location" not in response


def test_the_local_download_is_streamed_from_storage(client, alice, done_export):
    client.force_login(alice)
    response = client.get(reverse("training_export_download", args=[done_export.pk]))
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == done_export.checksum
    assert f'filename="Letters-export-{done_export.pk}.zip"' in response["Content-Disposition"]


@pytest.mark.parametrize("on_s3", [False, True])
def test_an_export_gone_from_storage_is_a_404(client, request, alice, letters, on_s3):
    if on_s3:
        request.getfixturevalue("s3_storage")
    request.getfixturevalue("reviewed_letters")
    export = export_now(letters, alice)
    default_storage.delete(export.path)
    client.force_login(alice)
    response = client.get(reverse("training_export_download", args=[export.pk]))
    assert response.status_code == 404
    response = client.get(
        reverse("api_export_download", args=[export.pk]), headers=token_headers(alice)
    )
    assert response.status_code == 404
    assert response.json()["error"] == "The export file is gone from storage."


def test_training_reads_a_split_back_from_the_bucket(s3_export, reviewed_letters, tmp_path):
    texts = {line.pk: line.text for line in reviewed_letters}
    samples = read_split(s3_export, splits.TRAIN, tmp_path).samples
    assert len(samples) == s3_export.counts["train"]
    for path, text in samples:
        line_id = int(path.stem.removeprefix("line-"))
        assert texts[line_id] == text and path.read_bytes().startswith(b"\x89PNG")

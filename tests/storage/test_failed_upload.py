"""An upload that the storage refuses (here: its bucket deleted under the running app) is
reported for that file, and leaves no document or page pointing at a missing object."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document, Page
from tests.factories import token_headers
from tests.ingestion import files


def delete_bucket(s3_storage) -> None:
    client = s3_storage.client()
    bucket = default_storage.bucket_name
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


@pytest.mark.django_db
def test_a_page_the_storage_refuses_leaves_no_row(s3_storage, letters):
    (stored,) = do_ingest(letters, [Upload.from_bytes("first.png", files.png(300, 60))])
    assert stored.ok
    delete_bucket(s3_storage)
    results = do_ingest(
        letters,
        [
            Upload.from_bytes("second.png", files.png(300, 60)),
            Upload.from_bytes("scan.pdf", files.pdf(2)),
        ],
    )
    for result in results:
        assert not result.ok
        assert result.error.startswith("the file could not be stored (")
        assert "NoSuchBucket" in result.error
    assert list(Document.objects.values_list("title", flat=True)) == ["first"]
    assert Page.objects.count() == 1


@pytest.mark.django_db
def test_the_api_reports_the_refused_file_and_stores_nothing(s3_storage, client, alice, letters):
    delete_bucket(s3_storage)
    response = client.post(
        reverse("api_collection_documents", args=[letters.pk]),
        {"files": [SimpleUploadedFile("page.png", files.png(300, 60))]},
        headers=token_headers(alice),
    )
    assert response.status_code == 400
    (result,) = response.json()["files"]
    assert result["error"].startswith("the file could not be stored (")
    assert not Document.objects.exists()

"""A file past OCRREVIEW_MAX_UPLOAD_MB is refused with its size and the limit, and only as
much of it as the limit is ever written to disk: the views' checks come after the request
has been read, and a 50 GB upload filled the disk before it was told."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from ocrreview.corpus.models import Document
from ocrreview.upload_handlers import CappedTemporaryFileUploadHandler
from tests.ingestion import files

MB = 1024 * 1024


def test_the_rest_of_a_file_past_the_limit_is_not_written_and_its_size_is_kept(settings):
    settings.OCRREVIEW_MAX_UPLOAD_MB = 1
    request = RequestFactory().post("/")
    assert CappedTemporaryFileUploadHandler in [type(each) for each in request.upload_handlers]
    handler = CappedTemporaryFileUploadHandler(request)
    handler.new_file("files", "huge.tif", "image/tiff", 0)
    for start in range(0, 3 * MB, 64 * 1024):
        handler.receive_data_chunk(b"x" * 64 * 1024, start)
    stored = handler.file_complete(3 * MB)
    assert stored.size == 3 * MB
    assert len(stored.read()) == MB
    stored.close()


@pytest.mark.django_db
def test_an_upload_past_the_limit_is_refused_with_its_size(client, alice, letters, settings):
    settings.OCRREVIEW_MAX_UPLOAD_MB = 1
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # to the temporary files, as large uploads go
    client.force_login(alice)
    big = files.jpeg() + b"\0" * (2 * MB)
    response = client.post(
        reverse("upload", args=[letters.pk]),
        {
            "files": [
                SimpleUploadedFile("huge.jpg", big),
                SimpleUploadedFile("a.jpg", files.jpeg()),
            ],
            "segmentation": "whole_image",
        },
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    body = response.content.decode()
    assert f"the file is {len(big) / MB:.1f} MB; the limit is 1 MB" in body
    assert list(Document.objects.values_list("title", flat=True)) == ["a"]


@pytest.mark.django_db
def test_a_dataset_archive_past_the_limit_is_refused_with_its_size(
    client, alice, letters, settings
):
    settings.OCRREVIEW_MAX_UPLOAD_MB = 1
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    client.force_login(alice)
    archive = io.BytesIO(
        files.zip_of({"lines/metadata.jsonl": b"", "pad.bin": b"\0" * 2 * MB}, compression=0)
    )
    response = client.post(
        reverse("training_import", args=[letters.pk]),
        {"archive": SimpleUploadedFile("lines.zip", archive.getvalue()), "text_column": "text"},
    )
    assert response.status_code == 400
    assert "The archive is 2.0 MB; the limit is 1 MB (OCRREVIEW_MAX_UPLOAD_MB)." in (
        response.content.decode()
    )
    assert not Document.objects.exists()

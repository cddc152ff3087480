"""The web upload: collection admins only; several files at once; results per file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ocrreview.corpus.models import Document
from tests.ingestion import files


def post(client, collection, *named, **data):
    uploads = [SimpleUploadedFile(name, content) for name, content in named]
    return client.post(
        reverse("upload", args=[collection.pk]),
        {"files": uploads, "segmentation": "kraken", **data},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )


@pytest.mark.django_db
def test_alice_uploads_several_files_and_sees_each_result(client, alice, letters):
    client.force_login(alice)
    page = client.get(reverse("upload", args=[letters.pk]))
    assert page.status_code == 200 and b'id="dropzone"' in page.content
    response = post(client, letters, ("a.jpg", files.jpeg()), ("b.txt", b"hello"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "a.jpg" in body and "1 page" in body
    assert "b.txt" in body and "unsupported file type" in body
    assert Document.objects.get().uploaded_by == alice


@pytest.mark.django_db
def test_without_javascript_the_full_page_comes_back(client, alice, letters):
    client.force_login(alice)
    response = client.post(
        reverse("upload", args=[letters.pk]),
        {"files": [SimpleUploadedFile("a.png", files.png())], "segmentation": "whole_image"},
    )
    assert response.status_code == 200
    assert b"<html" in response.content and b"Upload results" in response.content


@pytest.mark.django_db
def test_bad_form_data_is_a_400_with_the_reason(client, alice, letters):
    client.force_login(alice)
    response = post(client, letters, ("a.jpg", files.jpeg()), segmentation="magic")
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
    response = post(client, letters)
    assert response.status_code == 400 and b"Choose at least one file" in response.content
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_reviewers_may_not_upload_and_others_do_not_see_the_collection(
    client, bob, charlie, letters
):
    client.force_login(bob)
    assert post(client, letters, ("a.jpg", files.jpeg())).status_code == 403
    client.force_login(charlie)
    assert post(client, letters, ("a.jpg", files.jpeg())).status_code == 404
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_log_in(client, letters):
    response = client.get(reverse("upload", args=[letters.pk]))
    assert response.status_code == 302 and "login" in response.url

"""DELETE /api/documents/<id>/: a collection admin deletes a document with its pages, lines
and files; what people corrected is never deleted."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document, Line, Page
from ocrreview.review.models import Correction
from ocrreview.transcription.services import document_progress
from tests import factories
from tests.factories import token_headers as auth
from tests.ingestion import files


def delete(client, document, user):
    return client.delete(reverse("api_document", args=[document.pk]), headers=auth(user))


@pytest.fixture
def letter(letters, model_version):
    document = factories.make_document(letters, status=Document.Status.READY)
    page = factories.make_page(document)
    factories.make_read_line(page, 0, [("Dear Sir", 0.5)], model_version)
    return document


@pytest.mark.django_db
def test_an_admin_deletes_a_document_its_lines_and_its_page_images(
    client, alice, letter, django_capture_on_commit_callbacks
):
    image = letter.pages.get().image
    assert image.storage.exists(image.name)
    with django_capture_on_commit_callbacks(execute=True):
        response = delete(client, letter, alice)
    assert response.status_code == 204
    assert not Document.objects.filter(pk=letter.pk).exists()
    assert not Page.objects.filter(document_id=letter.pk).exists()
    assert not Line.objects.filter(document_id=letter.pk).exists()
    assert not image.storage.exists(image.name)


@pytest.mark.django_db
def test_a_file_the_storage_cannot_delete_leaves_the_others_deleted_and_the_answer_a_204(
    client, alice, letter, django_capture_on_commit_callbacks
):
    first = letter.pages.get()
    second = factories.make_page(letter, 1)
    stuck = Path(first.image.storage.path(first.image.name))
    stuck.unlink()
    stuck.mkdir()  # a folder that is not empty where the file was: the disk refuses
    (stuck / "inside").write_bytes(b"x")
    with django_capture_on_commit_callbacks(execute=True):
        response = delete(client, letter, alice)
    assert response.status_code == 204
    assert not Document.objects.filter(pk=letter.pk).exists()
    assert not second.image.storage.exists(second.image.name)


@pytest.mark.django_db
def test_a_reviewer_gets_a_403_and_an_outsider_a_404(client, bob, charlie, letter):
    assert delete(client, letter, bob).status_code == 403
    assert delete(client, letter, charlie).status_code == 404
    assert Document.objects.filter(pk=letter.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("busy", [Document.Status.SEGMENTING, Document.Status.RECOGNIZING])
def test_a_document_being_processed_is_a_409_and_stays(client, alice, letter, busy):
    Document.objects.filter(pk=letter.pk).update(status=busy)
    response = delete(client, letter, alice)
    assert response.status_code == 409
    assert "finished" in response.json()["error"]
    assert Line.objects.filter(document_id=letter.pk).count() == 1


@pytest.mark.django_db
def test_a_document_with_corrections_is_a_409_and_keeps_its_files(
    client, alice, letter, django_capture_on_commit_callbacks
):
    from ocrreview.review.actions import do_save_line

    line = Line.objects.get(document=letter)
    do_save_line(line, alice, "Dear Madam", expected_version=line.version)
    image = letter.pages.get().image
    with django_capture_on_commit_callbacks(execute=True):
        response = delete(client, letter, alice)
    assert response.status_code == 409
    assert "correction" in response.json()["error"]
    assert Correction.objects.filter(line=line).exists()
    assert image.storage.exists(image.name)


@pytest.mark.django_db
@pytest.mark.parametrize("work", ["open in an editor", "unsaved text, lease run out"])
def test_a_document_a_reviewer_is_correcting_is_a_409_and_keeps_their_work(
    client, alice, bob, letter, work
):
    from ocrreview.review.actions import do_claim_line, do_save_draft

    line = Line.objects.get(document=letter)
    do_claim_line(line, bob)
    if work == "unsaved text, lease run out":
        do_save_draft(line, bob, "Dear Madam", base_version=line.version)
        Line.objects.filter(pk=line.pk).update(claimed_until=timezone.now())
    response = delete(client, letter, alice)
    assert response.status_code == 409
    assert "Reviewers are correcting lines" in response.json()["error"]
    assert line.drafts.exists() == (work == "unsaved text, lease run out")
    assert Line.objects.filter(pk=line.pk).exists()


@pytest.mark.django_db
def test_a_web_server_whose_clock_is_ahead_still_sees_a_live_lease(
    client, alice, bob, letter, clock
):
    """The lease was written by the database's clock; this web server's runs an hour ahead."""
    from ocrreview.review.actions import do_claim_line

    line = Line.objects.get(document=letter)
    do_claim_line(line, bob)
    clock.set(clock.real() + timedelta(hours=1))
    assert delete(client, letter, alice).status_code == 409
    assert Line.objects.filter(pk=line.pk).exists()


@pytest.mark.django_db
def test_an_uploaded_documents_files_go_with_their_folders(
    client, alice, letters, django_capture_on_commit_callbacks
):
    """An upload's original is stored in a folder of its own; none is left behind empty."""
    (result,) = do_ingest(letters, [Upload.from_bytes("register.tif", files.tiff(2))])
    document = result.document
    Document.objects.filter(pk=document.pk).update(status=Document.Status.READY)
    original = Path(document.source_file.path)
    assert original.parent.name != "uploads" and original.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert delete(client, document, alice).status_code == 204
    assert not original.parent.exists()
    assert original.parent.parent.exists()  # the month's folder stays


def deleted_while_read(document, monkeypatch):
    """The document is deleted (by an admin, another request) between the request's lookup
    and its progress query."""
    from ocrreview.transcription import api

    def progress_after_the_delete(documents):
        Document.objects.filter(pk=document.pk).delete()
        return document_progress(documents)

    monkeypatch.setattr(api, "document_progress", progress_after_the_delete)


@pytest.mark.django_db
def test_a_document_deleted_while_it_is_read_is_a_404(client, alice, letter, monkeypatch):
    deleted_while_read(letter, monkeypatch)
    response = client.get(reverse("api_document", args=[letter.pk]), headers=auth(alice))
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_document_deleted_while_the_list_is_read_is_left_out(
    client, alice, letters, letter, monkeypatch
):
    kept = factories.make_document(letters, status=Document.Status.READY)
    deleted_while_read(letter, monkeypatch)
    response = client.get(
        reverse("api_collection_documents", args=[letters.pk]), headers=auth(alice)
    )
    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [kept.pk]

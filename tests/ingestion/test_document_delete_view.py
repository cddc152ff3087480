"""/documents/<id>/delete/: a collection admin deletes a document from the collection page,
asked first; reviewers see neither the link nor the admin pages' links."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Document, Line
from ocrreview.review import actions as review
from tests import factories


@pytest.fixture
def letter(letters, model_version):
    document = factories.make_document(letters, "Letter to Mr Hale", status=Document.Status.READY)
    page = factories.make_page(document)
    factories.make_read_line(page, 0, [("Dear Sir", 0.5)], model_version)
    return document


@pytest.mark.django_db
def test_an_admin_is_asked_then_the_document_goes(
    client, alice, letters, letter, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    listing = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    url = reverse("delete_document", args=[letter.pk])
    assert url in listing
    asked = client.get(url)
    assert asked.status_code == 200
    assert "1 page and 1 line go with it" in asked.content.decode()
    assert Document.objects.filter(pk=letter.pk).exists()  # asking deletes nothing
    image = letter.pages.get().image
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, follow=True)
    assert done.redirect_chain[-1][0] == reverse("collection_detail", args=[letters.pk])
    assert "Letter to Mr Hale was deleted." in done.content.decode()
    assert not Document.objects.filter(pk=letter.pk).exists()
    assert not image.storage.exists(image.name)


@pytest.mark.django_db
def test_a_document_with_corrections_is_kept_and_the_admin_told_why(client, alice, bob, letter):
    line = Line.objects.get(document=letter)
    review.do_save_line(line, bob, "Dear Sirs", expected_version=line.version)
    client.force_login(alice)
    done = client.post(reverse("delete_document", args=[letter.pk]), follow=True)
    assert "Letter to Mr Hale was not deleted: Lines of this document carry corrections" in (
        done.content.decode()
    )
    assert Line.objects.get(pk=line.pk).text == "Dear Sirs"


@pytest.mark.django_db
def test_reviewers_neither_delete_nor_see_admin_links(client, bob, charlie, letters, letter):
    client.force_login(bob)
    listing = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    for admin_page in ("delete_document", "collection_settings", "upload", "training_home"):
        pk = letter.pk if admin_page == "delete_document" else letters.pk
        assert reverse(admin_page, args=[pk]) not in listing
    url = reverse("delete_document", args=[letter.pk])
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    client.force_login(charlie)  # in no collection of the document
    assert client.post(url).status_code == 404
    assert Document.objects.filter(pk=letter.pk).exists()

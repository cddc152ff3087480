"""A document whose lines are all reviewed already (imported ground truth) is read by the
model only to measure it: its pages say so, rather than 'Recognizing 0 / 15' as if its text
were still to come."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Document, Line
from ocrreview.transcription import services
from tests import factories


def make_document(collection, title: str, reviewed: int, unreviewed: int = 0) -> Document:
    document = factories.make_document(collection, title=title, status=Document.Status.READY)
    page = factories.make_page(document)
    for order in range(reviewed):
        factories.make_line(page, order, text=f"line {order}", status=Line.Status.REVIEWED)
    for order in range(reviewed, reviewed + unreviewed):
        factories.make_line(page, order)
    return document


def drain() -> None:
    while services.do_recognize_pending("w"):
        pass


@pytest.mark.django_db
def test_ground_truth_queued_for_a_model_reads_for_evaluation(client, alice, letters, tiny_model):
    imported = make_document(letters, "Imported", reviewed=15)
    mixed = make_document(letters, "Half done", reviewed=2, unreviewed=1)
    services.do_queue_recognition(letters.lines.all())
    progress = services.document_progress(letters.documents.all())
    assert progress[imported.pk]["status"] == Document.Status.RECOGNIZING  # the API's status
    assert progress[imported.pk]["status_display"] == "Reading for evaluation"
    assert progress[mixed.pk]["status_display"] == "Recognizing"

    client.force_login(alice)
    page = client.get(reverse("recognition_progress", args=[letters.pk])).content.decode()
    row = page[page.index(f'data-document="{imported.pk}"') :]
    row = row[: row.index("</tr>")]
    assert ">Reading for evaluation<" in row and "0 / 15" in row and "Recognizing" not in row
    collection_page = client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    assert collection_page.count(">Reading for evaluation<") == 1
    assert collection_page.count(">Recognizing<") == 1  # the document with a line to read
    for document, status in ((imported, ">Reading for evaluation<"), (mixed, ">Recognizing<")):
        document_page = client.get(reverse("document_detail", args=[document.pk]))
        assert status in document_page.content.decode()

    drain()
    progress = services.document_progress(letters.documents.all())
    assert progress[imported.pk]["status_display"] == "Ready"
    assert set(imported.lines.values_list("status", flat=True)) == {Line.Status.REVIEWED}
    assert (
        ">Reading for evaluation<"
        not in client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    )


@pytest.mark.django_db
def test_the_api_says_it_too(client, alice, letters, tiny_model):
    imported = make_document(letters, "Imported", reviewed=3)
    services.do_queue_recognition(imported.lines.all())
    response = client.get(
        reverse("api_document", args=[imported.pk]), headers=factories.token_headers(alice)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["status_display"]) == ("recognizing", "Reading for evaluation")

"""Who may download transcripts, and what a bad request, a document still being segmented or
a whole collection gets, on the web and through the API."""

import io
import zipfile

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Document
from ocrreview.corpus.zipstream import zip_chunks
from ocrreview.training.models import DatasetExport, EvaluationSplit
from tests import factories
from tests.factories import token_headers as auth
from tests.transcripts.conftest import STEM, TEXT


def document_url(document) -> str:
    return reverse("document_transcript", args=[document.pk])


def collection_url(collection) -> str:
    return reverse("collection_transcripts", args=[collection.pk])


def get_as(client, user, url, **query):
    client.force_login(user)
    return client.get(url, query)


@pytest.mark.parametrize(("persona", "code"), [("alice", 200), ("bob", 200), ("staff", 200)])
def test_every_member_downloads_a_document(request, client, letter, persona, code):
    user = request.getfixturevalue(persona)
    assert get_as(client, user, document_url(letter), format="txt").status_code == code


@pytest.mark.parametrize("persona", ["charlie", "dave"])
def test_a_document_of_another_collection_is_not_found(request, client, letter, persona):
    user = request.getfixturevalue(persona)
    assert get_as(client, user, document_url(letter), format="txt").status_code == 404


def test_signed_out_is_sent_to_sign_in(client, letter):
    response = client.get(document_url(letter), {"format": "txt"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"format": "docx"}, "Unknown format docx: choose txt, page, alto, tei."),
        ({}, "Name a format: txt, page, alto, tei."),
        ({"format": "txt", "reviewed_only": "maybe"}, "reviewed_only is true or false"),
    ],
)
def test_a_bad_request_names_the_choices(client, bob, letter, query, said):
    response = get_as(client, bob, document_url(letter), **query)
    assert response.status_code == 400
    assert said in response.content.decode()


@pytest.mark.parametrize(
    "status", [Document.Status.UPLOADED, Document.Status.FETCHING, Document.Status.SEGMENTING]
)
def test_a_document_still_being_segmented_is_a_409_that_says_so(client, bob, letter, status):
    Document.objects.filter(pk=letter.pk).update(status=status)
    response = get_as(client, bob, document_url(letter), format="tei")
    assert response.status_code == 409
    assert "still being cut into lines" in response.content.decode()


def test_each_member_is_offered_the_transcripts(client, bob, alice, letter):
    """A document's on its own page, once it is cut into lines; the collection's on the
    collection page, to its admins."""
    busy = factories.make_document(letter.collection, "Busy", status=Document.Status.SEGMENTING)
    page = get_as(client, bob, reverse("document_detail", args=[letter.pk]))
    assert f'action="{document_url(letter)}"' in page.content.decode()
    page = get_as(client, bob, reverse("document_detail", args=[busy.pk]))
    assert f'action="{document_url(busy)}"' not in page.content.decode()
    page = get_as(client, bob, reverse("collection_detail", args=[letter.collection_id]))
    html = page.content.decode()
    assert collection_url(letter.collection) not in html  # the whole collection: admins'
    page = get_as(client, alice, reverse("collection_detail", args=[letter.collection_id]))
    assert collection_url(letter.collection) in page.content.decode()


def read_zip(response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_collection_zip_holds_every_format_of_every_document(client, alice, letter):
    twin = factories.make_document(letter.collection, letter.title, status=Document.Status.READY)
    factories.make_line(factories.make_page(twin), text="Seconde copie", status="reviewed")
    factories.make_document(letter.collection, "Busy", status=Document.Status.SEGMENTING)

    response = get_as(client, alice, collection_url(letter.collection))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="Letters_transcripts.zip"'
    files = read_zip(response)
    assert files[f"{STEM}/{STEM}.txt"].decode().split("\n") == [*TEXT, ""]
    assert {f"{STEM}/page/{STEM}_{n}.xml" for n in (1, 2, 3)} <= files.keys()
    assert {f"{STEM}/alto/{STEM}_{n}.xml" for n in (1, 2, 3)} <= files.keys()
    assert f"{STEM}/{STEM}.tei.xml" in files
    # Two documents of one title keep a folder each.
    other = f"{STEM}_{twin.pk}"
    assert files[f"{other}/{other}.txt"] == b"--- page 1 ---\nSeconde copie\n"
    assert "Busy is still being cut into lines" in files["NOT-INCLUDED.txt"].decode()


def test_the_collection_zip_is_sent_a_document_at_a_time(client, alice, letter):
    for n in range(3):
        document = factories.make_document(letter.collection, f"D{n}", status="ready")
        factories.make_line(factories.make_page(document), text=f"line {n}", status="reviewed")

    response = get_as(client, alice, collection_url(letter.collection))

    chunks = list(response.streaming_content)
    # A chunk an entry, and the central directory last: nothing waits for the whole archive.
    assert len(chunks) == len(zipfile.ZipFile(io.BytesIO(b"".join(chunks))).namelist()) + 1


def test_zip_chunks_keeps_one_entry_in_hand():
    chunks = list(zip_chunks((f"{n}.txt", b"x" * 1000) for n in range(2000)))

    assert len(chunks) == 2001
    assert max(len(chunk) for chunk in chunks[:-1]) < 200  # one deflated entry and its header
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert len(archive.namelist()) == 2000
        assert archive.read("1999.txt") == b"x" * 1000


@pytest.mark.parametrize(("persona", "code"), [("bob", 403), ("charlie", 404), ("dave", 404)])
def test_only_the_collection_s_admins_download_it_whole(request, client, letter, persona, code):
    user = request.getfixturevalue(persona)
    assert get_as(client, user, collection_url(letter.collection)).status_code == code


def test_downloads_touch_no_training_dataset_or_split(client, alice, letter):
    get_as(client, alice, document_url(letter), format="txt")
    b"".join(get_as(client, alice, collection_url(letter.collection)).streaming_content)
    assert not EvaluationSplit.objects.exists()
    assert not DatasetExport.objects.exists()


# --- API ----------------------------------------------------------------------------------


def api_document(client, user, document, **query):
    url = reverse("api_document_transcript", args=[document.pk])
    return client.get(url, query, headers=auth(user))


def test_the_api_gives_each_format(client, bob, letter):
    text = api_document(client, bob, letter, format="txt")
    assert text.status_code == 200
    assert text.content.decode().split("\n") == [*TEXT, ""]
    tei = api_document(client, bob, letter, format="tei")
    assert tei["Content-Type"] == "application/tei+xml"
    alto = api_document(client, bob, letter, format="alto", reviewed_only="true")
    assert len(read_zip(alto)) == 3


def test_the_api_refuses_an_unknown_format_naming_the_choices(client, bob, letter):
    response = api_document(client, bob, letter, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "Unknown format json: choose txt, page, alto, tei."
    assert "format" in response.json()["fields"]


def test_the_api_answers_json_errors_whatever_is_accepted(client, bob, charlie, letter):
    url = reverse("api_document_transcript", args=[letter.pk])
    response = client.get(url, {"format": "txt"}, headers={**auth(charlie), "Accept": "text/plain"})
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}
    Document.objects.filter(pk=letter.pk).update(status=Document.Status.SEGMENTING)
    response = api_document(client, bob, letter, format="txt")
    assert response.status_code == 409
    assert "still being cut into lines" in response.json()["error"]


def test_the_api_gives_the_collection_to_its_admins(client, alice, bob, letter):
    url = reverse("api_collection_transcripts", args=[letter.collection_id])
    assert client.get(url, headers=auth(bob)).status_code == 403
    response = client.get(url, {"reviewed_only": "true"}, headers=auth(alice))
    assert response.status_code == 200
    assert "[not reviewed]" in read_zip(response)[f"{STEM}/{STEM}.txt"].decode()

"""The HTTP API: token auth, upload, document listing and progress, with the personas."""

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ocrreview.corpus.models import ApiToken, Document, Line, Page
from ocrreview.corpus.tokens import do_create_api_token
from tests.factories import token_headers as auth
from tests.ingestion import files


def upload(client, collection, headers, *named, **data):
    return client.post(
        reverse("api_collection_documents", args=[collection.pk]),
        {"files": [SimpleUploadedFile(n, d) for n, d in named], **data},
        headers=headers,
    )


@pytest.mark.django_db
def test_an_admin_uploads_with_a_token_and_reads_progress(client, alice, letters, tiny_model):
    headers = auth(alice)
    response = upload(
        client,
        letters,
        headers,
        ("line.png", files.png(300, 50)),
        ("bad.jpg", b""),
        segmentation="whole_image",
    )
    assert response.status_code == 201
    by_file = {f["file"]: f for f in response.json()["files"]}
    assert by_file["line.png"]["pages"] == 1 and by_file["line.png"]["lines"] == 1
    assert by_file["bad.jpg"]["error"] == "the file is empty"
    document_id = by_file["line.png"]["document"]

    detail = client.get(reverse("api_document", args=[document_id]), headers=headers).json()
    assert detail["status"] == Document.Status.RECOGNIZING
    assert (detail["lines_done"], detail["lines_total"]) == (0, 1)
    listing = client.get(reverse("api_collection_documents", args=[letters.pk]), headers=headers)
    assert [d["id"] for d in listing.json()["results"]] == [document_id]


@pytest.mark.django_db
def test_a_retried_upload_answers_with_the_documents_the_first_one_made(client, alice, letters):
    """A client whose first answer was lost (a proxy's 504 on a long PDF) sends it again."""
    scan, pdf = files.jpeg(), files.pdf(2)
    first = upload(client, letters, auth(alice), ("scan.jpg", scan), ("minutes.pdf", pdf))
    assert first.status_code == 201
    made = {f["file"]: f["document"] for f in first.json()["files"]}

    again = upload(client, letters, auth(alice), ("scan.jpg", scan), ("minutes.pdf", pdf))
    assert again.status_code == 200
    files_again = again.json()["files"]
    assert {f["file"]: f["document"] for f in files_again} == made
    assert all(f["duplicate"] and "already in the collection" in f["error"] for f in files_again)

    # With a new file beside them, a document is made.
    more = upload(client, letters, auth(alice), ("scan.jpg", scan), ("new.png", files.png()))
    assert more.status_code == 201
    by_file = {f["file"]: f for f in more.json()["files"]}
    assert by_file["scan.jpg"]["duplicate"] and by_file["scan.jpg"]["document"] == made["scan.jpg"]
    assert not by_file["new.png"]["duplicate"] and not by_file["new.png"]["error"]
    assert letters.documents.count() == 3


@pytest.mark.django_db
def test_an_upload_of_which_no_file_was_added_is_a_400_as_the_schema_says(client, alice, letters):
    """Every 400 of the API is {"error": ...}; the upload's, with what became of each file."""
    response = upload(client, letters, auth(alice), ("bad.jpg", b""), ("notes.txt", b"hello"))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "No file was added; each file says why."
    assert body["files"][0]["error"] == "the file is empty"

    schema = yaml.safe_load(client.get(reverse("api_schema")).content)
    post = schema["paths"]["/api/collections/{id}/documents/"]["post"]
    assert [p["name"] for p in post["parameters"]] == ["id"]  # the list's filter is no field
    ref = post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    refused = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert refused["required"] == ["error"]
    invalid = upload(client, letters, auth(alice), ("a.jpg", files.jpeg()), segmentation="x")
    for answer in (body, invalid.json()):
        assert "error" in answer and answer.keys() <= refused["properties"].keys()
    result = schema["components"]["schemas"]["UploadResult"]["properties"]["error"]
    assert not result.get("nullable")  # an added file's error is "", never null


@pytest.mark.django_db
def test_only_the_hash_of_a_key_is_stored(alice):
    key = do_create_api_token(alice, "scanner")
    token = ApiToken.objects.get()
    assert key not in (token.key_hash, token.prefix) and key.startswith(token.prefix)


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Token nope", "Bearer x", "Token "])
def test_no_or_a_wrong_token_is_a_401(client, letters, header):
    headers = {"Authorization": header} if header else {}
    response = upload(client, letters, headers, ("a.jpg", files.jpeg()))
    assert response.status_code == 401
    assert "API token" in response.json()["error"]
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_a_session_alone_does_not_authenticate_the_api(client, alice, letters):
    client.force_login(alice)
    assert upload(client, letters, {}, ("a.jpg", files.jpeg())).status_code == 401


@pytest.mark.django_db
def test_reviewers_read_but_may_not_upload_and_strangers_get_404(
    client, bob, charlie, letters, alice
):
    document = Document.objects.create(collection=letters, title="x")
    bob_headers = auth(bob)
    assert upload(client, letters, bob_headers, ("a.jpg", files.jpeg())).status_code == 403
    response = client.get(reverse("api_document", args=[document.pk]), headers=bob_headers)
    assert response.status_code == 200 and response.json()["title"] == "x"
    charlie_headers = auth(charlie)
    assert upload(client, letters, charlie_headers, ("a.jpg", files.jpeg())).status_code == 404
    response = client.get(reverse("api_document", args=[document.pk]), headers=charlie_headers)
    assert response.status_code == 404 and response.json() == {"error": "Not found."}


@pytest.mark.django_db
def test_bad_form_data_is_a_400_naming_the_field(client, alice, letters):
    response = upload(client, letters, auth(alice), ("a.jpg", files.jpeg()), segmentation="x")
    assert response.status_code == 400
    assert "segmentation" in response.json()["fields"]


@pytest.mark.django_db
def test_more_files_than_a_request_may_carry_is_a_400_saying_so(client, alice, letters, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    three = [(f"{n}.jpg", files.jpeg()) for n in "abc"]
    response = upload(client, letters, auth(alice), *three, segmentation="whole_image")
    assert response.status_code == 400
    assert response.json()["error"].startswith("One upload takes at most 2 files:")
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_an_admin_reruns_recognition_through_the_api(client, alice, bob, letters):
    from ocrreview.transcription.models import RecognitionRequest
    from tests import factories

    document = factories.make_document(letters)
    factories.make_line(factories.make_page(document))
    version = factories.make_model_version("candidate")
    url = reverse("api_recognize", args=[letters.pk])
    assert client.post(url, {"model_version": version.pk}, headers=auth(bob)).status_code == 403
    response = client.post(url, {"model_version": 999}, headers=auth(alice))
    assert response.status_code == 400 and "model_version" in response.json()["fields"]
    response = client.post(
        url, {"model_version": version.pk, "document": document.pk}, headers=auth(alice)
    )
    assert response.status_code == 202 and response.json() == {"queued_lines": 1}
    assert RecognitionRequest.objects.get().model_version == version


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[1]", '"x"', "null", '{"model_version": "one"}'])
def test_a_recognize_body_that_is_no_object_of_ids_is_a_400(client, alice, letters, body):
    response = client.post(
        reverse("api_recognize", args=[letters.pk]),
        body,
        headers=auth(alice),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request."


@pytest.mark.django_db
def test_an_upload_without_a_segmentation_is_segmented_by_kraken(
    client, alice, letters, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = upload(client, letters, auth(alice), ("scan.png", files.png()))
    assert response.status_code == 201
    assert Document.objects.get().segmentation == Document.Segmentation.KRAKEN
    # The stored files become the document's, and segmentation is handed to a worker.
    assert len(queued) == 2


@pytest.mark.django_db
def test_documents_are_paged_with_a_cursor_and_filtered_by_status(client, bob, letters):
    from tests import factories

    ready = [factories.make_document(letters, f"Ready {n}", status="ready") for n in range(3)]
    factories.make_document(letters, "Failed", status="failed")
    headers = auth(bob)
    url = reverse("api_collection_documents", args=[letters.pk]) + "?status=ready&page_size=2"
    seen = []
    while url:
        body = client.get(url, headers=headers).json()
        seen += [(d["id"], d["status"]) for d in body["results"]]
        url = body["next"]
    assert seen == [(d.pk, "ready") for d in ready]
    bad = client.get(
        reverse("api_collection_documents", args=[letters.pk]) + "?status=done", headers=headers
    )
    assert bad.status_code == 400 and "status" in bad.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "named, segmentation, pages",
    [
        ([("scan.pdf", files.pdf(2))], "whole_image", 2),
        ([("scan.tif", files.tiff(3))], "whole_image", 3),
        ([("box.zip", files.zip_of({"a.png": files.png(), "b.jpg": files.jpeg()}))], "kraken", 2),
        ([("p.png", files.png()), ("p.xml", files.page_xml("p.png"))], "imported", 1),
        ([("a.png", files.png()), ("a.xml", files.alto("a.png"))], "imported", 1),
    ],
)
def test_every_format_of_the_upload_page_goes_through_the_api(
    client, alice, letters, tiny_model, named, segmentation, pages
):
    response = upload(client, letters, auth(alice), *named, segmentation=segmentation)
    assert response.status_code == 201, response.json()
    assert not any(f["error"] for f in response.json()["files"]), response.json()
    assert Page.objects.filter(document__collection=letters).count() == pages
    if segmentation != "kraken":  # kraken finds the lines later, on a worker
        assert Line.objects.filter(collection=letters).count() >= pages

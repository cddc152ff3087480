"""The lines API: read a line with its n-best and history, list lines by status and
confidence, and correct a line with the version read (a stale version is a 409 with both texts)."""

from datetime import datetime

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction
from tests import factories
from tests.factories import token_headers as auth


@pytest.fixture
def lines(letters, model_version):
    page = factories.make_page(factories.make_document(letters))
    return [
        factories.make_read_line(
            page, 0, [("Dear Sir", 0.9), ("Dear Sin", 0.1)], model_version, confidence=0.95,
            status=Line.Status.AUTO_ACCEPTED,
        ),
        factories.make_read_line(
            page, 1, [("hasten to reply tbat", 0.6), ("hasten to reply that", 0.4)],
            model_version, confidence=0.22,
        ),
    ]  # fmt: skip


def correct(client, headers, line, text, version, **extra):
    return client.post(
        reverse("api_line_corrections", args=[line.pk]),
        {"text": text, "expected_version": version, **extra},
        headers=headers,
        content_type="application/json",
    )


@pytest.mark.django_db
def test_a_reviewer_finds_the_unsure_lines_and_corrects_one(client, bob, letters, lines):
    headers = auth(bob)
    url = reverse("api_lines", args=[letters.pk])
    unsure = client.get(url + "?confidence_below=0.5", headers=headers).json()["results"]
    assert [line["id"] for line in unsure] == [lines[1].pk]

    detail = client.get(reverse("api_line", args=[lines[1].pk]), headers=headers).json()
    assert [h["text"] for h in detail["hypotheses"]] == [
        "hasten to reply tbat",
        "hasten to reply that",
    ]
    assert detail["history"] == []

    second = detail["hypotheses"][1]
    response = correct(
        client, headers, lines[1], "hasten to reply that", detail["version"],
        hypothesis=second["id"],
    )  # fmt: skip
    assert response.status_code == 201
    assert response.json()["text_before"] == "hasten to reply tbat"
    detail = client.get(reverse("api_line", args=[lines[1].pk]), headers=headers).json()
    assert detail["text"] == "hasten to reply that" and detail["status"] == "reviewed"
    assert [(c["user"], c["text_after"]) for c in detail["history"]] == [
        ("bob", "hasten to reply that")
    ]
    reviewed = client.get(url + "?status=reviewed", headers=headers).json()["results"]
    assert [line["id"] for line in reviewed] == [lines[1].pk]


@pytest.mark.django_db
def test_a_stale_version_is_a_409_with_both_texts_and_saves_nothing(
    client, alice, bob, letters, lines
):
    version = lines[1].version
    assert (
        correct(client, auth(alice), lines[1], "hasten to reply that", version).status_code == 201
    )
    response = correct(client, auth(bob), lines[1], "hasten to write that", version)
    assert response.status_code == 409
    body = response.json()
    last_change = body.pop("last_change")
    assert datetime.fromisoformat(last_change.pop("at")) == Correction.objects.get().created_at
    assert last_change == {"action": "edit", "user": "alice", "model_version": None}
    assert body == {
        "error": "The line changed since you read it; nothing was saved.",
        "version": version + 1,
        "text": "hasten to reply that",
        "attempted_text": "hasten to write that",
    }
    assert Correction.objects.count() == 1


@pytest.mark.django_db
def test_a_retried_correction_answers_with_the_first_and_saves_nothing_more(client, bob, lines):
    """The first answer lost (a timeout, a dropped connection), the client sends it again."""
    that = lines[1].hypotheses.get(rank=1)
    version = lines[1].version
    first = correct(
        client, auth(bob), lines[1], "hasten to reply that", version, hypothesis=that.pk
    )
    again = correct(
        client, auth(bob), lines[1], "hasten to reply that", version, hypothesis=that.pk
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Correction.objects.count() == 1
    # Another text, or the same without the reading it started from, is no retry of it.
    for extra in ({"hypothesis": that.pk}, {}):
        text = "hasten to reply than" if extra else "hasten to reply that"
        response = correct(client, auth(bob), lines[1], text, version, **extra)
        assert response.status_code == 409
        assert response.json()["last_change"]["user"] == "bob"
    assert Correction.objects.count() == 1


@pytest.mark.django_db
def test_a_conflict_with_a_models_reading_names_the_model(client, bob, lines, model_version):
    Line.objects.filter(pk=lines[1].pk).update(version=2)  # read again since bob read it
    response = correct(client, auth(bob), lines[1], "hasten to reply that", 1)
    assert response.status_code == 409
    last_change = response.json()["last_change"]
    assert (last_change["action"], last_change["user"], last_change["model_version"]) == (
        "reading",
        None,
        model_version.pk,
    )


@pytest.mark.django_db
def test_lines_of_a_collection_not_yours_are_404s(client, charlie, letters, lines):
    headers = auth(charlie)
    assert client.get(reverse("api_lines", args=[letters.pk]), headers=headers).status_code == 404
    assert client.get(reverse("api_line", args=[lines[0].pk]), headers=headers).status_code == 404
    response = correct(client, headers, lines[0], "mine", lines[0].version)
    assert response.status_code == 404
    assert Line.objects.get(pk=lines[0].pk).text == "Dear Sir"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"text": "x"},
        {"text": "x", "expected_version": "one"},
        {"text": "x", "expected_version": 2**40},
        {"expected_version": 1},
        {"text": "x", "expected_version": 1, "hypothesis": -3},
        {"text": "x" * 2001, "expected_version": 1},
    ],
)
def test_bad_correction_bodies_are_400s_naming_the_field(client, bob, lines, body):
    response = client.post(
        reverse("api_line_corrections", args=[lines[0].pk]),
        body,
        headers=auth(bob),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request."
    assert response.json()["fields"]
    assert not Correction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text, message",
    [
        ("Dear\nSir", "A line's text is one line: it cannot contain line breaks."),
        ("Dear\x07Sir", "The text contains control characters; remove them and save again."),
    ],
)
def test_a_text_no_line_may_hold_is_refused_under_fields_text(client, bob, lines, text, message):
    response = correct(client, auth(bob), lines[0], text, lines[0].version)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid request.",
        "fields": {"text": [{"message": message, "code": "invalid"}]},
    }
    assert not Correction.objects.exists()


@pytest.mark.django_db
def test_malformed_json_and_another_lines_reading_are_400s(client, bob, lines):
    url = reverse("api_line_corrections", args=[lines[0].pk])
    response = client.post(url, "{not json", headers=auth(bob), content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    other = lines[1].hypotheses.first()
    response = correct(client, auth(bob), lines[0], "x", lines[0].version, hypothesis=other.pk)
    assert response.status_code == 400
    assert response.json() == {"error": "That alternative does not belong to this line."}


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["status=lost", "confidence_below=2", "document=x"])
def test_bad_filters_are_400s(client, bob, letters, lines, query):
    url = reverse("api_lines", args=[letters.pk]) + "?" + query
    response = client.get(url, headers=auth(bob))
    assert response.status_code == 400 and response.json()["fields"]


@pytest.mark.django_db
def test_an_empty_text_empties_the_line_without_asking_again(client, bob, lines):
    """The editor asks for a second Enter; an API client's empty text is meant as sent."""
    response = correct(client, auth(bob), lines[1], "", lines[1].version)
    assert response.status_code == 201
    assert response.json()["text_after"] == ""
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.text, line.status) == ("", "reviewed")

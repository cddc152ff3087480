"""The review queue over the API: claim the next line under a lease, renew it, hand it back."""

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
        factories.make_read_line(page, order, [(text, 0.8)], model_version, confidence=conf)
        for order, (text, conf) in enumerate([("Dear Sir", 0.6), ("hasten", 0.2)])
    ]


def claim(client, headers, collection, **body):
    return client.post(
        reverse("api_claim", args=[collection.pk]),
        body,
        headers=headers,
        content_type="application/json",
    )


@pytest.mark.django_db
def test_two_reviewers_claim_different_lines_lowest_confidence_first(
    client, alice, bob, letters, lines
):
    first = claim(client, auth(bob), letters)
    assert first.status_code == 200 and first.json()["id"] == lines[1].pk
    assert first.json()["status"] == "in_review"
    again = claim(client, auth(bob), letters)
    assert again.json()["id"] == lines[1].pk  # the line you hold comes back first
    other = claim(client, auth(alice), letters)
    assert other.json()["id"] == lines[0].pk
    assert claim(client, auth(factories.make_user("dora")), letters).status_code == 404


@pytest.mark.django_db
def test_reading_order_and_an_empty_queue(client, bob, letters, lines):
    headers = auth(bob)
    assert claim(client, headers, letters, order="reading").json()["id"] == lines[0].pk
    Line.objects.update(status=Line.Status.REVIEWED, claimed_by=None, claimed_until=None)
    assert claim(client, headers, letters).status_code == 204


@pytest.mark.django_db
def test_renewing_and_handing_back_a_lease(client, alice, bob, letters, lines):
    headers = auth(bob)
    line_id = claim(client, headers, letters).json()["id"]
    url = reverse("api_line_lease", args=[line_id])
    renewed = client.put(url, headers=headers)
    assert renewed.status_code == 200 and renewed.json()["line"] == line_id

    # alice never held it: renewing is a 409, handing back does nothing.
    assert client.put(url, headers=auth(alice)).status_code == 409
    assert client.delete(url, headers=auth(alice)).status_code == 204
    assert Line.objects.get(pk=line_id).claimed_by == bob

    assert client.delete(url, headers=headers).status_code == 204
    line = Line.objects.get(pk=line_id)
    assert (line.status, line.claimed_by) == (Line.Status.NEEDS_REVIEW, None)
    assert list(Correction.objects.values_list("action", flat=True)) == ["skip"]
    assert client.put(url, headers=headers).status_code == 409


@pytest.mark.django_db
def test_a_line_handed_back_stays_out_of_the_claims_that_exclude_it(client, bob, letters, lines):
    headers = auth(bob)
    first = claim(client, headers, letters).json()["id"]
    client.delete(reverse("api_line_lease", args=[first]), headers=headers)
    assert claim(client, headers, letters).json()["id"] == first  # still the least sure
    client.delete(reverse("api_line_lease", args=[first]), headers=headers)
    other = claim(client, headers, letters, exclude=[first])
    assert other.json()["id"] == lines[0].pk != first
    client.delete(reverse("api_line_lease", args=[other.json()["id"]]), headers=headers)
    everything = [line.pk for line in lines]
    assert claim(client, headers, letters, exclude=everything).status_code == 204


@pytest.mark.django_db
def test_excluding_a_line_you_hold_gives_it_back_not_a_second_lease(client, bob, letters, lines):
    headers = auth(bob)
    held = claim(client, headers, letters).json()["id"]
    assert claim(client, headers, letters, exclude=[held]).json()["id"] == held
    assert Line.objects.filter(claimed_by=bob).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"order": "random"},
        {"document": 0},
        {"document": "x"},
        {"exclude": "12"},
        {"exclude": [0]},
        {"exclude": ["x"]},
        {"exclude": [2**63]},
        {"exclude": list(range(1, 1_002))},
    ],
)
def test_a_bad_claim_is_a_400(client, bob, letters, lines, body):
    response = claim(client, auth(bob), letters, **body)
    assert response.status_code == 400 and response.json()["fields"]
    assert not Line.objects.filter(status=Line.Status.IN_REVIEW).exists()


@pytest.mark.django_db
def test_claiming_in_another_collections_document_is_a_400(client, bob, letters, ledgers, lines):
    elsewhere = factories.make_document(ledgers)
    response = claim(client, auth(bob), letters, document=elsewhere.pk)
    assert response.status_code == 400
    assert response.json() == {"error": "No such document in this collection."}

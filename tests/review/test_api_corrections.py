"""GET /api/collections/<id>/corrections/: a collection's corrections for its admins, newest
first, by person and time, in cursor pages, as its coordinators' page lists them."""

import pytest
from django.urls import reverse

from ocrreview.review.models import Correction
from tests.factories import token_headers as auth


def url(collection) -> str:
    return reverse("api_corrections", args=[collection.pk])


def newest_first(**filters) -> list[int]:
    corrections = Correction.objects.filter(**filters).order_by("-created_at", "-id")
    return list(corrections.values_list("pk", flat=True))


def test_alice_lists_bobs_corrections_since_then(client, alice, bob, letters, lines, bobs_saves):
    answer = client.get(
        url(letters), {"user": bob.pk, "since": bobs_saves.isoformat()}, headers=auth(alice)
    )
    assert answer.status_code == 200
    body = answer.json()
    assert [c["id"] for c in body["results"]] == newest_first(user=bob, created_at__gte=bobs_saves)
    newest = body["results"][0]
    assert newest["line"] == lines[3].pk and newest["document"] == lines[3].document_id
    assert (newest["user"], newest["user_id"], newest["action"]) == ("bob", bob.pk, "edit")
    assert (newest["text_before"], newest["text_after"]) == ("inst. and", "INST. AND")
    assert body["next"] is None and body["previous"] is None


def test_a_time_range(client, alice, letters, lines, bobs_saves):
    answer = client.get(url(letters), {"until": bobs_saves.isoformat()}, headers=auth(alice))
    assert [c["id"] for c in answer.json()["results"]] == newest_first(created_at__lt=bobs_saves)
    since = Correction.objects.order_by("created_at")[1].created_at
    answer = client.get(
        url(letters),
        {"since": since.isoformat(), "until": bobs_saves.isoformat()},
        headers=auth(alice),
    )
    assert [c["id"] for c in answer.json()["results"]] == newest_first()[-2:-1]


def test_pages_follow_each_other(client, alice, letters, lines, bobs_saves):
    seen, pages = [], []
    answer = client.get(url(letters), {"page_size": 4}, headers=auth(alice)).json()
    while True:
        pages.append([c["id"] for c in answer["results"]])
        seen += pages[-1]
        if not answer["next"]:
            break
        assert answer["next"].startswith("http://testserver/api/")
        answer = client.get(answer["next"], headers=auth(alice)).json()
    assert seen == newest_first() and [len(p) for p in pages] == [4, 2]
    back = client.get(answer["previous"], headers=auth(alice)).json()
    assert [c["id"] for c in back["results"]] == pages[0]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "until"),
        ({"user": "999999"}, "user"),
        ({"user": "CHARLIE"}, "user"),
        ({"user": "99999999999999999999"}, "user"),
        ({"cursor": "made up"}, "cursor"),
        ({"page_size": "1001"}, "page_size"),
    ],
)
def test_a_filter_that_cannot_be_read_is_a_400_naming_it(
    client, alice, charlie, letters, query, field
):
    query = {k: str(charlie.pk) if v == "CHARLIE" else v for k, v in query.items()}
    answer = client.get(url(letters), query, headers=auth(alice))
    assert answer.status_code == 400
    assert list(answer.json()["fields"]) == [field]


def test_reviewers_are_refused_and_outsiders_find_nothing(client, bob, charlie, letters):
    assert client.get(url(letters), headers=auth(bob)).status_code == 403
    assert client.get(url(letters), headers=auth(charlie)).status_code == 404
    assert client.get(url(letters)).status_code == 401

"""POST /api/collections/<id>/corrections/revert/: a collection's admin undoes one person's
saves since a time, as the coordinators' page does (tests/review/test_revert_user_saves.py)."""

from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction
from tests.factories import post_json
from tests.factories import token_headers as auth

S = Line.Status


def url(collection) -> str:
    return reverse("api_corrections_revert", args=[collection.pk])


def test_alice_undoes_bobs_saves_since_then(client, alice, bob, dave, letters, lines, bobs_saves):
    answer = post_json(
        client, url(letters), alice, {"user": bob.pk, "since": bobs_saves.isoformat()}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["reverted"] == [lines[1].pk, lines[2].pk]
    assert body["requeued"] == [lines[2].pk]
    (skipped,) = body["skipped"]
    assert (skipped["line"], skipped["changed_by"], skipped["action"]) == (
        lines[3].pk,
        "dave",
        "edit",
    )
    now = {line.pk: (line.text, line.status) for line in Line.objects.all()}
    assert [now[line.pk] for line in lines] == [
        ("Dear Sir,", S.REVIEWED),
        ("I received your", S.REVIEWED),
        ("letter of the 3d", S.NEEDS_REVIEW),
        ("inst and", S.REVIEWED),
    ]
    reverts = Correction.objects.filter(action=Correction.Action.REVERT)
    assert {(r.line_id, r.user) for r in reverts} == {(lines[1].pk, alice), (lines[2].pk, alice)}


def test_a_preview_answers_the_same_and_changes_nothing(client, alice, bob, letters, bobs_saves):
    asked = {"user": bob.pk, "since": bobs_saves.isoformat()}
    preview = post_json(client, url(letters), alice, {**asked, "preview": True})
    assert preview.status_code == 200
    assert not Correction.objects.filter(action=Correction.Action.REVERT).exists()
    assert post_json(client, url(letters), alice, asked).json() == preview.json()


def test_a_time_with_an_offset_or_none(client, alice, bob, letters, lines, bobs_saves, settings):
    """Without an offset, the time is read in the site's time zone, as the pages show times."""
    settings.TIME_ZONE = "Europe/Paris"
    in_paris = bobs_saves.astimezone(ZoneInfo("Europe/Paris"))
    naive = in_paris.replace(tzinfo=None).isoformat()
    answer = post_json(client, url(letters), alice, {"user": bob.pk, "since": naive})
    assert answer.json()["reverted"] == [lines[1].pk, lines[2].pk]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user": "BOB"}, "since"),
        ({"since": "2026-01-01T00:00:00Z"}, "user"),
        ({"user": "BOB", "since": "yesterday"}, "since"),
        ({"user": "BOB", "since": 1714557600}, "since"),
        ({"user": "BOB", "since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"user": 999999, "since": "2026-01-01T00:00:00Z"}, "user"),
        ({"user": "CHARLIE", "since": "2026-01-01T00:00:00Z"}, "user"),
        ({"user": "bob", "since": "2026-01-01T00:00:00Z"}, "user"),
        ({"user": ["BOB"], "since": "2026-01-01T00:00:00Z"}, "user"),
        ({"user": "BOB", "since": "2026-01-01T00:00:00Z", "until": "2027"}, "until"),
    ],
)
def test_what_cannot_be_undone_is_a_400_naming_the_field(
    client, alice, bob, charlie, letters, lines, bobs_saves, body, field
):
    people = {"BOB": bob.pk, "CHARLIE": charlie.pk}
    body = {k: [people[v[0]]] if isinstance(v, list) else people.get(v, v) for k, v in body.items()}
    answer = post_json(client, url(letters), alice, body)
    assert answer.status_code == 400
    assert list(answer.json()["fields"]) == [field]
    assert not Correction.objects.filter(action=Correction.Action.REVERT).exists()


@pytest.mark.parametrize("body", ['{"user": 2, "since": ', "[1, 2]", '"user"', ""])
def test_a_body_that_is_no_json_object_is_a_400(client, alice, letters, body):
    answer = client.post(url(letters), body, content_type="application/json", headers=auth(alice))
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_reviewers_are_refused_and_outsiders_find_nothing(
    client, bob, charlie, letters, lines, bobs_saves
):
    body = {"user": bob.pk, "since": bobs_saves.isoformat()}
    assert post_json(client, url(letters), bob, body).status_code == 403
    assert post_json(client, url(letters), charlie, body).status_code == 404
    assert Line.objects.get(pk=lines[2].pk).text == "LETTER OF THE 3D"

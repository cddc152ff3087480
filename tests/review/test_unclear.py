"""The unclear mark: a reviewer marks a line they cannot read for sure (Alt+U), with a note;
the trail records who marked and unmarked it; saving a text keeps the mark; marked lines stay
out of training exports, and are found by search and the API."""

from django.urls import reverse

from ocrreview.corpus import audit
from ocrreview.corpus.models import CollectionEvent, Line
from ocrreview.review import actions
from ocrreview.review.models import Correction
from ocrreview.training.exports import ExportOptions, ground_truth_lines
from tests.factories import token_headers as auth

S = Line.Status
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def mark(client, collection, line, **data):
    url = reverse("review_unclear", args=[collection.pk, line.pk])
    return client.post(url, data, **FETCH)


def test_marking_and_unmarking_are_recorded_and_a_save_keeps_the_mark(
    client, bob, alice, letters, lines
):
    client.force_login(bob)
    response = mark(client, letters, lines[1], unclear="1", note="  can't read   the surname ")
    assert response.status_code == 200
    assert "Marked unclear</strong>: can&#x27;t read the surname" in response.content.decode()
    line = Line.objects.get(pk=lines[1].pk)
    # Text and version as they were: a save on its way meets no conflict.
    assert (line.unclear, line.unclear_note, line.version) == (True, "can't read the surname", 1)

    actions.do_save_line(line, bob, "I received your", expected_version=1)
    line.refresh_from_db()
    assert (line.unclear, line.status) == (True, S.REVIEWED)

    client.force_login(alice)
    assert mark(client, letters, line).status_code == 200
    line.refresh_from_db()
    assert (line.unclear, line.unclear_note) == (False, "")
    # Removing a mark that is not there records nothing.
    assert mark(client, letters, line).status_code == 200
    trail = Correction.objects.filter(line=line).order_by("id")
    assert [(c.user.username, c.action, c.note, c.line_version) for c in trail] == [
        ("bob", "unclear", "can't read the surname", 1),
        ("bob", "edit", "", 2),
        ("alice", "clear", "", 2),
    ]
    history = client.get(reverse("review_history", args=[letters.pk, line.pk])).content.decode()
    assert "Marked unclear" in history and "<q>can&#x27;t read the surname</q>" in history


def test_a_note_too_long_is_refused(client, bob, letters, lines):
    client.force_login(bob)
    assert mark(client, letters, lines[1], unclear="1", note="x" * 201).status_code == 400
    assert not Line.objects.get(pk=lines[1].pk).unclear


def test_the_editor_shows_the_mark(client, bob, letters, lines):
    actions.do_mark_unclear(lines[1], bob, "the surname")
    client.force_login(bob)
    html = client.get(reverse("review_line", args=[letters.pk, lines[1].pk])).content.decode()
    assert "<strong>Marked unclear</strong>: the surname" in html
    page = client.get(reverse("review_page", args=[letters.pk, lines[1].page_id])).content.decode()
    assert 'class="unclear-mark" title="the surname"' in page


def test_marked_lines_stay_out_of_training_exports(bob, letters, lines):
    for line in lines[1:3]:
        actions.do_save_line(line, bob, line.text + ".", expected_version=1)
    actions.do_mark_unclear(lines[2], bob)
    exported = ground_truth_lines(letters, ExportOptions())
    assert [line.pk for line in exported] == [lines[1].pk]


def test_the_api_shows_the_mark_and_lists_marked_lines(client, bob, letters, lines):
    actions.do_mark_unclear(lines[3], bob, "ink blot")
    detail = client.get(reverse("api_line", args=[lines[3].pk]), headers=auth(bob)).json()
    assert (detail["unclear"], detail["unclear_note"]) == (True, "ink blot")
    assert detail["history"][-1]["action"] == "unclear"
    assert detail["history"][-1]["note"] == "ink blot"
    url = reverse("api_lines", args=[letters.pk])
    listed = client.get(url, {"unclear": "true"}, headers=auth(bob)).json()["results"]
    assert [line["id"] for line in listed] == [lines[3].pk]
    everyone = client.get(url, headers=auth(bob)).json()["results"]
    assert len(everyone) == len(lines)


def test_search_finds_the_marked_lines(client, bob, letters, lines):
    actions.do_mark_unclear(lines[2], bob)
    client.force_login(bob)
    url = reverse("collection_search", args=[letters.pk])
    response = client.get(url, {"q": "letter or inst", "unclear": "on"})
    assert [hit.line.pk for hit in response.context["results"].hits] == [lines[2].pk]
    answer = client.get(
        reverse("api_search", args=[letters.pk]), {"q": "letter", "unclear": "true"},
        headers=auth(bob),
    ).json()  # fmt: skip
    assert [hit["id"] for hit in answer["results"]] == [lines[2].pk]


def test_a_merge_keeps_the_mark_and_both_notes_and_records_the_lines_trail(bob, letters, lines):
    """Merging line 3 with line 4 marked unclear gave a line marked clear, its note gone from
    everywhere: the guess went back unmarked, to training exports."""
    actions.do_mark_unclear(lines[2], bob, "the date")
    actions.do_mark_unclear(lines[3], bob, "the second word is a guess")
    merged = actions.do_merge_lines(lines[2], bob, expected_version=1)
    assert (merged.unclear, merged.unclear_note) == (
        True,
        "the date; the second word is a guess",
    )
    event = CollectionEvent.objects.get(event_type=CollectionEvent.Type.LINE_DELETED)
    assert (event.line_id, event.extra_data["merged_into"]) == (lines[3].pk, 3)
    assert [(r["action"], r["user"], r["note"]) for r in event.extra_data["trail"]] == [
        ("unclear", "bob", "the second word is a guess")
    ]
    assert audit.sentence(event) == "bob merged line 4 into line 3 on page 1 of 'Letter to Mr Hale'"


def test_a_merge_with_a_marked_line_marks_the_whole(bob, letters, lines):
    actions.do_mark_unclear(lines[3], bob)
    merged = actions.do_merge_lines(lines[2], bob, expected_version=1)
    assert (merged.unclear, merged.unclear_note) == (True, "")
    # Read again and saved, it is still the guess it was: training does not get it.
    actions.do_save_line(merged, bob, "letter of the 3d inst. and", expected_version=2)
    assert not ground_truth_lines(letters, ExportOptions()).filter(pk=merged.pk).exists()


def test_merged_notes_are_cut_to_a_notes_length_and_not_repeated(bob, letters, lines):
    half = actions.do_split_line(lines[2], bob, at_x=250, expected_version=1)
    actions.do_mark_unclear(lines[2], bob, "a blot")
    actions.do_mark_unclear(half, bob, "a blot")
    assert actions.do_merge_lines(lines[2], bob, expected_version=2).unclear_note == "a blot"
    actions.do_mark_unclear(lines[2], bob, "x" * 150)
    actions.do_mark_unclear(lines[3], bob, "y" * 150)
    note = actions.do_merge_lines(lines[2], bob, expected_version=3).unclear_note
    assert (len(note), note[-2:]) == (actions.UNCLEAR_NOTE_LENGTH, "y…")


def test_both_halves_of_a_split_keep_the_mark(bob, letters, lines):
    actions.do_mark_unclear(lines[2], bob, "the date")
    half = actions.do_split_line(lines[2], bob, at_x=250, expected_version=1)
    for line in (Line.objects.get(pk=lines[2].pk), half):
        assert (line.unclear, line.unclear_note) == (True, "the date")

"""The collection's events that review's actions write: a threshold applied, a person's saves
undone, and the segmentation edits that leave no correction (a box added, deleted, or moved on
a line nobody reviewed). A reviewed line's box, a split and a merge are the correction trail's,
and write no event; a refused edit writes nothing."""

import pytest
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus import audit
from ocrreview.corpus.models import CollectionEvent, Line
from ocrreview.review import actions
from ocrreview.review.models import Correction

T = CollectionEvent.Type
S = Line.Status


def events(collection) -> list[CollectionEvent]:
    return list(CollectionEvent.objects.filter(collection=collection).order_by("id"))


def test_applying_a_threshold_records_both_thresholds_and_the_lines_moved(
    client, alice, bob, letters, lines
):
    before = letters.confidence_threshold
    url = reverse("review_apply_threshold", args=[letters.pk])
    client.force_login(bob)
    assert client.post(url, {"confidence_threshold": "0.5"}).status_code == 403
    assert events(letters) == []
    client.force_login(alice)
    confirmed = {
        "confidence_threshold": "0.5",
        "confirm_uncalibrated": "on",
    }  # the lines' model is uncalibrated
    assert client.post(url, confirmed).status_code == 302
    [event] = events(letters)
    assert (event.event_type, event.acting_user) == (T.THRESHOLD_APPLIED, alice)
    assert event.extra_data == {
        "old_value": before,
        "new_value": 0.5,
        "to_humans": 0,
        "accepted": 1,  # "letter of the 3d", read at 0.60
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert audit.sentence(event) == (
        f"alice applied a review threshold of 0.50 (it was {before:.2f}) to the lines: "
        "0 lines sent to reviewers, 1 accepted"
    )


def test_undoing_a_persons_saves_is_one_event_saying_what_was_put_back(
    alice, bob, letters, lines, bobs_saves
):
    result = actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    [event] = events(letters)
    assert (event.event_type, event.acting_user) == (T.SAVES_UNDONE, alice)
    assert event.extra_data == {
        "member": {"id": bob.pk, "username": "bob"},
        "since": bobs_saves.isoformat(),
        "reverted": len(result.reverted),
        "requeued": len(result.requeued),
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert (len(result.reverted), len(result.requeued)) == (2, 1)
    since = timezone.localtime(bobs_saves).strftime("%Y-%m-%d %H:%M:%S")
    assert audit.sentence(event) == (
        f"alice undid bob's saves since {since}: 2 lines put back, 1 of them back in the "
        "review queue"
    )
    # Nothing left to undo: nothing changed, nothing recorded.
    actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    assert len(events(letters)) == 1


def test_a_large_undo_is_one_event_per_batch_committed(
    alice, bob, letters, lines, bobs_saves, monkeypatch
):
    monkeypatch.setattr(actions, "REVERT_BATCH", 1)
    actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    # Lines 2 and 3 put back, one batch each; line 4's batch, changed since by dave, put
    # back nothing.
    assert [e.extra_data["reverted"] for e in events(letters)] == [1, 1]


def test_a_box_moved_on_a_line_nobody_reviewed(bob, letters, lines):
    line = lines[1]
    actions.do_move_line(line, bob, [20, 50, 510, 80], expected_version=line.version)
    [event] = events(letters)
    assert (event.event_type, event.acting_user) == (T.LINE_MOVED, bob)
    assert (event.document_id, event.page_id, event.line_id) == (
        line.document_id,
        line.page_id,
        line.pk,
    )
    assert event.extra_data == {
        "title": "Letter to Mr Hale",
        "page": 1,
        "line": 2,
        "old_value": [10, 50, 500, 80],
        "new_value": [20, 50, 510, 80],
        "actor": {"id": bob.pk, "username": "bob"},
    }
    assert audit.sentence(event) == "bob moved the box of line 2 on page 1 of 'Letter to Mr Hale'"
    assert not Correction.objects.filter(line=line).exists()


def test_a_reviewed_lines_box_split_and_merge_are_the_correction_trails_alone(bob, letters, lines):
    saved = actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    actions.do_move_line(lines[1], bob, [20, 50, 510, 80], expected_version=saved.line_version)
    half = actions.do_split_line(lines[2], bob, at_x=250, expected_version=1)
    actions.do_merge_lines(lines[2], bob, expected_version=2)  # the halves joined again
    assert events(letters) == []
    assert not Line.objects.filter(pk=half.pk).exists()
    segment = Correction.objects.filter(action=Correction.Action.SEGMENT)
    assert list(segment.values_list("line_id", flat=True).order_by("id")) == [
        lines[1].pk,
        lines[2].pk,
        lines[2].pk,
    ]


def test_a_line_added_and_one_deleted(client, bob, letters, page, lines):
    added = actions.do_add_line(page, bob, [10, 300, 500, 330])
    client.force_login(bob)
    url = reverse("review_delete", args=[letters.pk, lines[3].pk])
    assert client.post(url, {"expected_version": 1}).json()["ok"]
    first, second = events(letters)
    assert (first.event_type, first.line_id, first.page_id) == (T.LINE_ADDED, added.pk, page.pk)
    assert first.extra_data == {
        "title": "Letter to Mr Hale",
        "page": 1,
        "line": 5,
        "bbox": [10, 300, 500, 330],
        "actor": {"id": bob.pk, "username": "bob"},
    }
    assert (second.event_type, second.acting_user, second.line_id) == (
        T.LINE_DELETED,
        bob,
        lines[3].pk,
    )
    assert second.extra_data == {
        "title": "Letter to Mr Hale",
        "page": 1,
        "line": 4,
        "bbox": [10, 130, 500, 160],
        "text": "inst. and",
        "actor": {"id": bob.pk, "username": "bob"},
    }
    assert not Line.objects.filter(pk=lines[3].pk).exists()
    assert [audit.sentence(e) for e in (first, second)] == [
        "bob added line 5 on page 1 of 'Letter to Mr Hale'",
        "bob removed line 4 on page 1 of 'Letter to Mr Hale'",
    ]


def test_refused_segmentation_edits_record_nothing(bob, letters, lines):
    with pytest.raises(actions.VersionConflict):
        actions.do_move_line(lines[1], bob, [20, 50, 510, 80], expected_version=7)
    with pytest.raises(actions.VersionConflict):
        actions.do_delete_line(lines[1], bob, expected_version=7)
    actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    with pytest.raises(actions.ReviewError, match="review history"):
        actions.do_delete_line(lines[2], bob, expected_version=2)
    with pytest.raises(actions.ReviewError, match="empty"):
        actions.do_add_line(lines[0].page, bob, [700, 700, 800, 800])
    assert events(letters) == []

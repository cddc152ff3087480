"""The page view: every line of a page, editable in place, and its segmentation."""

import threading

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from ocrreview.corpus.models import CollectionEvent, Line
from ocrreview.review import actions
from ocrreview.review.models import Correction, Draft
from ocrreview.transcription.models import RecognitionRequest
from tests.db_locks import wait_until_another_session_waits_for_a_lock

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def ordered(page):
    return list(Line.objects.filter(page=page).order_by("order").values_list("text", flat=True))


def test_the_page_view_shows_every_line_coloured_by_confidence(client, bob, letters, page, lines):
    client.force_login(bob)
    response = client.get(reverse("review_page", args=[letters.pk, page.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for line in lines:
        assert f'id="line-{line.pk}"' in html
    assert 'class="box band-high"' in html and 'class="box band-low"' in html
    assert reverse("review_page_image", args=[letters.pk, page.pk]) in html


def test_a_line_saved_in_place_comes_back_as_its_row(client, bob, letters, lines):
    client.force_login(bob)
    url = reverse("review_save", args=[letters.pk, lines[0].pk])
    response = client.post(url, {"text": "Dear Sirs", "expected_version": 1, "stay": "1"}, **FETCH)
    assert response.status_code == 200
    assert 'data-saved="Dear Sirs"' in response.content.decode()
    assert Line.objects.get(pk=lines[0].pk).status == "reviewed"


def test_moving_a_box_shifts_its_polygon(client, bob, letters, page, lines):
    Line.objects.filter(pk=lines[1].pk).update(polygon=[[10, 50], [500, 50], [500, 80]])
    client.force_login(bob)
    url = reverse("review_move", args=[letters.pk, lines[1].pk])
    box = {"x0": 20, "y0": 55, "x1": 510, "y1": 85, "expected_version": 1}
    # The line as it now is, which the page view keeps in place.
    assert client.post(url, box).json() == {
        "ok": True,
        "line": lines[1].pk,
        "version": 2,
        "bbox": [20, 55, 510, 85],
    }
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.bbox, line.version) == ([20, 55, 510, 85], 2)
    assert line.polygon == [[20, 55], [510, 55], [510, 85]]


def test_moving_a_reviewed_box_is_in_the_trail_and_other_moves_are_not(
    client, alice, bob, letters, lines
):
    actions.do_save_line(lines[1], alice, "I received your", expected_version=1)
    client.force_login(bob)
    box = {"x0": 12, "y0": 52, "x1": 502, "y1": 82}
    client.post(
        reverse("review_move", args=[letters.pk, lines[1].pk]), {**box, "expected_version": 2}
    )
    client.post(
        reverse("review_move", args=[letters.pk, lines[2].pk]), {**box, "expected_version": 1}
    )
    moved = Correction.objects.get(line=lines[1], action="segment")
    assert (moved.user, moved.text_before, moved.text_after, moved.line_version) == (
        bob,
        "I received your",
        "I received your",
        3,
    )
    assert not Correction.objects.filter(line=lines[2]).exists()


def test_resizing_a_box_drops_the_polygon_and_clips_to_the_page(client, bob, letters, lines):
    Line.objects.filter(pk=lines[1].pk).update(polygon=[[10, 50], [500, 50], [500, 80]])
    client.force_login(bob)
    url = reverse("review_move", args=[letters.pk, lines[1].pk])
    client.post(url, {"x0": 10, "y0": 50, "x1": 900, "y1": 95, "expected_version": 1})
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.bbox, line.polygon) == ([10, 50, 600, 95], [])


@pytest.mark.parametrize(
    "box",
    [
        {"x0": 700, "y0": 10, "x1": 800, "y1": 40},
        {"x0": 10, "y0": 10, "x1": 11, "y1": 40},
        {"x0": "left", "y0": 10, "x1": 100, "y1": 40},
    ],
)
def test_a_bad_box_is_refused(client, bob, letters, lines, box):
    client.force_login(bob)
    url = reverse("review_move", args=[letters.pk, lines[1].pk])
    response = client.post(url, {**box, "expected_version": 1})
    assert response.status_code == 400 and response.json()["error"]
    assert Line.objects.get(pk=lines[1].pk).bbox == lines[1].bbox


def test_a_stale_move_is_refused(client, bob, letters, lines):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    client.force_login(bob)
    url = reverse("review_move", args=[letters.pk, lines[1].pk])
    response = client.post(url, {"x0": 1, "y0": 1, "x1": 90, "y1": 40, "expected_version": 1})
    assert response.status_code == 409


def test_splitting_a_line_cuts_box_and_text(client, bob, letters, page, lines):
    client.force_login(bob)
    url = reverse("review_split", args=[letters.pk, lines[2].pk])
    response = client.post(url, {"x": 300, "expected_version": 1})
    assert response.status_code == 200
    assert ordered(page) == ["Dear Sir", "I recieved your", "letter of", "the 3d", "inst. and"]
    left = Line.objects.get(pk=lines[2].pk)
    right = Line.objects.get(pk=response.json()["line"])
    assert (left.bbox, right.bbox) == ([10, 90, 300, 120], [300, 90, 500, 120])
    assert left.status == right.status == "needs_review"
    assert left.model_version is None and left.confidence is None
    record = Correction.objects.get(line=left)
    assert (record.action, record.text_after) == ("segment", "letter of")
    # The model reads the new half; the pipeline does the rest.
    assert RecognitionRequest.objects.filter(line=right, status="queued").exists()


def test_a_split_from_the_page_view_keeps_each_halfs_part_of_the_typing(
    client, bob, letters, page, lines
):
    """The row's unsaved text went nowhere: the left half came back with the old whole line,
    the right half with the model's reading of its box, and the typing was lost."""
    actions.do_save_draft(lines[2], bob, "letter of the 3rd", base_version=1)
    client.force_login(bob)
    url = reverse("review_split", args=[letters.pk, lines[2].pk])
    answer = client.post(
        url, {"x": 250, "expected_version": 1, "text": "letter of the 3rd", "at": 9}
    )
    assert answer.status_code == 200
    assert ordered(page) == ["Dear Sir", "I recieved your", "letter of", "the 3rd", "inst. and"]
    left = Line.objects.get(pk=lines[2].pk)
    right = Line.objects.get(pk=answer.json()["line"])
    assert (left.bbox, right.bbox) == ([10, 90, 250, 120], [250, 90, 500, 120])
    # A person's text: a model's reading of the new box adds an alternative, no more.
    assert left.human_text and right.human_text
    assert left.status == right.status == "needs_review"
    record = Correction.objects.get(line=left)
    assert (record.action, record.text_before, record.text_after) == (
        "segment",
        "letter of the 3d",
        "letter of",
    )
    # The draft is in the halves now; the editor must not bring back the whole line.
    assert not Draft.objects.filter(line=left).exists()


def test_a_split_of_the_rows_text_without_a_place_cuts_it_where_the_box_is(
    client, bob, letters, page, lines
):
    client.force_login(bob)
    url = reverse("review_split", args=[letters.pk, lines[1].pk])
    answer = client.post(url, {"x": 60, "expected_version": 1, "text": "I received your"})
    assert answer.status_code == 200
    assert ordered(page)[1:3] == ["I", "received your"]


@pytest.mark.parametrize(
    "text, at, halves",
    [
        # The page view counts code points: a JS index would count each of these twice.
        ("𝔏𝔢𝔱𝔱𝔢𝔯 of the 3d", 9, ("𝔏𝔢𝔱𝔱𝔢𝔯 of", "the 3d")),
        # Soft hyphens (and a zero-width space) go, but only once the text is cut.
        ("Ge\u00adbrü\u00adder\u200b Grimm", 10, ("Gebrüder", "Grimm")),
        # Each accent typed apart is one character less once composed (NFC).
        ("E\u0301le\u0301onore re\u0301pond", 10, ("Éléonore", "répond")),
        # At the very end, after an invisible mark.
        ("letter of the 3d\u200b", 17, ("letter of the 3d", "")),
    ],
)
def test_the_page_view_splits_the_text_where_the_person_cut_it(
    client, bob, letters, page, lines, text, at, halves
):
    """The place was taken in the text once cleaned, which is shorter: the cut fell a
    character later for each mark removed or accent composed before it."""
    client.force_login(bob)
    url = reverse("review_split", args=[letters.pk, lines[2].pk])
    answer = client.post(url, {"x": 250, "expected_version": 1, "text": text, "at": at})
    assert answer.status_code == 200
    assert tuple(ordered(page)[2:4]) == halves


@pytest.mark.parametrize("text", ["letter of the 3d", "let\u00adter of the 3d"])
def test_a_model_reading_only_cut_in_two_stays_the_models(client, bob, letters, page, lines, text):
    """The page view sends the row's text with every split: a bad reading only cut in two
    became a person's text, which the model's later readings no longer replaced."""
    client.force_login(bob)
    url = reverse("review_split", args=[letters.pk, lines[2].pk])
    at = text.index(" the")
    answer = client.post(url, {"x": 250, "expected_version": 1, "text": text, "at": at})
    assert answer.status_code == 200
    left = Line.objects.get(pk=lines[2].pk)
    right = Line.objects.get(pk=answer.json()["line"])
    assert (left.text, right.text) == ("letter of", "the 3d")
    assert not left.human_text and not right.human_text


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"text": "letter", "at": 7}, "Split the text inside it."),
        ({"at": 3}, "A place in the text comes with the text."),
    ],
)
def test_a_split_at_a_place_outside_the_text_is_refused(
    client, bob, letters, page, lines, fields, error
):
    client.force_login(bob)
    url = reverse("review_split", args=[letters.pk, lines[2].pk])
    answer = client.post(url, {"x": 250, "expected_version": 1, **fields})
    assert (answer.status_code, answer.json()["error"]) == (400, error)
    assert len(ordered(page)) == 4


def test_a_skipped_box_can_be_deleted_and_its_skips_are_in_the_deletions_event(
    client, bob, letters, page, lines
):
    """A box that is no line, skipped by whoever met it in the queue, could never go."""
    actions.do_claim_line(lines[3], bob)
    actions.do_skip_line(lines[3], bob)
    client.force_login(bob)
    url = reverse("review_delete", args=[letters.pk, lines[3].pk])
    assert client.post(url, {"expected_version": 1}).json()["ok"] is True
    assert not Line.objects.filter(pk=lines[3].pk).exists()
    event = CollectionEvent.objects.get(event_type=CollectionEvent.Type.LINE_DELETED)
    assert [(r["action"], r["user"]) for r in event.extra_data["trail"]] == [("skip", "bob")]


def test_a_box_marked_unclear_can_be_deleted_with_its_marks(client, bob, letters, page, lines):
    """A scribble no one can read is marked unclear before anyone sees it is no line."""
    actions.do_mark_unclear(lines[3], bob, "a blot")
    actions.do_clear_unclear(lines[3], bob)
    actions.do_mark_unclear(lines[3], bob)
    client.force_login(bob)
    url = reverse("review_delete", args=[letters.pk, lines[3].pk])
    assert client.post(url, {"expected_version": 1}).json()["ok"] is True
    assert not Line.objects.filter(pk=lines[3].pk).exists()
    event = CollectionEvent.objects.get(event_type=CollectionEvent.Type.LINE_DELETED)
    assert [r["action"] for r in event.extra_data["trail"]] == ["unclear", "clear", "unclear"]


def test_a_box_split_before_can_be_merged_away(client, bob, letters, page, lines):
    actions.do_split_line(lines[2], bob, at_x=250, expected_version=1)  # a segment record
    client.force_login(bob)
    url = reverse("review_merge", args=[letters.pk, lines[1].pk])
    assert client.post(url, {"expected_version": 1}).status_code == 200
    assert ordered(page) == ["Dear Sir", "I recieved your letter of", "the 3d", "inst. and"]
    assert not Line.objects.filter(pk=lines[2].pk).exists()


def test_the_trail_gives_up_only_skips_and_box_edits_and_only_of_the_line_being_removed(bob, lines):
    actions.do_claim_line(lines[3], bob)
    actions.do_skip_line(lines[3], bob)
    actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    delete = "DELETE FROM review_correction WHERE line_id = %s"
    naming = "SELECT set_config('review.removing_line', %s, true)"
    for line, named in [(lines[3], None), (lines[3], lines[2]), (lines[2], lines[2])]:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            if named is not None:
                cursor.execute(naming, [str(named.pk)])
            cursor.execute(delete, [line.pk])
    assert Correction.objects.filter(line__in=[lines[2], lines[3]]).count() == 2


def test_merging_a_line_with_the_next(client, bob, letters, page, lines):
    client.force_login(bob)
    url = reverse("review_merge", args=[letters.pk, lines[2].pk])
    assert client.post(url, {"expected_version": 1}).status_code == 200
    assert ordered(page) == ["Dear Sir", "I recieved your", "letter of the 3d inst. and"]
    assert Line.objects.get(pk=lines[2].pk).bbox == [10, 90, 500, 160]


def test_a_line_with_history_cannot_be_merged_away_or_deleted(client, bob, letters, page, lines):
    actions.do_save_line(lines[3], bob, "inst. and", expected_version=1)
    client.force_login(bob)
    merge = client.post(
        reverse("review_merge", args=[letters.pk, lines[2].pk]), {"expected_version": 1}
    )
    assert merge.status_code == 400 and "review history" in merge.json()["error"]
    delete = client.post(
        reverse("review_delete", args=[letters.pk, lines[3].pk]), {"expected_version": 2}
    )
    assert delete.status_code == 400
    assert len(ordered(page)) == 4


@pytest.mark.parametrize("alice_has", ["the lease", "a draft"])
@pytest.mark.parametrize(
    "removal, target, retry",
    [("review_merge", 2, "merge"), ("review_delete", 3, "delete it")],
)
def test_a_line_someone_else_is_working_on_is_not_merged_or_deleted_away(
    client, alice, bob, letters, page, lines, alice_has, removal, target, retry
):
    following = lines[3]
    if alice_has == "the lease":
        actions.do_claim_line(following, alice)
    else:
        actions.do_save_draft(following, alice, "inst. and I", base_version=1)
    client.force_login(bob)
    response = client.post(
        reverse(removal, args=[letters.pk, lines[target].pk]), {"expected_version": 1}
    )
    assert response.status_code == 400
    assert response.json()["error"] == f"Someone is working on line 4; {retry} once they are done."
    assert Line.objects.filter(pk=following.pk).exists() and len(ordered(page)) == 4
    if alice_has == "a draft":
        assert Draft.objects.get(line=following, user=alice).text == "inst. and I"


def test_merging_away_a_line_with_my_own_unsaved_text_is_refused(client, bob, letters, page, lines):
    """Typed into line 4 in the editor, then merged from the page view: the merge joins the
    saved texts, so the typing would go with the line."""
    actions.do_save_draft(lines[3], bob, "inst. and I", base_version=1)
    client.force_login(bob)
    response = client.post(
        reverse("review_merge", args=[letters.pk, lines[2].pk]), {"expected_version": 1}
    )
    assert response.status_code == 400
    assert response.json()["error"] == (
        "You have unsaved text in line 4; save or discard it there, then merge."
    )
    assert Draft.objects.get(line=lines[3], user=bob).text == "inst. and I"
    assert len(ordered(page)) == 4


def test_the_last_line_has_nothing_to_merge_with(client, bob, letters, lines):
    client.force_login(bob)
    response = client.post(
        reverse("review_merge", args=[letters.pk, lines[3].pk]), {"expected_version": 1}
    )
    assert "last line" in response.json()["error"]


def test_adding_a_line_puts_it_in_reading_order(client, bob, letters, page, lines):
    client.force_login(bob)
    url = reverse("review_add_line", args=[letters.pk, page.pk])
    response = client.post(url, {"x0": 10, "y0": 75, "x1": 400, "y1": 88})
    new = Line.objects.get(pk=response.json()["line"])
    assert (new.bbox, new.status, new.text) == ([10, 75, 400, 88], "needs_review", "")
    assert ordered(page)[2] == ""
    assert Line.objects.get(pk=lines[2].pk).order == 3
    assert RecognitionRequest.objects.filter(line=new, status="queued").exists()


def test_deleting_a_box_that_is_not_a_line(client, bob, letters, page, lines):
    client.force_login(bob)
    url = reverse("review_delete", args=[letters.pk, lines[0].pk])
    assert client.post(url, {"expected_version": 1}).json()["ok"] is True
    assert not Line.objects.filter(pk=lines[0].pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["review_delete", "review_merge", "review_split"])
def test_a_box_removed_while_a_second_edit_waited_is_a_clear_refusal(
    client, bob, letters, page, lines, second
):
    """Alt+Delete pressed twice, or a colleague's delete committing first."""
    client.force_login(bob)
    url = reverse(second, args=[letters.pk, lines[0].pk])
    answers = {}

    def press():
        try:
            answers["second"] = client.post(url, {"expected_version": 1, "x": 200})
        finally:
            connection.close()

    with transaction.atomic():
        Line.objects.select_for_update().get(pk=lines[0].pk).delete()  # the first press
        pressed = threading.Thread(target=press)
        pressed.start()
        wait_until_another_session_waits_for_a_lock()
    pressed.join()
    assert answers["second"].status_code == 400
    assert answers["second"].json()["error"] == actions.LINE_GONE


def test_segmentation_of_another_collection_is_not_found(client, charlie, letters, page, lines):
    client.force_login(charlie)
    assert client.get(reverse("review_page", args=[letters.pk, page.pk])).status_code == 404
    url = reverse("review_delete", args=[letters.pk, lines[0].pk])
    assert client.post(url, {"expected_version": 1}).status_code == 404
    url = reverse("review_add_line", args=[letters.pk, page.pk])
    assert client.post(url, {"x0": 1, "y0": 1, "x1": 50, "y1": 50}).status_code == 404
    assert Line.objects.filter(page=page).count() == 4

"""Undoing one volunteer's saves since a time (do_revert_user_saves), and its page: a collection
admin sees what it would change, confirms, and sees what it did. Lines changed since by someone
else are left alone and listed; saves racing the revert are either before it (and their lines
left alone) or after it (a version conflict, as for any stale save)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.actions import do_remove_member
from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.models import Correction
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

S = Line.Status
A = Correction.Action


def texts(lines) -> list[tuple[str, str]]:
    now = Line.objects.filter(pk__in=[line.pk for line in lines]).order_by("order")
    return [(line.text, line.status) for line in now]


def test_alice_puts_back_what_bob_saved_since_then_but_for_what_dave_changed_after(
    alice, bob, dave, letters, lines, bobs_saves
):
    result = actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    assert texts(lines) == [
        ("Dear Sir,", S.REVIEWED),  # bob's save before then stays
        ("I received your", S.REVIEWED),  # dave's text before bob's save: still reviewed
        # The model's reading, which nobody checked, goes back to the queue, not to the
        # reviewed lines a dataset export takes as ground truth.
        ("letter of the 3d", S.NEEDS_REVIEW),
        ("inst and", S.REVIEWED),  # dave edited it after bob: left alone
    ]
    assert result.reverted == [lines[1].pk, lines[2].pk]
    assert result.requeued == [lines[2].pk]
    assert [
        (s.newest.line_id, s.newest.user, s.newest.text_after, s.reason) for s in result.skipped
    ] == [(lines[3].pk, dave, "inst and", "changed")]
    reverts = Correction.objects.filter(action=A.REVERT).order_by("line__order")
    assert [(r.line_id, r.user, r.text_before, r.text_after) for r in reverts] == [
        (lines[1].pk, alice, "I RECEIVED YOUR", "I received your"),
        (lines[2].pk, alice, "LETTER OF THE 3D", "letter of the 3d"),
    ]
    # Each revert is the line's new version, as a save's: a page opened before it conflicts.
    assert [r.line_version for r in reverts] == [4, 3]
    with pytest.raises(actions.VersionConflict):
        actions.do_save_line(lines[2], bob, "LETTER OF THE 3D!", expected_version=2)


def test_undoing_bob_again_puts_back_the_models_reading_to_the_queue_again(
    alice, bob, letters, lines, bobs_saves
):
    """The first undo's revert put back the model's reading of line 3 and dave's text of
    line 2; undoing bob's later saves over them goes back to those, with their statuses."""
    actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    actions.do_save_line(lines[1], bob, "I RECEIVED YOUR", expected_version=4)
    actions.do_save_line(lines[2], bob, "XXX", expected_version=3)
    result = actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    assert texts(lines)[1:3] == [
        ("I received your", S.REVIEWED),
        ("letter of the 3d", S.NEEDS_REVIEW),
    ]
    assert (result.reverted, result.requeued) == ([lines[1].pk, lines[2].pk], [lines[2].pk])


def test_several_saves_go_back_to_before_the_first_and_not_past_someone_elses(
    alice, bob, dave, letters, lines
):
    since = timezone.now()
    actions.do_save_line(lines[1], bob, "I received yours", expected_version=1)
    actions.do_save_line(lines[1], bob, "I RECEIVED YOURS", expected_version=2)
    actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    actions.do_save_line(lines[2], dave, "letter of the third", expected_version=2)
    actions.do_accept_line(lines[2], bob, expected_version=3)
    result = actions.do_revert_user_saves(letters, bob, since, alice)
    assert result.reverted == [lines[1].pk, lines[2].pk] and result.skipped == []
    assert texts(lines[1:3]) == [
        ("I recieved your", S.NEEDS_REVIEW),
        # bob's accept of dave's text is undone; dave's text stays, and so does its review.
        ("letter of the third", S.REVIEWED),
    ]


def test_nothing_saved_since_then_changes_nothing(alice, bob, letters, lines, bobs_saves):
    later = Correction.objects.latest("created_at").created_at + timedelta(microseconds=1)
    result = actions.do_revert_user_saves(letters, bob, later, alice)
    assert (result.reverted, result.skipped) == ([], [])
    assert not Correction.objects.filter(action=A.REVERT).exists()


def test_the_preview_writes_nothing_and_says_what_the_revert_will_do(
    alice, bob, letters, lines, bobs_saves
):
    before = texts(lines)
    preview = actions.revert_user_saves_preview(letters, bob, bobs_saves)
    assert texts(lines) == before
    assert not Correction.objects.filter(action=A.REVERT).exists()
    done = actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    assert (preview.reverted, preview.requeued) == (done.reverted, done.requeued)
    assert preview.skipped == done.skipped


def test_lines_of_other_collections_are_not_touched(
    alice, bob, letters, lines, ledger_line, bobs_saves
):
    actions.do_save_line(ledger_line, bob, "TO CASH", expected_version=1)
    result = actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    assert ledger_line.pk not in result.reverted
    assert Line.objects.get(pk=ledger_line.pk).text == "TO CASH"


def test_many_lines_are_put_back_batch_by_batch(alice, bob, letters, lines, page, monkeypatch):
    """A batch holds its lines' locks until it commits; more lines than one batch all go."""
    monkeypatch.setattr(actions, "REVERT_BATCH", 3)
    since = timezone.now()
    more = [
        factories.make_line(page, n, text=f"line {n}", status=S.NEEDS_REVIEW) for n in range(4, 9)
    ]
    for line in [*lines[1:], *more]:
        actions.do_save_line(line, bob, "VANDAL", expected_version=line.version)
    result = actions.do_revert_user_saves(letters, bob, since, alice)
    assert len(result.reverted) == 8
    assert not Line.objects.filter(text="VANDAL").exists()


@pytest.mark.django_db(transaction=True)
def test_a_save_committing_as_the_revert_starts_is_kept(alice, bob, dave, letters, lines):
    """dave's save holds line 3's lock when the revert reaches it: the revert waits, sees his
    save, and leaves the line to him (rather than failing on a version it read before)."""
    factories.add_member(dave, letters)
    since = timezone.now()
    actions.do_save_line(lines[1], bob, "I RECEIVED YOUR", expected_version=1)
    actions.do_save_line(lines[2], bob, "LETTER OF THE 3D", expected_version=1)
    outcome = {}

    def revert():
        try:
            outcome["result"] = actions.do_revert_user_saves(letters, bob, since, alice)
        finally:
            connection.close()

    reverter = threading.Thread(target=revert)
    with transaction.atomic():
        actions.do_save_line(lines[2], dave, "letter of the 3d.", expected_version=2)
        reverter.start()
        wait_until_another_session_waits_for_a_lock()
    reverter.join()
    result = outcome["result"]
    assert result.reverted == [lines[1].pk]
    assert [(s.newest.line_id, s.newest.user) for s in result.skipped] == [(lines[2].pk, dave)]
    assert texts(lines[1:3]) == [
        ("I recieved your", S.NEEDS_REVIEW),
        ("letter of the 3d.", S.REVIEWED),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_save_arriving_during_the_revert_is_a_conflict(alice, bob, dave, letters, lines):
    """dave's save of the text he read before the revert waits for its locks, and then finds
    the version changed: nothing of his overwrites the revert unseen."""
    factories.add_member(dave, letters)
    since = timezone.now()
    actions.do_save_line(lines[1], bob, "I RECEIVED YOUR", expected_version=1)
    outcome = {}

    def save():
        try:
            actions.do_save_line(lines[1], dave, "I received your!", expected_version=2)
        except actions.VersionConflict as conflict:
            outcome["conflict"] = conflict
        finally:
            connection.close()

    saver = threading.Thread(target=save)
    with transaction.atomic():
        actions.do_revert_user_saves(letters, bob, since, alice)
        saver.start()
        wait_until_another_session_waits_for_a_lock()
    saver.join()
    assert outcome["conflict"].line.text == "I recieved your"
    assert texts(lines[1:2]) == [("I recieved your", S.NEEDS_REVIEW)]


# --- The page ---------------------------------------------------------------------------


def revert_url(collection) -> str:
    return reverse("review_revert_user", args=[collection.pk])


def test_the_page_asks_first_with_the_count_then_undoes(
    client, alice, bob, letters, lines, bobs_saves
):
    client.force_login(alice)
    query = {"user": bob.pk, "since": bobs_saves.isoformat()}
    asked = client.get(revert_url(letters), query)
    assert asked.status_code == 200
    html = asked.content.decode()
    assert "2 lines would go back" in html and "1 of them" in html
    assert "Left as they are (1)" in html and "dave" in html  # line 4, which dave edited
    assert f'value="{bob.pk}"' in html and "Undo 2 lines" in html
    assert not Correction.objects.filter(action=A.REVERT).exists()

    done = client.post(revert_url(letters), query)
    # Redirected to what it did: reloading that page shows it again, and undoes nothing more.
    assert done.status_code == 302
    for _ in range(2):
        shown = client.get(done["Location"]).content.decode()
        assert "2 lines put back" in shown and "1 of them" in shown
        assert "Left as they are (1)" in shown and "dave" in shown
    assert Correction.objects.filter(action=A.REVERT).count() == 2
    assert [t for t, _ in texts(lines)] == [
        "Dear Sir,",
        "I received your",
        "letter of the 3d",
        "inst and",
    ]
    again = client.get(revert_url(letters), query).content.decode()
    assert "nothing to undo" in again and "Left as they are (3)" in again


def test_the_confirmation_carries_the_time_to_the_microsecond(client, alice, bob, letters, lines):
    """A save a few microseconds before the time chosen is not undone on confirming."""
    first = actions.do_save_line(lines[1], bob, "I RECEIVED YOUR", expected_version=1)
    second = actions.do_save_line(lines[2], bob, "LETTER OF THE 3D", expected_version=1)
    client.force_login(alice)
    asked = client.get(
        revert_url(letters), {"user": bob.pk, "since": second.created_at.isoformat()}
    )
    assert first.created_at < second.created_at
    since = asked.content.decode().split('name="since" value="')[1].split('"')[0]
    client.post(revert_url(letters), {"user": bob.pk, "since": since})
    assert [t for t, _ in texts(lines[1:3])] == ["I RECEIVED YOUR", "letter of the 3d"]


def test_a_former_members_saves_can_still_be_undone(client, alice, bob, letters, lines, bobs_saves):
    """Removing a vandal from the collection comes first; their saves stay to be undone."""
    do_remove_member(letters, bob, actor=alice)
    client.force_login(alice)
    response = client.post(revert_url(letters), {"user": bob.pk, "since": bobs_saves.isoformat()})
    assert response.status_code == 302
    assert Line.objects.get(pk=lines[2].pk).text == "letter of the 3d"


@pytest.mark.parametrize(
    "query, message",
    [
        ({"since": "2026-01-01T00:00"}, "required"),
        ({"user": "BOB"}, "required"),
        ({"user": "BOB", "since": "yesterday"}, "valid date/time"),
        ({"user": "BOB", "since": "0001-01-01T00:00+01:00"}, "out of range"),
        ({"user": "999999", "since": "2026-01-01T00:00"}, "no member of this collection"),
        ({"user": "CHARLIE", "since": "2026-01-01T00:00"}, "no member of this collection"),
        ({"user": "bob", "since": "2026-01-01T00:00"}, "no member of this collection"),
    ],
)
def test_what_cannot_be_undone_is_a_400_saying_why(
    client, alice, bob, charlie, letters, lines, bobs_saves, query, message
):
    query = {k: {"BOB": bob.pk, "CHARLIE": charlie.pk}.get(v, v) for k, v in query.items()}
    client.force_login(alice)
    for response in (
        client.get(revert_url(letters), query),
        client.post(revert_url(letters), query),
    ):
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not Correction.objects.filter(action=A.REVERT).exists()


def test_reviewers_are_refused_and_outsiders_find_nothing(
    client, bob, charlie, letters, lines, bobs_saves
):
    query = {"user": bob.pk, "since": bobs_saves.isoformat()}
    client.force_login(bob)
    assert client.get(revert_url(letters), query).status_code == 403
    assert client.post(revert_url(letters), query).status_code == 403
    client.force_login(charlie)
    assert client.get(revert_url(letters), query).status_code == 404
    assert client.post(revert_url(letters), query).status_code == 404
    assert Line.objects.get(pk=lines[2].pk).text == "LETTER OF THE 3D"


@pytest.mark.django_db
def test_undoing_saves_over_half_a_split_line_keeps_it_a_persons_text(
    alice, bob, dave, letters, lines
):
    """The right half of a reviewed line cut in two holds bob's words, with no history of its
    own: undoing dave's edit of it puts them back, and no model reading may replace them."""
    factories.add_member(dave, letters)
    actions.do_save_line(lines[2], bob, "letter of the 3d", expected_version=1)
    right = actions.do_split_line(lines[2], bob, at_x=250, expected_version=2)
    assert right.human_text
    since = timezone.now()
    actions.do_save_line(right, dave, "3d!", expected_version=right.version)
    actions.do_revert_user_saves(letters, dave, since, alice)
    right.refresh_from_db()
    assert (right.status, right.human_text) == (S.NEEDS_REVIEW, True)
    assert right.text != "3d!"

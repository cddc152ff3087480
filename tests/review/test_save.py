"""Enter saves and opens the next line, Ctrl+Enter accepts, Alt+N picks; every action lands
in the Correction trail, and a stale save shows both texts instead of overwriting."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.models import Correction, Draft
from tests import factories

S = Line.Status
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def save(client, collection, line, **data):
    data.setdefault("expected_version", line.version)
    return client.post(reverse("review_save", args=[collection.pk, line.pk]), data, **FETCH)


def test_enter_saves_the_text_and_opens_the_next_line(client, bob, letters, lines):
    client.force_login(bob)
    first = actions.do_claim_next_line(letters, bob)
    assert first == lines[3].pk
    top = lines[3].hypotheses.get(rank=0)
    response = save(
        client, letters, lines[3], text="inst. and ſo", hypothesis=top.pk, time_spent_ms=4200
    )
    assert response.status_code == 200
    assert response["X-Line-Url"].startswith(reverse("review_line", args=[letters.pk, lines[1].pk]))
    assert 'value="I recieved your"' in response.content.decode()
    line = Line.objects.get(pk=lines[3].pk)
    assert (line.text, line.status, line.version, line.claimed_by) == (
        "inst. and ſo",
        S.REVIEWED,
        2,
        None,
    )
    correction = Correction.objects.get(line=line)
    assert correction.action == "edit"
    assert (correction.text_before, correction.text_after) == ("inst. and", "inst. and ſo")
    assert (correction.hypothesis, correction.line_version, correction.time_spent_ms) == (
        top,
        2,
        4200,
    )
    assert (correction.user, Line.objects.get(pk=lines[1].pk).claimed_by) == (bob, bob)


def test_ctrl_enter_accepts_the_text_unchanged(client, bob, letters, lines):
    client.force_login(bob)
    response = save(client, letters, lines[2], text="typed but dropped", action="accept")
    assert response.status_code == 200
    line = Line.objects.get(pk=lines[2].pk)
    assert (line.text, line.status) == ("letter of the 3d", S.REVIEWED)
    assert Correction.objects.get(line=line).action == "accept"


def test_saving_an_alternative_as_is_is_a_pick(client, bob, letters, lines):
    client.force_login(bob)
    second = lines[1].hypotheses.get(rank=1)
    save(client, letters, lines[1], text="I received your", hypothesis=second.pk)
    correction = Correction.objects.get(line=lines[1])
    assert (correction.action, correction.hypothesis) == ("pick", second)
    assert Line.objects.get(pk=lines[1].pk).text == "I received your"


def test_do_pick_hypothesis_takes_the_reading(bob, lines):
    third = lines[1].hypotheses.get(rank=2)
    correction = actions.do_pick_hypothesis(lines[1].pk, bob, third, expected_version=1)
    assert (correction.action, correction.text_after) == ("pick", "I reecived your")


def test_a_stale_save_shows_both_texts_and_changes_nothing(client, alice, bob, letters, lines):
    actions.do_save_line(lines[1], alice, "I received your", expected_version=1)
    client.force_login(bob)
    response = save(client, letters, lines[1], text="I receiued your", expected_version=1)
    assert response.status_code == 409
    page = response.content.decode()
    assert "I received your" in page and "I receiued your" in page
    assert "alice saved it at" in page and 'data-version="2"' in page
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.text, line.version) == ("I received your", 2)
    assert Correction.objects.filter(line=line).count() == 1
    # Keeping mine is a save against the version the conflict showed.
    response = save(client, letters, lines[1], text="I receiued your", expected_version=2)
    assert response.status_code == 200
    assert Line.objects.get(pk=lines[1].pk).text == "I receiued your"


def test_a_stale_accept_of_an_imported_text_with_a_tab_shows_both_texts(
    client, alice, bob, letters, lines
):
    """A PAGE or ALTO import may bring a tab into a line's text, which a save refuses; an
    accept confirms it as it is, and so does the conflict that shows it."""
    Line.objects.filter(pk=lines[1].pk).update(text="I\treceived your")
    actions.do_save_line(lines[1], alice, "I received your", expected_version=1)
    client.force_login(bob)
    response = save(client, letters, lines[1], text="I\treceived your", action="accept")
    assert response.status_code == 409
    assert "I\treceived your" in response.content.decode()
    assert Line.objects.get(pk=lines[1].pk).text == "I received your"


def test_saving_clears_the_reviewers_draft(client, bob, letters, lines):
    actions.do_save_draft(lines[1], bob, "I rec", base_version=1)
    client.force_login(bob)
    save(client, letters, lines[1], text="I received your")
    assert not Draft.objects.filter(line=lines[1]).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "two\nlines"}, "line breaks"),
        ({"text": "two\u2028lines"}, "line breaks"),
        ({"text": "bell\x07"}, "control characters"),
        ({"text": "x" * 2001}, "at most 2000"),
        ({"text": "ok", "expected_version": "first"}, "expected version"),
        ({"text": "ok", "hypothesis": "999999"}, "does not belong"),
        ({"text": "ok", "time_spent_ms": "-5"}, "time spent ms"),
        # Beyond PostgreSQL's bigint and integer: a form error, not a database error (500).
        ({"text": "ok", "hypothesis": str(2**63)}, "hypothesis"),
        ({"text": "ok", "expected_version": str(2**31)}, "expected version"),
        ({"text": "ok", "time_spent_ms": str(2**31)}, "time spent ms"),
    ],
)
def test_bad_input_is_refused_with_a_message(client, bob, letters, lines, data, message):
    client.force_login(bob)
    response = save(client, letters, lines[1], **data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.text, line.version) == ("I recieved your", 1)
    assert not Correction.objects.exists()


def test_a_hypothesis_of_another_line_is_refused(client, bob, letters, lines):
    client.force_login(bob)
    foreign = lines[2].hypotheses.get(rank=0)
    response = save(client, letters, lines[1], text="x", hypothesis=foreign.pk)
    assert response.status_code == 400


def test_text_is_stored_in_one_unicode_spelling(bob, lines):
    actions.do_save_line(lines[1], bob, "Mu\u0308ller", expected_version=1)
    assert Line.objects.get(pk=lines[1].pk).text == "M\u00fcller"


def test_what_nobody_can_see_in_a_saved_text_is_not_kept(bob, lines):
    """A tab pasted from a table was refused as a control character the reviewer could not
    find; a zero-width space or soft hyphen from a PDF split the word for search; spaces at
    the ends made a reading kept unchanged count as wrong."""
    actions.do_save_line(
        lines[1], bob, " I\treceived your\u200b le pro\u00adcureur ", expected_version=1
    )
    assert Line.objects.get(pk=lines[1].pk).text == "I received your le procureur"


def test_without_javascript_a_save_redirects_to_the_next_line(client, bob, letters, lines):
    client.force_login(bob)
    url = reverse("review_save", args=[letters.pk, lines[3].pk])
    response = client.post(url, {"text": "inst. and", "expected_version": 1})
    assert response.status_code == 302
    assert f"/lines/{lines[1].pk}/" in response["Location"]


def test_the_last_line_saved_says_the_queue_is_done(client, bob, letters, lines):
    Line.objects.exclude(pk=lines[3].pk).update(status=S.REVIEWED)
    client.force_login(bob)
    response = save(client, letters, lines[3], text="inst. and")
    assert "Nothing left to review" in response.content.decode()


def test_skip_hands_the_line_back_and_opens_another(client, bob, letters, lines):
    client.force_login(bob)
    assert actions.do_claim_next_line(letters, bob) == lines[3].pk
    url = reverse("review_skip", args=[letters.pk, lines[3].pk])
    response = client.post(url, {"time_spent_ms": "900"}, **FETCH)
    assert f"/lines/{lines[1].pk}/" in response["X-Line-Url"]
    line = Line.objects.get(pk=lines[3].pk)
    assert (line.status, line.claimed_by, line.version) == (S.NEEDS_REVIEW, None, 1)
    skip = Correction.objects.get(line=line)
    assert (skip.action, skip.time_spent_ms, skip.line_version) == ("skip", 900, 1)
    # The skipped line stays out of bob's way for the rest of his session.
    save(client, letters, lines[1], text="I received your")
    assert Line.objects.get(pk=lines[2].pk).claimed_by == bob


def test_a_skip_by_someone_who_does_not_hold_the_line_changes_and_records_nothing(
    client, alice, bob, letters, lines
):
    actions.do_claim_line(lines[1], alice)
    client.force_login(bob)
    client.post(reverse("review_skip", args=[letters.pk, lines[1].pk]), **FETCH)
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.status, line.claimed_by) == (S.IN_REVIEW, alice)
    assert not Correction.objects.exists()
    # So the box, if it is not a line, can still be removed.
    Line.objects.filter(pk=lines[1].pk).update(
        status=S.NEEDS_REVIEW, claimed_by=None, claimed_until=None
    )
    actions.do_delete_line(lines[1], alice, expected_version=1)


def test_a_line_merged_away_after_the_skip_was_sent_is_nothing_to_skip(bob, letters, lines):
    """Another reviewer merged the box away between the request's lookup and the skip."""
    from ocrreview.review.views import _lease_state

    actions.do_claim_line(lines[1], bob)
    line_id = lines[1].pk
    Line.objects.filter(pk=line_id).delete()
    assert actions.do_skip_line(line_id, bob) is None
    assert _lease_state(line_id, bob) == "none"
    assert not Correction.objects.exists()


def test_skipping_keeps_the_reviewers_document_filter(
    client, bob, letters, letter, lines, model_version
):
    other = factories.make_document(letters, "Another letter")
    factories.make_read_line(factories.make_page(other), 0, [("unsure", 0.01)], model_version)
    client.force_login(bob)
    assert actions.do_claim_next_line(letters, bob, document_id=letter.pk) == lines[3].pk
    url = reverse("review_skip", args=[letters.pk, lines[3].pk]) + f"?document={letter.pk}"
    response = client.post(url, {"time_spent_ms": "900"}, **FETCH)
    # The next line is of the same letter, though the other document's line is less sure.
    assert f"/lines/{lines[1].pk}/" in response["X-Line-Url"]
    assert f"document={letter.pk}" in response["X-Line-Url"]


def test_a_conflict_with_a_moved_box_blames_neither_a_reading_nor_a_skip(
    client, alice, bob, letters, lines
):
    """The line's reading and alice's skip are older than the change bob's save meets."""
    actions.do_skip_line(lines[1], alice)
    actions.do_move_line(lines[1], alice, [12, 50, 500, 80], expected_version=1)
    client.force_login(bob)
    response = save(client, letters, lines[1], text="I received your", expected_version=1)
    assert response.status_code == 409
    page = response.content.decode()
    assert "It changed since you opened it." in page
    assert "alice saved it" not in page and "A new reading" not in page


def test_a_stale_save_is_no_retry_of_the_reviewers_skip(bob, lines):
    """A skip records the version it saw, one past the stale one: taken for this save's
    first answer, the save was dropped and the client told it was done."""
    line = lines[1]
    Line.objects.filter(pk=line.pk).update(version=2)  # a model read it again, same text
    assert actions.do_claim_line(line, bob)
    actions.do_skip_line(line, bob)
    with pytest.raises(actions.VersionConflict):
        actions.do_save_line(line, bob, line.text, expected_version=1)


def test_a_save_sent_again_after_the_line_changed_since_is_a_conflict(bob, lines):
    first = actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    Line.objects.filter(pk=lines[1].pk).update(version=first.line_version + 1)  # a threshold
    with pytest.raises(actions.VersionConflict):
        actions.do_save_line(lines[1], bob, "I received your", expected_version=1)


def test_an_empty_text_is_refused_unless_the_reviewer_confirmed_it(client, bob, letters, lines):
    """Select-all, Backspace, Enter: the reading would be gone and the line counted reviewed
    (and left out of exports, as an empty line is). A box with no writing is a real answer,
    saved once the editor's second Enter confirms it."""
    client.force_login(bob)
    for text in ("", "   "):
        response = save(client, letters, lines[2], text=text)
        assert response.status_code == 400
        assert response.json()["error"] == actions.EMPTY_REFUSED
    line = Line.objects.get(pk=lines[2].pk)
    assert (line.text, line.version, line.status) == ("letter of the 3d", 1, S.NEEDS_REVIEW)
    assert not Correction.objects.exists()

    response = save(client, letters, lines[2], text="", confirm_empty="1")
    assert response.status_code == 200
    line.refresh_from_db()
    assert (line.text, line.version, line.status) == ("", 2, S.REVIEWED)
    correction = Correction.objects.get(line=line)
    assert (correction.action, correction.text_before, correction.text_after) == (
        "edit",
        "letter of the 3d",
        "",
    )


def test_a_line_without_text_is_saved_empty_as_it_is(client, bob, letters, page):
    """Nothing to lose: a box the model read as nothing, confirmed empty by Enter."""
    line = factories.make_line(page, 4, text="", status=S.NEEDS_REVIEW)
    client.force_login(bob)
    assert save(client, letters, line, text="").status_code == 200
    line.refresh_from_db()
    assert (line.text, line.status) == ("", S.REVIEWED)


def test_a_confirmed_empty_text_on_a_line_changed_meanwhile_shows_both(
    client, bob, alice, letters, lines
):
    actions.do_save_line(lines[2], alice, "letter of the 3rd", expected_version=1)
    client.force_login(bob)
    response = save(client, letters, lines[2], text="", confirm_empty="1")
    assert response.status_code == 409
    assert Line.objects.get(pk=lines[2].pk).text == "letter of the 3rd"

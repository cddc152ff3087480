"""Each line shows its history (who, when, the diff) and can go back to any earlier text."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.diff import diff_spans
from ocrreview.review.models import Correction

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}
S = Line.Status


def history(client, collection, line):
    return client.get(reverse("review_history", args=[collection.pk, line.pk])).content.decode()


def test_history_lists_who_did_what_with_a_diff(client, alice, bob, letters, lines):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    actions.do_accept_line(lines[1], alice, expected_version=2)
    client.force_login(bob)
    page = history(client, letters, lines[1])
    assert page.index("alice") < page.index("bob")  # newest first
    assert "<del>ie</del><ins>ei</ins>" in page or "<ins>" in page
    assert "Accepted unchanged" in page and "Edited" in page


def test_a_line_without_history_says_so(client, bob, letters, lines):
    client.force_login(bob)
    assert "No one has changed this line yet" in history(client, letters, lines[1])


def test_reverting_to_an_earlier_text(client, bob, letters, lines):
    first = actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    actions.do_save_line(lines[1], bob, "I received yours", expected_version=2)
    client.force_login(bob)
    url = reverse("review_revert", args=[letters.pk, lines[1].pk, first.pk])
    response = client.post(url, {"expected_version": 3}, **FETCH)
    assert response.status_code == 200
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.text, line.version, line.status) == ("I received your", 4, S.REVIEWED)
    revert = Correction.objects.filter(line=line).latest("id")
    assert (revert.action, revert.text_before, revert.text_after) == (
        "revert",
        "I received yours",
        "I received your",
    )
    # ... and to the machine's reading, the text before the first action.
    # Nobody checked it: it goes back to the queue, not to the ground truth an export takes.
    response = client.post(url, {"expected_version": 4, "before": "1"}, **FETCH)
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.text, line.status, line.claimed_by) == ("I recieved your", S.NEEDS_REVIEW, None)


def test_reverting_to_what_a_revert_put_back_keeps_its_status(bob, letters, lines):
    """The model's reading a revert put back is still nobody's text; a person's still is."""
    edit = actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    to_model = actions.do_revert_line(lines[1], bob, edit, expected_version=2, before=True)
    actions.do_save_line(lines[1], bob, "XXX", expected_version=3)
    actions.do_revert_line(lines[1], bob, to_model, expected_version=4)
    assert status(lines[1]) == ("I recieved your", S.NEEDS_REVIEW)
    to_person = actions.do_revert_line(lines[1], bob, edit, expected_version=5)
    actions.do_save_line(lines[1], bob, "YYY", expected_version=6)
    actions.do_revert_line(lines[1], bob, to_person, expected_version=7)
    assert status(lines[1]) == ("I received your", S.REVIEWED)


def status(line) -> tuple[str, str]:
    line = Line.objects.get(pk=line.pk)
    return line.text, line.status


def test_a_stale_revert_is_a_conflict(client, bob, letters, lines):
    first = actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    actions.do_save_line(lines[1], bob, "I received yours", expected_version=2)
    client.force_login(bob)
    url = reverse("review_revert", args=[letters.pk, lines[1].pk, first.pk])
    assert client.post(url, {"expected_version": 2}, **FETCH).status_code == 409
    assert Line.objects.get(pk=lines[1].pk).text == "I received yours"


def test_reverting_to_another_lines_history_is_refused(client, bob, letters, lines):
    other = actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    client.force_login(bob)
    url = reverse("review_revert", args=[letters.pk, lines[1].pk, other.pk])
    response = client.post(url, {"expected_version": 1}, **FETCH)
    assert response.status_code == 400
    assert "does not belong" in response.json()["error"]
    assert Line.objects.get(pk=lines[1].pk).text == "I recieved your"


@pytest.mark.parametrize(
    "before, after",
    [
        ("I recieved your", "I received your"),
        ("", "new text"),
        ("gone", ""),
        ("aaa", "aaaa"),
        ("Tbe cat sat", "The cat sat."),
        ("ab" * 1000, "a" * 2000),
        ("the " * 50, "The " * 50 + "."),
        ("a " * 1000, "b " * 1000),
        ("q\u0303ue " * 200, "q\u0304ue " * 200 + "."),
    ],
)
def test_a_diff_spells_out_both_texts(before, after):
    spans = diff_spans(before, after)
    assert "".join(text for kind, text in spans if kind != "ins") == before
    assert "".join(text for kind, text in spans if kind != "del") == after
    assert all(text for _, text in spans)


def test_a_short_change_is_shown_character_by_character():
    assert diff_spans("Tbe cat sat", "The cat sat.") == [
        ("same", "T"),
        ("del", "b"),
        ("ins", "h"),
        ("same", "e cat sat"),
        ("ins", "."),
    ]


def test_a_letter_and_its_marks_change_together():
    """A mark changed alone would be drawn on nothing: "q̃" has no precomposed form."""
    assert diff_spans("co\u0304me", "co\u0303me") == [
        ("same", "c"),
        ("del", "o\u0304"),
        ("ins", "o\u0303"),
        ("same", "me"),
    ]
    assert diff_spans("q\u0303ue", "q\u0304ue") == [
        ("del", "q\u0303"),
        ("ins", "q\u0304"),
        ("same", "ue"),
    ]
    assert diff_spans("q", "q\u0303") == [("del", "q"), ("ins", "q\u0303")]


def test_a_long_line_changed_at_both_ends_keeps_its_marks_on_their_letters():
    words = " ".join(f"q\u0303ue{n}" for n in range(40))
    spans = diff_spans(f"p\u0304 {words} end", f"p\u0303 {words} end.")
    assert spans == [
        ("del", "p\u0304"),
        ("ins", "p\u0303"),
        ("same", f" {words} "),
        ("del", "end"),
        ("ins", "end."),
    ]


def test_a_long_rewrite_is_shown_whole_not_matched_character_by_character():
    """Matching 2,000 characters of repetitive text takes about a minute: one save would make
    every later look at the line's history that slow."""
    assert diff_spans("<" + "ab" * 1000 + ">", "<" + "a" * 2000 + ">") == [
        ("same", "<a"),
        ("del", "ba" * 999 + "b"),
        ("ins", "a" * 1999),
        ("same", ">"),
    ]


def test_a_long_line_changed_at_both_ends_is_matched_word_by_word():
    words = " ".join(f"word{n}" for n in range(40))
    spans = diff_spans(f"tbe {words} end", f"The {words} end.")
    assert spans == [
        ("del", "tbe"),
        ("ins", "The"),
        ("same", f" {words} "),
        ("del", "end"),
        ("ins", "end."),
    ]

"""A collection's corrections for its admins (/collections/<id>/review/corrections/): newest
first, by person and time, a page at a time, each with its diff and a link to its line's
history; linked from the progress page."""

import tracemalloc

import pytest
from django.db import connection
from django.urls import reverse

from ocrreview.corpus.actions import do_remove_member
from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.models import Correction

A = Correction.Action
S = Line.Status


def page_url(collection) -> str:
    return reverse("review_corrections", args=[collection.pk])


def shown(response) -> list[int]:
    return [c.pk for c, _ in response.context["rows"]]


def newest_first(**filters) -> list[int]:
    return list(
        Correction.objects.filter(**filters)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )


def test_alice_sees_every_change_newest_first_with_its_diff(
    client, alice, bob, letters, lines, bobs_saves
):
    client.force_login(alice)
    response = client.get(page_url(letters))
    assert response.status_code == 200
    assert shown(response) == newest_first()
    html = response.content.decode()
    assert "Letter to Mr Hale, page 1, line 4" in html
    assert "<del><span" in html and "<ins><span" in html
    history = reverse("review_line", args=[letters.pk, lines[3].pk]) + "?history=1"
    assert f'href="{history}"' in html
    # The history link opens the editor with the line's history shown.
    editor = client.get(history).content.decode()
    assert '<details id="history" open>' in editor


def test_one_volunteers_changes_between_two_times(
    client, alice, bob, dave, letters, lines, bobs_saves
):
    client.force_login(alice)
    response = client.get(page_url(letters), {"user": bob.pk})
    assert shown(response) == newest_first(user=bob)
    assert f'<option value="{bob.pk}" selected>bob</option>' in response.content.decode()
    response = client.get(page_url(letters), {"user": bob.pk, "since": bobs_saves.isoformat()})
    assert shown(response) == newest_first(user=bob, created_at__gte=bobs_saves)
    assert len(shown(response)) == 3
    response = client.get(page_url(letters), {"until": bobs_saves.isoformat()})
    assert shown(response) == newest_first(created_at__lt=bobs_saves)
    assert len(shown(response)) == 2
    # With a person chosen, the page offers to undo their saves from the time chosen.
    form = client.get(page_url(letters), {"user": bob.pk}).content.decode()
    assert reverse("review_revert_user", args=[letters.pk]) in form


def test_pages_follow_each_other_without_gaps_or_repeats(client, alice, bob, letters, lines):
    for n in range(4):
        actions.do_save_line(lines[1], bob, f"I received your {n}", expected_version=n + 1)
        actions.do_claim_line(lines[2], bob)
        actions.do_skip_line(lines[2], bob)
    client.force_login(alice)
    seen, pages = [], []
    query = "?page_size=3"
    while query:
        response = client.get(page_url(letters) + query)
        pages.append(shown(response))
        seen += shown(response)
        query = response.context["older_url"]
    assert seen == newest_first() and len(seen) == 8
    assert [len(p) for p in pages] == [3, 3, 2]
    # Back from the last page: the page before it again.
    newer = response.context["newer_url"]
    assert shown(client.get(page_url(letters) + newer)) == pages[1]


def test_corrections_made_at_one_instant_are_each_shown_once(client, alice, bob, letters, lines):
    """An import records all its lines' texts at once; pages cut between them."""
    with connection.cursor() as cursor:
        for line in lines:
            cursor.execute(
                "INSERT INTO review_correction (line_id, user_id, action, created_at, "
                "text_before, text_after, line_version, time_spent_ms) "
                "VALUES (%s, %s, 'import', '2026-05-01T10:00:00Z', '', %s, 1, 0)",
                [line.pk, alice.pk, line.text],
            )
    client.force_login(alice)
    seen, query = [], "?page_size=3"
    while query:
        response = client.get(page_url(letters) + query)
        seen += shown(response)
        query = response.context["older_url"]
    assert seen == newest_first() and len(seen) == 4
    newer = client.get(page_url(letters) + response.context["newer_url"])
    assert shown(newer) == seen[:3]


def test_a_former_member_is_still_found(client, alice, bob, letters, lines, bobs_saves):
    do_remove_member(letters, bob, actor=alice)
    client.force_login(alice)
    response = client.get(page_url(letters), {"user": bob.pk})
    assert response.status_code == 200
    assert shown(response) == newest_first(user=bob)
    assert f'<option value="{bob.pk}" selected>bob</option>' in response.content.decode()


@pytest.mark.parametrize(
    "query, message",
    [
        ({"since": "yesterday"}, "Enter a valid date/time."),
        ({"since": "2026-02-30T10:00"}, "Enter a valid date/time."),
        ({"since": "2026-05-02T00:00", "until": "2026-05-01T00:00"}, "must come after its start"),
        ({"user": "999999"}, "no member of this collection"),
        ({"user": "CHARLIE"}, "no member of this collection"),
        ({"user": "bob"}, "no member of this collection"),
        ({"cursor": "o12.x"}, "Not a cursor of this list."),
        ({"page_size": "0"}, "greater than or equal to 1"),
    ],
)
def test_a_filter_that_cannot_be_read_is_a_400_saying_why(
    client, alice, charlie, letters, lines, query, message
):
    query = {k: str(charlie.pk) if v == "CHARLIE" else v for k, v in query.items()}
    client.force_login(alice)
    response = client.get(page_url(letters), query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_reviewers_are_refused_and_outsiders_find_nothing(client, bob, charlie, letters):
    client.force_login(bob)
    assert client.get(page_url(letters)).status_code == 403
    client.force_login(charlie)
    assert client.get(page_url(letters)).status_code == 404


def test_the_progress_page_links_it_for_admins_only(client, alice, bob, letters):
    link = f'href="{page_url(letters)}"'
    client.force_login(alice)
    assert link in client.get(reverse("review_progress", args=[letters.pk])).content.decode()
    client.force_login(bob)
    assert link not in client.get(reverse("review_progress", args=[letters.pk])).content.decode()


def test_a_history_link_takes_no_line_from_the_queue(client, alice, letters, lines):
    """alice audits a line waiting for review: it stays in the volunteers' queue, and the line
    she holds herself stays hers."""
    actions.do_claim_line(lines[1], alice)
    client.force_login(alice)
    history = reverse("review_line", args=[letters.pk, lines[2].pk]) + "?history=1"
    assert client.get(history).status_code == 200
    audited, held = Line.objects.get(pk=lines[2].pk), Line.objects.get(pk=lines[1].pk)
    assert (audited.status, audited.claimed_by) == (S.NEEDS_REVIEW, None)
    assert (held.status, held.claimed_by) == (S.IN_REVIEW, alice)


def test_a_page_of_corrections_reads_no_documents_iiif_canvases(
    client, alice, letters, lines, bobs_saves, settings
):
    """Each correction's row carried its document's canvases, some 350 KB for a register of a
    thousand imported from IIIF: a page of the API's thousand took hundreds of megabytes."""
    canvas = {"id": "https://iiif.example.org/canvas/", "label": "f. 1r", "width": 4000}
    canvas["image"] = "https://iiif.example.org/iiif/2/reg%2F00001.jp2/full/max/0/default.jpg" * 4
    lines[0].document.__class__.objects.filter(pk=lines[0].document_id).update(
        iiif_canvases=[canvas] * 1000
    )
    client.force_login(alice)
    tracemalloc.start()
    try:
        response = client.get(page_url(letters))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(shown(response)) == 6
    assert peak < 3_000_000, peak

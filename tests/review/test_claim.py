"""Opening the queue claims the next line with a lease: lowest confidence first (or reading
order), one reviewer per line, abandoned lines come back."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.models import ReviewerPreference
from tests import factories

S = Line.Status


def queue_url(collection, **query):
    url = reverse("review_queue", args=[collection.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_opening_the_queue_claims_the_least_confident_line(client, bob, letters, lines):
    client.force_login(bob)
    response = client.get(queue_url(letters))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("review_line", args=[letters.pk, lines[3].pk]))
    line = Line.objects.get(pk=lines[3].pk)
    assert (line.status, line.claimed_by) == (S.IN_REVIEW, bob)
    assert line.claimed_until > timezone.now() + timedelta(seconds=500)
    # A claim is not a change of content: the version saves are checked against stays.
    assert line.version == lines[3].version


def test_opening_another_line_hands_back_the_one_left_untouched(bob, letters, lines):
    """Esc on the least sure line, Alt+Up to glance at it again, Alt+Down: the skipped line
    neither stays bob's nor comes back to him first from the queue."""
    skipped = actions.do_claim_next_line(letters, bob)
    assert skipped == lines[3].pk
    actions.do_skip_line(skipped, bob)
    assert actions.do_claim_line(skipped, bob)  # glanced at again
    assert actions.do_claim_line(lines[1], bob)
    glanced = Line.objects.get(pk=skipped)
    assert (glanced.status, glanced.claimed_by) == (S.NEEDS_REVIEW, None)
    actions.do_save_line(lines[1], bob, "I received your", expected_version=lines[1].version)
    assert actions.do_claim_next_line(letters, bob, exclude=[skipped]) == lines[2].pk


def test_a_line_holding_my_draft_stays_mine_when_i_open_another(bob, letters, lines):
    first = actions.do_claim_next_line(letters, bob)
    actions.do_save_draft(first, bob, "half typed", base_version=1)
    assert actions.do_claim_line(lines[2], bob)
    kept = Line.objects.get(pk=first)
    assert (kept.status, kept.claimed_by) == (S.IN_REVIEW, bob)


def test_two_reviewers_get_different_lines(client, bob, alice, letters, lines):
    first = actions.do_claim_next_line(letters, bob)
    second = actions.do_claim_next_line(letters, alice)
    assert first == lines[3].pk and second == lines[1].pk


def test_a_reviewer_gets_their_own_held_line_back(bob, letters, lines):
    held = actions.do_claim_next_line(letters, bob)
    assert actions.do_claim_next_line(letters, bob) == held


def test_an_abandoned_line_returns_when_its_lease_runs_out(bob, alice, letters, lines):
    held = actions.do_claim_next_line(letters, bob)
    Line.objects.filter(pk=held).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert actions.do_claim_next_line(letters, alice) == held
    assert Line.objects.get(pk=held).claimed_by == alice


def test_reading_order_is_a_per_user_choice(client, bob, letters, lines):
    client.force_login(bob)
    response = client.get(queue_url(letters, order="reading"))
    assert response["Location"].startswith(reverse("review_line", args=[letters.pk, lines[1].pk]))
    assert ReviewerPreference.objects.get(user=bob).queue_order == "reading"


def test_the_queue_filters_by_document(client, bob, letters, lines, model_version):
    other = factories.make_document(letters, "Another letter")
    page = factories.make_page(other)
    very_unsure = factories.make_read_line(page, 0, [("xx", 0.01)], model_version)
    client.force_login(bob)
    response = client.get(queue_url(letters, document=lines[0].document_id))
    assert f"/lines/{lines[3].pk}/" in response["Location"]
    response = client.get(queue_url(letters, document=other.pk))
    assert f"/lines/{very_unsure.pk}/" in response["Location"]


def test_a_document_of_another_collection_is_not_found(client, bob, letters, ledger_line):
    client.force_login(bob)
    assert client.get(queue_url(letters, document=ledger_line.document_id)).status_code == 404
    assert client.get(queue_url(letters, document="x")).status_code == 404


def test_an_empty_queue_says_so(client, bob, letters, lines):
    Line.objects.filter(status=S.NEEDS_REVIEW).update(status=S.REVIEWED)
    client.force_login(bob)
    response = client.get(queue_url(letters))
    assert response.status_code == 200
    assert "Nothing left to review" in response.content.decode()


def test_an_empty_queue_tells_skipped_lines_from_held_ones_and_brings_the_skipped_back(
    client, alice, bob, letters, lines
):
    Line.objects.filter(pk=lines[1].pk).update(status=S.REVIEWED)
    actions.do_claim_line(lines[2], alice)
    client.force_login(bob)
    assert actions.do_claim_next_line(letters, bob) == lines[3].pk
    client.post(reverse("review_skip", args=[letters.pk, lines[3].pk]), {"time_spent_ms": "900"})

    done = client.get(queue_url(letters)).content.decode()
    assert "Nothing left to review" in done
    assert "1 line of this queue is held by other reviewers" in done
    assert "You skipped 1 line of this queue" in done
    response = client.post(reverse("review_skipped_again", args=[letters.pk]))
    assert response["Location"].startswith(queue_url(letters))
    assert f"/lines/{lines[3].pk}/" in client.get(queue_url(letters))["Location"]


def test_opening_a_line_directly_claims_it_unless_someone_holds_it(
    client, bob, alice, letters, lines
):
    actions.do_claim_line(lines[2], alice)
    client.force_login(bob)
    page = client.get(reverse("review_line", args=[letters.pk, lines[2].pk])).content.decode()
    assert "alice is working on this line" in page
    assert Line.objects.get(pk=lines[2].pk).claimed_by == alice
    client.get(reverse("review_line", args=[letters.pk, lines[1].pk]))
    assert Line.objects.get(pk=lines[1].pk).claimed_by == bob


def test_renewing_a_lease(client, bob, alice, letters, lines):
    held = actions.do_claim_next_line(letters, bob)
    Line.objects.filter(pk=held).update(claimed_until=timezone.now() + timedelta(seconds=5))
    client.force_login(bob)
    response = client.post(reverse("review_lease", args=[letters.pk, held]))
    assert response.json() == {"lease": "held"}
    assert Line.objects.get(pk=held).claimed_until > timezone.now() + timedelta(seconds=500)
    client.force_login(alice)
    assert client.post(reverse("review_lease", args=[letters.pk, held])).json() == {"lease": "lost"}


def claim_id(collection, user):
    return actions.do_claim_next_line(collection, user)


def claim_and_open_id(collection, user):
    opened = actions.do_claim_and_open_next_line(collection, user)
    return opened.line.pk if opened else None


def claim_in_reading_order(collection, user):
    return actions.do_claim_next_line(collection, user, order="reading")


def test_claim_and_open_shows_the_line_as_leased(bob, letters, lines):
    opened = actions.do_claim_and_open_next_line(letters, bob)
    assert opened.line.pk == lines[3].pk
    assert (opened.line.status, opened.line.claimed_by_id) == (S.IN_REVIEW, bob.pk)
    assert opened.line.claimed_until is not None and not opened.held_by_other
    assert [h.text for h in opened.alternatives] == ["inst. and", "inst and"]
    assert (opened.position, opened.page_lines, opened.next_id) == (4, 4, None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("claim", [claim_id, claim_and_open_id, claim_in_reading_order])
def test_sixteen_reviewers_claiming_at_once_never_share_a_line(letters, claim):
    document = factories.make_document(letters)
    pages = [factories.make_page(document, p) for p in range(4)]
    Line.objects.bulk_create(
        Line(
            page=page,
            document=document,
            collection=letters,
            order=i,
            bbox=[10, 10, 500, 40],
            status=S.NEEDS_REVIEW,
            confidence=(i % 37) / 100,
        )
        for page in pages
        for i in range(50)
    )
    # No passwords: hashing sixteen of them would take longer than the race.
    reviewers = [get_user_model().objects.create(username=f"reviewer{i}") for i in range(16)]
    claimed: dict[int, list[int]] = {r.pk: [] for r in reviewers}
    barrier = threading.Barrier(len(reviewers))

    def work(reviewer):
        barrier.wait()
        try:
            while True:
                line_id = claim(letters, reviewer)
                if line_id is None:
                    return
                claimed[reviewer.pk].append(line_id)
                Line.objects.filter(pk=line_id).update(
                    status=S.REVIEWED, claimed_by=None, claimed_until=None
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [line_id for ids in claimed.values() for line_id in ids]
    assert len(everything) == len(set(everything)) == 200
    assert sum(1 for ids in claimed.values() if ids) > 1


def test_reading_order_follows_pages_then_lines(bob, letters, letter, model_version):
    second = factories.make_page(letter, 1)
    first = factories.make_page(letter, 0)  # made later, so its id is higher
    late = factories.make_read_line(second, 0, [("page two", 0.1)], model_version)
    early = factories.make_read_line(first, 3, [("page one, line four", 0.9)], model_version)
    done = factories.make_read_line(first, 1, [("reviewed", 0.2)], model_version, status="reviewed")
    assert actions.do_claim_next_line(letters, bob, order="reading") == early.pk
    assert Line.objects.get(pk=done.pk).status == S.REVIEWED
    Line.objects.filter(pk=early.pk).update(status=S.REVIEWED, claimed_by=None, claimed_until=None)
    assert actions.do_claim_next_line(letters, bob, order="reading") == late.pk


@pytest.mark.parametrize("expired", [False, True], ids=["held", "lapsed"])
def test_deleting_a_user_hands_their_claimed_line_back_to_the_queue(letters, lines, expired):
    eve = factories.make_user("eve")
    factories.add_member(eve, letters)
    assert actions.do_claim_line(lines[3], eve)
    if expired:
        Line.objects.filter(pk=lines[3].pk).update(claimed_until=timezone.now() - timedelta(1))
    eve.delete()
    line = Line.objects.get(pk=lines[3].pk)
    assert (line.status, line.claimed_by, line.claimed_until) == (S.NEEDS_REVIEW, None, None)

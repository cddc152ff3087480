"""Reviewers' leases by the database's clock: a web server whose clock is off neither takes a
colleague's live lease nor keeps a dead one from being taken, and writes leases that end a
lease after the database's now. The skew is this process's Python clock (timezone.now), set
an hour either way; the database's clock is the one every web server shares."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.db_clock import database_now
from ocrreview.review import actions, queue

S = Line.Status
SKEW = timedelta(hours=1)
AHEAD, BEHIND = SKEW, -SKEW
LEASE = timedelta(seconds=600)


@pytest.fixture(autouse=True)
def _lease(settings):
    settings.OCRREVIEW_LEASE_SECONDS = int(LEASE.total_seconds())


def skew(clock, offset: timedelta) -> None:
    clock.set(clock.real() + offset)


def expire(line) -> None:
    """The lease on the line ran out a second ago, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE corpus_line SET claimed_until = statement_timestamp() - interval '1 second' "
            "WHERE id = %s",
            [line.pk],
        )


def assert_a_lease_from_the_database_s_now(*lines) -> None:
    now = database_now()
    for line in Line.objects.filter(pk__in=[line.pk for line in lines]):
        assert LEASE - timedelta(minutes=1) < line.claimed_until - now <= LEASE


def page_view_takes(line, user) -> bool:
    actions.do_claim_page(line.page, user, claim=uuid.uuid4(), opening=True)
    return Line.objects.get(pk=line.pk).claimed_by == user


def editor_takes(line, user) -> bool:
    return actions.do_claim_line(line, user)


TAKES = [editor_takes, page_view_takes]


@pytest.mark.parametrize("takes", TAKES, ids=["line editor", "page view"])
def test_a_server_whose_clock_is_ahead_takes_no_live_lease(
    clock, alice, bob, letters, page, lines, takes
):
    assert actions.do_claim_line(lines[2], alice)
    skew(clock, AHEAD)
    assert not takes(lines[2], bob)
    assert Line.objects.get(pk=lines[2].pk).claimed_by == alice
    # And shows it as hers, read-only.
    held = {line.pk: line.held_by_other for line in queue.page_lines(page, bob)}
    assert held[lines[2].pk]
    assert queue.editor_line(lines[2].pk, bob).held_by_other


@pytest.mark.parametrize("takes", TAKES, ids=["line editor", "page view"])
def test_a_server_whose_clock_is_behind_takes_a_dead_lease(
    clock, alice, bob, letters, page, lines, takes
):
    assert actions.do_claim_line(lines[2], alice)
    expire(lines[2])
    skew(clock, BEHIND)
    held = {line.pk: line.held_by_other for line in queue.page_lines(page, bob)}
    assert not held[lines[2].pk]
    assert takes(lines[2], bob)
    assert Line.objects.get(pk=lines[2].pk).claimed_by == bob


@pytest.mark.parametrize("offset", [AHEAD, BEHIND], ids=["ahead", "behind"])
def test_leases_end_a_lease_after_the_database_s_now_whatever_the_server_s_clock(
    clock, client, bob, letters, page, lines, offset
):
    skew(clock, offset)
    assert actions.do_claim_line(lines[2], bob)
    assert_a_lease_from_the_database_s_now(lines[2])
    expire(lines[2])
    assert actions.do_renew_lease(lines[2], bob)
    assert_a_lease_from_the_database_s_now(lines[2])

    assert actions.do_claim_next_line(letters, bob) == lines[2].pk
    assert_a_lease_from_the_database_s_now(lines[2])

    client.force_login(bob)
    html = client.get(reverse("review_page", args=[letters.pk, page.pk])).content.decode()
    assert_a_lease_from_the_database_s_now(lines[1], lines[2], lines[3])
    claim = html.split('data-claim="', 1)[1][:36]
    lease = reverse("review_page_lease", args=[letters.pk, page.pk])
    until = client.post(lease, {"claim": claim}).json()["until"]
    assert LEASE - timedelta(minutes=1) < datetime.fromisoformat(until) - database_now() <= LEASE
    assert_a_lease_from_the_database_s_now(lines[1], lines[2], lines[3])

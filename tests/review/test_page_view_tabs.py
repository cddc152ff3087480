"""One reviewer with a page open in two tabs: the tab opened last holds the page's lines, and
the earlier one takes and renews nothing and is told so, until the reviewer takes the lines
back to it ("Work in this tab"). The tabs never take each other's lines turn about, and
closing the earlier one hands back nothing the later one shows. A colleague's page view of
the same page is no tab of the reviewer's, and a colleague's live lease is never taken.

And a page view loaded before page views had claims (page.js from before the deploy, in a tab
left open: it renews with no claim and ignores a refusal) keeps the lines it took."""

import threading
import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction

from ocrreview.corpus.models import Line
from ocrreview.db_clock import database_now, database_now_plus
from ocrreview.review import actions
from tests.db_locks import wait_until_another_session_waits_for_a_lock
from tests.review.test_page_claims import holders, open_page, page_url

S = Line.Status
LEASE_SECONDS = 600
SKEW = timedelta(hours=1)  # a web server's clock off the database's


@pytest.fixture(autouse=True)
def _lease(settings):
    settings.OCRREVIEW_LEASE_SECONDS = LEASE_SECONDS


def claims(page) -> dict[int, tuple]:
    return {
        line.order: (line.claimed_by and line.claimed_by.username, line.page_view_claim)
        for line in Line.objects.filter(page=page).select_related("claimed_by")
    }


def leases(page) -> dict[int, object]:
    return dict(Line.objects.filter(page=page).values_list("order", "claimed_until"))


def about_to_run_out(*lines) -> None:
    """Ten seconds of lease left, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE corpus_line SET claimed_until = statement_timestamp() + interval '10 s' "
            "WHERE id = ANY(%s)",
            [[line.pk for line in lines]],
        )


def renewed(line) -> bool:
    left = Line.objects.get(pk=line.pk).claimed_until - database_now()
    return left.total_seconds() > LEASE_SECONDS - 60


def renew(client, letters, page, claim, **fields):
    response = client.post(page_url(letters, page, "lease"), {"claim": claim, **fields})
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("offset", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_claims_sort_by_the_database_s_clock(db, clock, offset):
    """Made by a web server whose clock is an hour off the database's, as two web servers'
    clocks differ: their time is the database's."""
    clock.set(clock.real() + offset)
    made = [actions.new_page_view_claim() for _ in range(20)]
    assert made == sorted(made)
    assert len(set(made)) == 20
    assert {claim.version for claim in made} == {7}
    millis = made[-1].int >> 80
    assert abs(millis / 1000 - database_now().timestamp()) < 60


def test_the_later_tab_holds_the_lines_and_the_earlier_one_takes_nothing_back(
    client, bob, alice, letters, page, lines
):
    assert actions.do_claim_line(lines[2], alice)  # alice has line 3 open in the line editor
    client.force_login(bob)
    first = open_page(client, letters, page)
    second = open_page(client, letters, page)
    assert first < second
    assert claims(page) == {
        0: (None, None),
        1: ("bob", uuid.UUID(second)),
        2: ("alice", None),
        3: ("bob", uuid.UUID(second)),
    }
    before = leases(page)

    answer = renew(client, letters, page, first)
    assert answer["superseded"] is True
    assert answer["until"] is None
    assert answer["claim"] == first
    held = answer["held"]
    assert set(held) == {str(lines[1].pk), str(lines[2].pk), str(lines[3].pk)}
    assert held[str(lines[1].pk)] == {
        "by": "your other tab",
        "until": held[str(lines[1].pk)]["until"],
        "tab": True,
    }
    assert held[str(lines[2].pk)]["by"] == "alice" and "tab" not in held[str(lines[2].pk)]
    # Nothing taken, nothing renewed: the later tab's lines are as it left them.
    assert leases(page) == before
    assert claims(page)[1] == ("bob", uuid.UUID(second))

    # alice lets her line go: the tab in charge takes it, the earlier one does not.
    actions.do_skip_line(lines[2], alice)
    assert renew(client, letters, page, first)["superseded"] is True
    assert claims(page)[2] == (None, None)
    answer = renew(client, letters, page, second)
    assert (answer["superseded"], answer["held"]) == (False, {})
    assert claims(page)[2] == ("bob", uuid.UUID(second))

    # Over and over: no turn about.
    for _ in range(3):
        assert renew(client, letters, page, first)["superseded"] is True
        assert renew(client, letters, page, second)["superseded"] is False
    assert {claim for _, claim in list(claims(page).values())[1:]} == {uuid.UUID(second)}

    # Closing the earlier tab hands back nothing the later one shows.
    released = client.post(page_url(letters, page, "release"), {"claim": first}).json()
    assert released == {"released": 0}
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}


@pytest.mark.django_db(transaction=True)
def test_an_earlier_tab_whose_renewal_a_later_one_overtakes_is_told_it_is_superseded(
    bob, letters, page, lines
):
    """The later tab's opening has taken the lines and not yet committed when the earlier
    tab renews: the renewal finds no later tab, then waits on the lines, finds them the later
    tab's once it commits, and passes them over. It must say so, not that it holds them."""
    first = actions.new_page_view_claim()
    actions.do_claim_page(page, bob, claim=first, opening=True)
    answers = {}

    def the_earlier_tab_renews():
        try:
            answers["first"] = actions.do_claim_page(page, bob, claim=first, opening=False)
        finally:
            connection.close()

    with transaction.atomic():
        second = actions.new_page_view_claim()
        actions.do_claim_page(page, bob, claim=second, opening=True)
        thread = threading.Thread(target=the_earlier_tab_renews)
        thread.start()
        wait_until_another_session_waits_for_a_lock()
    thread.join()
    assert {claim for _, claim in list(claims(page).values())[1:]} == {second}
    answer = answers["first"]
    assert answer.superseded is True
    assert answer.until is None
    assert set(answer.mine_elsewhere) == {line.pk for line in lines[1:]}


def test_work_in_this_tab_takes_the_lines_back_with_a_new_claim(client, bob, letters, page, lines):
    client.force_login(bob)
    first = open_page(client, letters, page)
    second = open_page(client, letters, page)
    about_to_run_out(*lines[1:])

    answer = renew(client, letters, page, first, take_over="1")
    taken = answer["claim"]
    assert taken not in (first, second) and taken > second
    assert (answer["superseded"], answer["held"]) == (False, {})
    assert {claim for _, claim in list(claims(page).values())[1:]} == {uuid.UUID(taken)}
    assert all(renewed(line) for line in lines[1:])

    # Now the other tab is the earlier one, and its closing hands back nothing.
    answer = renew(client, letters, page, second)
    assert answer["superseded"] is True
    assert set(answer["held"]) == {str(line.pk) for line in lines[1:]}
    release = page_url(letters, page, "release")
    assert client.post(release, {"claim": second}).json() == {"released": 0}
    assert client.post(release, {"claim": taken}).json() == {"released": 3}
    assert holders(page) == {0: None, 1: None, 2: None, 3: None}


def test_the_earlier_tab_goes_on_once_the_later_one_is_closed(client, bob, letters, page, lines):
    client.force_login(bob)
    first = open_page(client, letters, page)
    second = open_page(client, letters, page)
    client.post(page_url(letters, page, "release"), {"claim": second})
    assert holders(page) == {0: None, 1: None, 2: None, 3: None}
    answer = renew(client, letters, page, first)
    assert (answer["superseded"], answer["held"]) == (False, {})
    assert {claim for _, claim in list(claims(page).values())[1:]} == {uuid.UUID(first)}


def test_a_colleagues_later_page_view_is_no_tab_of_mine_and_takes_no_live_line(
    client, bob, alice, letters, page, lines
):
    client.force_login(bob)
    mine = open_page(client, letters, page)
    actions.do_skip_line(lines[2], bob)  # bob lets line 3 go
    client.force_login(alice)
    hers = open_page(client, letters, page)
    assert mine < hers
    assert holders(page) == {0: None, 1: "bob", 2: "alice", 3: "bob"}
    # Her renewal, and her "Work in this tab", take none of bob's live lines.
    assert renew(client, letters, page, hers, take_over="1")["superseded"] is False
    assert holders(page) == {0: None, 1: "bob", 2: "alice", 3: "bob"}

    client.force_login(bob)
    about_to_run_out(lines[1], lines[3])
    answer = renew(client, letters, page, mine)
    assert answer["superseded"] is False
    assert answer["held"] == {
        str(lines[2].pk): {"by": "alice", "until": answer["held"][str(lines[2].pk)]["until"]}
    }
    assert renewed(lines[1]) and renewed(lines[3])
    assert claims(page)[2] == ("alice", Line.objects.get(pk=lines[2].pk).page_view_claim)
    assert renew(client, letters, page, mine, take_over="1")["superseded"] is False
    assert holders(page) == {0: None, 1: "bob", 2: "alice", 3: "bob"}


def test_a_tab_opened_before_ordered_claims_gives_way_to_one_opened_since(
    client, bob, letters, page, lines
):
    """A page view loaded with a random claim (before this deploy) is older than any opened
    since: the new tab takes its lines, and it takes none back."""
    client.force_login(bob)
    old = uuid.uuid4()
    actions.do_claim_page(page, bob, claim=old, opening=True)
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}
    new = open_page(client, letters, page)
    answer = renew(client, letters, page, str(old))
    assert answer["superseded"] is True
    assert {claim for _, claim in list(claims(page).values())[1:]} == {uuid.UUID(new)}


def test_a_page_view_from_before_claims_keeps_its_lines_and_takes_nothing(
    client, bob, alice, letters, page, lines
):
    """Its lines were taken with no claim; its renewals name none. They are renewed: not
    alice's line, not a line a page view of bob's claims since, not a waiting line."""
    Line.objects.filter(pk__in=[lines[1].pk, lines[3].pk]).update(
        status=S.IN_REVIEW, claimed_by=bob, claimed_until=database_now_plus(10)
    )
    assert actions.do_claim_line(lines[2], alice)
    alices = Line.objects.get(pk=lines[2].pk).claimed_until
    client.force_login(bob)

    response = client.post(page_url(letters, page, "lease"))  # page.js before claims: no fields
    assert response.status_code == 200
    answer = response.json()
    assert answer["held"] == {
        str(lines[2].pk): {"by": "alice", "until": answer["held"][str(lines[2].pk)]["until"]}
    }
    assert renewed(lines[1]) and renewed(lines[3])
    assert answer["until"] is not None
    assert claims(page) == {0: (None, None), 1: ("bob", None), 2: ("alice", None), 3: ("bob", None)}
    assert Line.objects.get(pk=lines[2].pk).claimed_until == alices

    # A waiting line stays in the queue; a line a page view claims stays that page view's.
    actions.do_skip_line(lines[2], alice)
    claim = actions.new_page_view_claim()
    Line.objects.filter(pk=lines[3].pk).update(page_view_claim=claim)
    about_to_run_out(lines[3])
    client.post(page_url(letters, page, "lease"))
    assert claims(page) == {0: (None, None), 1: ("bob", None), 2: (None, None), 3: ("bob", claim)}
    assert not renewed(lines[3])


def test_a_page_view_from_before_claims_is_answered_the_lease_end_written(
    client, bob, letters, page, lines
):
    Line.objects.filter(pk__in=[lines[1].pk, lines[3].pk]).update(
        status=S.IN_REVIEW, claimed_by=bob, claimed_until=database_now_plus(10)
    )
    client.force_login(bob)
    answer = client.post(page_url(letters, page, "lease")).json()
    written = {Line.objects.get(pk=line.pk).claimed_until for line in (lines[1], lines[3])}
    assert written == {datetime.fromisoformat(answer["until"])}


def dated(moment: datetime) -> uuid.UUID:
    """A claim laid out as new_page_view_claim lays one out, dated `moment`."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | 12345)


FORGED = {
    # The latest a UUIDv7 can be dated: in the year 10889, after the latest datetime.
    "latest": lambda: uuid.UUID("ffffffff-ffff-7fff-bfff-ffffffffffff"),
    # Version 7 in its digit, but not RFC 9562's variant: Python's UUID.version says None.
    "latest-of-another-variant": lambda: uuid.UUID("ffffffff-ffff-7fff-cfff-ffffffffffff"),
    "in-a-century": lambda: dated(database_now() + timedelta(days=365 * 100)),
    "in-an-hour": lambda: dated(database_now() + timedelta(hours=1)),
}


@pytest.mark.parametrize("forge", FORGED.values(), ids=FORGED.keys())
@pytest.mark.parametrize("what", ["lease", "release"])
def test_a_claim_dated_after_now_is_refused_and_changes_nothing(
    client, bob, letters, page, lines, what, forge
):
    """Else it would be bob's newest tab of the page until that date: every page view he
    opens meanwhile would give way to it."""
    client.force_login(bob)
    open_page(client, letters, page)
    before = claims(page), leases(page)
    forged = forge()
    for fields in ({"claim": forged}, {"claim": forged, "take_over": "1"}):
        response = client.post(page_url(letters, page, what), fields)
        assert response.status_code == 400
        assert response.json() == {
            "error": "claim: This page view's claim is dated after now, so this server did "
            "not give it: reload the page."
        }
    assert (claims(page), leases(page)) == before
    # A malformed claim is refused as before.
    response = client.post(page_url(letters, page, what), {"claim": "7" * 36})
    assert response.status_code == 400
    assert response.json() == {"error": "claim: Enter a valid UUID."}


def test_a_claim_dated_by_the_database_s_clock_a_moment_ago_is_taken(
    client, bob, letters, page, lines
):
    client.force_login(bob)
    claim = dated(database_now())
    answer = renew(client, letters, page, str(claim))
    assert answer["superseded"] is False
    assert {claim for _, claim in list(claims(page).values())[1:]} == {claim}

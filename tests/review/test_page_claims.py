"""The page view leases the page's waiting lines to the reviewer who opens it, as the line
editor leases its line: renewed while it is open, handed back when it is left, run out when
it lies idle. A colleague's lines are shown as theirs, read-only, and the queue hands the
page's lines to nobody else meanwhile."""

import re
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.models import Document, Line
from ocrreview.review import actions
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

S = Line.Status


def page_url(collection, page, *suffix):
    name = {(): "review_page", ("lease",): "review_page_lease", ("release",): "review_page_release"}
    return reverse(name[suffix], args=[collection.pk, page.pk])


def open_page(client, collection, page) -> str:
    """Open the page view as a browser does; the claim it was given, which its renewals and
    its release name."""
    response = client.get(page_url(collection, page))
    assert response.status_code == 200
    return re.search(r'data-claim="([0-9a-f-]{36})"', response.content.decode())[1]


def holders(page):
    return dict(
        Line.objects.filter(page=page)
        .order_by("order")
        .values_list("order", "claimed_by__username")
    )


@pytest.fixture
def other_page(letter, model_version):
    """The letter's second page, with one line waiting."""
    page = factories.make_page(letter, 1)
    factories.make_read_line(page, 0, [("yours truly", 0.3)], model_version)
    return page


def test_opening_a_page_leases_its_waiting_lines_and_the_queue_passes_them_over(
    client, bob, alice, letters, page, lines, other_page
):
    client.force_login(bob)
    assert client.get(page_url(letters, page)).status_code == 200
    # The auto-accepted first line is in no queue, and nobody's to hold.
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}
    held = Line.objects.get(pk=lines[3].pk)
    assert held.status == S.IN_REVIEW
    assert held.claimed_until > timezone.now() + timedelta(seconds=500)
    assert held.version == lines[3].version  # a lease changes no content
    # alice's queue, least sure first, would give her line 4: she gets the other page's.
    assert actions.do_claim_next_line(letters, alice) == other_page.lines.get().pk
    Line.objects.filter(page=other_page).update(
        status=S.REVIEWED, claimed_by=None, claimed_until=None
    )
    assert actions.do_claim_next_line(letters, alice) is None


def test_a_colleagues_lines_are_shown_as_theirs_and_read_only(
    client, bob, alice, letters, page, lines
):
    actions.do_claim_line(lines[2], alice)  # alice has line 3 open in the line editor
    client.force_login(bob)
    html = client.get(page_url(letters, page)).content.decode()
    assert holders(page) == {0: None, 1: "bob", 2: "alice", 3: "bob"}
    row = html[html.index(f'id="line-{lines[2].pk}"') :]
    row = row[: row.index("</li>")]
    assert 'data-held-by="alice"' in row
    assert f'readonly aria-describedby="held-{lines[2].pk}"' in row
    assert "alice is working on this line (until " in row
    mine = html[html.index(f'id="line-{lines[3].pk}"') :]
    mine = mine[: mine.index("</li>")]
    assert "readonly" not in mine and "data-held-by" not in mine


def test_renewing_keeps_my_lines_takes_those_let_go_and_says_who_holds_the_rest(
    client, bob, alice, letters, page, lines
):
    client.force_login(bob)
    claim = open_page(client, letters, page)
    Line.objects.filter(page=page, claimed_by=bob).update(
        claimed_until=timezone.now() + timedelta(seconds=5)
    )
    # alice took line 3 while bob's lease had run out.
    Line.objects.filter(pk=lines[2].pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert actions.do_claim_line(lines[2], alice)

    answer = client.post(page_url(letters, page, "lease"), {"claim": claim}).json()
    assert answer["held"] == {
        str(lines[2].pk): {"by": "alice", "until": answer["held"][str(lines[2].pk)]["until"]}
    }
    assert holders(page) == {0: None, 1: "bob", 2: "alice", 3: "bob"}
    assert Line.objects.get(pk=lines[3].pk).claimed_until > timezone.now() + timedelta(seconds=500)
    assert answer["until"] == Line.objects.get(pk=lines[3].pk).claimed_until.isoformat()

    # alice hands it back (Esc): bob's next renewal takes it.
    actions.do_skip_line(lines[2], alice)
    answer = client.post(page_url(letters, page, "lease"), {"claim": claim}).json()
    assert answer["held"] == {}
    assert holders(page)[2] == "bob"


def test_leaving_the_page_hands_back_the_lines_but_those_typed_into(
    client, bob, alice, letters, page, lines
):
    client.force_login(bob)
    claim = open_page(client, letters, page)
    actions.do_save_draft(lines[3], bob, "inst, and", base_version=1)
    response = client.post(page_url(letters, page, "release"), {"claim": claim})
    assert response.json() == {"released": 2}
    assert holders(page) == {0: None, 1: None, 2: None, 3: "bob"}
    assert Line.objects.get(pk=lines[1].pk).status == S.NEEDS_REVIEW
    assert actions.do_claim_next_line(letters, alice) == lines[1].pk


def test_the_release_of_a_page_reloaded_since_leaves_its_new_leases(
    client, bob, letters, page, lines
):
    """A reload sends the old page's release as a beacon, which may arrive after the new
    page claimed the lines again."""
    client.force_login(bob)
    first = open_page(client, letters, page)
    open_page(client, letters, page)  # the reload, served first
    response = client.post(page_url(letters, page, "release"), {"claim": first})
    assert response.json() == {"released": 0}
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}


def test_leaving_the_page_view_leaves_the_line_open_in_the_line_editor(
    client, bob, letters, page, lines
):
    """bob has line 3 open in the line editor in one tab, and opens its page in another: the
    page view hands back on leaving the lines it claimed, not the editor's, whose save goes
    through."""
    assert actions.do_claim_line(lines[2], bob)
    client.force_login(bob)
    claim = open_page(client, letters, page)
    client.post(page_url(letters, page, "lease"), {"claim": claim})
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}
    response = client.post(page_url(letters, page, "release"), {"claim": claim})
    assert response.json() == {"released": 2}
    assert holders(page) == {0: None, 1: None, 2: "bob", 3: None}
    actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    assert Line.objects.get(pk=lines[2].pk).status == S.REVIEWED


def test_a_release_keeps_the_lines_whose_last_typing_the_page_sent_as_it_went(
    client, bob, letters, page, lines
):
    """Their drafts go in beacons beside the release, which may arrive first: handed back
    meanwhile, a colleague's queue, merge or delete could take the line from under them."""
    client.force_login(bob)
    claim = open_page(client, letters, page)
    keep = f"{lines[1].pk}, {lines[3].pk}"
    response = client.post(page_url(letters, page, "release"), {"claim": claim, "keep": keep})
    assert response.json() == {"released": 1}
    assert holders(page) == {0: None, 1: "bob", 2: None, 3: "bob"}


@pytest.mark.parametrize("keep", ["1;2", "-1", "x", "1.5", "１", "9" * 12])
def test_a_release_keeping_what_is_no_line_id_is_refused_and_changes_nothing(
    client, bob, letters, page, lines, keep
):
    client.force_login(bob)
    claim = open_page(client, letters, page)
    response = client.post(page_url(letters, page, "release"), {"claim": claim, "keep": keep})
    assert response.status_code == 400
    assert response.json() == {"error": "keep: line ids separated by commas only."}
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}


def test_the_page_view_renews_the_line_the_line_editor_left_it(
    client, bob, alice, letters, page, lines
):
    """bob goes from line 3 in the line editor to its page (Alt+G, same tab): the editor hands
    nothing back on leaving, so the page view keeps his line for him while he is there, or a
    colleague's queue could take it from under him."""
    assert actions.do_claim_line(lines[2], bob)
    client.force_login(bob)
    claim = open_page(client, letters, page)
    # Ten minutes later, about to run out:
    Line.objects.filter(pk=lines[2].pk).update(claimed_until=timezone.now() + timedelta(seconds=10))
    client.post(page_url(letters, page, "lease"), {"claim": claim})
    assert Line.objects.get(pk=lines[2].pk).claimed_until > timezone.now() + timedelta(seconds=500)
    assert actions.do_claim_next_line(letters, alice) is None
    client.post(page_url(letters, page, "release"), {"claim": claim})
    assert holders(page) == {0: None, 1: None, 2: "bob", 3: None}


def test_a_line_the_page_view_holds_opened_for_itself_is_no_longer_the_page_view_s(
    client, bob, letters, page, lines
):
    """Opened in the line editor, or given back by the queue, after the page view claimed it:
    the page view's renewals and release leave it to the tab that opened it."""
    client.force_login(bob)
    claim = open_page(client, letters, page)
    assert actions.do_claim_line(lines[2], bob)
    # Opening one line hands back the reviewer's other untyped lines: the page view's next
    # renewal takes them again.
    assert holders(page) == {0: None, 1: None, 2: "bob", 3: None}
    client.post(page_url(letters, page, "lease"), {"claim": claim})
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}
    # The queue gives back first a line the reviewer holds: the least sure, line 4.
    assert actions.do_claim_next_line(letters, bob) == lines[3].pk
    client.post(page_url(letters, page, "lease"), {"claim": claim})
    response = client.post(page_url(letters, page, "release"), {"claim": claim})
    assert response.json() == {"released": 1}
    assert holders(page) == {0: None, 1: None, 2: "bob", 3: "bob"}


def test_opening_a_page_hands_back_the_lines_left_untyped_elsewhere(
    client, bob, letters, page, lines, other_page
):
    client.force_login(bob)
    other = open_page(client, letters, other_page)
    open_page(client, letters, page)
    assert holders(other_page) == {0: None}
    # Renewing from the page first opened (another tab) takes nothing from the second.
    client.post(page_url(letters, other_page, "lease"), {"claim": other})
    assert holders(other_page) == {0: "bob"}
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}


def test_a_final_documents_page_leases_nothing(client, bob, letters, letter, page, lines):
    Document.objects.filter(pk=letter.pk).update(review_state=Document.ReviewState.FINAL)
    client.force_login(bob)
    claim = open_page(client, letters, page)
    assert set(holders(page).values()) == {None}
    answer = client.post(page_url(letters, page, "lease"), {"claim": claim}).json()
    assert answer == {
        "until": None,
        "held": {},
        "superseded": False,
        "claim": claim,
        "scripts": answer["scripts"],
    }


@pytest.mark.parametrize("claim", ["", "yesterday", "2026-12-07T01:00:00", "9" * 5000])
@pytest.mark.parametrize("what", ["release", "lease"])
def test_a_renewal_or_release_with_a_bad_claim_is_refused_and_changes_nothing(
    client, bob, letters, page, lines, claim, what
):
    client.force_login(bob)
    open_page(client, letters, page)
    before = list(Line.objects.filter(page=page).order_by("order").values_list("claimed_until"))
    response = client.post(page_url(letters, page, what), {"claim": claim})
    assert response.status_code == 400
    assert "claim" in response.json()["error"]
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}
    after = list(Line.objects.filter(page=page).order_by("order").values_list("claimed_until"))
    assert after == before


def test_strangers_and_other_collections_get_nothing(
    client, charlie, ledgers, letters, page, lines
):
    client.force_login(charlie)
    assert client.get(page_url(letters, page)).status_code == 404
    assert client.post(page_url(letters, page, "lease")).status_code == 404
    release = reverse("review_page_release", args=[ledgers.pk, page.pk])
    assert client.post(release, {"claim": str(uuid.uuid4())}).status_code == 404
    assert client.get(page_url(letters, page, "lease")).status_code == 405
    assert set(holders(page).values()) == {None}


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_opening_one_page_at_once_never_share_a_line(
    bob, alice, letters, page, lines
):
    """bob's claim has locked the lines and not yet committed when alice's comes: hers waits,
    then finds them bob's, and passes them over; so does the queue meanwhile."""
    answers = {}

    def alice_opens():
        try:
            answers["queue"] = actions.do_claim_next_line(letters, alice)
            answers["page"] = actions.do_claim_page(page, alice, claim=uuid.uuid4(), opening=True)
        finally:
            connection.close()

    with transaction.atomic():
        actions.do_claim_page(page, bob, claim=uuid.uuid4(), opening=True)
        thread = threading.Thread(target=alice_opens)
        thread.start()
        wait_until_another_session_waits_for_a_lock()
    thread.join()
    assert answers["queue"] is None  # SKIP LOCKED: bob's uncommitted claim is passed over
    assert answers["page"] is not None
    assert holders(page) == {0: None, 1: "bob", 2: "bob", 3: "bob"}

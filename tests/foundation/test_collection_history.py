"""A collection's History (/collections/<id>/history/), its API (/api/collections/<id>/events/)
and the Django admin's list: for the collection's admins and staff alone, newest first, by
type and by person, in keyset pages; each row a sentence, a run of one person's line edits on
one page one row. Bad filters are a 400 naming them."""

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ocrreview.corpus import actions, audit
from ocrreview.corpus.models import CollectionEvent, Membership
from ocrreview.review import actions as review
from tests import factories
from tests.factories import token_headers as auth

T = CollectionEvent.Type


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def page_url(collection) -> str:
    return reverse("collection_history", args=[collection.pk])


def api_url(collection) -> str:
    return reverse("api_events", args=[collection.pk])


def shown(response) -> list[int]:
    return [event.pk for row in response.context["rows"] for event in row.events]


def newest_first(collection, **filters) -> list[int]:
    found = CollectionEvent.objects.filter(collection=collection, **filters)
    return list(found.order_by("-event_time", "-id").values_list("pk", flat=True))


@pytest.fixture
def history(alice, bob, dave, letters, model_version):
    """alice sets the threshold, bob removes three boxes of a page one after the other, and
    alice adds dave."""
    letters.confidence_threshold = 0.8
    letters.save()
    review.do_apply_threshold(letters, 0.85, actor=alice)
    document = factories.make_document(letters, "Letter to X")
    pages = [factories.make_page(document, index) for index in range(12)]
    lines = [factories.make_line(pages[11], order) for order in range(4)]
    for line in lines[1:]:
        review.do_delete_line(line, bob, expected_version=1)
    actions.do_add_member(letters, dave, Membership.Role.REVIEWER, actor=alice)
    return document


# --- Who may see it ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona, page, api",
    [("alice", 200, 200), ("staff", 200, 200), ("bob", 403, 403), ("charlie", 404, 404)],
)
def test_only_the_collections_admins_and_staff_see_its_history(
    client, request, letters, alice, bob, charlie, staff, persona, page, api
):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    assert client.get(page_url(letters)).status_code == page
    assert client.get(api_url(letters), headers=auth(user)).status_code == api


def test_outsiders_see_no_history(client, letters, alice, dave):
    assert client.get(page_url(letters)).status_code == 302  # to sign in
    assert client.get(api_url(letters)).status_code == 401
    client.force_login(dave)
    assert client.get(page_url(letters)).status_code == 404
    assert client.get(api_url(letters), headers=auth(dave)).status_code == 404


def test_the_collection_page_links_it_for_admins_only(client, letters, alice, bob):
    link = f'href="{page_url(letters)}"'
    client.force_login(alice)
    assert link in client.get(reverse("collection_detail", args=[letters.pk])).content.decode()
    client.force_login(bob)
    assert link not in client.get(reverse("collection_detail", args=[letters.pk])).content.decode()


# --- What it shows ----------------------------------------------------------------------


def test_each_row_says_who_did_what_newest_first(client, alice, letters, history):
    client.force_login(alice)
    response = client.get(page_url(letters))
    assert response.status_code == 200
    assert shown(response) == newest_first(letters)
    rows = [(row.actor, row.text) for row in response.context["rows"]]
    assert rows == [
        ("alice", "added dave as a reviewer"),
        ("bob", "removed 3 lines on page 12 of 'Letter to X'"),
        (
            "alice",
            "applied a review threshold of 0.85 (it was 0.80) to the lines: 0 lines sent to "
            "reviewers, 0 accepted",
        ),
    ]
    html = response.content.decode()
    assert "removed 3 lines on page 12 of &#x27;Letter to X&#x27;" in html
    page = history.pages.get(index=11)
    assert f'href="{reverse("review_page", args=[letters.pk, page.pk])}"' in html


def test_filtered_by_type_and_by_person(client, alice, bob, letters, history):
    client.force_login(alice)
    response = client.get(page_url(letters), {"event_type": T.LINE_DELETED})
    assert shown(response) == newest_first(letters, event_type=T.LINE_DELETED)
    assert len(shown(response)) == 3
    response = client.get(page_url(letters), {"user": alice.pk})
    assert shown(response) == newest_first(letters, acting_user=alice)
    assert len(shown(response)) == 2
    assert f'<option value="{alice.pk}" selected>alice</option>' in response.content.decode()
    response = client.get(page_url(letters), {"user": bob.pk, "event_type": T.MEMBER_ADDED})
    assert shown(response) == []
    assert "No changes." in response.content.decode()

    answer = client.get(api_url(letters), {"user": bob.pk}, headers=auth(alice)).json()
    assert [e["id"] for e in answer["results"]] == newest_first(letters, acting_user=bob)
    assert {e["description"] for e in answer["results"]} == {
        "bob removed line 2 on page 12 of 'Letter to X'",
        "bob removed line 3 on page 12 of 'Letter to X'",
        "bob removed line 4 on page 12 of 'Letter to X'",
    }


def test_a_former_member_and_a_deleted_account_can_still_be_found(
    client, alice, bob, dave, letters, history
):
    actions.do_remove_member(letters, bob, actor=alice)
    client.force_login(alice)
    response = client.get(page_url(letters), {"user": bob.pk})
    assert shown(response) == newest_first(letters, acting_user=bob)
    actions.do_set_member_role(letters, dave, Membership.Role.ADMIN, actor=alice)
    actions.do_add_member(letters, factories.make_user("erin"), "reviewer", actor=dave)
    dave.delete()
    rows = client.get(page_url(letters)).context["rows"]
    assert (rows[0].actor, rows[0].text) == ("dave", "added erin as a reviewer")


def test_who_offers_the_members_and_the_person_chosen_reading_none_of_the_sites_users(
    client, alice, bob, letters, history
):
    """Not everyone who ever changed the collection: finding them tested each of the site's
    users for a membership or an event, on every load of the page."""
    actions.do_remove_member(letters, bob, actor=alice)
    client.force_login(alice)
    with CaptureQueriesContext(connection) as before:
        client.get(page_url(letters))
    for n in range(50):
        factories.make_user(f"visitor{n}")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(page_url(letters)).content.decode()
    assert len(queries) == len(before)
    users = [query["sql"] for query in queries if '"auth_user"' in query["sql"]]
    assert users and not [sql for sql in users if "EXISTS" in sql]
    assert f'<option value="{alice.pk}">alice</option>' in html
    assert f'<option value="{bob.pk}"' not in html and "visitor" not in html
    # A former member chosen (from a row of the list) is offered, selected.
    html = client.get(page_url(letters), {"user": bob.pk}).content.decode()
    assert f'<option value="{bob.pk}" selected>bob</option>' in html


def test_the_api_gives_each_event_with_its_data(client, alice, letters, history):
    answer = client.get(api_url(letters), headers=auth(alice)).json()
    assert (answer["next"], answer["previous"]) == (None, None)
    added = answer["results"][0]
    assert added == {
        "id": added["id"],
        "event_type": "member_added",
        "event_time": added["event_time"],
        "acting_user": alice.pk,
        "acting_username": "alice",
        "document": None,
        "page": None,
        "line": None,
        "extra_data": {"member": {"id": added["extra_data"]["member"]["id"], "username": "dave"}}
        | {"role": "reviewer", "actor": {"id": alice.pk, "username": "alice"}},
        "description": "alice added dave as a reviewer",
    }
    deleted = answer["results"][1]
    assert (deleted["document"], deleted["extra_data"]["title"]) == (history.pk, "Letter to X")


# --- Pages ------------------------------------------------------------------------------


@pytest.fixture
def many(letters, alice):
    """Seven events, five of them at one instant (as one transaction's statements could be)."""
    at = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    for n in range(7):
        CollectionEvent.objects.create(
            collection=letters,
            acting_user=alice,
            event_type=T.MEMBER_ADDED,
            event_time=at if n < 5 else datetime(2026, 5, 1, 11, n, tzinfo=UTC),
            extra_data={"member": {"id": 1, "username": f"user{n}"}, "role": "reviewer"},
        )


def test_pages_follow_each_other_without_gaps_or_repeats(client, alice, letters, many):
    client.force_login(alice)
    seen, pages, query = [], [], "?page_size=3"
    while query:
        response = client.get(page_url(letters) + query)
        pages.append(shown(response))
        seen += shown(response)
        query = response.context["older_url"]
    assert seen == newest_first(letters) and len(seen) == 7
    assert [len(p) for p in pages] == [3, 3, 1]
    newer = response.context["newer_url"]
    assert shown(client.get(page_url(letters) + newer)) == pages[1]


def test_the_api_pages_with_next_and_previous(client, alice, letters, many):
    seen, url = [], api_url(letters) + "?page_size=2"
    while url:
        answer = client.get(url, headers=auth(alice)).json()
        seen += [e["id"] for e in answer["results"]]
        last, url = answer, answer["next"]
    assert seen == newest_first(letters)
    back = client.get(last["previous"], headers=auth(alice)).json()
    assert [e["id"] for e in back["results"]] == seen[-3:-1]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"user": "abc"}, "user"),
        ({"user": "999999"}, "user"),
        ({"user": "99999999999999999999"}, "user"),
        ({"user": "-1"}, "user"),
        ({"event_type": "threshold_changed"}, "event_type"),
        ({"cursor": "made up"}, "cursor"),
        ({"cursor": "o999999999999999999.1"}, "cursor"),  # past the calendar
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
    ],
)
def test_bad_filters_are_a_400_naming_them(client, alice, letters, history, query, field):
    client.force_login(alice)
    response = client.get(page_url(letters), query)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode()
    answer = client.get(api_url(letters), query, headers=auth(alice))
    assert answer.status_code == 400
    assert list(answer.json()["fields"]) == [field]


def test_a_user_of_another_collection_is_no_filter_here(client, alice, charlie, letters):
    client.force_login(alice)
    assert client.get(page_url(letters), {"user": charlie.pk}).status_code == 400


# --- The Django admin -------------------------------------------------------------------


def test_staff_read_the_events_in_the_admin_and_change_none(client, staff, letters, history):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    listing = client.get(
        reverse("admin:corpus_collectionevent_changelist"),
        {"collection__id__exact": letters.pk, "event_type__exact": T.LINE_DELETED},
    )
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 3
    assert "bob removed line 2 on page 12 of &#x27;Letter to X&#x27;" in listing.content.decode()
    event = CollectionEvent.objects.filter(collection=letters).first()
    assert client.get(reverse("admin:corpus_collectionevent_add")).status_code == 403
    change = reverse("admin:corpus_collectionevent_change", args=[event.pk])
    assert client.post(change, {"event_type": T.MEMBER_REMOVED}).status_code == 403
    delete = reverse("admin:corpus_collectionevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert CollectionEvent.objects.get(pk=event.pk).event_type == event.event_type


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        # A test's few rows are read whole whatever the indexes; what matters is which index
        # answers the query once reading the table whole is ruled out.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("filters", "index"),
    [({"event_type": "member_removed"}, "events_by_type"), ({"user": "bob"}, "events_by_person")],
)
def test_a_filtered_history_reads_its_own_index_in_keyset_order(
    letters, bob, history, filters, index
):
    """A type or a person with few events was looked for through every event of the collection
    (50,000 read for a type with none: 10.8 ms -> 0.08 ms on them)."""
    if "user" in filters:
        filters = {"user": bob}
    with CaptureQueriesContext(connection) as queries:
        audit.events_page(audit.events(letters, **filters), None)
    [sql] = [q["sql"] for q in queries.captured_queries]
    plan = _plan(sql)
    assert re.search(rf"Index Scan Backward using {index} .*\n.*Index Cond: .*collection_id", plan)
    assert "Sort" not in plan, plan

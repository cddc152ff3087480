"""The reviewer statistics per day (review migration 0009): what counts on a day, in the site's
zone, after a change of zone and back and forth through the migration; the progress page's
table of the days, its CSV, and the API."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from bench.reviewer_stats import day_rows, trail_reviewer_days
from ocrreview.review import actions, progress, reviewer_days
from ocrreview.review.templatetags.review import editor_time
from tests import factories
from tests.factories import token_headers as auth

PARIS = ZoneInfo("Europe/Paris")
DAY = date(2026, 11, 2)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PARIS)


@pytest.fixture
def paris(db, settings):
    """The site in Paris, its days counted there (in this test's transaction)."""
    settings.TIME_ZONE = "Europe/Paris"
    reviewer_days.count_days_in_the_sites_zone()


def days(collection, since=DAY, until=DAY + timedelta(days=2), *, only=None):
    shown = reviewer_days.reviewer_days(
        collection, since, until, zone=reviewer_days.day_zone(), only=only
    )
    return {
        (day.day, r.username): (r.lines, r.changed, r.accepted, r.timed_lines, r.time_spent_ms)
        for day in shown.days
        for r in day.reviewers
    }


def test_a_line_counts_on_each_day_it_was_settled_once_a_day_and_an_undo_for_who_undid(
    paris, clock, alice, bob, letters, lines
):
    # A second before midnight in Paris, and at midnight: two days (at 23:00 and 23:00 UTC).
    clock.set(at(DAY, 23, 59, 59))
    actions.do_accept_line(lines[1], bob, expected_version=1, time_spent_ms=2000)
    clock.set(at(DAY + timedelta(days=1), 0))
    actions.do_save_line(lines[1], bob, "I received your", expected_version=2, time_spent_ms=1000)
    actions.do_accept_line(lines[1], bob, expected_version=3)
    actions.do_accept_line(lines[2], bob, expected_version=1, time_spent_ms=500)
    first, second = DAY, DAY + timedelta(days=1)
    bobs = {
        (first, "bob"): (1, 0, 1, 1, 2000),
        # The line again, once though saved twice; changed that day; and another accepted.
        (second, "bob"): (2, 1, 1, 2, 1500),
    }
    assert days(letters) == bobs
    # The running totals count the line once; the days, on each day bob settled it.
    (totals,) = progress.reviewer_stats(letters)
    assert (totals.lines, totals.changed, totals.timed_lines) == (2, 1, 2)
    # alice undoes bob's saves the day after: reverts of hers, on her day; bob's days stay.
    clock.set(at(DAY + timedelta(days=2), 9))
    undone = actions.do_revert_user_saves(letters, bob, at(DAY, 0), alice)
    assert len(undone.reverted) == 2
    assert days(letters) == {**bobs, (DAY + timedelta(days=2), "alice"): (2, 1, 1, 0, 0)}
    last = DAY + timedelta(days=2)
    shown = reviewer_days.reviewer_days(letters, DAY, last, zone="Europe/Paris")
    assert day_rows(shown) == trail_reviewer_days(letters, DAY, last)


def test_days_come_in_any_order(paris, clock, bob, letters, lines):
    """A record dated earlier than one already counted (a transaction that began before
    midnight commits after one that began after) counts on its own day."""
    later = DAY + timedelta(days=1)
    for day, line, version in [(later, 1, 1), (DAY, 2, 1), (later, 2, 2)]:
        clock.set(at(day, 12))
        actions.do_accept_line(lines[line], bob, expected_version=version)
    assert days(letters) == {
        (DAY, "bob"): (1, 0, 1, 0, 0),
        (DAY + timedelta(days=1), "bob"): (2, 0, 2, 0, 0),
    }


def test_after_the_site_changes_its_zone_a_migrate_counts_the_days_again_in_it(
    settings, clock, bob, letters, lines
):
    assert reviewer_days.day_zone() == settings.TIME_ZONE == "UTC"
    clock.set(datetime(2026, 11, 2, 23, 30, tzinfo=UTC))  # the 3rd in Tokyo
    actions.do_accept_line(lines[1], bob, expected_version=1)
    assert days(letters, DAY, DAY + timedelta(days=1)) == {(DAY, "bob"): (1, 0, 1, 0, 0)}
    settings.TIME_ZONE = "Asia/Tokyo"
    call_command("migrate", verbosity=0)  # nothing to migrate; the days counted again
    assert reviewer_days.day_zone() == "Asia/Tokyo"
    tokyo = DAY + timedelta(days=1)
    assert days(letters, DAY, tokyo) == {(tokyo, "bob"): (1, 0, 1, 0, 0)}
    # And from now on: 20:00 UTC on the 3rd is the 4th there.
    clock.set(datetime(2026, 11, 3, 20, 0, tzinfo=UTC))
    actions.do_accept_line(lines[2], bob, expected_version=1)
    assert days(letters, DAY, DAY + timedelta(days=2)) == {
        (tokyo, "bob"): (1, 0, 1, 0, 0),
        (tokyo + timedelta(days=1), "bob"): (1, 0, 1, 0, 0),
    }


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        return {
            table.name
            for table in connection.introspection.get_table_list(cursor)
            if table.name.startswith("review_reviewer") and table.name.endswith("day")
        }


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_and_forth_and_counts_what_was_saved_meanwhile(
    bob, letters, lines, latest_migrations_after
):
    actions.do_accept_line(lines[1], bob, expected_version=1)
    try:
        call_command("migrate", "review", "0008", verbosity=0)
        assert _tables() == set()
        # The running totals still count, as 0008 made them.
        actions.do_save_line(lines[2], bob, "LETTER OF THE 3D", expected_version=1)
        (totals,) = progress.reviewer_stats(letters)
        assert (totals.lines, totals.changed) == (2, 1)
    finally:
        call_command("migrate", "review", verbosity=0)
    assert _tables() == {"review_reviewerday", "review_reviewerlineday"}
    today = reviewer_days.today(reviewer_days.day_zone())
    assert days(letters, today, today) == {(today, "bob"): (2, 1, 1, 0, 0)}
    actions.do_accept_line(lines[3], bob, expected_version=1)
    assert days(letters, today, today) == {(today, "bob"): (3, 1, 2, 0, 0)}


# --- The progress page, its CSV, the API ------------------------------------------------


@pytest.fixture
def worked(paris, clock, alice, bob, letters, lines):
    """bob's work yesterday and today in Paris, and dave's today; the clock at noon today."""
    dave = factories.make_user("dave")
    factories.add_member(dave, letters)
    today = reviewer_days.today("Europe/Paris")
    clock.set(at(today - timedelta(days=1), 10))
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=6000)
    clock.set(at(today, 12))
    actions.do_accept_line(lines[2], bob, expected_version=1, time_spent_ms=3000)
    actions.do_accept_line(lines[3], dave, expected_version=1)
    return today


def test_admins_see_each_reviewers_days_and_the_days_totals(client, alice, letters, worked):
    client.force_login(alice)
    response = client.get(reverse("review_progress", args=[letters.pk]))
    assert response.status_code == 200
    shown = response.context["days"]
    assert (shown.since, shown.until, shown.zone) == (
        worked - timedelta(days=29),
        worked,
        "Europe/Paris",
    )
    assert len(shown.days) == 30 and shown.days[0].day == worked
    today, yesterday = shown.days[0], shown.days[1]
    assert [(r.username, r.lines, r.accepted) for r in today.reviewers] == [
        ("bob", 1, 1),
        ("dave", 1, 1),
    ]
    assert (today.total.lines, today.total.timed_lines, today.total.time_spent_ms) == (2, 1, 3000)
    assert (yesterday.total.lines, yesterday.total.changed) == (1, 1)
    assert shown.days[2].total.lines == 0 and not shown.days[2].reviewers
    html = response.content.decode()
    assert "Reviewers per day" in html and "Days in Europe/Paris" in html
    since, until = (d.isoformat() for d in (worked - timedelta(days=29), worked))
    assert f"days.csv?since={since}&amp;until={until}" in html
    assert f'<tr class="day-total" data-day="{until}">' in html
    assert f'<tr class="day-total quiet" data-day="{worked - timedelta(days=2)}">' in html
    assert "<td>6 s</td>" in html  # bob's time yesterday


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (400, "0 s"),
        (59_499, "59 s"),
        (60_000, "1 min"),
        (3_569_000, "59 min"),
        (3_900_000, "1 h 05"),
    ],
)
def test_the_editors_time_reads_as_a_coordinator_reads_it(ms, shown):
    assert editor_time(ms) == shown


def test_a_volunteer_sees_their_own_days_and_no_totals(client, bob, letters, worked):
    client.force_login(bob)
    shown = client.get(reverse("review_progress", args=[letters.pk])).context["days"]
    assert {r.username for day in shown.days for r in day.reviewers} == {"bob"}
    assert all(day.total is None for day in shown.days)
    html = client.get(reverse("review_progress", args=[letters.pk])).content.decode()
    assert "Your work per day" in html and "dave" not in html


def test_a_range_of_days_is_chosen(client, alice, letters, worked):
    client.force_login(alice)
    yesterday = (worked - timedelta(days=1)).isoformat()
    response = client.get(
        reverse("review_progress", args=[letters.pk]), {"since": yesterday, "until": yesterday}
    )
    (day,) = response.context["days"].days
    assert [(r.username, r.lines, r.changed) for r in day.reviewers] == [("bob", 1, 1)]
    # Only an end: the 30 days up to it.
    shown = client.get(
        reverse("review_progress", args=[letters.pk]), {"until": "2026-01-31"}
    ).context["days"]
    assert (shown.since, shown.until, shown.worked) == (date(2026, 1, 2), date(2026, 1, 31), False)
    assert (
        "No one settled a line on these days."
        in client.get(
            reverse("review_progress", args=[letters.pk]), {"until": "2026-01-31"}
        ).content.decode()
    )
    # A year and a day at most.
    shown = client.get(
        reverse("review_progress", args=[letters.pk]),
        {"since": "2025-01-01", "until": "2026-01-01"},
    ).context["days"]
    assert len(shown.days) == 366


def test_a_range_nobody_worked_in_shows_the_message_alone_and_the_csv_and_api_its_days(
    client, alice, bob, letters
):
    """A fresh collection: no table of days with "nobody 0" on each, just the message; the
    CSV and the API still answer every day of the range, as a report over days needs."""
    client.force_login(alice)
    url = reverse("review_progress", args=[letters.pk])
    html = client.get(url).content.decode()
    assert "<p>No one settled a line on these days.</p>" in html
    assert "progress-days" not in html and "nobody" not in html
    assert "Download CSV" not in html
    _, *rows = _csv(client.get(reverse("review_reviewer_days_csv", args=[letters.pk])))
    assert len(rows) == reviewer_days.DEFAULT_DAYS
    assert {tuple(row[1:]) for row in rows} == {("(all reviewers)", "0", "0", "0", "0", "0.0", "")}
    body = client.get(reverse("api_reviewer_days", args=[letters.pk]), headers=auth(alice)).json()
    assert len(body["days"]) == reviewer_days.DEFAULT_DAYS
    assert all(day["reviewers"] == [] and day["total"]["lines"] == 0 for day in body["days"])
    client.force_login(bob)
    assert "<p>You settled no line on these days.</p>" in client.get(url).content.decode()


BAD_RANGES = [
    (
        {"since": "2026-05-02", "until": "2026-05-01"},
        "The last day must not come before the first.",
    ),
    ({"since": "2025-01-01", "until": "2026-01-02"}, "Choose at most 366 days"),
    ({"since": "2026-02-30"}, "Enter a valid date."),
    ({"until": "yesterday"}, "Enter a valid date."),
    ({"since": "9999-12-31"}, "The last day must not come before the first."),
    ({"until": "0001-01-03"}, None),  # the calendar's first days: fewer than 30, and fine
]


@pytest.mark.parametrize(("query", "message"), BAD_RANGES)
def test_a_bad_range_is_refused_with_the_reason_and_the_page_shown(
    client, alice, letters, worked, query, message
):
    client.force_login(alice)
    response = client.get(reverse("review_progress", args=[letters.pk]), query)
    if message is None:
        assert response.status_code == 200
        assert response.context["days"].since == date.min
        return
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "Documents" in html and "days" not in response.context
    csv_answer = client.get(reverse("review_reviewer_days_csv", args=[letters.pk]), query)
    assert csv_answer.status_code == 400 and message in csv_answer.content.decode()
    api_answer = client.get(
        reverse("api_reviewer_days", args=[letters.pk]), query, headers=auth(alice)
    )
    assert api_answer.status_code == 400 and message in api_answer.json()["error"]


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_csv_has_a_row_per_reviewer_and_day_and_the_days_totals(client, alice, letters, worked):
    client.force_login(alice)
    yesterday = worked - timedelta(days=1)
    response = client.get(
        reverse("review_reviewer_days_csv", args=[letters.pk]),
        {"since": (worked - timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="reviewers-per-day-{letters.pk}-'
        f'{worked - timedelta(days=2)}-{worked}.csv"'
    )
    header, *rows = _csv(response)
    assert header == [
        "day (Europe/Paris)",
        "reviewer",
        "lines_reviewed",
        "lines_changed",
        "lines_accepted_unchanged",
        "timed_lines",
        "time_spent_minutes",
        "lines_per_hour",
    ]
    before, y, t = (str(d) for d in (worked - timedelta(days=2), yesterday, worked))
    assert rows == [
        [before, "(all reviewers)", "0", "0", "0", "0", "0.0", ""],
        [y, "(all reviewers)", "1", "1", "0", "1", "0.1", "600.0"],
        [y, "bob", "1", "1", "0", "1", "0.1", "600.0"],
        [t, "(all reviewers)", "2", "0", "2", "1", "0.1", "1200.0"],
        [t, "bob", "1", "0", "1", "1", "0.1", "1200.0"],
        [t, "dave", "1", "0", "1", "0", "0.0", ""],
    ]


def test_a_volunteers_csv_has_their_rows_alone(client, bob, letters, worked):
    client.force_login(bob)
    _, *rows = _csv(client.get(reverse("review_reviewer_days_csv", args=[letters.pk])))
    assert {row[1] for row in rows} == {"bob"} and len(rows) == 2


def test_a_username_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    client, alice, letters, worked, clock, lines
):
    sly = factories.make_user("-2+3")  # accounts made from an address's user part may be so
    factories.add_member(sly, letters)
    actions.do_accept_line(lines[0], sly, expected_version=lines[0].version)
    client.force_login(alice)
    _, *rows = _csv(client.get(reverse("review_reviewer_days_csv", args=[letters.pk])))
    assert "'-2+3" in {row[1] for row in rows}


def test_days_of_another_collection_are_not_found(client, charlie, letters, worked):
    client.force_login(charlie)
    assert client.get(reverse("review_reviewer_days_csv", args=[letters.pk])).status_code == 404
    answer = client.get(reverse("api_reviewer_days", args=[letters.pk]), headers=auth(charlie))
    assert answer.status_code == 404


def test_the_api_answers_the_days_as_the_page_shows_them(
    client, django_user_model, alice, bob, letters, worked
):
    url = reverse("api_reviewer_days", args=[letters.pk])
    yesterday = worked - timedelta(days=1)
    answer = client.get(url, {"since": yesterday.isoformat()}, headers=auth(alice))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["zone"], body["since"], body["until"]) == (
        "Europe/Paris",
        str(yesterday),
        str(worked),
    )
    today = body["days"][0]
    assert today["day"] == str(worked)
    assert today["total"] == {
        "lines": 2,
        "changed": 0,
        "accepted": 2,
        "timed_lines": 1,
        "time_spent_ms": 3000,
    }
    assert [(r["user"], r["username"], r["lines"]) for r in today["reviewers"]] == [
        (bob.pk, "bob", 1),
        (django_user_model.objects.get(username="dave").pk, "dave", 1),
    ]
    # A volunteer: their own work, and no totals.
    mine = client.get(url, {"since": yesterday.isoformat()}, headers=auth(bob)).json()
    assert [[r["username"] for r in d["reviewers"]] for d in mine["days"]] == [["bob"], ["bob"]]
    assert all(d["total"] is None for d in mine["days"])
    refused = client.get(url, {"since": "2026-13-01"}, headers=auth(alice))
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "since: Enter a valid date.",
        "fields": {"since": [{"message": "Enter a valid date.", "code": "invalid"}]},
    }

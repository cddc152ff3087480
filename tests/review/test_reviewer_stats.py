"""The progress page's reviewer statistics, read from the running totals that the trail's
trigger keeps (migration 0008), equal what counting distinct lines over the trail gives (the
query they replace, kept here as the oracle): after any sequence of saves, accepts, picks,
reverts, undos of a person's saves, skips, unclear marks, splits, merges, deletions and find
and replace, in two collections; for records with no user and several in one statement; as the
migration's backfill computes them; and with reviewers saving at once, who do not wait for
each other (one person in two tabs does, briefly), nor deadlock, nor miscount."""

import importlib
import random
import threading
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.reviewer_stats import day_rows, trail_reviewer_days, trail_reviewer_stats
from ocrreview.corpus.models import Collection, Line
from ocrreview.review import actions, find_replace, progress, reviewer_days
from ocrreview.review.models import (
    Correction,
    ReviewerDay,
    ReviewerLine,
    ReviewerLineDay,
    ReviewerTotals,
)
from ocrreview.transcription.models import Hypothesis
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

A = Correction.Action
S = Line.Status
migration = importlib.import_module("ocrreview.review.migrations.0008_reviewer_totals")
days_migration = importlib.import_module("ocrreview.review.migrations.0009_reviewer_days")


# reviewer_stats as it was (the benchmark's baseline): distinct lines counted over the
# collection's whole trail.
oracle = trail_reviewer_stats


def assert_as_the_trail_says(*collections: Collection) -> None:
    """The running totals, and every day's rows (migration 0009), as the trail says."""
    zone = ZoneInfo(settings.TIME_ZONE)
    for collection in collections:
        assert progress.reviewer_stats(collection) == oracle(collection)
        trail = Correction.objects.filter(line__collection=collection)
        ends = trail.aggregate(first=Min("created_at"), last=Max("created_at"))
        if ends["first"] is None:
            assert not ReviewerDay.objects.filter(collection=collection).exists()
            continue
        since, until = (ends[end].astimezone(zone).date() for end in ("first", "last"))
        shown = reviewer_days.reviewer_days(collection, since, until, zone=reviewer_days.day_zone())
        assert day_rows(shown) == trail_reviewer_days(collection, since, until)
        # Nothing counted outside the days of the trail.
        assert ReviewerDay.objects.filter(collection=collection).count() == len(day_rows(shown))


# The site's zone in the tests that count days at moments around its midnights: 12:45 or
# 13:45 ahead of UTC, so that a day's hours are not UTC's, and summer time ends on 5 April.
ZONE = "Pacific/Chatham"
# Moments just before and just after four midnights there, the summer time's end among them;
# in order.
MIDNIGHTS = [
    datetime.combine(date(2026, 4, 3) + timedelta(days=n), time(), ZoneInfo(ZONE)) for n in range(4)
]
MOMENTS = [m + timedelta(seconds=s) for m in MIDNIGHTS for s in (-1, 0, 3600 * 5)]


@pytest.fixture
def days_in_the_zone(db, settings):
    """The site's zone is ZONE, and the trigger counts days in it (in this test's transaction:
    the zone it counted in before comes back with the rollback)."""
    settings.TIME_ZONE = ZONE
    reviewer_days.count_days_in_the_sites_zone()
    assert reviewer_days.day_zone() == ZONE


TEXTS = ["Mr Stanfora came", "Mr Stanford came", "the Stanfora house", "Dear Sir", "x"]


@pytest.fixture
def pages(letters, ledgers, model_version):
    """Two documents of Letters and one of Ledgers, each a page of read lines with
    alternatives, some misreading Stanford."""
    made = []
    for collection, title, count in [
        (letters, "Letter 1", 6),
        (letters, "Letter 2", 4),
        (ledgers, "Ledger", 4),
    ]:
        page = factories.make_page(factories.make_document(collection, title))
        for order in range(count):
            readings = [(TEXTS[order % 3], 0.5), (TEXTS[(order + 1) % 3], 0.3)]
            factories.make_read_line(page, order, readings, model_version)
        made.append(page)
    return made


def _random_step(rng: random.Random, users, collections, moments: list[datetime]) -> str:
    """One action through the real code, on a line, person and collection drawn by rng; a
    refusal (a stale version, a line with history that cannot go) is a step too. Returns the
    kind of action, or "" where it was refused or did nothing."""
    user = rng.choice(users)
    collection = rng.choice(collections)
    lines = list(Line.objects.filter(collection=collection).order_by("page", "order", "pk"))
    line = rng.choice(lines)
    kind = rng.choice(
        ["save"] * 4
        + ["accept", "pick", "revert", "undo", "skip", "unclear", "split", "merge", "delete"]
        + ["replace", "bulk", "nobody"]
    )
    ms = rng.choice([0, 0, 1500, 4000])
    try:
        if kind == "save":
            text = rng.choice([*TEXTS, line.text])
            actions.do_save_line(
                line, user, text, expected_version=line.version, time_spent_ms=ms, allow_empty=True
            )
        elif kind == "accept":
            actions.do_accept_line(line, user, expected_version=line.version, time_spent_ms=ms)
        elif kind == "pick":
            hypotheses = list(Hypothesis.objects.filter(line=line).order_by("pk"))
            if not hypotheses:
                return ""
            actions.do_pick_hypothesis(
                line, user, rng.choice(hypotheses), expected_version=line.version, time_spent_ms=ms
            )
        elif kind == "revert":
            trail = list(Correction.objects.filter(line=line).order_by("pk"))
            if not trail:
                return ""
            actions.do_revert_line(
                line,
                user,
                rng.choice(trail),
                expected_version=line.version,
                before=rng.random() < 0.5,
            )
        elif kind == "undo":
            undone = actions.do_revert_user_saves(
                collection, rng.choice(users), rng.choice(moments), user
            )
            if not undone.reverted:
                return ""
        elif kind == "skip":
            actions.do_claim_line(line, user)
            if actions.do_skip_line(line, user, time_spent_ms=ms) is None:
                return ""
        elif kind == "unclear":
            actions.do_mark_unclear(line, user, "a blot")
        elif kind == "split":
            actions.do_split_line(line, user, at_x=250, expected_version=line.version)
        elif kind == "merge":
            # Mostly onto a line whose follower has no text history: the others are refused.
            pairs = zip(lines, lines[1:], strict=False)
            free = [a for a, b in pairs if a.page_id == b.page_id and not _text_history(b)]
            line = rng.choice(free or [line]) if rng.random() < 0.8 else line
            actions.do_merge_lines(line, user, expected_version=line.version)
        elif kind == "delete":
            free = [a for a in lines if not _text_history(a)]
            line = rng.choice(free or [line]) if rng.random() < 0.8 else line
            actions.do_delete_line(line, user, expected_version=line.version)
        elif kind == "replace":
            q, replacement = rng.choice([("Stanfora", "Stanford"), ("Stanford", "Stanfora")])
            filters = find_replace.search.Filters()
            chosen = find_replace.chosen_lines(collection, q, filters, None, 1000)
            if not find_replace.do_replace(
                collection, user, q, filters, chosen, replacement
            ).changed:
                return ""
        elif kind == "bulk":
            # One statement, several people, a line twice: the trigger sees them all at once.
            picked = rng.sample(lines, min(3, len(lines)))
            Correction.objects.bulk_create(
                Correction(
                    line=target,
                    user=rng.choice(users),
                    action=rng.choice([A.EDIT, A.ACCEPT, A.SKIP]),
                    text_before=target.text,
                    text_after=rng.choice([target.text, "bulk"]),
                    line_version=target.version,
                    time_spent_ms=rng.choice([0, 700]),
                )
                for target in [*picked, picked[0]]
            )
        else:  # "nobody": a record with no user, which the page shows as a deleted user's
            Correction.objects.create(
                line=line,
                user=None,
                action=rng.choice([A.EDIT, A.ACCEPT]),
                text_before=line.text,
                text_after=rng.choice([line.text, "someone"]),
                line_version=line.version,
                time_spent_ms=ms,
            )
    except (actions.ReviewError, actions.VersionConflict):
        return ""
    finally:
        moments.append(timezone.now())
    return kind


def _text_history(line: Line) -> bool:
    return (
        Correction.objects.filter(line=line).exclude(action__in=actions.NOT_TEXT_HISTORY).exists()
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_work_through_the_actions_counts_as_the_trail_says(
    seed, alice, bob, charlie, dave, letters, ledgers, pages, days_in_the_zone, clock
):
    """The actions made around the zone's midnights, the clock going forward through MOMENTS
    (undoing a person's saves goes by the trail's times): the days they count on are the
    trail's, after every step."""
    rng = random.Random(seed)
    users, collections = [alice, bob, charlie, dave], [letters, ledgers]
    moments = [MOMENTS[0]]
    done = set()
    for step in range(120):
        clock.set(MOMENTS[step * len(MOMENTS) // 120] + timedelta(microseconds=step))
        done.add(_random_step(rng, users, collections, moments))
        assert_as_the_trail_says(letters, ledgers)
    # Every kind of action did something at least once, and several people settled lines in
    # both collections, on several days, one line more than once on one day.
    assert done >= {"save", "accept", "pick", "revert", "undo", "skip", "unclear", "split"}
    assert done >= {"merge", "delete", "replace", "bulk", "nobody"}
    assert all(len(oracle(collection)) >= 2 for collection in collections)
    assert ReviewerDay.objects.values("day").distinct().count() == len(MIDNIGHTS) + 1
    settling = Correction.objects.filter(action__in=progress.SETTLING)
    assert ReviewerLineDay.objects.count() < settling.count()


def test_a_line_saved_again_changed_and_timed_later_counts_once_in_each(bob, letters, lines):
    actions.do_accept_line(lines[1], bob, expected_version=1)
    assert_as_the_trail_says(letters)
    actions.do_save_line(lines[1], bob, "I received your", expected_version=2)
    actions.do_accept_line(lines[1], bob, expected_version=3, time_spent_ms=2000)
    actions.do_accept_line(lines[1], bob, expected_version=4, time_spent_ms=1000)
    (stats,) = progress.reviewer_stats(letters)
    assert (stats.lines, stats.changed, stats.timed_lines) == (1, 1, 1)
    assert stats.hours == 3000 / 3_600_000
    assert_as_the_trail_says(letters)
    # One row for the line, counted in all three; the last save added nothing, so the row still
    # says what the one before it added.
    (counted,) = ReviewerLine.objects.filter(line=lines[1], user=bob)
    assert counted.counted == ReviewerLine.SETTLED | ReviewerLine.CHANGED | ReviewerLine.TIMED
    assert counted.newly_counted == ReviewerLine.TIMED


def test_skips_segmentation_unclear_marks_and_imports_count_for_nobody(bob, letters, lines):
    actions.do_claim_line(lines[1], bob)
    actions.do_skip_line(lines[1], bob, time_spent_ms=5000)
    actions.do_mark_unclear(lines[2], bob, "a blot")
    actions.do_split_line(lines[3], bob, at_x=250, expected_version=1)
    actions.record_imported_text(Line, [lines[0]], bob)
    assert progress.reviewer_stats(letters) == [] == oracle(letters)
    assert not ReviewerTotals.objects.exists()


def test_the_statistics_are_one_query_that_does_not_read_the_trail(bob, letters, lines):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=10)
    with CaptureQueriesContext(connection) as context:
        progress.reviewer_stats(letters)
    (query,) = context.captured_queries
    assert "review_correction" not in query["sql"]


def test_a_renamed_reviewer_is_shown_by_their_new_name_in_order(alice, bob, letters, lines):
    actions.do_accept_line(lines[1], bob, expected_version=1)
    actions.do_accept_line(lines[2], alice, expected_version=1)
    bob.username = "aaron"
    bob.save()
    assert [r.username for r in progress.reviewer_stats(letters)] == ["aaron", "alice"]
    assert_as_the_trail_says(letters)


def _every_day(*collections: Collection) -> list[tuple]:
    """The per-day rows, but their ids."""
    rows = ReviewerDay.objects.filter(collection__in=collections)
    fields = ["collection", "day", "user", "lines", "changed", "timed_lines", "time_spent_ms"]
    return list(rows.order_by("collection", "day", "user").values_list(*fields))


def test_the_migrations_backfill_counts_the_trail_as_it_stands(
    alice, bob, charlie, dave, letters, ledgers, pages, days_in_the_zone, clock
):
    rng = random.Random(7)
    moments = [MOMENTS[0]]
    for step in range(40):
        clock.set(MOMENTS[step * len(MOMENTS) // 60] + timedelta(microseconds=step))
        _random_step(rng, [alice, bob, charlie, dave], [letters, ledgers], moments)
    kept = {c.pk: progress.reviewer_stats(c) for c in (letters, ledgers)}
    kept_days = _every_day(letters, ledgers)
    assert any(kept.values()) and len({row[1] for row in kept_days}) >= 3
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM review_reviewerline; DELETE FROM review_reviewertotals")
        cursor.execute("DELETE FROM review_reviewerlineday; DELETE FROM review_reviewerday")
        cursor.execute(migration.BACKFILL + days_migration.backfill_days(ZONE))
    assert {c.pk: progress.reviewer_stats(c) for c in (letters, ledgers)} == kept
    assert _every_day(letters, ledgers) == kept_days
    assert_as_the_trail_says(letters, ledgers)
    # And the trigger goes on from the backfilled rows.
    for step in range(40, 60):
        clock.set(MOMENTS[step * len(MOMENTS) // 60] + timedelta(microseconds=step))
        _random_step(rng, [alice, bob, charlie, dave], [letters, ledgers], moments)
        assert_as_the_trail_says(letters, ledgers)


# --- Saves at once, each on a connection of its own ------------------------------------


def _in_thread(target, *args) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = target(*args)
        except Exception as error:  # re-raised by the test, which sees it
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_saving_at_once_do_not_wait_for_each_other(bob, dave, letters, lines):
    factories.add_member(dave, letters)
    saved, other_done = threading.Event(), threading.Event()

    def bob_saves_and_holds_his_transaction():
        with transaction.atomic():
            actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
            saved.set()
            # Committed only once dave's save is done: had it waited for a row bob's insert
            # locked, this would time out.
            return other_done.wait(30)

    bob_thread, bob_outcome = _in_thread(bob_saves_and_holds_his_transaction)
    assert saved.wait(30)
    actions.do_accept_line(lines[2], dave, expected_version=1, time_spent_ms=3000)
    other_done.set()
    bob_thread.join(60)
    assert "error" not in bob_outcome and bob_outcome["result"] is True
    stats = {r.username: (r.lines, r.changed, r.timed_lines) for r in oracle(letters)}
    assert stats == {"bob": (1, 1, 0), "dave": (1, 0, 1)}
    assert_as_the_trail_says(letters)


@pytest.mark.django_db(transaction=True)
def test_one_reviewer_in_two_tabs_takes_turns_and_both_saves_count(bob, letters, lines):
    saved, release = threading.Event(), threading.Event()

    def first_tab():
        with transaction.atomic():
            actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
            saved.set()
            release.wait(30)

    first, first_outcome = _in_thread(first_tab)
    assert saved.wait(30)
    second, second_outcome = _in_thread(
        lambda: actions.do_accept_line(lines[2], bob, expected_version=1, time_spent_ms=500)
    )
    # Their running totals are one row, locked by the first tab's save until it commits.
    wait_until_another_session_waits_for_a_lock()
    release.set()
    first.join(60)
    second.join(60)
    assert "error" not in first_outcome and "error" not in second_outcome
    (stats,) = progress.reviewer_stats(letters)
    assert (stats.lines, stats.changed, stats.timed_lines) == (2, 1, 1)
    assert_as_the_trail_says(letters)


@pytest.mark.django_db(transaction=True)
def test_many_saves_at_once_on_shared_lines_neither_deadlock_nor_miscount(
    alice, bob, dave, letters, pages, clock
):
    """Each save at a moment of MOMENTS, in no order: days come and go in any order, and
    several transactions count on one day at once."""
    factories.add_member(dave, letters)
    line_ids = list(Line.objects.filter(collection=letters).values_list("pk", flat=True))
    errors = []

    def work(user, seed: int):
        rng = random.Random(seed)
        for _ in range(15):
            clock.set(rng.choice(MOMENTS))
            line = Line.objects.get(pk=rng.choice(line_ids))
            try:
                if rng.random() < 0.2:
                    # Several lines in one transaction, as find and replace and undo write them.
                    # Locked first, in id order, as they lock them.
                    with transaction.atomic():
                        chosen = rng.sample(line_ids, 3)
                        locked = Line.objects.select_for_update().filter(pk__in=chosen)
                        for other in locked.order_by("pk"):
                            actions.do_accept_line(other, user, expected_version=other.version)
                else:
                    actions.do_save_line(
                        line,
                        user,
                        rng.choice(TEXTS),
                        expected_version=line.version,
                        time_spent_ms=rng.choice([0, 900]),
                    )
            except actions.VersionConflict:
                pass  # someone saved it first: a conflict, as in the editor
            except Exception as error:  # a deadlock or anything else fails the test below
                errors.append(error)

    threads = [_in_thread(work, user, seed)[0] for seed, user in enumerate([alice, bob, dave])]
    # bob twice: one person in two tabs.
    threads.append(_in_thread(work, bob, 99)[0])
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(r.lines for r in oracle(letters)) > 10
    assert ReviewerDay.objects.values("day").distinct().count() >= 3
    assert_as_the_trail_says(letters)


def test_staff_see_the_totals_in_the_django_admin_and_cannot_change_them(
    client, django_user_model, bob, letters, lines
):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=10)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.org"))
    for model in ("reviewertotals", "reviewerline", "reviewerday", "reviewerlineday"):
        listed = client.get(f"/admin/review/{model}/")
        assert listed.status_code == 200 and "bob" in listed.content.decode()
        assert client.get(f"/admin/review/{model}/add/").status_code == 403
    totals = ReviewerTotals.objects.get()
    assert client.post(f"/admin/review/reviewertotals/{totals.pk}/delete/").status_code == 403
    assert (
        client.post(f"/admin/review/reviewertotals/{totals.pk}/change/", {"lines": 99}).status_code
        == 403
    )
    assert ReviewerTotals.objects.get().lines == 1

"""The progress page's reviewer statistics at scale: counting distinct lines over the whole
correction trail, as they were, against reading the running totals the trail's trigger keeps
(review migration 0008); the same per day for the last 30 days, counted over those days' trail
against reading the per-day rows (migration 0009); what the migrations take and what the
trigger costs a save.

    python -m bench.reviewer_stats [--lines 1200000] [--corrections 2200000] [--reviewers 40]

Seeds a throwaway PostgreSQL database (<name>_bench, created and dropped here), with migration
0008 unapplied, with one collection of --documents documents and --lines lines and
--corrections records of --reviewers people (settling ones mostly, some skips and box edits,
three in four timed by the editor, over the past year) made in SQL (generate_series). Applies
the migrations, timed: their backfill is what a deployment waits for, and saves wait for it.
Times --saves saves (do_save_line) in blocks of 10 on the lines of a second collection (whose
totals are then short: the first's stay whole), between blocks the trigger turned off, or
counting the running totals alone (0008's function), or those and the days (0009's); then
--saves saves on the first collection with the trigger on. Checks that both ways give the first
collection the same numbers, and times each --samples times (the totals ten times as often):
p50, p95, `days_speedup: N` and, last, `speedup: N`, p50 of the old over p50 of the new.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from datetime import time as day_start
from zoneinfo import ZoneInfo

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ocrreview.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, F, Q, Sum  # noqa: E402
from django.db.models.functions import TruncDate  # noqa: E402

from ocrreview.corpus.management.bench_database import bench_database  # noqa: E402
from ocrreview.corpus.models import Collection, Document, Line, Page  # noqa: E402
from ocrreview.review import actions, progress, reviewer_days  # noqa: E402
from ocrreview.review.models import Correction  # noqa: E402

LINES_PER_PAGE = 40
days_migration = importlib.import_module("ocrreview.review.migrations.0009_reviewer_days")
# Saves timed in a row with the trigger on, or off: the blocks alternate, and which comes first
# in each pair, so that neither catches the machine busier.
BLOCK = 10


def trail_reviewer_stats(collection: Collection) -> list[progress.ReviewerStats]:
    """reviewer_stats as it was before the running totals: the whole trail, every page load."""
    timed = Q(time_spent_ms__gt=0)
    rows = (
        Correction.objects.filter(line__collection=collection, action__in=progress.SETTLING)
        .values("user__username")
        .annotate(
            lines=Count("line", distinct=True),
            changed=Count("line", distinct=True, filter=~Q(text_before=F("text_after"))),
            timed_lines=Count("line", distinct=True, filter=timed),
            ms=Sum("time_spent_ms", filter=timed),
        )
        .order_by("user__username")
    )
    return [
        progress.ReviewerStats(
            username=row["user__username"] or "(deleted user)",
            lines=row["lines"],
            changed=row["changed"],
            timed_lines=row["timed_lines"],
            hours=(row["ms"] or 0) / 3_600_000,
        )
        for row in rows
    ]


# A day's work as reviewer_days reports it: (day, username, lines, changed, timed_lines, ms).
DayRow = tuple[date, str, int, int, int, int]


def trail_reviewer_days(collection: Collection, since: date, until: date) -> list[DayRow]:
    """The reviewer statistics per day without the per-day rows: distinct lines counted over
    the trail of those days (read by its index on the time), each record on its day in the
    site's zone; newest day first, then by username."""
    zone = ZoneInfo(settings.TIME_ZONE)
    timed = Q(time_spent_ms__gt=0)
    rows = (
        Correction.objects.filter(
            line__collection=collection,
            action__in=progress.SETTLING,
            created_at__gte=datetime.combine(since, day_start(), zone),
            created_at__lt=datetime.combine(until + timedelta(days=1), day_start(), zone),
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "user__username")
        .annotate(
            lines=Count("line", distinct=True),
            changed=Count("line", distinct=True, filter=~Q(text_before=F("text_after"))),
            timed_lines=Count("line", distinct=True, filter=timed),
            ms=Sum("time_spent_ms", filter=timed),
        )
        .order_by("-day", "user__username")
    )
    return [
        (
            row["day"],
            row["user__username"] or reviewer_days.DELETED_USER,
            row["lines"],
            row["changed"],
            row["timed_lines"],
            row["ms"] or 0,
        )
        for row in rows
    ]


def day_rows(shown: reviewer_days.ReviewerDays) -> list[DayRow]:
    """reviewer_days' answer in the rows of trail_reviewer_days."""
    return [
        (day.day, r.username, r.lines, r.changed, r.timed_lines, r.time_spent_ms)
        for day in shown.days
        for r in day.reviewers
    ]


def last_days(collection: Collection) -> reviewer_days.ReviewerDays:
    """The progress page's default: the last 30 days, in the zone the days are counted in."""
    zone = reviewer_days.day_zone()
    until = reviewer_days.today(zone)
    since = until - timedelta(days=reviewer_days.DEFAULT_DAYS - 1)
    return reviewer_days.reviewer_days(collection, since, until, zone=zone)


def side_lines(count: int) -> list[Line]:
    """Lines of a collection of their own, for the saves timed with the trigger off."""
    collection = Collection.objects.create(name="Bench saves")
    document = Document.objects.create(collection=collection, title="Bench saves")
    pages = Page.objects.bulk_create(
        Page(document=document, index=i, image="bench/page.png", width=2000, height=3000)
        for i in range(-(-count // LINES_PER_PAGE))
    )
    return Line.objects.bulk_create(
        Line(
            collection=collection,
            document=document,
            page=pages[i // LINES_PER_PAGE],
            order=i % LINES_PER_PAGE,
            bbox=[40, 60, 1900, 120],
            status=Line.Status.NEEDS_REVIEW,
        )
        for i in range(count)
    )


def seed(args: argparse.Namespace) -> tuple[Collection, list]:
    collection = Collection.objects.create(name="Bench")
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        user_model(username=f"reviewer{i:02}") for i in range(args.reviewers)
    )
    per_document = -(-args.lines // args.documents)
    documents = Document.objects.bulk_create(
        Document(collection=collection, title=f"Bench {i}") for i in range(args.documents)
    )
    # By the ORM, so that columns added to pages later get their defaults.
    Page.objects.bulk_create(
        (
            Page(document=d, index=i, image="bench/page.png", width=2000, height=3000)
            for d in documents
            for i in range(-(-per_document // LINES_PER_PAGE))
        ),
        batch_size=5000,
    )
    params = {
        "collection": collection.pk,
        "documents": [d.pk for d in documents],
        "users": [u.pk for u in users],
        "lines": args.lines,
        "per_document": per_document,
        "per_page": LINES_PER_PAGE,
        "corrections": args.corrections,
    }
    with connection.cursor() as cursor:
        # Lines without text: the statistics read none, and the search index need not grow.
        cursor.execute(
            """
            INSERT INTO corpus_line (collection_id, document_id, page_id, "order", bbox, polygon,
                baseline, status, text, human_text, version, error, updated_at)
            SELECT %(collection)s, p.document_id, p.id, n %% %(per_page)s,
                '[40, 60, 1900, 120]', '[]', '[]', 'reviewed', '', false, 1, '', now()
            FROM generate_series(0, %(lines)s - 1) AS n
            JOIN corpus_page p
              ON p.document_id = (%(documents)s::bigint[])[1 + n / %(per_document)s]
             AND p.index = (n %% %(per_document)s) / %(per_page)s
            """,
            params,
        )
        cursor.execute("SELECT setseed(0.42)")
        # Each record on a line drawn at random (most lines saved once or twice, by one or two
        # people): 40% accepts, 30% edits, 5% picks, 5% reverts, 15% skips, 5% box edits.
        cursor.execute(
            """
            INSERT INTO review_correction (line_id, user_id, action, created_at, text_before,
                text_after, line_version, time_spent_ms, line_status, note)
            SELECT l.first + floor(r.line * %(lines)s)::bigint,
                (%(users)s::int[])[1 + floor(r.who * cardinality(%(users)s::int[]))::int],
                a.action, now() - r.age * interval '365 days', 'before',
                CASE WHEN a.action IN ('edit', 'pick', 'revert') THEN 'after' ELSE 'before' END,
                2, CASE WHEN r.timed < 0.75 THEN 1000 + floor(r.ms * 30000)::int ELSE 0 END,
                'reviewed', ''
            FROM (SELECT min(id) AS first FROM corpus_line WHERE collection_id = %(collection)s)
                AS l
            CROSS JOIN LATERAL (
                SELECT n, random() AS line, random() AS who, random() AS kind, random() AS age,
                       random() AS timed, random() AS ms
                FROM generate_series(1, %(corrections)s) AS n
            ) AS r
            CROSS JOIN LATERAL (
                SELECT CASE WHEN r.kind < 0.40 THEN 'accept' WHEN r.kind < 0.70 THEN 'edit'
                            WHEN r.kind < 0.75 THEN 'pick' WHEN r.kind < 0.80 THEN 'revert'
                            WHEN r.kind < 0.95 THEN 'skip' ELSE 'segment' END AS action
            ) AS a
            """,
            params,
        )
    return collection, users


def timed_saves(users: list, lines: list[Line]) -> list[float]:
    """ms of each save (do_save_line, as the editor's Enter): a new text for each line."""
    timings = []
    for i, line in enumerate(lines):
        started = time.perf_counter()
        actions.do_save_line(
            line, users[i % len(users)], f"saved {i}", expected_version=line.version
        )
        timings.append((time.perf_counter() - started) * 1000)
    return timings


# The trigger as the saves are timed: off; counting the running totals alone, as migration
# 0008 made it; counting those and the days, as 0009 made it.
TRIGGER_STATES = {
    "save_without_trigger": "ALTER TABLE review_correction DISABLE TRIGGER review_count_settled",
    "save_with_totals_trigger": "ALTER TABLE review_correction ENABLE TRIGGER review_count_settled;"
    + days_migration.RESTORE,
    "save_with_trigger": "ALTER TABLE review_correction ENABLE TRIGGER review_count_settled;"
    + days_migration.count_days(settings.TIME_ZONE),
}


def saves_by_trigger(users: list, lines: list[Line]) -> dict[str, list[float]]:
    """ms of saves in each of TRIGGER_STATES: blocks of BLOCK lines, the states in turn, each
    round in another order, so that none catches the machine busier."""
    timings: dict[str, list[float]] = {name: [] for name in TRIGGER_STATES}
    rounds = itertools.cycle(itertools.permutations(TRIGGER_STATES))
    size = max(1, min(BLOCK, len(lines) // len(TRIGGER_STATES)))  # a block of each at least
    blocks = iter([lines[i : i + size] for i in range(0, len(lines), size)])
    with connection.cursor() as cursor:
        for order in rounds:
            for name in order:
                block = next(blocks, None)
                if block is None:
                    cursor.execute(TRIGGER_STATES["save_with_trigger"])
                    return timings
                cursor.execute(TRIGGER_STATES[name])
                timings[name].extend(timed_saves(users, block))
    raise AssertionError("unreachable: the rounds never end")


def percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def timed(call: Callable[[], object], samples: int) -> list[float]:
    call()  # warmed: the first read of a table from disk is not what a coordinator waits for
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def run(args: argparse.Namespace) -> None:
    call_command("migrate", "review", "0007", verbosity=0)
    started = time.perf_counter()
    collection, users = seed(args)
    print(
        f"seeded {args.lines} lines, {args.corrections} corrections by {args.reviewers} "
        f"reviewers in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    call_command("migrate", "review", "0008", verbosity=0)
    print(f"migration 0008 (tables, trigger, backfill): {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    call_command("migrate", "review", "0009", verbosity=0)
    print(f"migration 0009 (per-day tables, backfill): {time.perf_counter() - started:.1f} s")
    call_command("migrate", verbosity=0)  # any later ones

    side = side_lines(len(TRIGGER_STATES) * args.saves + 1)
    timed_saves(users, side[:1])  # the first save of the process, untimed
    saves = saves_by_trigger(users, side[1:])
    first = Line.objects.filter(collection=collection).order_by("pk").values("pk")[:1]
    chosen = random.Random(1).sample(range(args.lines), args.saves)
    timed_saves(users, list(Line.objects.filter(pk__in=[first[0]["pk"] + i for i in chosen])))
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE corpus_line, review_correction, review_reviewerline, "
            "review_reviewertotals, review_reviewerlineday, review_reviewerday, auth_user"
        )

    old = trail_reviewer_stats(collection)
    new = progress.reviewer_stats(collection)
    if old != new:
        raise SystemExit(f"the running totals differ from the trail: {old} != {new}")
    print(f"same numbers: {len(new)} reviewers, {sum(r.lines for r in new)} lines")
    shown = last_days(collection)

    def days_from_the_trail() -> list[DayRow]:
        return trail_reviewer_days(collection, shown.since, shown.until)

    if day_rows(shown) != days_from_the_trail():
        raise SystemExit("the per-day rows differ from the trail")
    print(
        f"same days: {len(shown.days)} days, {len(day_rows(shown))} reviewer-days, "
        f"{sum(row[2] for row in day_rows(shown))} lines"
    )
    for name, timings in saves.items():
        p50, p95 = percentiles(timings)
        print(f"{name}_ms: p50 {p50:.2f}, p95 {p95:.2f} ({len(timings)} saves)")
    old_p50, old_p95 = percentiles(timed(lambda: trail_reviewer_stats(collection), args.samples))
    new_p50, new_p95 = percentiles(
        timed(lambda: progress.reviewer_stats(collection), 10 * args.samples)
    )
    print(f"trail_ms: p50 {old_p50:.1f}, p95 {old_p95:.1f} ({args.samples} runs)")
    print(f"totals_ms: p50 {new_p50:.2f}, p95 {new_p95:.2f} ({10 * args.samples} runs)")
    days_old_p50, days_old_p95 = percentiles(timed(days_from_the_trail, args.samples))
    days_p50, days_p95 = percentiles(timed(lambda: last_days(collection), 10 * args.samples))
    print(f"days_trail_ms: p50 {days_old_p50:.1f}, p95 {days_old_p95:.1f} ({args.samples} runs)")
    print(f"days_ms: p50 {days_p50:.2f}, p95 {days_p95:.2f} ({10 * args.samples} runs)")
    print(f"days_speedup: {days_old_p50 / days_p50:.0f}")
    print(f"speedup: {old_p50 / new_p50:.0f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_200_000)
    parser.add_argument("--corrections", type=int, default=2_200_000)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--reviewers", type=int, default=40)
    parser.add_argument("--saves", type=int, default=200, help="timed with and without")
    parser.add_argument("--samples", type=int, default=10, help="runs of the old query")
    args = parser.parse_args(argv)
    if min(args.lines, args.corrections, args.documents, args.reviewers, args.samples) < 1:
        parser.error("every count must be positive")
    if args.lines < max(args.documents, args.saves):
        parser.error("--lines must be at least --documents and --saves")
    with bench_database(print):
        run(args)


if __name__ == "__main__":
    main()

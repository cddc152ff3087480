"""The progress page's reviewer statistics at scale: counting distinct lines over the whole
correction trail, as they were, against reading the running totals the trail's trigger keeps
(review migration 0008); what the migration takes and what the trigger costs a save.

    python -m bench.reviewer_stats [--lines 1200000] [--corrections 2200000] [--reviewers 40]

Seeds a throwaway PostgreSQL database (<name>_bench, created and dropped here), with migration
0008 unapplied, with one collection of --documents documents and --lines lines and
--corrections records of --reviewers people (settling ones mostly, some skips and box edits,
three in four timed by the editor) made in SQL (generate_series). Applies the migration, timed:
its backfill is what a deployment waits for, and saves wait for it. Times --saves saves
(do_save_line) in blocks of 10, the trigger turned off and on between blocks, on the lines of a
second collection (whose totals are then short: the first's stay whole); then --saves saves on
the first collection with the trigger on. Checks that both ways give the first collection the
same numbers, and times each --samples times (the totals ten times as often): p50, p95 and,
last, `speedup: N`, p50 of the old over p50 of the new.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ocrreview.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, F, Q, Sum  # noqa: E402

from ocrreview.corpus.management.bench_database import bench_database  # noqa: E402
from ocrreview.corpus.models import Collection, Document, Line, Page  # noqa: E402
from ocrreview.review import actions, progress  # noqa: E402
from ocrreview.review.models import Correction  # noqa: E402

LINES_PER_PAGE = 40
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


def saves_with_and_without(users: list, lines: list[Line]) -> tuple[list[float], list[float]]:
    """ms of saves with the trigger on, and off: alternate blocks of BLOCK lines."""
    on: list[float] = []
    off: list[float] = []
    size = max(1, min(BLOCK, len(lines) // 2))  # two blocks at least
    blocks = [lines[i : i + size] for i in range(0, len(lines), size)]
    with connection.cursor() as cursor:
        for number, block in enumerate(blocks):
            enabled = (number % 2 == 0) == (number % 4 < 2)
            switch = "ENABLE" if enabled else "DISABLE"
            cursor.execute(f"ALTER TABLE review_correction {switch} TRIGGER review_count_settled")
            (on if enabled else off).extend(timed_saves(users, block))
        cursor.execute("ALTER TABLE review_correction ENABLE TRIGGER review_count_settled")
    return on, off


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
    call_command("migrate", verbosity=0)  # any later ones

    side = side_lines(2 * args.saves + 1)
    timed_saves(users, side[:1])  # the first save of the process, untimed
    with_trigger, without = saves_with_and_without(users, side[1:])
    first = Line.objects.filter(collection=collection).order_by("pk").values("pk")[:1]
    chosen = random.Random(1).sample(range(args.lines), args.saves)
    timed_saves(users, list(Line.objects.filter(pk__in=[first[0]["pk"] + i for i in chosen])))
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE corpus_line, review_correction, review_reviewerline, "
            "review_reviewertotals, auth_user"
        )

    old = trail_reviewer_stats(collection)
    new = progress.reviewer_stats(collection)
    if old != new:
        raise SystemExit(f"the running totals differ from the trail: {old} != {new}")
    print(f"same numbers: {len(new)} reviewers, {sum(r.lines for r in new)} lines")
    for name, timings in [("save_without_trigger", without), ("save_with_trigger", with_trigger)]:
        p50, p95 = percentiles(timings)
        print(f"{name}_ms: p50 {p50:.2f}, p95 {p95:.2f} ({len(timings)} saves)")
    old_p50, old_p95 = percentiles(timed(lambda: trail_reviewer_stats(collection), args.samples))
    new_p50, new_p95 = percentiles(
        timed(lambda: progress.reviewer_stats(collection), 10 * args.samples)
    )
    print(f"trail_ms: p50 {old_p50:.1f}, p95 {old_p95:.1f} ({args.samples} runs)")
    print(f"totals_ms: p50 {new_p50:.2f}, p95 {new_p95:.2f} ({10 * args.samples} runs)")
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

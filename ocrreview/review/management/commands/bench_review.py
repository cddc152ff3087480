"""Benchmark "save and open next", the request reviewers make all day.

    python manage.py bench_review [--lines 100000] [--reviewers 16] [--saves 60] [--think-ms 1000]

Seeds a throwaway PostgreSQL database (<name>_bench, created and dropped here, so the real
one never sees the 100,000 lines, whose append-only history could not be deleted again) with
one collection of --lines lines, half of them waiting for review with three readings each.
Then --reviewers threads, each a logged-in reviewer with its own connection, open the queue
and save line after line through the full Django stack (middleware, session, access check,
the conditional UPDATE that claims the next line, the rendered editor fragment), as the
editor's script does. Prints the latency percentiles of the saves and, last, `p95_ms: N`.
Fails if any line was handed to two reviewers.
"""

import random
import re
import statistics
import threading
import time
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ocrreview.corpus.management.bench_database import bench_database
from ocrreview.corpus.models import Collection, Document, Membership, ModelVersion
from ocrreview.review.models import Correction

LINES_PER_PAGE = 40
EDITOR = re.compile(r'data-line-id="(\d+)" data-version="(\d+)"')
HYPOTHESIS = re.compile(r'name="hypothesis" value="(\d*)"')


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=100_000)
        parser.add_argument("--reviewers", type=int, default=16)
        parser.add_argument("--saves", type=int, default=60, help="saves per reviewer")
        parser.add_argument(
            "--think-ms",
            type=int,
            default=1000,
            help="pause between a reviewer's saves, jittered ±50%% (default 1000: a line a "
            "second, faster than any human; 0: a stress test where the 16 threads of this "
            "one Python process queue behind each other for the GIL, which measures the "
            "process's throughput rather than a reviewer's wait)",
        )

    def handle(self, *args, lines: int, reviewers: int, saves: int, think_ms: int, **options):
        if lines < reviewers * saves * 2:
            raise CommandError("--lines must be at least twice --reviewers × --saves.")
        with bench_database(self.stdout.write):
            self.run(lines, reviewers, saves, think_ms / 1000)

    def run(self, lines: int, reviewers: int, saves: int, think: float) -> None:
        started = time.perf_counter()
        collection, users = seed(lines, reviewers)
        self.stdout.write(f"seeded {lines} lines in {time.perf_counter() - started:.1f} s")

        self.stdout.write(f"queries per save and next: {count_queries(collection, users[0])}")

        timings: list[list[float]] = [[] for _ in users]
        served: list[list[int]] = [[] for _ in users]
        errors: list[str] = []
        barrier = threading.Barrier(len(users))

        def review(i: int) -> None:
            try:
                reviewer_loop(collection, users[i], saves, think, barrier, timings[i], served[i])
            except Exception as exc:  # reported below; one failed thread must not hang the rest
                errors.append(f"{users[i].username}: {exc!r}")
                barrier.abort()
            finally:
                connections.close_all()

        threads = [threading.Thread(target=review, args=(i,)) for i in range(len(users))]
        wall = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall
        if errors:
            raise CommandError("; ".join(errors))

        everything = [line for lines_of in served for line in lines_of]
        duplicates = len(everything) - len(set(everything))
        saved_twice = (
            Correction.objects.filter(line__collection=collection)
            .values("line")
            .order_by()
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        samples = sorted(ms for per_user in timings for ms in per_user)
        p50 = statistics.median(samples)
        p95 = samples[int(0.95 * (len(samples) - 1))]
        p99 = samples[int(0.99 * (len(samples) - 1))]
        self.stdout.write(
            f"{len(samples)} saves by {len(users)} concurrent reviewers in {wall:.1f} s "
            f"({len(samples) / wall:.0f} saves/s, think time {think * 1000:.0f} ms); "
            f"lines handed out twice: {duplicates}; "
            f"lines saved twice: {saved_twice}"
        )
        self.stdout.write(f"p50_ms: {p50:.1f}")
        self.stdout.write(f"p99_ms: {p99:.1f}")
        self.stdout.write(f"max_ms: {samples[-1]:.1f}")
        if duplicates or saved_twice:
            raise CommandError("a line was handed to two reviewers")
        self.stdout.write(f"p95_ms: {p95:.1f}")


def seed(lines: int, reviewers: int):
    """All rows made by INSERT … SELECT in the database: 100,000 lines in seconds."""
    user_model = get_user_model()
    collection = Collection.objects.create(name="Bench", special_characters="ſæœ")
    model = ModelVersion.objects.create(name="bench", source="/models/bench")
    document = Document.objects.create(collection=collection, title="Bench document")
    users = []
    for i in range(reviewers):
        user = user_model.objects.create_user(f"reviewer{i}", password=None)
        Membership.objects.create(user=user, collection=collection)
        users.append(user)
    params = {
        "collection": collection.pk,
        "document": document.pk,
        "model": model.pk,
        "lines": lines,
        "per_page": LINES_PER_PAGE,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO corpus_page (document_id, index, image, width, height, status, error,
                iiif_canvas, source_name)
            SELECT %(document)s, n, 'bench/page.png', 2000, 3000, 'segmented', '', '', ''
            FROM generate_series(0, (%(lines)s - 1) / %(per_page)s) AS n
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO corpus_line (collection_id, document_id, page_id, "order", bbox, polygon,
                baseline, status, text, human_text, confidence, model_version_id, version, error,
                updated_at)
            SELECT %(collection)s, %(document)s, p.id, n %% %(per_page)s,
                jsonb_build_array(40, 60 + 70 * (n %% %(per_page)s), 1900,
                                  120 + 70 * (n %% %(per_page)s)),
                '[]', '[]',
                CASE WHEN n %% 2 = 0 THEN 'needs_review' ELSE 'auto_accepted' END,
                'line ' || n || ' of the bench', false, (n * 7919 %% 1000) / 1000.0, %(model)s,
                1, '',
                now()
            FROM generate_series(0, %(lines)s - 1) AS n
            JOIN corpus_page p ON p.document_id = %(document)s AND p.index = n / %(per_page)s
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO transcription_hypothesis (line_id, model_version_id, rank, text, logprob,
                confidence, calibrated_confidence, share, tokens, created_at)
            SELECT l.id, %(model)s, r, CASE WHEN r = 0 THEN l.text ELSE l.text || ' ' || r END,
                -1.0 - r, 0.5, 0.5, 0.5 / (r + 1),
                '[{"start": 0, "end": 4, "prob": 0.42, "token": "line"}]', now()
            FROM corpus_line l CROSS JOIN generate_series(0, 2) AS r
            WHERE l.collection_id = %(collection)s
            """,
            params,
        )
        cursor.execute("ANALYZE corpus_page, corpus_line, transcription_hypothesis")
    return collection, users


def client_for(user) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def parse_editor(html: str) -> tuple[int, int, str]:
    match = EDITOR.search(html)
    if match is None:
        raise RuntimeError("the response holds no editor")
    hypothesis = HYPOTHESIS.search(html)
    return int(match[1]), int(match[2]), hypothesis[1] if hypothesis else ""


def open_queue(client: Client, collection) -> tuple[int, int, str]:
    response = client.get(f"/collections/{collection.pk}/review/", follow=True)
    return parse_editor(response.content.decode())


def save_and_next(client: Client, collection, line_id: int, version: int, hypothesis: str):
    # Form-encoded, as the editor's script sends it.
    return client.post(
        f"/collections/{collection.pk}/review/lines/{line_id}/save/",
        urlencode(
            {
                "text": f"corrected {line_id}",
                "expected_version": version,
                "hypothesis": hypothesis,
                "time_spent_ms": 5000,
                "action": "save",
                "order": "confidence",
            }
        ),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_REQUESTED_WITH="fetch",
    )


def count_queries(collection, user) -> int:
    client = client_for(user)
    line_id, version, hypothesis = open_queue(client, collection)
    with CaptureQueriesContext(connection) as queries:
        response = save_and_next(client, collection, line_id, version, hypothesis)
    assert response.status_code == 200, response.content
    return len(queries)


def reviewer_loop(collection, user, saves, think, barrier, timings, served) -> None:
    client = client_for(user)
    line_id, version, hypothesis = open_queue(client, collection)
    served.append(line_id)
    barrier.wait()
    jitter = random.Random(user.pk)
    for _ in range(saves):
        if think:
            # Spread around the mean so reviewers do not save in lockstep.
            time.sleep(think * jitter.uniform(0.5, 1.5))
        start = time.perf_counter()
        response = save_and_next(client, collection, line_id, version, hypothesis)
        timings.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"save answered {response.status_code}: {response.content[:200]!r}")
        line_id, version, hypothesis = parse_editor(response.content.decode())
        served.append(line_id)

"""Benchmark search over a large collection.

    python manage.py bench_search [--lines 1000000] [--searches 200]

Seeds a throwaway PostgreSQL database (<name>_bench, created and dropped here) with one
collection of --lines lines made in SQL (generate_series) from /usr/share/dict/words and a
list of surnames, words drawn with a skew so that some are common and most rare, as in
real text; builds the search indexes after the load (faster than keeping them up to date
row by row), ANALYZEs, then times --searches calls of search_lines, the function the search
page and the API call: a third single words, a third names with a typo (found by trigram
similarity with the collection's words), a third two-word phrases. The lines' words reach the
vocabulary by the database triggers that keep it in production. Prints p50 and, last,
`p95_ms: N`.
"""

import random
import statistics
import time

from django.core.management.base import BaseCommand, CommandError

from ocrreview.corpus.management.bench_database import bench_database, dictionary, seed_lines
from ocrreview.corpus.models import Collection
from ocrreview.review.search import search_lines, trigram_search_available

SURNAMES = [
    *("Babcock", "Lathrop", "Stanford", "Whitman", "Hollister", "Pemberton", "Fairbanks"),
    *("Ashworth", "Cavendish", "Lefebvre", "Delacroix", "Beaumont", "Duplessis", "Marchand"),
    *("Rousseau", "Tremblay", "Gauthier", "Thibault", "Montgomery", "Sinclair", "Kingsley"),
    *("Wetherby", "Thornton", "Blackwood", "Harrington", "Lockwood", "Prescott"),
]


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=1_000_000)
        parser.add_argument("--searches", type=int, default=200)

    def handle(self, *args, lines: int, searches: int, **options):
        if lines < 1 or searches < 1:
            raise CommandError("--lines and --searches must be positive.")
        with bench_database(self.stdout.write):
            self.run(lines, searches)

    def run(self, lines: int, searches: int) -> None:
        words = dictionary()
        started = time.perf_counter()
        collection = seed(lines, words)
        self.stdout.write(
            f"seeded and indexed {lines} lines in {time.perf_counter() - started:.1f} s "
            f"(trigram index: {'yes' if trigram_search_available() else 'no'})"
        )
        rng = random.Random(20)
        queries = [_query(i, rng, words) for i in range(searches)]
        timings, hits = [], 0
        for q in queries:
            start = time.perf_counter()
            results = search_lines(collection, q)
            timings.append((time.perf_counter() - start) * 1000)
            hits += len(results.hits) > 0
        timings.sort()
        self.stdout.write(f"{searches} searches, {hits} with hits")
        self.stdout.write(f"p50_ms: {statistics.median(timings):.1f}")
        self.stdout.write(f"max_ms: {timings[-1]:.1f}")
        self.stdout.write(f"p95_ms: {timings[int(0.95 * (len(timings) - 1))]:.1f}")


def _query(i: int, rng: random.Random, words: list[str]) -> str:
    kind = i % 3
    if kind == 0:
        return rng.choice(words)
    if kind == 1:
        name = rng.choice(SURNAMES)
        cut = rng.randrange(1, len(name) - 1)
        return name[:cut] + name[cut + 1 :]  # one letter left out: "Babcok"
    return f"{rng.choice(SURNAMES)} {rng.choice(words)}"


def seed(lines: int, words: list[str]) -> Collection:
    # Six to twelve words a line, drawn with a cubic skew (a few words very common, most
    # rare), and a surname in one line out of four.
    made = """
        SELECT string_agg(w.word, ' ') ||
            CASE WHEN n %% 4 = 0
            THEN ' ' || (%(names)s::text[])[1 + (n / 4) %% cardinality(%(names)s::text[])]
            ELSE '' END AS text,
            (ARRAY['reviewed', 'auto_accepted', 'needs_review'])[1 + n %% 3] AS status,
            (n::bigint * 7919 %% 1000) / 1000.0 AS confidence
        FROM (
            SELECT floor(power(random(), 3) * %(word_count)s)::int AS r
            FROM generate_series(1, 6 + (n * 31) %% 7)
        ) AS k
        JOIN bench_word w ON w.pos = k.r
    """
    return seed_lines(lines, words, made, {"names": SURNAMES})

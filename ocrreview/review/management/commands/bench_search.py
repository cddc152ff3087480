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
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from ocrreview.corpus.management.bench_database import bench_database
from ocrreview.corpus.models import Collection, Document, Page
from ocrreview.review.search import search_lines, trigram_search_available

WORDS_FILE = Path("/usr/share/dict/words")
SURNAMES = [
    *("Babcock", "Lathrop", "Stanford", "Whitman", "Hollister", "Pemberton", "Fairbanks"),
    *("Ashworth", "Cavendish", "Lefebvre", "Delacroix", "Beaumont", "Duplessis", "Marchand"),
    *("Rousseau", "Tremblay", "Gauthier", "Thibault", "Montgomery", "Sinclair", "Kingsley"),
    *("Wetherby", "Thornton", "Blackwood", "Harrington", "Lockwood", "Prescott"),
]
LINES_PER_PAGE = 40
SEARCH_INDEXES = [
    "line_search_vector",
    "search_word_folded",
    "search_word_lookup",
    "search_word_trigram",
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
        words = _dictionary()
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


def _dictionary() -> list[str]:
    if not WORDS_FILE.exists():
        raise CommandError(f"{WORDS_FILE} is missing (Debian: apt-get install wamerican).")
    return sorted(
        {w.strip() for w in WORDS_FILE.read_text().split() if w.strip().isalpha() and len(w) > 2}
    )


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
    collection = Collection.objects.create(name="Bench")
    document = Document.objects.create(collection=collection, title="Bench document")
    params = {
        "collection": collection.pk,
        "document": document.pk,
        "lines": lines,
        "per_page": LINES_PER_PAGE,
        "words": words,
        "names": SURNAMES,
        "word_count": len(words),
    }
    # By the ORM, so that columns added to pages later get their defaults.
    Page.objects.bulk_create(
        Page(document=document, index=i, image="bench/page.png", width=2000, height=3000)
        for i in range((lines - 1) // LINES_PER_PAGE + 1)
    )
    with connection.cursor() as cursor:
        # Rebuilt after the load, as the migration made them: one sort per index instead of
        # a million insertions.
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [SEARCH_INDEXES]
        )
        definitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP INDEX IF EXISTS {', '.join(SEARCH_INDEXES)}")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("CREATE TEMPORARY TABLE bench_word (pos int PRIMARY KEY, word text)")
        # Shuffled, so the skew below makes common words of any letter.
        cursor.execute(
            "INSERT INTO bench_word SELECT row_number() OVER (ORDER BY md5(w)) - 1, w "
            "FROM unnest(%(words)s::text[]) AS w",
            params,
        )
        # Six to twelve words a line, drawn with a cubic skew (a few words very common, most
        # rare), and a surname in one line out of four.
        cursor.execute(
            """
            INSERT INTO corpus_line (collection_id, document_id, page_id, "order", bbox, polygon,
                baseline, status, text, human_text, confidence, version, error, updated_at)
            SELECT %(collection)s, %(document)s, p.id, n %% %(per_page)s,
                '[40, 60, 1900, 120]', '[]', '[]',
                (ARRAY['reviewed', 'auto_accepted', 'needs_review'])[1 + n %% 3],
                t.text, false, (n::bigint * 7919 %% 1000) / 1000.0, 1, '', now()
            FROM generate_series(0, %(lines)s - 1) AS n
            JOIN corpus_page p ON p.document_id = %(document)s AND p.index = n / %(per_page)s
            CROSS JOIN LATERAL (
                SELECT string_agg(w.word, ' ') ||
                    CASE WHEN n %% 4 = 0
                    THEN ' ' || (%(names)s::text[])[1 + (n / 4) %% cardinality(%(names)s::text[])]
                    ELSE '' END AS text
                FROM (
                    SELECT floor(power(random(), 3) * %(word_count)s)::int AS r
                    FROM generate_series(1, 6 + (n * 31) %% 7)
                ) AS k
                JOIN bench_word w ON w.pos = k.r
            ) AS t
            """,
            params,
        )
        for definition in definitions:
            cursor.execute(definition)
        cursor.execute("ANALYZE corpus_page, corpus_line, corpus_searchword")
    return collection

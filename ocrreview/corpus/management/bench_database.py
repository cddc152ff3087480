"""The throwaway database benchmarks seed, so that they never touch real data, and the
loader of the large collections that the search benchmarks (bench_search, bench.inside_words)
fill it with."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection, connections

from ocrreview.corpus.models import Collection, Document, Page


@contextmanager
def bench_database(write) -> Iterator[None]:
    """Run on a new database named after the configured one (<name>_bench), dropped after."""
    settings_dict = connection.settings_dict
    test_settings = settings_dict.setdefault("TEST", {})
    test_name, real_name = test_settings.get("NAME"), settings_dict["NAME"]
    test_settings["NAME"] = f"{real_name}_bench"
    write(f"creating {test_settings['NAME']} …")
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connections.close_all()
        # Back on the real database, and its test name as it was: a test session that runs
        # the command goes on with its own database and drops it by that name.
        connection.creation.destroy_test_db(real_name, verbosity=0)
        test_settings["NAME"] = test_name


WORDS_FILE = Path("/usr/share/dict/words")
LINES_PER_PAGE = 40
# Dropped before a load and built again after it, as the migrations made them: one sort per
# index instead of a million insertions.
SEARCH_INDEXES = [
    "line_search_vector",
    "search_word_lookup",
    "search_word_folded",
    "search_word_trigram",
    "search_word_folded_trigram",
]


def dictionary() -> list[str]:
    """The dictionary's words of three letters or more, letters only, sorted."""
    if not WORDS_FILE.exists():
        raise CommandError(f"{WORDS_FILE} is missing (Debian: apt-get install wamerican).")
    return sorted(
        {w.strip() for w in WORDS_FILE.read_text().split() if w.strip().isalpha() and len(w) > 2}
    )


def seed_lines(lines: int, words: list[str], made: str, params: dict) -> Collection:
    """A collection ("Bench") of one document of `lines` lines, LINES_PER_PAGE a page, made
    in SQL: `made` is a subquery of each line's text, status and confidence, from n (the
    line's number, from 0) and the table bench_word (pos, word: words, shuffled), with params
    and `word_count`. The lines' words reach the vocabulary by the triggers that keep it in
    production; the search indexes are built after the load, and the tables analysed."""
    collection = Collection.objects.create(name="Bench")
    document = Document.objects.create(collection=collection, title="Bench document")
    # By the ORM, so that columns added to pages later get their defaults.
    Page.objects.bulk_create(
        Page(document=document, index=i, image="bench/page.png", width=2000, height=3000)
        for i in range((lines - 1) // LINES_PER_PAGE + 1)
    )
    params = {
        **params,
        "collection": collection.pk,
        "document": document.pk,
        "lines": lines,
        "per_page": LINES_PER_PAGE,
        "words": words,
        "word_count": len(words),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [SEARCH_INDEXES]
        )
        definitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP INDEX IF EXISTS {', '.join(SEARCH_INDEXES)}")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("CREATE TEMPORARY TABLE bench_word (pos int PRIMARY KEY, word text)")
        # Shuffled, so that the words a benchmark draws most are of any letter.
        cursor.execute(
            "INSERT INTO bench_word SELECT row_number() OVER (ORDER BY md5(w)) - 1, w "
            "FROM unnest(%(words)s::text[]) AS w",
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO corpus_line (collection_id, document_id, page_id, "order", bbox, polygon,
                baseline, status, text, human_text, confidence, version, error, updated_at)
            SELECT %(collection)s, %(document)s, p.id, n %% %(per_page)s,
                '[40, 60, 1900, 120]', '[]', '[]', t.status, t.text, false, t.confidence, 1, '',
                now()
            FROM generate_series(0, %(lines)s - 1) AS n
            JOIN corpus_page p ON p.document_id = %(document)s AND p.index = n / %(per_page)s
            CROSS JOIN LATERAL ({made}) AS t
            """,
            params,
        )
        for definition in definitions:
            cursor.execute(definition)
        cursor.execute("ANALYZE corpus_page, corpus_line, corpus_searchword")
    return collection

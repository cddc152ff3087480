"""Find and replace inside words at scale: the lines a preview of "every hit" reads
(find_replace.hit_lines, inside_words) in a collection of a million distinct words, with the
words holding each run of the query looked up in the vocabulary by the trigram index of the
folded words (corpus migration 0025), and those words' lines in the lines' search vectors
twenty words at a time (find_replace.LINE_LOOKUP_WORDS), against two yardsticks kept here:
reading and folding the whole vocabulary in Python for every preview, as it was before the
index (`vocabulary_words_before`), and one query of the search vectors for all the words, as
it was before the twenty at a time (`lines_by_one_query`).

    python -m bench.inside_words [--words 1000000] [--queries 40] [--short 6]

Seeds a throwaway PostgreSQL database (<name>_bench, created and dropped here) with one
collection whose lines hold --words distinct words or a few more (dictionary words from
/usr/share/dict/words, each with a letter put in, one in ten with é for e, one in ten with ſ
for s, as misreadings and old spellings make them), made in SQL (generate_series); the
vocabulary is filled by the triggers that keep it in production, and the search indexes are
built after the load. Times --queries previews of parts of three to six letters of the
collection's words (a third typed without the accents the words have), each way in turn, and
--short previews of one or two letters, where no trigram helps. Checks that every way finds
the same lines. Prints p50 and p95 of each in milliseconds, of the vocabulary's lookup and of
the whole preview (the lookups, then reading the lines they leave until 2,001 have hits):
`before` reads the vocabulary, `one query` looks the lines up at once, `after` is the code's
way. Last, `one_query_speedup_p50: N` and `speedup_p50: N` (previews of parts of three
letters or more, each yardstick over after).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ocrreview.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402

from ocrreview.corpus.management.bench_database import bench_database  # noqa: E402
from ocrreview.corpus.models import Collection, Document, Line, Page, SearchWord  # noqa: E402
from ocrreview.review import find_replace, search  # noqa: E402
from ocrreview.review.find_replace import (  # noqa: E402
    INSIDE_WORDS_MOST,
    LETTERS,
    Options,
    Pattern,
    _fold,
    _FoldTable,
)

WORDS_FILE = Path("/usr/share/dict/words")
LINES_PER_PAGE = 40
# Distinct words a line holds, and common words around them.
NEW_WORDS_PER_LINE, COMMON_WORDS_PER_LINE = 6, 2
INDEXES = [
    "line_search_vector",
    "search_word_lookup",
    "search_word_folded",
    "search_word_trigram",
    "search_word_folded_trigram",
]


def vocabulary_words_before(collection: Collection, pattern: Pattern) -> list | None:
    """find_replace.vocabulary_words as it was before the trigram index: every word of the
    vocabulary read and folded in Python, for each preview."""
    table = _FoldTable(dataclasses.replace(pattern.options, match_case=False))
    alternatives = [
        list(dict.fromkeys(run for word in words for run in LETTERS.findall(_fold(word, table)[0])))
        for words in pattern.alternatives
    ]
    if not all(alternatives):
        return None
    holding: dict[str, list[str]] = {run: [] for runs in alternatives for run in runs}
    words = SearchWord.objects.filter(collection=collection).values_list("word", flat=True)
    for word in words.distinct().iterator(chunk_size=5000):
        folded = _fold(word, table)[0]
        for run, found in holding.items():
            if run in folded:
                found.append(word)
    found_groups = []
    for runs in alternatives:
        if not all(holding[run] for run in runs):
            continue
        groups = [holding[run] for run in runs if len(holding[run]) <= INSIDE_WORDS_MOST]
        if not groups:
            return None
        found_groups.append(groups)
    return found_groups


def lines_by_one_query(collection: Collection, alternatives: list) -> Iterator[int]:
    """find_replace.lines_holding as it was before the words were looked up twenty at a
    time: one query of the search vectors for every word of every group, read in id order,
    a fetch at a time, as the preview reads on until enough lines have hits."""
    lines = Q(pk__in=[])
    for groups in alternatives:
        lines |= Q(search_vector=search.lexeme_query(groups))
    found = Line.objects.filter(collection=collection).filter(lines).order_by("pk")
    return found.values_list("pk", flat=True).iterator(chunk_size=find_replace.READ_BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--short", type=int, default=6)
    args = parser.parse_args()
    if args.words < 100 or args.queries < 1 or args.short < 0:
        parser.error("--words must be at least 100, --queries positive, --short not negative")
    with bench_database(print):
        run(args.words, args.queries, args.short)


def run(words: int, queries: int, short: int) -> None:
    started = time.perf_counter()
    collection = seed(words, _dictionary())
    distinct = SearchWord.objects.filter(collection=collection).count()
    print(
        f"seeded and indexed {distinct} distinct words in {time.perf_counter() - started:.0f} s "
        f"(trigram index: {'yes' if find_replace.inside_word_index_available() else 'no'})"
    )
    rng = random.Random(25)
    sample = list(
        SearchWord.objects.filter(collection=collection)
        .order_by("?")
        .values_list("word", flat=True)[: queries + short]
    )
    parts = [
        _part(word, rng, rng.randint(3, 6), folded=i % 3 == 0) for i, word in enumerate(sample)
    ]
    long, brief = parts[:queries], [_part(w, rng, rng.randint(1, 2)) for w in sample[queries:]]
    # Once untimed, each way: the first preview of a process works out which characters
    # lowercase to which (find_replace._lowercased_from), and the caches warm.
    _time_both(collection, long[:1])
    speedups = {}
    for name, chosen in (("parts", long), ("short parts", brief)):
        if not chosen:
            continue
        timings = _time_both(collection, chosen)
        print(f"{name} of {words:,} words, {len(chosen)} previews (ms):")
        for label, taken in timings.items():
            lookup, preview = taken["lookup"], taken["preview"]
            print(
                f"  {label:9} vocabulary p50 {_p(lookup, 50):8.1f} p95 {_p(lookup, 95):8.1f}  "
                f"preview p50 {_p(preview, 50):8.1f} p95 {_p(preview, 95):8.1f}"
            )
        after = _p(timings["after"]["preview"], 50)
        for label in ("one query", "before"):
            speedups.setdefault(label, _p(timings[label]["preview"], 50) / after)
    print(f"one_query_speedup_p50: {speedups['one query']:.1f}")
    print(f"speedup_p50: {speedups['before']:.1f}")


def _time_both(collection: Collection, parts: list[str]) -> dict[str, dict[str, list[float]]]:
    """Each part's preview each way, in turn (which goes first rotating, so that none catches
    the machine busier), checked to find the same lines: for each way, the preview's time
    and, within it, the vocabulary's (vocabulary_words)."""
    ways: list[tuple[str, Callable, Callable]] = [
        ("before", vocabulary_words_before, find_replace.lines_holding),
        ("one query", find_replace.vocabulary_words, lines_by_one_query),
        ("after", find_replace.vocabulary_words, find_replace.lines_holding),
    ]
    timings: dict[str, dict[str, list[float]]] = {
        label: {"lookup": [], "preview": []} for label, _, _ in ways
    }
    current = find_replace.vocabulary_words, find_replace.lines_holding
    for i, part in enumerate(parts):
        found = {}
        for label, words, lines in ways[i % 3 :] + ways[: i % 3]:
            find_replace.vocabulary_words = _timed(words, timings[label]["lookup"])
            find_replace.lines_holding = lines
            try:
                start = time.perf_counter()
                found[label] = find_replace.hit_lines(
                    collection,
                    part,
                    search.Filters(),
                    find_replace.MAX_LINES + 1,
                    Options(inside_words=True),
                )
                timings[label]["preview"].append((time.perf_counter() - start) * 1000)
            finally:
                find_replace.vocabulary_words, find_replace.lines_holding = current
        if len({tuple(lines) for lines in found.values()}) > 1:
            raise SystemExit(f"{part!r}: the ways found other lines")
    return timings


def _timed(way: Callable, spent: list[float]) -> Callable:
    def timed(*args):
        start = time.perf_counter()
        try:
            return way(*args)
        finally:
            spent.append((time.perf_counter() - start) * 1000)

    return timed


def _p(timings: list[float], percent: int) -> float:
    ordered = sorted(timings)
    if percent == 50:
        return statistics.median(ordered)
    return ordered[round(percent / 100 * (len(ordered) - 1))]


def _part(word: str, rng: random.Random, length: int, folded: bool = False) -> str:
    """A part of word of about length letters, without its accents where folded."""
    length = min(length, len(word))
    start = rng.randrange(len(word) - length + 1)
    part = word[start : start + length]
    return _fold(part, _FoldTable(Options()))[0] if folded else part


def _dictionary() -> list[str]:
    if not WORDS_FILE.exists():
        raise SystemExit(f"{WORDS_FILE} is missing (Debian: apt-get install wamerican).")
    return sorted(
        {w.strip() for w in WORDS_FILE.read_text().split() if w.strip().isalpha() and len(w) > 2}
    )


def seed(words: int, dictionary: list[str]) -> Collection:
    collection = Collection.objects.create(name="Bench")
    document = Document.objects.create(collection=collection, title="Bench document")
    # Some words come out twice (a letter put in beside the same letter), and a few are
    # dictionary words: a tenth more are made than asked for.
    lines = words * 11 // 10 // NEW_WORDS_PER_LINE + 1
    Page.objects.bulk_create(
        Page(document=document, index=i, image="bench/page.png", width=2000, height=3000)
        for i in range((lines - 1) // LINES_PER_PAGE + 1)
    )
    params = {
        "collection": collection.pk,
        "document": document.pk,
        "lines": lines,
        "per_page": LINES_PER_PAGE,
        "new": NEW_WORDS_PER_LINE,
        "common": COMMON_WORDS_PER_LINE,
        "words": dictionary,
        "word_count": len(dictionary),
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [INDEXES])
        definitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP INDEX IF EXISTS {', '.join(INDEXES)}")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("CREATE TEMPORARY TABLE bench_word (pos int PRIMARY KEY, word text)")
        cursor.execute(
            "INSERT INTO bench_word SELECT row_number() OVER (ORDER BY md5(w)) - 1, lower(w) "
            "FROM unnest(%(words)s::text[]) AS w",
            params,
        )
        # Word m of the new ones: dictionary word m mod W with a letter put in, where and
        # which letter from m div W, so that each is another; one in ten with é for e, one
        # in ten with ſ for s. Then a few common words (the first hundred, skewed).
        cursor.execute(
            """
            INSERT INTO corpus_line (collection_id, document_id, page_id, "order", bbox, polygon,
                baseline, status, text, human_text, confidence, version, error, updated_at)
            SELECT %(collection)s, %(document)s, p.id, n %% %(per_page)s,
                '[40, 60, 1900, 120]', '[]', '[]', 'needs_review', t.text, false, 0.5, 1, '',
                now()
            FROM generate_series(0, %(lines)s - 1) AS n
            JOIN corpus_page p ON p.document_id = %(document)s AND p.index = n / %(per_page)s
            CROSS JOIN LATERAL (
                SELECT string_agg(word, ' ') AS text FROM (
                    SELECT CASE m %% 10 WHEN 0 THEN translate(v, 'e', 'é')
                        WHEN 1 THEN translate(v, 's', 'ſ') ELSE v END AS word
                    FROM (
                        SELECT n * %(new)s + j AS m,
                            left(w.word, (q %% length(w.word))::int)
                            || chr(97 + ((q / length(w.word)) %% 26)::int)
                            || substr(w.word, (q %% length(w.word))::int + 1) AS v
                        FROM generate_series(0, %(new)s - 1) AS j
                        CROSS JOIN LATERAL (
                            SELECT (n * %(new)s + j) / %(word_count)s AS q,
                                (n * %(new)s + j) %% %(word_count)s AS r
                        ) AS k
                        JOIN bench_word w ON w.pos = k.r
                    ) AS made
                    UNION ALL
                    SELECT c.word FROM generate_series(1, %(common)s) AS i
                    JOIN bench_word c ON c.pos = (n * 7 + i * 13) %% 100
                ) AS line_words
            ) AS t
            """,
            params,
        )
        for definition in definitions:
            cursor.execute(definition)
        cursor.execute("ANALYZE corpus_page, corpus_line, corpus_searchword")
    return collection


if __name__ == "__main__":
    main()

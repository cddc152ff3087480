"""Find and replace inside words at scale: the lines a preview of "every hit" reads
(find_replace.hit_lines, inside_words) in a collection of a million distinct words, with the
words holding each run of the query looked up in the vocabulary by the trigram index of the
folded words (corpus migration 0025), and those words' lines in the lines' search vectors
twenty words at a time (find_replace.LINE_LOOKUP_WORDS), against two yardsticks kept here:
reading and folding the whole vocabulary in Python for every preview, as it was before the
index (`vocabulary_words_before`), and one query of the search vectors for all the words, as
it was before the twenty at a time (`lines_by_one_query`, with runs in up to 1,000 words).

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

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ocrreview.settings")
django.setup()

from django.db.models import Q  # noqa: E402

from ocrreview.corpus.management.bench_database import (  # noqa: E402
    bench_database,
    dictionary,
    seed_lines,
)
from ocrreview.corpus.models import Collection, Line, SearchWord  # noqa: E402
from ocrreview.review import find_replace, search  # noqa: E402
from ocrreview.review.find_replace import (  # noqa: E402
    INSIDE_WORDS_MOST,
    LETTERS,
    Options,
    Pattern,
    _fold,
    _FoldTable,
)

# Distinct words a line holds, and common words around them.
NEW_WORDS_PER_LINE, COMMON_WORDS_PER_LINE = 6, 2
# find_replace.INSIDE_WORDS_MOST when the lines were looked up by one query.
ONE_QUERY_WORDS_MOST = 1000
# The code's own, which _time_both replaces in find_replace with each way's in turn.
VOCABULARY_WORDS = find_replace.vocabulary_words


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


def vocabulary_words_of_one_query(collection: Collection, pattern: Pattern) -> list | None:
    """find_replace.vocabulary_words as it was when one query looked up the lines: runs in
    more than ONE_QUERY_WORDS_MOST words left out (that query, of more words, checked each
    line read in id order against every word of them: minutes)."""
    most = find_replace.INSIDE_WORDS_MOST
    find_replace.INSIDE_WORDS_MOST = ONE_QUERY_WORDS_MOST
    try:
        return VOCABULARY_WORDS(collection, pattern)
    finally:
        find_replace.INSIDE_WORDS_MOST = most


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
    collection = seed(words, dictionary())
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
        ("one query", vocabulary_words_of_one_query, lines_by_one_query),
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


def seed(words: int, dictionary_words: list[str]) -> Collection:
    # Some words come out twice (a letter put in beside the same letter), and a few are
    # dictionary words: a tenth more are made than asked for.
    lines = words * 11 // 10 // NEW_WORDS_PER_LINE + 1
    # Word m of the new ones: dictionary word m mod W (lowercased) with a letter put in, where
    # and which letter from m div W, so that each is another; one in ten with é for e, one in
    # ten with ſ for s. Then a few common words (the first hundred, skewed).
    made = """
        SELECT string_agg(word, ' ') AS text, 'needs_review' AS status, 0.5 AS confidence
        FROM (
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
                JOIN (SELECT pos, lower(word) AS word FROM bench_word) AS w ON w.pos = k.r
            ) AS made
            UNION ALL
            SELECT lower(c.word) FROM generate_series(1, %(common)s) AS i
            JOIN bench_word c ON c.pos = (n * 7 + i * 13) %% 100
        ) AS line_words
    """
    params = {"new": NEW_WORDS_PER_LINE, "common": COMMON_WORDS_PER_LINE}
    return seed_lines(lines, dictionary_words, made, params)


if __name__ == "__main__":
    main()

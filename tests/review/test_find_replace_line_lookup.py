"""Inside words, the lines that hold the words found are looked up LINE_LOOKUP_WORDS words at
a time and merged (one query of hundreds of words looked like most of the collection to
PostgreSQL, which then read every line of it): the lines a preview finds are exactly those of
reading every line the filters leave and keeping those with a hit, for a word in many lines,
hundreds of words, no word, accents, ſ and case, phrases, `or` and `-word`, with the trigram
index of the words and without it (the embedded PostgreSQL has no pg_trgm)."""

import itertools
import string

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ocrreview.corpus.models import Line, SearchWord
from ocrreview.review import find_replace, search
from ocrreview.review.find_replace import Options, Pattern
from tests import factories

S = Line.Status
NAMES = ["".join(pair) for pair in itertools.product(string.ascii_lowercase, repeat=2)]
LINES = 600
QUERIES = [
    "zork",  # inside a word of each line: 600 words
    "ZORK",
    "orkb",
    "tbe",  # a word of every other line
    "tbe zork",
    "zork or eglis",
    "zork -tbe",
    "eglis",  # Église, église, ÉGLISE and eglise alike unless accents are matched
    "égliſ",
    "ſſieur",
    "ssieurs",
    "e",
    "qqqz",  # in no word
    "zork qqqz",  # a run in no word, beside one in hundreds
    "qqqz or tbe",
    # Past LINE_LOOKUP_MOST lines (250) beside a group in fewer (eglis: 120), with hits.
    "e eglis",
    "tbe eglis -messieurs",
    "e eglis or ſſieur",
    "zork or tbe eglis",
]
OPTIONS = [
    Options(inside_words=True),
    Options(inside_words=True, match_accents=True),
    Options(inside_words=True, match_case=True, match_accents=True),
]


@pytest.fixture
def lines(letters):
    letter = factories.make_document(letters, title="Letter")
    ledger = factories.make_document(letters, title="Ledger")
    pages = [factories.make_page(letter), factories.make_page(ledger)]
    church = ["Égliſe", "église", "ÉGLISE", "eglise"]
    made = []
    for i in range(LINES):
        words = [f"{NAMES[i]}zork{NAMES[i * 7 % len(NAMES)]}"]
        if i % 2 == 0:
            words.insert(i % 4 // 2, "tbe")
        if i % 5 == 0:
            words.append(church[i // 5 % len(church)])
        if i % 3 == 0:
            words.append("Meſſieurs" if i % 2 else "messieurs")
        status = S.REVIEWED if i % 3 == 1 else S.NEEDS_REVIEW
        made.append(factories.make_line(pages[i % 2], i // 2, text=" ".join(words), status=status))
    return made


def every_line(collection, q: str, filters: search.Filters, options: Options) -> list[int]:
    """The lines with a hit, as reading every line the filters leave finds them."""
    pattern = Pattern(q, options)
    found = search._filtered(Line.objects.filter(collection=collection), filters)
    rows = found.order_by("pk").values_list("pk", "text")
    return [pk for pk, text in rows if pattern.hits(text)]


@pytest.mark.django_db
@pytest.mark.parametrize("indexed", [True, False], ids=["trigram index", "no trigram index"])
def test_a_preview_finds_the_lines_that_reading_every_line_finds(
    letters, lines, monkeypatch, indexed
):
    if not indexed:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {find_replace.INSIDE_WORD_INDEX}")
    assert find_replace.inside_word_index_available() == indexed
    # Batches that end inside a run of lines with hits and between them.
    monkeypatch.setattr(find_replace, "READ_BATCH", 7)
    documents = {line.document for line in lines}
    filters = [search.Filters(), search.Filters(status=S.REVIEWED)]
    filters += [search.Filters(document=document) for document in documents]
    cases = [(q, OPTIONS[0], chosen) for q in QUERIES for chosen in filters[1:]]
    cases += [(q, options, filters[0]) for q in QUERIES for options in OPTIONS]
    counts = set()
    for q, options, chosen in cases:
        expected = every_line(letters, q, chosen, options)
        counts.add(len(expected))
        for most in (find_replace.MAX_LINES + 1, 5):
            found = find_replace.hit_lines(letters, q, chosen, most, options)
            assert found == expected[:most], (q, options, chosen, most)
    assert {0, LINES} <= counts and len(counts) > 10, counts


@pytest.mark.django_db
def test_the_lines_of_hundreds_of_words_are_looked_up_by_the_index(letters, lines):
    """A part in hundreds of words: their lines are found by the index of the lines' search
    vectors, not by reading every line (as PostgreSQL chose to for one query of all the
    words, which it took to be in most lines)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_line")
    with CaptureQueriesContext(connection) as queries:
        found = find_replace.hit_lines(
            letters, "zork", search.Filters(), find_replace.MAX_LINES, Options(inside_words=True)
        )
    assert found == sorted(line.pk for line in lines)
    [lookup] = [query["sql"] for query in queries.captured_queries if "tsquery" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {lookup}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on line_search_vector" in plan, plan
    assert "Seq Scan on corpus_line" not in plan, plan


@pytest.mark.django_db
def test_an_alternative_holds_a_word_of_each_of_its_groups(letters, lines, monkeypatch):
    """Lines are merged by group (a line holds one of its words) and alternative (every
    group), whatever chunk each word was looked up in."""
    monkeypatch.setattr(find_replace, "LINE_LOOKUP_WORDS", 2)
    pattern = Pattern("tbe zork or ſſieur", Options(inside_words=True))
    groups = find_replace.vocabulary_words(letters, pattern)
    assert [len(group) for alternative in groups for group in alternative] == [1, LINES, 2]
    texts = dict(Line.objects.filter(collection=letters).values_list("pk", "text"))
    assert find_replace.lines_holding(letters, groups) == sorted(
        pk
        for pk, text in texts.items()
        if ("tbe" in text.split() and "zork" in text) or "ieurs" in text
    )


@pytest.mark.django_db
def test_words_in_too_many_lines_are_read_in_id_order_with_the_same_lines(
    letters, lines, monkeypatch
):
    """Past LINE_LOOKUP_MOST lines (the 600 of "zork" past 250 here), their ids are not
    collected: the lines the filters leave are read in id order until enough have hits, or,
    where another group of the alternative is in fewer lines, that group's lines, and the
    preview finds the same lines."""
    monkeypatch.setattr(find_replace, "LINE_LOOKUP_MOST", 250)
    monkeypatch.setattr(find_replace, "READ_BATCH", 7)
    zork = find_replace.vocabulary_words(letters, Pattern("zork", OPTIONS[0]))
    assert find_replace.lines_holding(letters, zork) is None
    # Groups in fewer lines (120, 200) are looked up and merged, as before.
    both = find_replace.vocabulary_words(letters, Pattern("eglis ieurs", OPTIONS[0]))
    assert len(find_replace.lines_holding(letters, both)) == 40
    # tbe's 300 lines and e's more are past it, eglis' 120 are not: those are read.
    eglis = sorted(line.pk for line in lines[::5])
    for q in ("tbe eglis", "e eglis", "eglis tbe -zork"):
        groups = find_replace.vocabulary_words(letters, Pattern(q, OPTIONS[0]))
        assert find_replace.lines_holding(letters, groups) == eglis, q
    filters = [search.Filters(), search.Filters(status=S.REVIEWED)]
    filters += [search.Filters(document=document) for document in {line.document for line in lines}]
    for q in QUERIES:
        for options, chosen in [
            *((o, filters[0]) for o in OPTIONS),
            *((OPTIONS[0], f) for f in filters[1:]),
        ]:
            expected = every_line(letters, q, chosen, options)
            for most in (find_replace.MAX_LINES + 1, 5):
                found = find_replace.hit_lines(letters, q, chosen, most, options)
                assert found == expected[:most], (q, options, chosen, most)


@pytest.mark.django_db
def test_a_lookup_of_words_in_too_many_lines_stops_past_them(letters, lines, monkeypatch):
    """The database stops the lookup of "zork"'s 600 lines once it has found one more than
    LINE_LOOKUP_MOST (50 here), rather than sending every id; the preview then reads lines
    in id order and stops at the hits it wants."""
    monkeypatch.setattr(find_replace, "LINE_LOOKUP_MOST", 50)
    with CaptureQueriesContext(connection) as queries:
        found = find_replace.hit_lines(letters, "zork", search.Filters(), 5, OPTIONS[0])
    assert found == sorted(line.pk for line in lines)[:5]
    [lookup] = [query["sql"] for query in queries.captured_queries if "chunk.query" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {lookup}")
        [[[plan]]] = cursor.fetchall()
    assert plan["Plan"]["Actual Rows"] == 51, plan


@pytest.mark.django_db
def test_an_alternative_that_no_line_holds_looks_up_no_more_groups(letters, lines):
    """Once no line holds a word of each group so far (tbe's lines are even, Meſſieurs' odd),
    the words of the groups after (zork's 600) are not looked up."""
    options = Options(inside_words=True, match_accents=True)
    with CaptureQueriesContext(connection) as queries:
        found = find_replace.hit_lines(letters, "tbe ſſieur zork", search.Filters(), 5, options)
    assert found == []
    lookups = [query for query in queries.captured_queries if "chunk.query" in query["sql"]]
    assert len(lookups) == 2, lookups


@pytest.mark.django_db
def test_lines_past_the_lookup_are_read_without_asking_their_search_vectors(
    letters, lines, monkeypatch
):
    """Where every group of an alternative is in more than LINE_LOOKUP_MOST lines, the lines
    the filters leave are read as they are: checking each one's search vector against the
    words cost more than reading its text (a part in 4,121 words of 55,000 lines, past
    LINE_LOOKUP_MOST at 2,000: 74 s with them, 1.1 s without)."""
    monkeypatch.setattr(find_replace, "LINE_LOOKUP_MOST", 50)
    with CaptureQueriesContext(connection) as queries:
        found = find_replace.hit_lines(letters, "zork -tbe", search.Filters(), 5, OPTIONS[0])
    assert found == sorted(line.pk for line in lines[1::2])[:5]
    reads = [q["sql"] for q in queries.captured_queries if '"corpus_line"."text"' in q["sql"]]
    assert reads and not [sql for sql in reads if "search_vector" in sql], reads


@pytest.mark.django_db
def test_a_part_in_thousands_of_words_is_looked_up(letters, lines):
    """A part in more than a thousand of the vocabulary's words (here 600 in the lines and
    1,500 whose lines are gone, which stay in the vocabulary) is looked up in the lines'
    search vectors, up to INSIDE_WORDS_MOST, rather than leaving every line to be read."""
    SearchWord.objects.bulk_create(
        SearchWord(collection=letters, word=f"{a}{b}zork{c}")
        for a, b, c in itertools.islice(itertools.product(string.ascii_lowercase, repeat=3), 1500)
    )
    for q in ("zork", "ZORK -tbe", "orkb or ſſieur"):
        for options in OPTIONS:
            pattern = Pattern(q, options)
            holding = find_replace.vocabulary_lines(letters, pattern)
            expected = every_line(letters, q, search.Filters(), options)
            assert holding is not None and set(expected) <= set(holding), (q, options)
            found = find_replace.hit_lines(letters, q, search.Filters(), 5, options)
            assert found == expected[:5], (q, options)
    [[zork]] = find_replace.vocabulary_words(letters, Pattern("zork", OPTIONS[0]))
    assert len(zork) == LINES + 1500

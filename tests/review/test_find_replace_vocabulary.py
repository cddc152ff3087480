"""Inside words, the vocabulary's words that hold a run of the query are looked up by the
trigram index of the words folded (corpus migration 0025) and checked as the hits fold them:
the same words, so the same lines, as reading and folding every word of the vocabulary
(bench.inside_words.vocabulary_words_before, the way it was) and looking their lines up in one
query (bench.inside_words.lines_by_one_query), whatever the accents, case, ligatures, marks
and LIKE's own characters in the words and the queries."""

import dataclasses
import importlib
import random
import sys

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from bench.inside_words import lines_by_one_query, vocabulary_words_before
from ocrreview.corpus.models import SearchWord
from ocrreview.review import find_replace
from ocrreview.review.find_replace import Options, Pattern
from tests import factories

INDEX = find_replace.INSIDE_WORD_INDEX
BEFORE = ("corpus", "0024_page_source_name_cleaned")
AFTER = ("corpus", "0025_search_word_folded_trigram")
migration = importlib.import_module(f"ocrreview.corpus.migrations.{AFTER[1]}")

# Letters as transcriptions hold them, and characters that Python and PostgreSQL fold or
# lowercase otherwise: ſ, ß, a ligature, combining marks, final sigma, the Kelvin sign, a
# dotted capital I, a spacing accent, an Arabic ligature whose NFKD starts with a space.
ALPHABET = (
    list("abcdeilmnorstuk")
    + list("ABEIKST")
    + ["é", "É", "è", "ê", "ë", "ſ", "ß", "ﬁ", "æ", "ø", "ł", "ĳ"]
    + ["e\u0301", "q\u0303", "\u0307"]
    + ["σ", "ς", "Σ", "Ω", "ω", "\u212a", "İ", "ı", "´", "\ufc5e", "２"]
    + ["%", "_", "\\", "'", "-", "1", "7"]
)
OPTIONS = [Options(), Options(match_accents=True), Options(match_case=True, match_accents=True)]


def make_words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))) for _ in range(count)]


def make_query(rng: random.Random, words: list[str]) -> str:
    """A part of a word or two of the collection, sometimes in another case, sometimes with
    LIKE's characters or a second alternative."""
    parts = []
    for word in rng.sample(words, rng.randint(1, 2)):
        start = rng.randrange(len(word))
        part = word[start : start + rng.randint(1, 5)]
        parts.append(part.upper() if rng.random() < 0.2 else part)
    q = " ".join(parts)
    if rng.random() < 0.15:
        q += " " + rng.choice(["%", "_", "\\", "a%", "e_s", "%ſ\\"])
    if rng.random() < 0.15:
        q += " or " + rng.choice(words)[:3]
    return q


def lines_before(collection, pattern: Pattern) -> list[int] | None:
    words = vocabulary_words_before(collection, pattern)
    return None if words is None else list(lines_by_one_query(collection, words))


@pytest.fixture
def vocabulary(letters):
    rng = random.Random(7)
    page = factories.make_page(factories.make_document(letters, title="Letter"))
    words = make_words(rng, 600)
    for order in range(150):
        factories.make_line(page, order, text=" ".join(rng.sample(words, 6)))
    return list(SearchWord.objects.filter(collection=letters).values_list("word", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("indexed", [True, False], ids=["trigram index", "no index"])
def test_the_same_lines_as_reading_every_word(letters, vocabulary, monkeypatch, indexed):
    assert find_replace.inside_word_index_available()
    monkeypatch.setattr(find_replace, "inside_word_index_available", lambda: indexed)
    # Few enough that some runs are in too many words, and their alternatives read every line.
    monkeypatch.setattr(find_replace, "INSIDE_WORDS_MOST", 12)
    monkeypatch.setattr("bench.inside_words.INSIDE_WORDS_MOST", 12)
    # Few enough that a run's words are looked up in several queries of the lines.
    monkeypatch.setattr(find_replace, "LINE_LOOKUP_WORDS", 3)
    rng = random.Random(11)
    answered = {"every line": 0, "some lines": 0}
    for _ in range(100):
        q = make_query(rng, vocabulary)
        for options in OPTIONS:
            pattern = Pattern(q, dataclasses.replace(options, inside_words=True))
            now = find_replace.vocabulary_lines(letters, pattern)
            assert now == lines_before(letters, pattern), (q, options)
            answered["every line" if now is None else "some lines"] += 1
    assert min(answered.values()) > 30, answered


@pytest.mark.django_db
def test_the_same_words_as_reading_every_word(letters, vocabulary):
    """Run by run, the words found are those that hold it folded, every one of them up to
    INSIDE_WORDS_MOST."""
    rng = random.Random(3)
    likes_checked = 0
    for _ in range(200):
        word = rng.choice(vocabulary)
        start = rng.randrange(len(word))
        for options in OPTIONS:
            table = find_replace._FoldTable(Options(match_accents=options.match_accents))
            for run in find_replace.LETTERS.findall(
                find_replace._fold(word[start : start + 4], table)[0]
            ):
                like, trigrams = find_replace._like_patterns([run])[run]
                found = find_replace._words_holding(letters, run, like, trigrams, table, True)
                holding = {w for w in vocabulary if run in find_replace._fold(w, table)[0]}
                assert len(found) == len(set(found))
                assert set(found) == holding, (run, like)
                likes_checked += 1
    assert likes_checked > 300


@pytest.mark.django_db
def test_like_s_own_characters_match_only_themselves(letters):
    assert find_replace._like_escaped("50%_a\\b") == "50\\%\\_a\\\\b"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t, t LIKE '%%' || %s || '%%' FROM unnest(%s::text[]) AS t ORDER BY t",
            [find_replace._like_escaped("%_\\"), ["a%_\\b", "a%x\\b", "a%_b", "axyzb"]],
        )
        assert cursor.fetchall() == [
            ("a%_\\b", True),
            ("a%_b", False),
            ("a%x\\b", False),
            ("axyzb", False),
        ]
    # A query of them alone holds no letters to look words up by: every line may hold it.
    for q in ("%", "_", "\\", "%_\\"):
        assert (
            find_replace.vocabulary_lines(letters, Pattern(q, Options(inside_words=True))) is None
        )


@pytest.mark.django_db
def test_a_letter_the_database_folds_otherwise_is_left_to_any_characters(letters):
    # ﱞ's NFKD starts with a space: the hits keep it, SQL's folding makes it " ٌّ".
    likes = find_replace._like_patterns(["ſtanford", "k", "\ufc5e\ufc5ex", "ab\ufc5ecd", "ω"])
    assert likes["ſtanford"] == ("%stanford%", True)  # ſ is no run of a folded query, s is
    assert likes["k"] == ("%k%", False)  # K and the Kelvin sign fold to k alike
    assert likes["\ufc5e\ufc5ex"] == ("%x%", False)
    assert likes["ab\ufc5ecd"] == ("%ab%cd%", False)
    assert likes["ω"] == ("%ω%", False)
    page = factories.make_page(factories.make_document(letters, title="Letter"))
    line = factories.make_line(page, 0, text="ab\ufc5excd and other words")
    factories.make_line(page, 1, text="abxcd")
    pattern = Pattern("b\ufc5exc", Options(inside_words=True, match_accents=True))
    assert find_replace.vocabulary_lines(letters, pattern) == [line.pk]


@pytest.mark.django_db
def test_the_lookup_is_answered_by_the_trigram_index(letters):
    """The query's expression is the index's: were they to differ, the index would be left
    unused, and every preview would fold the whole vocabulary again."""
    like, trigrams = find_replace._like_patterns(["tanfor"])["tanfor"]
    assert trigrams
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO corpus_searchword (collection_id, word) "
            "SELECT %s, md5(i::text) FROM generate_series(1, 20000) AS i",
            [letters.pk],
        )
        cursor.execute("ANALYZE corpus_searchword")
        # Whether the index can answer it, not whether the planner's costs prefer it on this
        # table today (a full suite's statistics once had it read the table instead; the
        # words of the tests before, rolled back, stay in the trigram index and once had it
        # look the collection's words up by the index of collection_id): the other indexes
        # are dropped, until the test's transaction is rolled back.
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'corpus_searchword' "
            "AND indexname <> %s AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [INDEX],
        )
        for (other,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{other}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(
            f"EXPLAIN SELECT word FROM corpus_searchword WHERE collection_id = %s "
            f"AND {find_replace.FOLDED_WORD_SQL} LIKE %s",
            [letters.pk, like],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Bitmap Index Scan on {INDEX}" in plan, plan


def test_no_character_past_cased_below_changes_when_lowercased():
    assert not [
        code
        for code in range(find_replace.CASED_BELOW, sys.maxunicode + 1)
        if chr(code).lower() != chr(code)
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_builds_the_index_again_where_a_build_failed(latest_migrations_after):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    assert not find_replace.inside_word_index_available()
    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    assert find_replace.inside_word_index_available()
    # As a concurrent build that failed half-way leaves it: there, and unused.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [INDEX]
        )
    assert not find_replace.inside_word_index_available()
    with connection.schema_editor(atomic=False) as editor:
        migration.add_index(None, editor)
    assert find_replace.inside_word_index_available()

"""Search over lines' text (ocrreview/review/search.py) on real PostgreSQL with pg_trgm: ranking,
typos and misreadings found by similarity, filters, paging, and snippets that escape the text."""

import base64
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ocrreview.corpus.models import Line, SearchWord
from ocrreview.review import search
from ocrreview.review.search import Filters, search_lines
from tests import factories


@pytest.fixture
def page(letters):
    return factories.make_page(factories.make_document(letters, title="Babcock letters"))


def line(page, order, text, **kwargs):
    kwargs.setdefault("status", Line.Status.REVIEWED)
    kwargs.setdefault("confidence", 0.95)
    return factories.make_line(page, order, text=text, **kwargs)


def texts(results):
    return [hit.line.text for hit in results.hits]


@pytest.mark.django_db
def test_exact_hits_come_first_ranked_then_similar_ones(letters, page):
    line(page, 0, "Paid to the carrier for wood")
    once = line(page, 1, "Received of Mr Babcock the sum of ten shillings")
    twice = line(page, 2, "Babcock wrote to Babcock senior")
    misread = line(page, 3, "Mr Babcoek at the mill")
    results = search_lines(letters, "Babcock")
    assert [h.line for h in results.hits] == [twice, once, misread]
    assert [h.exact for h in results.hits] == [True, True, False]
    assert results.fuzzy
    assert results.hits[0].score > results.hits[1].score


@pytest.mark.django_db
def test_a_name_typed_with_a_typo_finds_the_line(letters, page):
    wanted = line(page, 0, "Received of Mr Babcock the sum of ten shillings")
    line(page, 1, "Paid to the carrier for wood")
    results = search_lines(letters, "Babcok")
    assert [h.line for h in results.hits] == [wanted]
    assert not results.hits[0].exact


@pytest.mark.django_db
def test_a_word_the_model_misread_is_still_found(letters, page):
    wanted = line(page, 0, "Reçu de Monsieur Lefèvre la somme de dix livres tournois")
    assert [h.line for h in search_lines(letters, "tournoi").hits] == [wanted]
    assert [h.line for h in search_lines(letters, "Monsieur Lefevre").hits] == [wanted]


@pytest.mark.django_db
def test_a_word_typed_without_its_accents_or_long_s_is_found(letters, page):
    """Too unlike by trigrams (decede and décédé 0.08, eglise and église 0.40, messieurs and
    meſſieurs 0.43, under 0.45), and the embedded PostgreSQL has no trigrams at all."""
    deceased = line(page, 0, "Pierre Lefèvre décédé à Paris")
    church = line(page, 1, "devant la porte de l'église")
    long_s = line(page, 2, "Meſſieurs les Conſuls")
    typed = line(page, 3, "Messieurs du Conseil")
    line(page, 4, "Paid to the carrier for wood")

    [hit] = search_lines(letters, "decede").hits
    assert (hit.line, hit.exact, hit.folded) == (deceased, False, True)
    assert hit.snippet_html == "Pierre Lefèvre <mark>décédé</mark> à Paris"
    assert [h.line for h in search_lines(letters, "eglise").hits] == [church]
    # Exact hits first, then those found folded.
    results = search_lines(letters, "Messieurs")
    assert [(h.line, h.exact) for h in results.hits] == [(typed, True), (long_s, False)]
    assert results.hits[1].snippet_html == "<mark>Meſſieurs</mark> les Conſuls"
    assert [h.line for h in search_lines(letters, '"porte de l\'eglise"').hits] == [church]
    # The other way round: a query with accents finds the word written without, after it.
    plain = line(page, 5, "la nouvelle eglise")
    assert [h.line for h in search_lines(letters, "église").hits] == [church, plain]


@pytest.mark.django_db
def test_folded_words_are_found_without_trigrams(letters, page, monkeypatch):
    """As on the embedded PostgreSQL, which ships no pg_trgm."""
    monkeypatch.setattr(search, "trigram_search_available", lambda: False)
    church = line(page, 0, "devant la porte de l'église")
    results = search_lines(letters, "Eglise")
    assert [h.line for h in results.hits] == [church]
    assert not results.fuzzy


@pytest.mark.django_db
def test_a_word_excluded_without_its_accents_is_excluded_with_them(letters, page):
    kept = line(page, 0, "Messieurs du Conseil")
    line(page, 1, "Messieurs de l'église")
    line(page, 2, "Meſſieurs de l'Egliſe")
    assert [h.line for h in search_lines(letters, "Messieurs -eglise").hits] == [kept]


@pytest.mark.django_db
def test_words_and_phrases_follow_web_search_syntax(letters, page):
    adjacent = line(page, 0, "the sum of ten shillings")
    apart = line(page, 1, "ten yards of cloth at shillings each")
    assert [h.line for h in search_lines(letters, '"ten shillings"').hits] == [adjacent]
    assert {h.line for h in search_lines(letters, "ten shillings").hits} == {adjacent, apart}
    assert [h.line for h in search_lines(letters, "shillings -cloth").hits] == [adjacent]


@pytest.mark.django_db
def test_similar_words_keep_the_phrases_and_the_ors_of_the_query(letters, page):
    both = line(page, 0, "ten shillings to Mr Babcock")
    no_phrase = line(page, 1, "shillings ten to Mr Babcock")
    hale = line(page, 2, "Mr Hale of Boston")
    assert [h.line for h in search_lines(letters, '"ten shillings" Babcok').hits] == [both]
    found = {h.line for h in search_lines(letters, "Babcok or Hale").hits}
    assert found == {both, no_phrase, hale}


@pytest.mark.django_db
def test_an_excluded_word_excludes_similar_lines_too(letters, page):
    line(page, 0, "Mr Babcoek of the mill")
    kept = line(page, 1, "Mr Babcoek of Boston")
    assert [h.line for h in search_lines(letters, "Babcock -mill").hits] == [kept]


@pytest.mark.django_db
def test_filters_narrow_the_hits(letters, page):
    other = factories.make_page(factories.make_document(letters, title="Ledger"))
    reviewed = line(page, 0, "Babcock paid", status=Line.Status.REVIEWED, confidence=0.99)
    unsure = line(page, 1, "Babcock owes", status=Line.Status.NEEDS_REVIEW, confidence=0.4)
    elsewhere = line(other, 0, "Babcock again", status=Line.Status.AUTO_ACCEPTED, confidence=0.95)

    def found(**filters):
        return {h.line for h in search_lines(letters, "Babcock", Filters(**filters)).hits}

    assert found() == {reviewed, unsure, elsewhere}
    assert found(document=other.document) == {elsewhere}
    assert found(status=Line.Status.NEEDS_REVIEW) == {unsure}
    assert found(confidence_below=0.5) == {unsure}
    assert found(confidence_at_least=0.95) == {reviewed, elsewhere}
    assert found(confidence_at_least=0.9, confidence_below=0.96) == {elsewhere}


@pytest.mark.django_db
def test_only_the_collection_searched_is_searched(letters, ledgers, page):
    line(page, 0, "Babcock in the letters")
    theirs = factories.make_page(factories.make_document(ledgers))
    line(theirs, 0, "Babcock in the ledgers")
    assert texts(search_lines(letters, "Babcock")) == ["Babcock in the letters"]


@pytest.mark.django_db
def test_pages_follow_each_other_without_gaps_or_repeats(letters, page):
    for i in range(7):
        line(page, i, "Babcock " * (i % 3 + 1) + f"entry {i}")
    for i in range(3):
        line(page, 10 + i, f"Babcoek misread {i}")
    for i in range(3):
        line(page, 20 + i, f"Bâbcock accented {i}")
    everything = [h.line.pk for h in search_lines(letters, "Babcock", page_size=100).hits]
    assert len(everything) == 13

    seen, cursor, pages = [], None, []
    while True:
        results = search_lines(letters, "Babcock", cursor=cursor, page_size=3)
        pages.append(results)
        seen += [h.line.pk for h in results.hits]
        if results.next is None:
            break
        cursor = search.encode_cursor(results.next, before=False)
    assert seen == everything
    assert pages[0].previous is None

    back = search.encode_cursor(pages[-1].previous, before=True)
    assert [h.line.pk for h in search_lines(letters, "Babcock", cursor=back, page_size=3).hits] == [
        h.line.pk for h in pages[-2].hits
    ]


@pytest.mark.django_db
def test_a_cursor_not_made_here_is_refused(letters):
    for cursor in [
        "nonsense",
        "W10",
        search.encode_cursor(search.Position(1, 0.5, 0), before=True),
        # Made before folded hits: its tier 1 meant "similar" then.
        base64.urlsafe_b64encode(b"[1, 0.5, 12, false]").decode().rstrip("="),
    ]:
        with pytest.raises(search.BadCursor):
            search_lines(letters, "Babcock", cursor=cursor)


@pytest.mark.django_db
def test_the_snippet_marks_the_match_and_escapes_the_text(letters, page):
    line(page, 0, 'Babcock <script>alert("x")</script> & sons')
    [hit] = search_lines(letters, "Babcock").hits
    assert hit.snippet_html == (
        "<mark>Babcock</mark> &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; sons"
    )


@pytest.mark.django_db
def test_the_snippet_marks_a_word_with_a_combining_mark_whole(letters, page):
    """q̃ has no precomposed form: the word is q, a combining tilde and ue."""
    line(page, 0, "Et q\u0303ue le roy")
    [hit] = search_lines(letters, "q\u0303ue").hits
    assert hit.snippet_html == "Et <mark>q\u0303ue</mark> le roy"


def test_queries_that_cannot_be_searched_for_are_explained():
    assert search.query_problem("Babcock") is None
    assert search.query_problem("?!-") == "Type a word to search for."
    assert search.query_problem("a" * 201) == "At most 200 characters."
    # Leaving words out finds every other line: a scan of the collection, ranked.
    for only_out in ("-draft", '-"a draft"', "Babcock or -draft"):
        assert (
            search.query_problem(only_out) == "Add a word to find: “-word” only leaves lines out."
        )
    assert search.query_problem("Babcock -draft") is None
    assert search.query_problem('"the mill" -draft') is None


@pytest.mark.django_db
def test_a_short_query_matches_exact_words_only(letters, page):
    wanted = line(page, 0, "of the mill")
    line(page, 1, "often at the office")
    results = search_lines(letters, "of")
    assert [h.line for h in results.hits] == [wanted]
    assert not results.fuzzy


def vocabulary(collection):
    return sorted(SearchWord.objects.filter(collection=collection).values_list("word", flat=True))


@pytest.mark.django_db
def test_the_vocabulary_holds_each_word_of_the_collection_once(letters, ledgers, page):
    line(page, 0, "Mr Babcock paid Babcock")
    line(page, 1, "Paid to Mr Babcock")
    factories.make_line(factories.make_page(factories.make_document(ledgers)), 0, text="Ledger")
    assert vocabulary(letters) == ["babcock", "mr", "paid", "to"]
    assert vocabulary(ledgers) == ["ledger"]


@pytest.mark.django_db
def test_a_corrected_word_is_found_by_similarity_after_the_correction(letters, page):
    corrected = line(page, 0, "Received of Mr Bahcuck")
    Line.objects.filter(pk=corrected.pk).update(text="Received of Mr Babcock")
    read = line(page, 1, "", status=Line.Status.PENDING)
    read.text = "Mr Pemberton at the mill"
    # The way recognition stores its batches.
    Line.objects.bulk_update([read], ["text"])
    assert [h.line for h in search_lines(letters, "Babcok").hits] == [corrected]
    assert [h.line for h in search_lines(letters, "Pemberon").hits] == [read]


@pytest.mark.django_db
def test_a_change_that_leaves_the_text_alone_adds_no_words(letters, page):
    kept = line(page, 0, "Received of Mr Babcock")
    SearchWord.objects.all().delete()
    Line.objects.filter(pk=kept.pk).update(status=Line.Status.NEEDS_REVIEW, confidence=0.2)
    assert vocabulary(letters) == []


@pytest.mark.django_db
def test_words_with_query_syntax_in_them_are_searched_as_words(letters, page):
    """The simple parser keeps URLs and paths whole, with characters that are operators in a
    tsquery; similar words are cast to a tsquery as they are, so each must be quoted."""
    wanted = line(page, 0, "see http://archive.org/a?b=c&d=e|f!g:h for Babcock's file")
    line(page, 1, "Paid to the carrier")
    for q in ["archive.org/a?b=c&d=x|f!g:h", "Babcok's", "archive.org/a?b=c&d=e|f!g:h"]:
        assert [h.line for h in search_lines(letters, q).hits] == [wanted], q


@pytest.mark.django_db
def test_the_folded_words_are_looked_up_by_their_index(letters, page):
    """The lookup's expression must be the index's to the letter, or every search folds the
    whole vocabulary."""
    line(page, 0, "devant la porte de l'église")
    with CaptureQueriesContext(connection) as queries:
        search_lines(letters, "eglise")
    [sql] = [q["sql"] for q in queries.captured_queries if 'FROM "corpus_searchword"' in q["sql"]]
    with connection.cursor() as cursor:
        # On a table of a few rows every index that starts with collection_id costs the same,
        # and which the planner takes follows the statistics earlier tests left (the foreign
        # key's, with the folding as a filter, in one full run): only the folded index is left,
        # within the test's transaction.
        table = SearchWord._meta.db_table
        for name, index in connection.introspection.get_constraints(cursor, table).items():
            if (
                index["index"]
                and name != "search_word_folded"
                and index["columns"][:1] == ["collection_id"]
            ):
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Both columns in the index condition: the collection's words alone would each be folded.
    assert re.search(r"Index Cond: .*collection_id = .* AND .*normalize", plan, re.I), plan

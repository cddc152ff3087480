"""Search a collection's lines by their current text.

Three ways to match, in one query over the lines' stored search vectors: full-text search
(PostgreSQL's `websearch_to_tsquery`, so "quoted phrases", `or` and `-word` work as in a web
search engine) ranked by cover density; the same with accents and long s folded, so that
"eglise" finds "église" and "Messieurs" finds "Meſſieurs"; and similar words for what full
text cannot find: a name typed with a typo ("Babcok" for "Babcock"), a word the model
misread. Folding looks up, in the collection's vocabulary (corpus.SearchWord, which holds
every word of its lines), the words that fold to each word of the folded query, and asks the
lines for those. For similar words, each word of the query is compared by trigram similarity
(pg_trgm) with the vocabulary, and a line matches when it holds, for every word, one of the
most similar ones. Exact hits come first, by rank; then those found folded, by rank; similar
ones last, by how similar their words are. Everything is answered from indexes (corpus
migrations 0007 and 0014); where the server lacks pg_trgm (the embedded PostgreSQL), similar
words are not looked for and the results say so.

Pages are keyset cursors over (tier, score, id), so a page does not shift when lines are
corrected or added while someone pages through the results."""

import base64
import binascii
import json
import re
from dataclasses import dataclass

import regex
from django.contrib.postgres.search import (
    CombinedSearchQuery,
    SearchHeadline,
    SearchQuery,
    SearchRank,
)
from django.db import connection
from django.db.models import Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.utils.html import escape

from ocrreview.corpus.models import (
    FOLD_SQL,
    SEARCH_CONFIG,
    Collection,
    Document,
    Line,
    SearchWord,
    folded_word,
    iiif_json_through,
)
from ocrreview.review.actions import REVERTIBLE
from ocrreview.review.models import Correction

MAX_QUERY_LENGTH = 200
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
TRIGRAM_INDEX = "search_word_trigram"
# Shorter words share a trigram with too many others ("of" is similar to every word that
# starts with "of"), so they match only themselves.
FUZZY_MIN_CHARACTERS = 4
# "babcok" is 0.5 similar to "babcock", 0.45 to "babcocks"; below that, words that merely
# share a syllable ("cocks") come in.
MIN_SIMILARITY = 0.45
SIMILAR_WORDS_PER_TERM = 8
# Private-use characters, which no transcription holds, mark the matches in ts_headline's
# output.
START, STOP = "\ue000", "\ue001"
# The regex module's \w, unlike re's, takes in combining marks: "q̃ue" is one word, as
# PostgreSQL's parser reads it, not "q", a tilde and "ue".
WORD = regex.compile(r"\w+")
TOKEN = re.compile(r'-?"[^"]*"?|\S+')
# A lexeme in a tsquery's text: quoted, with a quote in it doubled (and a backslash).
QUOTED_LEXEME = re.compile(r"'((?:[^']|'')*)'")
# How a line matched, best first in the results.
EXACT, FOLDED, SIMILAR = 2, 1, 0


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    document: Document | None = None
    status: str | None = None
    confidence_below: float | None = None
    confidence_at_least: float | None = None
    # Only lines a reviewer marked unclear, for an expert to read.
    unclear: bool = False


@dataclass(frozen=True)
class Position:
    """Where a page starts or ends, in the results' order."""

    tier: int
    score: float
    id: int


@dataclass
class Hit:
    line: Line
    tier: int
    score: float
    fragments: list[tuple[str, bool]]

    @property
    def exact(self) -> bool:
        return self.tier == EXACT

    @property
    def folded(self) -> bool:
        """Found with accents and long s folded, not as the query spelled it."""
        return self.tier == FOLDED

    @property
    def tier_name(self) -> str:
        return "exact" if self.exact else "folded" if self.folded else "similar"

    @property
    def snippet_html(self) -> str:
        return "".join(
            f"<mark>{escape(t)}</mark>" if hit else escape(t) for t, hit in self.fragments
        )


@dataclass
class Results:
    hits: list[Hit]
    next: Position | None
    previous: Position | None
    # False where the server lacks pg_trgm, or the query is too short for similarity.
    fuzzy: bool


def query_problem(q: str) -> str | None:
    """Why the query cannot be searched for, or None."""
    if len(q) > MAX_QUERY_LENGTH:
        return f"At most {MAX_QUERY_LENGTH} characters."
    if not any(c.isalnum() for c in q):
        return "Type a word to search for."
    clauses, excluded = _fuzzy_clauses(q)
    if excluded and not all(words or phrases for words, phrases in clauses):
        # "-draft" alone, or "a or -draft", would list every line without the word: the
        # whole collection ranked on every page, which no index narrows.
        return "Add a word to find: “-word” only leaves lines out."
    return None


# Raised when what a cursor's fields mean changes (the tiers did, when folded hits came in
# between exact and similar ones): a client's cursor from before is refused, not misread.
CURSOR_VERSION = 2


def encode_cursor(position: Position, *, before: bool) -> str:
    raw = json.dumps([CURSOR_VERSION, position.tier, position.score, position.id, before])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Position, bool]:
    """The position and whether the page ends before it; BadCursor for anything this module
    did not make."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        version, tier, score, pk, before = raw
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor("Not a cursor of these results.") from exc
    if not (
        version == CURSOR_VERSION
        and tier in (EXACT, FOLDED, SIMILAR)
        and isinstance(score, float | int)
        and isinstance(pk, int)
        and 0 < pk < 2**63
        and isinstance(before, bool)
    ):
        raise BadCursor("Not a cursor of these results.")
    return Position(tier, float(score), pk), before


def trigram_search_available() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [TRIGRAM_INDEX])
        return cursor.fetchone() is not None


class TsQuery(SearchQuery):
    """A tsquery written out, cast to one as it is: to_tsquery would parse its lexemes again,
    and split a word such as "well-known" into parts."""

    def __init__(self, tsquery: str) -> None:
        self.tsquery = tsquery
        super().__init__(tsquery)

    def as_sql(self, compiler, connection, **extra_context):
        return "%s::tsquery", [self.tsquery]


def lexeme_query(alternatives: list[list[str]]) -> TsQuery:
    """Lexemes as the search vectors hold them: every group must match, by one of its
    lexemes."""
    return TsQuery(" & ".join(_any_of(group) for group in alternatives))


def _any_of(lexemes: list[str]) -> str:
    return "(" + " | ".join(_quoted(lexeme) for lexeme in lexemes) + ")"


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _unquoted(quoted: str) -> str:
    """A lexeme as a tsquery's text writes it, between its quotes, as it is."""
    return quoted.replace("''", "'").replace("\\\\", "\\")


def folded_queries(collection: Collection, texts: list[str]) -> list[TsQuery]:
    """Each text as websearch_to_tsquery reads it once folded (accents dropped, ſ as s), each
    of its words standing for every word of the collection that folds to it: "eglise" for
    "eglise" or "église", "messieurs" for "meſſieurs" too. The lines' stored search vectors
    answer that, so that no line is folded at query time."""
    parse = f"websearch_to_tsquery(%s::regconfig, {FOLD_SQL.format('%s')})::text"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join([parse] * len(texts)),
            [value for text in texts for value in (SEARCH_CONFIG, text)],
        )
        written = cursor.fetchone()
    lexemes = {
        _unquoted(lexeme) for tsquery in written for lexeme in QUOTED_LEXEME.findall(tsquery)
    }
    # Each word itself too, whether or not the vocabulary has it.
    spellings = {lexeme: {lexeme} for lexeme in lexemes}
    vocabulary = (
        SearchWord.objects.filter(collection=collection)
        .annotate(folded=folded_word())
        .filter(folded__in=lexemes)
        .values_list("folded", "word")
    )
    for folded, word in vocabulary:
        spellings[folded].add(word)
    return [
        TsQuery(QUOTED_LEXEME.sub(lambda m: _any_of(sorted(spellings[_unquoted(m[1])])), tsquery))
        for tsquery in written
    ]


def _fuzzy_clauses(q: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The query's clauses, split on `or` as websearch reads it (`a b or c` is a and b, or c),
    each as the unquoted words to compare by similarity and the quoted phrases it asks for
    exactly; and the excluded terms (`-word`, `-"a phrase"`), which exclude similar lines too."""
    clauses: list[tuple[list[str], list[str]]] = [([], [])]
    excluded = []
    for token in TOKEN.findall(q):
        if token.startswith("-") and len(token) > 1:
            excluded.append(token[1:])
        elif token.lower() == "or":
            clauses.append(([], []))
        elif token.startswith('"'):
            # Exactly those words in that order: similarity, which ignores order, would bring
            # back what the quotes were there to leave out.
            clauses[-1][1].append(token)
        else:
            clauses[-1][0].append(token)
    return [(" ".join(words), phrases) for words, phrases in clauses], excluded


def similar_words(collection: Collection, text: str) -> list[list[tuple[str, float]]]:
    """For each word of text (as the search vectors spell it), the collection's words most
    similar to it, best first, with their similarity; a word shorter than
    FUZZY_MIN_CHARACTERS only matches itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.term, w.word, w.similarity
            FROM unnest(tsvector_to_array(to_tsvector(%(config)s::regconfig, %(text)s)))
                AS t(term)
            LEFT JOIN LATERAL (
                SELECT word, similarity(word, t.term) AS similarity
                FROM corpus_searchword
                WHERE collection_id = %(collection)s AND word %% t.term
                    AND length(t.term) >= %(min_length)s
                GROUP BY word
                HAVING similarity(word, t.term) >= %(min_similarity)s
                ORDER BY similarity DESC, word
                LIMIT %(limit)s
            ) AS w ON true
            """,
            {
                "config": SEARCH_CONFIG,
                "text": text,
                "collection": collection.pk,
                "min_length": FUZZY_MIN_CHARACTERS,
                "min_similarity": MIN_SIMILARITY,
                "limit": SIMILAR_WORDS_PER_TERM,
            },
        )
        rows = cursor.fetchall()
    words: dict[str, list[tuple[str, float]]] = {}
    for term, word, similarity in rows:
        # The word itself first: a line that holds it is as similar as can be, whether or not
        # the vocabulary has caught up with it.
        group = words.setdefault(term, [(term, 1.0)])
        if word is not None and word != term:
            group.append((word, similarity))
    return list(words.values())


def _similarity_score(groups: list[list[tuple[str, float]]]) -> Case | Value:
    """The mean over the query's words of the similarity of the best word of each group that
    the line holds."""
    total: Case | Value = Value(0.0)
    for group in groups:
        best = Case(
            *(
                When(Q(search_vector=lexeme_query([[word]])), then=Value(similarity))
                for word, similarity in group
            ),
            default=Value(0.0),
            output_field=FloatField(),
        )
        total = best if isinstance(total, Value) else total + best
    return total / Value(float(len(groups)))


@dataclass
class Matching:
    """The lines of a search, each with its tier and score, and the query whose words ts_headline
    marks in them; None where the search has no words (the unclear lines listed)."""

    lines: QuerySet[Line]
    marked: SearchQuery | CombinedSearchQuery | None
    fuzzy: bool


def matching(collection: Collection, q: str, filters: Filters = Filters()) -> Matching:
    """The collection's lines that match q, unordered, for a page of results or for a replace
    in them. An empty q lists the lines the filters leave (the form allows that for unclear
    lines only), all in one tier, so that their pages are in id order."""
    lines = _filtered(Line.objects.filter(collection=collection), filters)
    if not q:
        lines = lines.annotate(
            tier=Value(EXACT, output_field=IntegerField()),
            score=Value(0.0, output_field=FloatField()),
        )
        return Matching(lines, None, fuzzy=False)
    query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
    exact = Q(search_vector=query)
    clauses, excluded = _fuzzy_clauses(q)
    folded_query, *left_out = folded_queries(
        collection, [q, " or ".join(excluded)] if excluded else [q]
    )
    folded = Q(search_vector=folded_query)
    clause_groups = []
    if trigram_search_available():
        for words, phrases in clauses:
            found = similar_words(collection, words) if words else []
            if found:  # a clause of stop words or of phrases alone is the exact query's
                clause_groups.append((found, phrases))
    groups = [group for found, _ in clause_groups for group in found]
    fuzzy = any(len(group) > 1 or len(group[0][0]) >= FUZZY_MIN_CHARACTERS for group in groups)
    marked: SearchQuery | CombinedSearchQuery = query | folded_query
    if fuzzy:
        similar = Q(pk__in=[])
        for found, phrases in clause_groups:
            clause_query = lexeme_query([[word for word, _ in group] for group in found])
            marked = marked | clause_query
            clause = Q(search_vector=clause_query)
            for phrase in phrases:
                clause &= Q(
                    search_vector=SearchQuery(phrase, search_type="websearch", config=SEARCH_CONFIG)
                )
            similar |= clause
        lines = lines.filter(exact | folded | similar)
        fallback = _similarity_score(groups)
    else:
        lines = lines.filter(exact | folded)
        fallback = Value(0.0)
    if left_out:
        # Folded, so that "-eglise" leaves out the lines with "église" whichever way they
        # matched, as the folded query itself does.
        lines = lines.exclude(search_vector=left_out[0])
    lines = lines.annotate(
        tier=Case(
            When(exact, then=Value(EXACT)),
            When(folded, then=Value(FOLDED)),
            default=Value(SIMILAR),
            output_field=IntegerField(),
        ),
        # In double precision: a cursor carries the score as Python's float, which must
        # compare equal to the same line's score on the next request (a real's text form
        # is rounded).
        score=Cast(
            Case(
                When(exact, then=SearchRank(F("search_vector"), query, cover_density=True)),
                When(
                    folded,
                    then=SearchRank(F("search_vector"), folded_query, cover_density=True),
                ),
                default=fallback,
            ),
            FloatField(),
        ),
    )
    return Matching(lines, marked, fuzzy)


def with_headlines(found: Matching, *, highlight_all: bool = False) -> QuerySet[Line]:
    """The lines with `headline`: their text as ts_headline marks the words found (the text
    itself where nothing is looked for). highlight_all marks every match in a long line, not
    only those of the excerpt a snippet needs."""
    if found.marked is None:
        return found.lines.annotate(headline=F("text"))
    return found.lines.annotate(
        headline=SearchHeadline(
            "text",
            found.marked,
            config=SEARCH_CONFIG,
            start_sel=START,
            stop_sel=STOP,
            highlight_all=highlight_all,
        )
    )


def search_lines(
    collection: Collection,
    q: str,
    filters: Filters = Filters(),
    *,
    cursor: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Results:
    """One page of the collection's lines that match q, best first. The caller has checked
    that the user may see the collection, and q with query_problem(). Raises BadCursor."""
    position, before = decode_cursor(cursor) if cursor else (None, False)
    found = matching(collection, q, filters)
    lines = with_headlines(found)
    if position is not None:
        lines = lines.filter(_beyond(position, before))
    order = ("tier", "score", "-id") if before else ("-tier", "-score", "id")
    page = list(
        lines.select_related("document", "page")
        .defer("search_vector", *iiif_json_through("document"))
        .order_by(*order)[: page_size + 1]
    )
    more = len(page) > page_size
    page = page[:page_size]
    if before:
        page.reverse()
    hits = [Hit(line, line.tier, line.score, fragments(line.text, line.headline)) for line in page]
    first = _position(hits[0]) if hits else None
    last = _position(hits[-1]) if hits else None
    fuzzy = found.fuzzy
    if before:
        return Results(hits, next=last, previous=first if more else None, fuzzy=fuzzy)
    return Results(
        hits, next=last if more else None, previous=first if position else None, fuzzy=fuzzy
    )


def _filtered(lines: QuerySet[Line], filters: Filters) -> QuerySet[Line]:
    if filters.document is not None:
        lines = lines.filter(document=filters.document)
    if filters.status:
        lines = lines.filter(status=filters.status)
    if filters.confidence_below is not None:
        lines = lines.filter(confidence__lt=filters.confidence_below)
    if filters.confidence_at_least is not None:
        lines = lines.filter(confidence__gte=filters.confidence_at_least)
    if filters.unclear:
        lines = lines.filter(unclear=True)
    return lines


def _beyond(position: Position, before: bool) -> Q:
    """The lines after the position in the results' order (tier and score descending, id
    ascending), or before it."""
    if before:
        return (
            Q(tier__gt=position.tier)
            | Q(tier=position.tier, score__gt=position.score)
            | Q(tier=position.tier, score=position.score, id__lt=position.id)
        )
    return (
        Q(tier__lt=position.tier)
        | Q(tier=position.tier, score__lt=position.score)
        | Q(tier=position.tier, score=position.score, id__gt=position.id)
    )


def _position(hit: Hit) -> Position:
    return Position(hit.tier, hit.score, hit.line.pk)


def fragments(text: str, headline: str) -> list[tuple[str, bool]]:
    """The line's text cut into (text, is a match) pieces, the matches being the words that
    ts_headline marked. The text is the line's own, not ts_headline's: that drops whatever
    looks like an HTML tag, and a transcription may hold "<" and ">"; the caller escapes it."""
    matched = {part.lower() for part in re.findall(f"{START}(.*?){STOP}", headline)}
    fragments, start = [], 0
    for word in WORD.finditer(text):
        if word.group().lower() in matched:
            fragments += [(text[start : word.start()], False), (word.group(), True)]
            start = word.end()
    fragments.append((text[start:], False))
    return [(part, hit) for part, hit in fragments if part]


def saved_by(user, lines: list[Line]) -> set[int]:
    """Of these lines, those whose text now is the user's own save: the hits already done in a
    pass of search and fix, which a line's status (reviewed by anyone, at any time) does not
    tell. A save is an answer that sets the line's text: one that an undo of the person's
    saves puts back (REVERTIBLE)."""
    return set(
        Correction.objects.filter(
            user=user, line__in=lines, action__in=REVERTIBLE, line_version=F("line__version")
        ).values_list("line_id", flat=True)
    )

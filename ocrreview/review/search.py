"""Search a collection's lines by their current text.

Two ways to match, in one query: full-text search (PostgreSQL's `websearch_to_tsquery`, so
"quoted phrases", `or` and `-word` work as in a web search engine) ranked by cover density,
and trigram word similarity (pg_trgm) for what full text cannot find: a name typed with a
typo ("Babcok" for "Babcock"), a word the model misread, an accent left out. Exact hits come
first, by rank; similar ones after, by similarity. Both are answered from GIN indexes
(corpus migration 0005); where the server lacks pg_trgm (the embedded PostgreSQL), only exact
hits are found and the results say so.

Pages are keyset cursors over (exact, score, id), so a page does not shift when lines are
corrected or added while someone pages through the results."""

import base64
import binascii
import json
import re
from dataclasses import dataclass

from django.contrib.postgres.search import (
    SearchHeadline,
    SearchQuery,
    SearchRank,
    TrigramWordSimilarity,
)
from django.db import connection
from django.db.models import Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.utils.html import escape

from ocrreview.corpus.models import SEARCH_CONFIG, Collection, Document, Line, line_search_vector

MAX_QUERY_LENGTH = 200
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
TRIGRAM_INDEX = "line_text_trigram"
# Shorter words share a trigram with too many others ("of" is similar to every word that
# starts with "of"), so a short query would drown its few exact hits in noise.
FUZZY_MIN_CHARACTERS = 4
# Private-use characters, which no transcription holds, mark the matches in ts_headline's
# output.
START, STOP = "\ue000", "\ue001"
WORD = re.compile(r"\w+")
TOKEN = re.compile(r'-?"[^"]*"?|\S+')


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    document: Document | None = None
    status: str | None = None
    confidence_below: float | None = None
    confidence_at_least: float | None = None


@dataclass(frozen=True)
class Position:
    """Where a page starts or ends, in the results' order."""

    exact: int
    score: float
    id: int


@dataclass
class Hit:
    line: Line
    exact: bool
    score: float
    fragments: list[tuple[str, bool]]

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
    return None


def encode_cursor(position: Position, *, before: bool) -> str:
    raw = json.dumps([position.exact, position.score, position.id, before])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Position, bool]:
    """The position and whether the page ends before it; BadCursor for anything this module
    did not make."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        exact, score, pk, before = raw
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor("Not a cursor of these results.") from exc
    if not (
        exact in (0, 1)
        and isinstance(score, float | int)
        and isinstance(pk, int)
        and 0 < pk < 2**63
        and isinstance(before, bool)
    ):
        raise BadCursor("Not a cursor of these results.")
    return Position(exact, float(score), pk), before


def trigram_search_available() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [TRIGRAM_INDEX])
        return cursor.fetchone() is not None


def _fuzzy_terms(q: str) -> tuple[str, list[str]]:
    """The unquoted words to compare by similarity, and the excluded terms (`-word`, `-"a phrase"`),
    which exclude similar lines too."""
    words, excluded = [], []
    for token in TOKEN.findall(q):
        if token.startswith("-") and len(token) > 1:
            excluded.append(token[1:])
        elif token.lower() != "or" and not token.startswith('"'):
            # A quoted phrase asks for exactly those words in that order; similarity, which
            # ignores order, would bring back what the quotes were there to leave out.
            words.append(token)
    return " ".join(words), excluded


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
    query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
    exact = Q(search=query)
    fuzzy_text, excluded = _fuzzy_terms(q)
    fuzzy = len(fuzzy_text) >= FUZZY_MIN_CHARACTERS and trigram_search_available()
    lines = _filtered(Line.objects.filter(collection=collection), filters).alias(
        search=line_search_vector()
    )
    if fuzzy:
        similar = Q(text__trigram_word_similar=fuzzy_text)
        if excluded:
            shunned = SearchQuery(
                " or ".join(excluded), search_type="websearch", config=SEARCH_CONFIG
            )
            similar &= ~Q(search=shunned)
        lines = lines.filter(exact | similar)
        fallback = TrigramWordSimilarity(fuzzy_text, "text")
    else:
        lines = lines.filter(exact)
        fallback = Value(0.0)
    lines = lines.annotate(
        exact=Case(When(exact, then=Value(1)), default=Value(0), output_field=IntegerField()),
        # In double precision: a cursor carries the score as Python's float, which must
        # compare equal to the same line's score on the next request (a real's text form
        # is rounded).
        score=Cast(
            Case(
                When(exact, then=SearchRank(F("search"), query, cover_density=True)),
                default=fallback,
            ),
            FloatField(),
        ),
    )
    if position is not None:
        lines = lines.filter(_beyond(position, before))
    order = ("exact", "score", "-id") if before else ("-exact", "-score", "id")
    page = list(
        lines.annotate(
            headline=SearchHeadline(
                "text", query, config=SEARCH_CONFIG, start_sel=START, stop_sel=STOP
            )
        )
        .select_related("document", "page")
        .order_by(*order)[: page_size + 1]
    )
    more = len(page) > page_size
    page = page[:page_size]
    if before:
        page.reverse()
    hits = [
        Hit(line, bool(line.exact), line.score, _fragments(line.text, line.headline))
        for line in page
    ]
    first = _position(hits[0]) if hits else None
    last = _position(hits[-1]) if hits else None
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
    return lines


def _beyond(position: Position, before: bool) -> Q:
    """The lines after the position in the results' order (exact and score descending, id
    ascending), or before it."""
    if before:
        return (
            Q(exact__gt=position.exact)
            | Q(exact=position.exact, score__gt=position.score)
            | Q(exact=position.exact, score=position.score, id__lt=position.id)
        )
    return (
        Q(exact__lt=position.exact)
        | Q(exact=position.exact, score__lt=position.score)
        | Q(exact=position.exact, score=position.score, id__gt=position.id)
    )


def _position(hit: Hit) -> Position:
    return Position(int(hit.exact), hit.score, hit.line.pk)


def _fragments(text: str, headline: str) -> list[tuple[str, bool]]:
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

"""Find and replace across a collection's lines, from the search results: every place the
search's words stand in the chosen lines (a hit) is listed for the person to untick the false
ones, and each ticked hit becomes the replacement; each changed line is an ordinary save of the
person's (an edit in its history, so that undoing their saves undoes it), with the line's
version checked. Lines that someone else holds or has unsaved text in, lines of a final
document and lines changed since the preview are skipped and listed, never overwritten.

The hits are found by one function, Pattern.hits, for the preview and the replace alike, on the
line's text at the version the preview showed: a hit is named by its line, that version and
where it starts (`12:3:17`), so a replace changes exactly the hits the person saw and left
ticked, and a line at another version is skipped rather than changed where they did not look.
The query reads as the search's: words side by side are one phrase here (`John Smith` is
replaced where the two stand together, not wherever each is), "quoted" too; `or` between
alternatives; `-word` leaves out the lines that hold it. Words are whole words, matched with
accents and ſ folded and in any case, as the search finds them, unless the person asks for the
case or the accents as typed; or, asked for, parts of words too (a misread letter, ſ, a
suffix), with the same folding, never part of a letter (its marks, a ligature). Similar words,
which the search also lists, are no hits: a replacement is for the words typed."""

import dataclasses
import functools
import hashlib
import itertools
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import regex
from django.db import connection, transaction
from django.db.models import QuerySet

from ocrreview.corpus.audit import record_event
from ocrreview.corpus.models import (
    COMBINING_MARKS,
    FOLD_SQL,
    Collection,
    CollectionEvent,
    Line,
    iiif_json_through,
)
from ocrreview.db_clock import DatabaseNow
from ocrreview.review import actions, queue, search
from ocrreview.review.models import Draft

S = Line.Status
# A preview lists every line's change on one page for a person to read before confirming;
# past some 2,000 lines nobody reads it (and the page grows past a few megabytes), so a larger
# fix is done document by document or status by status.
MAX_LINES = 2000
# A reviewer may fix a name on a few pages; more than this at once is a collection-wide
# decision, for its admins (every replace is in the collection's events and can be undone).
REVIEWER_MAX_LINES = 50
# Lines locked and written per transaction, as when undoing a person's saves: a replace over
# thousands of lines holds no lock for long, and the queue goes on around it.
BATCH = actions.REVERT_BATCH
# Hits listed for a person to tick through on one page; past this a replace is narrowed, as
# past MAX_LINES. It also bounds the fields a confirmation posts (settings'
# DATA_UPLOAD_MAX_NUMBER_FIELDS).
MAX_HITS = 5000
# Lines of a search the results page reads to count the lines with hits in them (all hits,
# ...): a phrase of common words may be found apart in many more lines than together, which
# only a preview, asked for, reads through.
COUNT_READ_MOST = 20_000
# A line that starts with these after a deleted word loses the space before them ("Mr
# Smith, Esq" less "Smith" is "Mr, Esq"), as a closing bracket or quote does.
CLOSING = regex.compile(r"[,.;:!?)\]}»”’…]")
MARK = regex.compile(COMBINING_MARKS)
# Letters and digits that PostgreSQL's parser, whatever its locale, keeps in one word with
# those around them: inside words, a line with a hit holds a word of the vocabulary with each
# such run of the query in it. (Not modifier letters, nor other digits: "x²y" is two words.)
LETTERS = regex.compile(r"[\p{Lu}\p{Ll}\p{Lt}\p{Lo}0-9]+")
# Inside words, a run of letters in more of the vocabulary's words than this is in too many
# lines to look them up by: the lines the filters leave are read instead, as a preview reads
# its candidates, until enough have hits. A run's words are in as many lines or more, so the
# reading stops sooner the more words: of 300,000 words' 55,000 lines, a part in 1,500 words
# had a preview read every line (2 to 3.5 s) where looking its words' lines up took 0.3 s;
# in 5,000 words, it read half the lines (1.1 to 2.3 s), the lookup 0.75 to 1.6 s; in
# 12,000 words, it stopped sooner (0.6 s) than the lookup (1 to 1.5 s). Reading costs more
# in a larger collection, the lookup does not.
INSIDE_WORDS_MOST = 5000
# Inside words, the words whose lines one lookup in the index of the lines' search vectors
# asks for. All at once, in a query of hundreds of words, PostgreSQL took them to be in most
# lines (each word it has no statistics of in up to 0.5 % of them) and read every line rather
# than the index: 21 s for a part in 589 words of a million words' 183,000 lines. Twenty at a
# time, each line found is checked against fewer words: 34 ms for a part's 814 words, where
# one lookup of them all took 100 ms.
LINE_LOOKUP_WORDS = 20
# Inside words, the most lines a group's words (or an alternative's, or every alternative's)
# may be in for their ids to be collected. Past it they are common enough ("tha": that, than,
# thank...) that the lines the filters leave are read in id order until enough have hits, as
# before the lookup (that reading stops early), unless another group of the alternative is in
# fewer lines: a preview wants at most MAX_LINES and one more, a count reads at most
# COUNT_READ_MOST, so more ids than this would be fetched and held per request for nothing.
LINE_LOOKUP_MOST = COUNT_READ_MOST
# Lines whose text a preview reads at a time.
READ_BATCH = 2000
# The vocabulary's words folded, as corpus.models.folded_word() and the trigram index that
# looks up the words holding a run (corpus migration 0025) write them.
FOLDED_WORD_SQL = f"lower({FOLD_SQL.format('word')})"
INSIDE_WORD_INDEX = "search_word_folded_trigram"
# No character from here on changes when lowercased (Adlam's capitals, at U+1E900, are the
# last), so the characters that lowercase to a letter are looked for below it.
CASED_BELOW = 0x20000


class Skip:
    """Why a chosen line was left as it is."""

    GONE = "gone"
    FINAL = "final"
    CHANGED = "changed"
    HITS_CHANGED = "hits_changed"
    CLAIMED = "claimed"
    DRAFT = "draft"
    OWN_DRAFT = "own_draft"
    TOO_LONG = "too_long"
    EMPTY = "empty"

    REASONS = {
        GONE: "the line no longer exists (its box was merged or deleted)",
        FINAL: "its document is final",
        CHANGED: "the line changed since the preview",
        HITS_CHANGED: "the words found in the line are not those of the preview",
        CLAIMED: "someone else is reviewing it now",
        DRAFT: "someone else has unsaved text in it",
        # The replace's save would delete the draft, and the person's typing with it.
        OWN_DRAFT: "you have unsaved text in it: save or discard it, then replace again",
        TOO_LONG: "the line would be longer than a line's text may be",
        EMPTY: "the line would be left with no text (empty a line in the editor)",
    }


@dataclass(frozen=True)
class Options:
    # Off: "stanford" finds "Stanford" (the search's way); on: only as typed.
    match_case: bool = False
    # Off: "eglise" finds "église" and "Messieurs" "Meſſieurs" (the search's way); on: only
    # with the accents and ſ as typed.
    match_accents: bool = False
    # Off: whole words only, "tbe" is not in "tbey"; on: inside words too ("ſ" in "Meſſieurs").
    inside_words: bool = False


class Pattern:
    """The hits of a query in a line's text: each alternative (`or`) a phrase of whole words
    (or, inside_words, starting and ending anywhere in a word), its words apart by any run of
    spaces, matched on the text folded as Options say; lines that hold an excluded `-word` (a
    whole word, as the search leaves it out) have none."""

    def __init__(self, q: str, options: Options = Options()) -> None:
        self.options = options
        self._table = _FoldTable(options)
        alternatives, excluded = _parse(unicodedata.normalize("NFC", q))
        self.alternatives = alternatives
        self.regex = self._compile(alternatives, whole_words=not options.inside_words)
        self.excluded = self._compile(excluded, whole_words=True)

    def hits(self, text: str) -> list[tuple[int, int]]:
        """Where each hit starts and ends in text, left to right, none overlapping (at one
        place the longest alternative wins)."""
        if self.regex is None:
            return []
        origin: list[int] | range
        if text.isascii():
            # Most lines, _fold's first case, here to spare 100,000 lines a call each.
            folded = text if self.options.match_case else text.lower()
            origin = range(len(text))
        else:
            folded, origin = _fold(text, self._table)
        if self.excluded is not None and self.excluded.search(folded):
            return []
        spans: list[tuple[int, int]] = []
        matches = (
            self.regex.finditer(folded)
            if isinstance(origin, range)
            else _whole_characters(self.regex, folded, origin)
        )
        for match in matches:
            start, end = origin[match.start()], origin[match.end() - 1] + 1
            # The marks that folding dropped after the last letter are the hit's ("q̃").
            while end < len(text) and not self._fold_char(text[end]):
                end += 1
            spans.append((start, end))
        return spans

    def _compile(self, phrases: list[list[str]], *, whole_words: bool) -> regex.Pattern | None:
        patterns = []
        for words in phrases:
            folded = [_fold(word, self._table)[0] for word in words]
            folded = [word for word in folded if word]
            if not folded:
                continue
            pattern = r"\s+".join(regex.escape(word) for word in folded)
            if not whole_words:
                # A letter's marks are the letter's: where folding keeps them (accents
                # matched), "q" is not the start of "q̃ue" (nor a Cyrillic or Hebrew letter
                # without its marks).
                pattern += r"(?!\p{M})"
            else:
                if regex.match(r"\w", folded[0]):
                    pattern = r"(?<!\w)" + pattern
                if regex.search(r"\w$", folded[-1]):
                    pattern += r"(?!\w)"
            patterns.append((len(" ".join(folded)), pattern))
        if not patterns:
            return None
        # Longest first: at one place, "John Smith" rather than "John" of "John or John Smith".
        patterns.sort(key=lambda item: -item[0])
        return regex.compile("|".join(f"(?:{pattern})" for _, pattern in patterns))

    def _fold_char(self, char: str) -> str:
        return self._table[char]


def _whole_characters(pattern: regex.Pattern, folded: str, origin: list[int]):
    """pattern's matches in folded, left to right, each of whole characters of the text: one
    character folded into several (ﬁ as f and i, ½ as 1⁄2) is in a hit whole or not at all,
    so that a replace never takes half of it (inside words, "i" is not in "ﬁn")."""
    at = 0
    while True:
        for match in pattern.finditer(folded, at):
            start, end = match.span()
            if (start and origin[start - 1] == origin[start]) or (
                end < len(origin) and origin[end] == origin[end - 1]
            ):
                # Looked for again from the next character, where a hit may start.
                at = start + 1
                break
            yield match
        else:
            return


def _fold(text: str, table: "_FoldTable") -> tuple[str, list[int] | range]:
    """text folded by table, and for each of its characters the index of the one it came
    from."""
    if text.isascii():
        # Most lines: folding changes no letter and lowercasing keeps each in its place.
        return (text if table.options.match_case else text.lower()), range(len(text))
    parts = list(map(table.__getitem__, text))
    if set(map(len, parts)) == {1}:  # é as e, ſ as s: each in its place still
        return "".join(parts), range(len(text))
    origin = [index for index, part in enumerate(parts) for _ in part]
    return "".join(parts), origin


class _FoldTable(dict):
    """Each character folded as Options say, worked out once per character met."""

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.options = options

    def __missing__(self, char: str) -> str:
        folded = char
        if not self.options.match_accents:
            stripped = MARK.sub("", unicodedata.normalize("NFKD", folded))
            # A spacing accent (´ ¨ ˜) decomposes to a space and its mark: folded so, it would
            # find every space, and a replace of "q´" would take "q" and the space after it.
            if char.isspace() or not any(part.isspace() for part in stripped):
                folded = stripped
        self[char] = folded if self.options.match_case else folded.lower()
        return self[char]


def _parse(q: str) -> tuple[list[list[str]], list[list[str]]]:
    """The query's alternatives (split on `or`, as the search splits it), each the words of
    one phrase in order, quoted or not; and the excluded terms (`-word`, `-"a phrase"`)."""
    alternatives: list[list[str]] = [[]]
    excluded: list[list[str]] = []
    for token in search.TOKEN.findall(q):
        if token.startswith("-") and len(token) > 1:
            excluded.append(token[1:].strip('"').split())
        elif token.lower() == "or":
            alternatives.append([])
        else:
            alternatives[-1].extend(token.strip('"').split())
    return [words for words in alternatives if words], [words for words in excluded if words]


def hit_id(line_id: int, version: int, start: int) -> str:
    """How a preview names a hit, and a replace asks for it: its line, the line's version
    then, and where it starts in the text."""
    return f"{line_id}:{version}:{start}"


@dataclass(frozen=True)
class Ticks:
    """Which hits to replace: those listed in `ticked` (None: every hit of the chosen lines),
    less those in `unticked`; each a (line, version, start) a preview answered."""

    ticked: frozenset[tuple[int, int, int]] | None = None
    unticked: frozenset[tuple[int, int, int]] = frozenset()

    def versions(self) -> dict[int, int]:
        """The lines' versions the hits were seen at."""
        return {line: version for line, version, _ in (self.ticked or set()) | self.unticked}

    def lines(self) -> list[int]:
        return sorted({line for line, _, _ in self.ticked or ()})


@dataclass
class Hit:
    start: int
    end: int
    # Whether the replace changes it (ticked), or leaves it (unticked).
    chosen: bool
    id: str
    text: str


@dataclass
class Change:
    line: Line
    # The version the line has (a preview) or had before the replace.
    version: int
    text_before: str
    text_after: str
    # Every hit in the line, chosen or not.
    hits: list[Hit] = field(default_factory=list)

    def pieces(self) -> list[tuple[str, Hit | None]]:
        """The text before, cut into its hits and what lies between them."""
        pieces: list[tuple[str, Hit | None]] = []
        at = 0
        for hit in self.hits:
            pieces += [(self.text_before[at : hit.start], None), (hit.text, hit)]
            at = hit.end
        pieces.append((self.text_before[at:], None))
        return [(text, hit) for text, hit in pieces if text or hit]


@dataclass
class Skipped:
    line_id: int
    reason: str
    line: Line | None = None

    @property
    def because(self) -> str:
        return Skip.REASONS[self.reason]


@dataclass
class Replacement:
    """What a replace did, or would do."""

    changed: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Chosen lines in which nothing would change: no hit in them (found by other words), every
    # hit unticked, or the hits already the replacement.
    unchanged: list[int] = field(default_factory=list)

    # Every hit found in the chosen lines not skipped, ticked or not, by id: what the
    # fingerprint is of.
    found: list[str] = field(default_factory=list)

    @property
    def hits_chosen(self) -> int:
        return sum(hit.chosen for change in self.changed for hit in change.hits)

    @property
    def fingerprint(self) -> str:
        """The hits found, in one word: a replace of every hit but some (`unticked`) given
        the fingerprint of a preview goes on only if the search's hits are still those. Of
        every hit, ticked or not, so that a preview that unticked some (a line's only hit,
        whose line then changes nothing) has the fingerprint of one that unticked none."""
        return hashlib.sha256("\n".join(sorted(self.found)).encode()).hexdigest()[:32]


class HitsChanged(actions.ReviewError):
    """The hits are not those of the preview: lines changed, came or went since."""


def query_problem(q: str) -> str | None:
    """Why q cannot be replaced in, beyond what search refuses; None if it can."""
    if not Pattern(q).alternatives:
        return "Type the words to replace (“-word” only leaves lines out)."
    return None


def line_limit(is_admin: bool) -> int:
    return MAX_LINES if is_admin else REVIEWER_MAX_LINES


def chosen_lines(
    collection: Collection,
    q: str,
    filters: search.Filters,
    line_ids: list[int] | None,
    limit: int,
    options: Options = Options(),
) -> list[int]:
    """The lines to replace in, by id: line_ids (the hits chosen; the caller has checked they
    are the collection's), or every line the search finds with a hit in it where it is None.
    ReviewError past `limit` lines."""
    if line_ids is None:
        line_ids = hit_lines(collection, q, filters, limit + 1, options) or []
    chosen = sorted(set(line_ids))
    if len(chosen) > limit:
        raise actions.ReviewError(
            f"A replace changes at most {limit:,} lines at once; narrow the search (a "
            "document, a status) and replace in each part."
            if limit == MAX_LINES
            else f"Reviewers replace in at most {limit} lines at once; choose fewer hits, or "
            "ask an admin of the collection."
        )
    return chosen


def candidate_lines(
    collection: Collection,
    q: str,
    filters: search.Filters,
    pattern: Pattern,
    read_most: int | None = None,
) -> Iterator[tuple[int, str]]:
    """The lines the filters leave that may hold a hit of pattern, (id, text) in id order,
    read a few thousand at a time: the search's lines for whole words; inside words, those
    vocabulary_lines finds (every line where it cannot tell). A caller that reads no more
    than read_most and one more says so, for the database to stop there."""
    if not pattern.options.inside_words:
        lines = search.matching(collection, q, filters).lines
    else:
        lines = search._filtered(Line.objects.filter(collection=collection), filters)
        holding = vocabulary_lines(collection, pattern)
        if holding is not None:
            return _lines_by_id(lines, holding)
    lines = lines.order_by("pk")
    if read_most is not None:
        lines = lines[: read_most + 1]
    return lines.values_list("pk", "text").iterator(chunk_size=READ_BATCH)


def _lines_by_id(lines: QuerySet[Line], ids: Iterable[int]) -> Iterator[tuple[int, str]]:
    """(id, text) of those of lines whose ids are given, in the ids' order (ascending)."""
    ids = iter(ids)
    while batch := list(itertools.islice(ids, READ_BATCH)):
        yield from lines.filter(pk__in=batch).order_by("pk").values_list("pk", "text")


def vocabulary_lines(collection: Collection, pattern: Pattern) -> list[int] | None:
    """Inside words, the lines that may hold a hit, by id in ascending order: those whose
    stored search vectors hold, for each run of letters of one alternative, a word of
    vocabulary_words (lines_holding). None where every line may, or where they are more than
    LINE_LOOKUP_MOST lines: then every line the filters leave is read, in id order, until
    enough have hits, which costs less than filtering them by their search vectors (each
    line's vector checked against the words, 60 µs a line for one word and 450 µs for a
    thousand, where reading and checking a line's text takes 35 µs)."""
    alternatives = vocabulary_words(collection, pattern)
    return None if alternatives is None else lines_holding(collection, alternatives)


def vocabulary_words(collection: Collection, pattern: Pattern) -> list[list[list[str]]] | None:
    """Inside words, for each alternative that a line may hold, the collection's words
    (SearchWord) with each of its runs of letters (LETTERS) inside them, folded as the hits
    are (in any case: the vocabulary is lowercased): a line holds the alternative only if it
    holds a word of each group. Alternatives with a run in no word are left out (no line
    holds them), and so are runs in more than INSIDE_WORDS_MOST words (too many words to look
    lines up by). None where every line may: an alternative of no such run, or of runs each
    in too many words."""
    table = _FoldTable(dataclasses.replace(pattern.options, match_case=False))
    alternatives = [
        list(dict.fromkeys(run for word in words for run in LETTERS.findall(_fold(word, table)[0])))
        for words in pattern.alternatives
    ]
    if not all(alternatives):
        return None
    runs = list(dict.fromkeys(run for runs in alternatives for run in runs))
    likes = _like_patterns(runs)
    indexed = inside_word_index_available()
    holding = {run: _words_holding(collection, run, *likes[run], table, indexed) for run in runs}
    found = []
    for runs in alternatives:
        if not all(holding[run] for run in runs):
            continue  # a run in no word: no line holds this alternative
        groups = [holding[run] for run in runs if len(holding[run]) <= INSIDE_WORDS_MOST]
        if not groups:
            return None
        found.append(groups)
    return found


def lines_holding(collection: Collection, alternatives: list[list[list[str]]]) -> list[int] | None:
    """The collection's lines, by id in ascending order, that may hold one of the alternatives
    (vocabulary_words): those whose stored search vectors hold a word of each of its groups,
    each group's lines looked up LINE_LOOKUP_WORDS words at a time and merged here. A group
    in more than LINE_LOOKUP_MOST lines is left to the reading of its alternative's other
    groups' lines, which checks their text. None where every group of an alternative, or the
    lines found, are more than LINE_LOOKUP_MOST lines."""
    found: set[int] = set()
    for groups in alternatives:
        holding: set[int] | None = None
        # Fewest words first, most often the fewest lines: an alternative that no line holds
        # stops the sooner.
        for words in sorted(groups, key=len):
            lines = _lines_holding_any(collection, words)
            if lines is None:
                continue
            holding = lines if holding is None else holding & lines
            if not holding:
                break  # no line holds a word of each group so far: the others need no lookup
        if holding is None:
            return None
        found |= holding
        if len(found) > LINE_LOOKUP_MOST:
            return None
    return sorted(found)


def _lines_holding_any(collection: Collection, words: list[str]) -> set[int] | None:
    """The collection's lines that hold one of words, looked up LINE_LOOKUP_WORDS words at a
    time in the index of the lines' search vectors, in one query: each lookup's words are a
    row of an array, which PostgreSQL plans without knowing them, as a lookup of a few lines.
    None where more than LINE_LOOKUP_MOST are found (a line that holds words of two lookups
    counts twice: the query stops there, before reading every line)."""
    chunks = [
        search.lexeme_query([words[start : start + LINE_LOOKUP_WORDS]]).tsquery
        for start in range(0, len(words), LINE_LOOKUP_WORDS)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT line.id FROM unnest(%s::tsquery[]) AS chunk (query) CROSS JOIN LATERAL ("
            "SELECT id FROM corpus_line WHERE collection_id = %s AND search_vector @@ chunk.query"
            ") AS line LIMIT %s",
            [chunks, collection.pk, LINE_LOOKUP_MOST + 1],
        )
        rows = cursor.fetchall()
    return None if len(rows) > LINE_LOOKUP_MOST else {pk for (pk,) in rows}


def inside_word_index_available() -> bool:
    """Whether the server has the trigram index of the words folded (corpus migration 0025:
    not on the embedded PostgreSQL, which has no pg_trgm), and it is valid."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid "
            "WHERE relname = %s AND indisvalid",
            [INSIDE_WORD_INDEX],
        )
        return cursor.fetchone() is not None


def _words_holding(
    collection: Collection, run: str, like: str, trigrams: bool, table: "_FoldTable", indexed: bool
) -> list[str]:
    """The vocabulary's words with run inside them once folded by table, as many as
    INSIDE_WORDS_MOST and one more (one more is too many to look lines up by). The database
    finds the words whose folded form is like `like` (_like_patterns: every such word, and
    perhaps a few more), by the trigram index where the pattern has a trigram; each is then
    folded here, as the hits are, and kept if it holds run."""
    if indexed and trigrams:
        matched = f"{FOLDED_WORD_SQL} LIKE %s"
    else:
        # Without a trigram to look up, every word is read: an ASCII word's folded form is
        # its lowercase (NFKD changes no ASCII letter), which costs a fifth of folding it.
        matched = (
            "CASE WHEN octet_length(word) = char_length(word) THEN lower(word) LIKE %s "
            f"ELSE {FOLDED_WORD_SQL} LIKE %s END"
        )
    found: list[str] = []
    seen: set[str] = set()
    # A cursor that streams inside a transaction (held, it would read every row first): a run
    # in many words stops once it is in too many.
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT word FROM corpus_searchword WHERE collection_id = %s AND {matched}",
            [collection.pk, *[like] * matched.count("%s")],
        )
        while rows := cursor.fetchmany(5000):
            for (word,) in rows:
                # The same word twice, as two saves at once may add it (SearchWord), counts once.
                if word in seen:
                    continue
                seen.add(word)
                if run in _fold(word, table)[0]:
                    found.append(word)
                    if len(found) > INSIDE_WORDS_MOST:
                        return found
    return found


def _like_patterns(runs: list[str]) -> dict[str, tuple[str, bool]]:
    """For each run, a LIKE pattern on the words folded in SQL that every word with the run
    inside it once folded here matches, and whether the pattern holds a trigram the index can
    look up (three letters in a row).

    PostgreSQL lowercases as its locale says, Python as Unicode does: a C locale leaves "Ω"
    as it is, an ICU one writes a final σ as ς, and ﱞ (whose NFKD starts with a space) is
    kept by the hits' folding but not by SQL's. So a letter of the run stands for itself in
    the pattern only where the database folds every character that Python lowercases to it
    (É and é for é, K and the Kelvin sign for k) to one same letter, alone and between
    others; any other letter is left to `%`, and the words found are checked here."""
    chars = sorted(set("".join(runs)))
    sources = {char: {char, *_lowercased_from().get(char, "")} for char in chars}
    every = sorted(set().union(*sources.values()))
    folds = ", ".join(f"lower({FOLD_SQL.format(text)})" for text in ("c", "'a' || c", "c || 'a'"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c, {folds} FROM unnest(%s::text[]) AS c", [every])
        folded = {c: tuple(rest) for c, *rest in cursor.fetchall()}
    letters: dict[str, str | None] = {}
    for char in chars:
        answers = {folded[source] for source in sources[char]}
        alone, after, before = next(iter(answers))
        same = len(answers) == 1 and len(alone) == 1
        letters[char] = alone if same and (after, before) == ("a" + alone, alone + "a") else None
    patterns = {}
    for run in runs:
        # Any characters before and after the run, and for each letter left to them (once
        # for several in a row).
        pieces, in_a_row, longest = ["%"], 0, 0
        for letter in [letters[char] for char in run] + [None]:
            if letter is None:
                if pieces[-1] != "%":
                    pieces.append("%")
                in_a_row = 0
            else:
                pieces.append(_like_escaped(letter))
                in_a_row = in_a_row + 1 if letter.isalnum() else 0
                longest = max(longest, in_a_row)
        patterns[run] = ("".join(pieces), longest >= 3)
    return patterns


def _like_escaped(text: str) -> str:
    """text matched as it is by LIKE, whose escape character is the backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@functools.cache
def _lowercased_from() -> dict[str, str]:
    """For each character, the other characters whose str.lower() holds it ("I" and "İ" for
    "i"). None past CASED_BELOW changes when lowercased (a test checks it)."""
    found: dict[str, str] = {}
    for char in map(chr, range(CASED_BELOW)):
        lowered = char.lower()
        if lowered != char:
            for part in set(lowered):
                found[part] = found.get(part, "") + char
    return found


def hit_lines(
    collection: Collection,
    q: str,
    filters: search.Filters,
    most: int,
    options: Options = Options(),
    *,
    read_most: int | None = None,
) -> list[int] | None:
    """The first `most` lines, by id, that the search finds with a hit in them; None where
    read_most lines were read without finding as many (a page that only counts them stops
    there)."""
    pattern, found = Pattern(q, options), []
    # The candidates hold the phrase's words, not always side by side: read in id order
    # until enough have hits.
    rows = candidate_lines(collection, q, filters, pattern, read_most)
    for read, (pk, text) in enumerate(rows, start=1):
        if read_most is not None and read > read_most:
            return None
        if pattern.hits(text):
            found.append(pk)
            if len(found) >= most:
                break
    return found


def clean_replacement(replacement: str) -> str:
    """The replacement as a saved text is kept: NFC, tabs as spaces, invisible marks gone. An
    empty one deletes the words found (the caller asks the person to confirm that)."""
    return actions.clean_text(replacement).strip()


def replaced(text: str, spans: Iterable[tuple[int, int]], replacement: str) -> str:
    """text with each span replaced. An empty replacement deletes the span and one of the
    spaces around it, so that no double space, space at either end or space before a comma
    is left where a word was."""
    parts, at = [], 0
    for start, end in spans:
        parts.append(text[at:start])
        at = end
    parts.append(text[at:])
    if replacement:
        return replacement.join(parts)
    out = parts[0]
    for part in parts[1:]:
        if not out.strip() or (out[-1:].isspace() and part[:1].isspace()):
            part = part.lstrip()
        elif not part or CLOSING.match(part):
            out = out.rstrip()
        out += part
    return out


def replace_preview(
    collection: Collection,
    user,
    q: str,
    filters: search.Filters,
    line_ids: list[int],
    replacement: str,
    *,
    options: Options = Options(),
    ticks: Ticks = Ticks(),
) -> Replacement:
    """What do_replace would do now. Nothing is locked: do_replace decides again."""
    result = Replacement()
    pattern, versions = Pattern(q, options), ticks.versions()
    for start in range(0, len(line_ids), BATCH):
        batch = line_ids[start : start + BATCH]
        _plan(result, collection, user, pattern, filters, batch, replacement, versions, ticks)
    return result


def do_replace(
    collection: Collection,
    user,
    q: str,
    filters: search.Filters,
    line_ids: list[int],
    replacement: str,
    *,
    options: Options = Options(),
    versions: dict[int, int] | None = None,
    ticks: Ticks = Ticks(),
    fingerprint: str | None = None,
) -> Replacement:
    """Replace the hits of q in these lines (chosen_lines) that ticks choose with the
    replacement, as user's saves, a batch at a time. versions: the lines' versions the person
    saw in the preview (the ticks' own are added); a line at another one now is skipped, as is
    one whose hits are not those the ticks name. fingerprint: a preview's (with these ticks or
    none); HitsChanged, and nothing done, where the hits now are not those, and the lines are
    held to the versions they have now, as if sent. Recorded once in the collection's
    events (`query`, `replacement`, `lines` changed, `skipped`; the document's `title` where it
    was one's)."""
    result = Replacement()
    if fingerprint is not None:
        now = replace_preview(
            collection, user, q, filters, line_ids, replacement, options=options, ticks=ticks
        )
        if now.fingerprint != fingerprint:
            raise HitsChanged(
                "The hits are not those of the preview (lines were changed, added or freed "
                "since): preview again."
            )
        line_ids = [change.line.pk for change in now.changed]
        versions = {**{c.line.pk: c.version for c in now.changed}, **(versions or {})}
        # Lines the check found nothing to change in or left alone are not read again, but
        # answered.
        result.unchanged, result.skipped = now.unchanged, now.skipped
    pattern = Pattern(q, options)
    seen = {**(versions or {}), **ticks.versions()}
    try:
        for start in range(0, len(line_ids), BATCH):
            with transaction.atomic():
                batch = line_ids[start : start + BATCH]
                # Locked in id order, as every batch of every undo, so that two at once take
                # turns rather than deadlock. A save or a claim that comes after waits for the
                # batch and finds the line changed; one that came before is seen here.
                list(
                    Line.objects.select_for_update(of=("self",))
                    .filter(pk__in=batch)
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
                planned = _plan(
                    result, collection, user, pattern, filters, batch, replacement, seen, ticks
                )
                for change in planned:
                    line = change.line
                    try:
                        correction = actions._write_text(
                            line.pk,
                            user,
                            text=change.text_after,
                            action=actions.A.EDIT,
                            expected_version=change.version,
                            # A replace fixes words, not the whole line: a line nobody checked
                            # stays in the queue, with the fix in it.
                            status=S.NEEDS_REVIEW if line.status == S.IN_REVIEW else line.status,
                            # A person's fix, which a model's reading of the line must not undo.
                            human=True,
                        )
                    except actions.DocumentFinal:
                        # The save's own refusal (a document made final meanwhile).
                        result.changed.remove(change)
                        result.skipped.append(Skipped(line.pk, Skip.FINAL, line))
                        continue
                    line.text, line.version = correction.text_after, correction.line_version
    finally:
        # Once for the whole replace, for what was committed, even where a later batch failed.
        if result.changed:
            record_event(
                collection,
                CollectionEvent.Type.TEXT_REPLACED,
                actor=user,
                document=filters.document,
                query=q,
                replacement=replacement,
                lines=len(result.changed),
                skipped=len(result.skipped),
            )
    return result


def _plan(
    result: Replacement,
    collection: Collection,
    user,
    pattern: Pattern,
    filters: search.Filters,
    batch: list[int],
    replacement: str,
    versions: dict[int, int] | None,
    ticks: Ticks,
) -> list[Change]:
    """Decide for each line of the batch whether and how it changes, add each to result, and
    return the changes."""
    lines = (
        Line.objects.filter(pk__in=batch, collection=collection)
        .select_related("document", "page")
        .defer("search_vector", *iiif_json_through("document"))
        # Whether a colleague's lease is live, by the clock that wrote it (db_clock).
        .annotate(database_now=DatabaseNow())
        .in_bulk()
    )
    # Lines the search's filters no longer leave (a status filter, a line moved) are not hits.
    filtered = set(
        search._filtered(Line.objects.filter(pk__in=batch), filters).values_list("pk", flat=True)
    )
    drafters: dict[int, set[int]] = {}
    for line_id, drafter in Draft.objects.filter(line_id__in=batch).values_list("line_id", "user"):
        drafters.setdefault(line_id, set()).add(drafter)
    changes = []
    for line_id in batch:
        line = lines.get(line_id)
        reason = _refusal(line, user, versions, drafters.get(line_id, set()))
        if reason:
            result.skipped.append(Skipped(line_id, reason, line))
            continue
        assert line is not None
        spans = pattern.hits(line.text) if line_id in filtered else []
        named = {
            start
            for line_pk, _, start in (ticks.ticked or set()) | ticks.unticked
            if line_pk == line_id
        }
        if named - {start for start, _ in spans}:
            # The version is the preview's, so the text is: the hits it named are not the
            # ones found now (a request that named others), and nothing is guessed.
            result.skipped.append(Skipped(line_id, Skip.HITS_CHANGED, line))
            continue
        hits = [
            Hit(
                start,
                end,
                _chosen(ticks, (line_id, line.version, start)),
                hit_id(line_id, line.version, start),
                line.text[start:end],
            )
            for start, end in spans
        ]
        result.found += [hit.id for hit in hits]
        chosen = [(hit.start, hit.end) for hit in hits if hit.chosen]
        if not chosen:
            result.unchanged.append(line_id)
            continue
        try:
            after = actions.clean_text(replaced(line.text, chosen, replacement))
        except actions.ReviewError:
            result.skipped.append(Skipped(line_id, Skip.TOO_LONG, line))
            continue
        if after == line.text:
            result.unchanged.append(line_id)
            continue
        if not after.strip():
            result.skipped.append(Skipped(line_id, Skip.EMPTY, line))
            continue
        change = Change(line, line.version, line.text, after, hits)
        changes.append(change)
        result.changed.append(change)
    return changes


def _chosen(ticks: Ticks, key: tuple[int, int, int]) -> bool:
    return (ticks.ticked is None or key in ticks.ticked) and key not in ticks.unticked


def _refusal(
    line: Line | None, user, versions: dict[int, int] | None, drafters: set[int]
) -> str | None:
    if line is None:
        return Skip.GONE
    if line.document.is_final:
        return Skip.FINAL
    if versions and line.pk in versions and versions[line.pk] != line.version:
        return Skip.CHANGED
    if queue.held_by_other(
        line.status, line.claimed_by_id, line.claimed_until, user, line.database_now
    ):
        return Skip.CLAIMED
    if drafters - {user.pk}:
        return Skip.DRAFT
    if drafters:
        return Skip.OWN_DRAFT
    return None

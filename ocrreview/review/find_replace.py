"""Find and replace across a collection's lines, from the search results: the words a search
found in the chosen hits (as the results mark them: exact, with other accents or ſ, or
similar words) become the replacement, each changed line an ordinary save of the person's
(an edit in its history, so that undoing their saves undoes it), with the line's version
checked. Lines that someone else holds or has unsaved text in, lines of a final document and
lines changed since the preview are skipped and listed, never overwritten.

The replacement stands for whole words, one matched word at a time: a query of several words
(`John Smith`, a "quoted phrase") finds lines where they are apart as well as together, so
replacing each of them with the same text would garble the line. A replace therefore takes one
word, or words joined by `or` (`Stanfora or Stancord`), and `-word` to leave lines out."""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet

from ocrreview.corpus.audit import record_event
from ocrreview.corpus.models import Collection, CollectionEvent, Line
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


class Skip:
    """Why a chosen line was left as it is."""

    GONE = "gone"
    FINAL = "final"
    CHANGED = "changed"
    CLAIMED = "claimed"
    DRAFT = "draft"
    TOO_LONG = "too_long"

    REASONS = {
        GONE: "the line no longer exists (its box was merged or deleted)",
        FINAL: "its document is final",
        CHANGED: "the line changed since the preview",
        CLAIMED: "someone else is reviewing it now",
        DRAFT: "someone else has unsaved text in it",
        TOO_LONG: "the line would be longer than a line's text may be",
    }


@dataclass
class Change:
    line: Line
    # The version the line has (a preview) or had before the replace.
    version: int
    text_before: str
    text_after: str


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
    # Chosen lines in which no word would change (found by other words, or already so).
    unchanged: list[int] = field(default_factory=list)


def query_problem(q: str) -> str | None:
    """Why q cannot be replaced in, beyond what search refuses; None if it can."""
    clauses, _ = search._fuzzy_clauses(q)
    for words, phrases in clauses:
        if phrases or not search.WORD.fullmatch(words):
            return (
                "Replace one word at a time (or words joined by “or”): several words, a "
                "phrase, or a word the search reads as several (“Stancord's” is “Stancord” "
                "and “s”) would each be replaced."
            )
    return None


def line_limit(is_admin: bool) -> int:
    return MAX_LINES if is_admin else REVIEWER_MAX_LINES


def chosen_lines(
    collection: Collection, q: str, filters: search.Filters, line_ids: list[int] | None, limit: int
) -> list[int]:
    """The lines to replace in, by id: line_ids (the hits chosen; the caller has checked they
    are the collection's), or every hit where it is None. ReviewError past `limit` lines."""
    if line_ids is None:
        line_ids = search.matching(collection, q, filters).lines.values_list("pk", flat=True)
        line_ids = line_ids[: limit + 1]
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


def clean_replacement(replacement: str) -> str:
    """The replacement as a saved text is kept: NFC, tabs as spaces, invisible marks gone."""
    replacement = actions.clean_text(replacement).strip()
    if not replacement:
        raise actions.ReviewError("Type the text to replace the words with.")
    return replacement


def replaced(text: str, headline: str, replacement: str) -> str:
    """text with each word the headline marks replaced, in the text's own spelling (a word
    found folded is replaced where the line spells it with its accents or ſ)."""
    return "".join(
        replacement if match else part for part, match in search.fragments(text, headline)
    )


def replace_preview(
    collection: Collection,
    user,
    q: str,
    filters: search.Filters,
    line_ids: list[int],
    replacement: str,
) -> Replacement:
    """What do_replace would do now. Nothing is locked: do_replace decides again."""
    result = Replacement()
    found = _found(collection, q, filters)
    for start in range(0, len(line_ids), BATCH):
        _plan(result, collection, user, found, line_ids[start : start + BATCH], replacement)
    return result


def do_replace(
    collection: Collection,
    user,
    q: str,
    filters: search.Filters,
    line_ids: list[int],
    replacement: str,
    *,
    versions: dict[int, int] | None = None,
) -> Replacement:
    """Replace the words q finds in these lines (chosen_lines) with the replacement, as user's
    saves, a batch at a time. versions: the lines' versions the person saw in the preview; a
    line at another one now is skipped. Recorded once in the collection's events (`query`,
    `replacement`, `lines` changed, `skipped`; the document's `title` where it was one's)."""
    result = Replacement()
    found = _found(collection, q, filters)
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
                for change in _plan(result, collection, user, found, batch, replacement, versions):
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


def _found(collection: Collection, q: str, filters: search.Filters) -> QuerySet[Line]:
    """The search's lines with every match marked in their headlines. Building it looks up the
    query's folded and similar words in the collection's vocabulary, once for the whole replace;
    each batch then asks only for its own lines' headlines."""
    return search.with_headlines(search.matching(collection, q, filters), highlight_all=True)


def _plan(
    result: Replacement,
    collection: Collection,
    user,
    found: QuerySet[Line],
    batch: list[int],
    replacement: str,
    versions: dict[int, int] | None = None,
) -> list[Change]:
    """Decide for each line of the batch whether and how it changes (found: _found's lines),
    add each to result, and return the changes."""
    headlines = dict(found.filter(pk__in=batch).values_list("pk", "headline"))
    lines = (
        Line.objects.filter(pk__in=batch, collection=collection)
        .select_related("document", "page")
        .defer("search_vector", "document__iiif_canvases", "document__iiif_descriptive")
        .in_bulk()
    )
    drafted = set(
        Draft.objects.filter(line_id__in=batch).exclude(user=user).values_list("line_id", flat=True)
    )
    changes = []
    for line_id in batch:
        line = lines.get(line_id)
        reason = _refusal(line, user, versions, drafted)
        if reason:
            result.skipped.append(Skipped(line_id, reason, line))
            continue
        if line_id not in headlines:  # no longer found by the search
            result.unchanged.append(line_id)
            continue
        try:
            after = actions.clean_text(replaced(line.text, headlines[line_id], replacement))
        except actions.ReviewError:
            result.skipped.append(Skipped(line_id, Skip.TOO_LONG, line))
            continue
        if after == line.text:
            result.unchanged.append(line_id)
            continue
        change = Change(line, line.version, line.text, after)
        changes.append(change)
        result.changed.append(change)
    return changes


def _refusal(line: Line | None, user, versions: dict[int, int] | None, drafted) -> str | None:
    if line is None:
        return Skip.GONE
    if line.document.is_final:
        return Skip.FINAL
    if versions is not None and versions.get(line.pk) != line.version:
        return Skip.CHANGED
    if queue.held_by_other(line.status, line.claimed_by_id, line.claimed_until, user):
        return Skip.CLAIMED
    if line.pk in drafted:
        return Skip.DRAFT
    return None

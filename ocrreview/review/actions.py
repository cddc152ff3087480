"""Every change a reviewer makes, as plain functions (Zulip's do_* style). The views, and the
export/retraining code that writes corrections "through the review code path", call these,
so each change is checked against the line's version and lands in the Correction trail the
same way. They take a Line or a line id, the acting user, and the version the caller saw."""

import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, ExpressionWrapper, F, Q, QuerySet, TextChoices
from django.db.models.functions import Cast, Substr
from django.utils import timezone

from ocrreview.corpus.audit import member_label, record_event
from ocrreview.corpus.line_text import typed_line_text
from ocrreview.corpus.models import Collection, CollectionEvent, Document, Line, Page
from ocrreview.corpus.reading_order import reading_order
from ocrreview.corpus.workflow import final_refusal, in_final_document
from ocrreview.db_clock import DatabaseNow, database_now, database_now_plus
from ocrreview.review import queue
from ocrreview.review.models import Correction, Draft, ReviewerPreference
from ocrreview.transcription.models import Hypothesis
from ocrreview.transcription.services import do_queue_recognition, finish_documents

S = Line.Status
A = Correction.Action
# What _SAVE records: the answers that set a line's text.
SAVES = (A.ACCEPT, A.EDIT, A.PICK)
# Records that change neither a line's text nor its version.
TEXT_KEPT = (A.SKIP, A.UNCLEAR, A.CLEAR, A.IMPORT_UNCLEAR)
# The records that set or take off a line's unclear mark: the last one says where the mark
# the line has came from.
MARKS = (A.UNCLEAR, A.CLEAR, A.IMPORT_UNCLEAR)
# A client clock gone wrong should not turn one line into a week of work in the statistics.
MAX_TIME_SPENT_MS = 60 * 60 * 1000


class ReviewError(ValueError):
    """A request that cannot be carried out, with a message fit to show the reviewer."""


class DocumentFinal(ReviewError):
    """The line's document is final, so its lines are locked (corpus/workflow.py)."""


LINE_GONE = "This line no longer exists (its box was merged or deleted)."
UNCLEAR_NOTE_LENGTH = 200
EMPTY_REFUSED = (
    "The text is empty, so nothing was saved. To save the line empty (a box with no writing "
    "in it), confirm it in the line editor or the page view: Enter twice."
)


class VersionConflict(Exception):
    """The line changed since the caller read it. Carries the line as it is now and the text
    the caller tried to save, so both can be shown and the reviewer can choose."""

    def __init__(self, line: Line, attempted_text: str):
        super().__init__(f"line {line.pk} is at version {line.version}")
        self.line = line
        self.attempted_text = attempted_text


def last_change(line: Line) -> dict:
    """What made the line's current version, to tell a reviewer whose save it refused: the
    correction that did (`last`), or else a model's reading written last (`reading`); a box
    moved or a threshold applied since is neither, and is not named (`{}`), so that a
    reviewer is not blamed for a text they never wrote."""
    last = (
        Correction.objects.filter(line=line, line_version=line.version)
        .exclude(action__in=TEXT_KEPT)  # they change no version
        .select_related("user")
        .order_by("-created_at", "-id")
        .first()
    )
    if last is not None:
        return {"last": last}
    reading = (
        Hypothesis.objects.filter(line=line, model_version_id=line.model_version_id, rank=0)
        .select_related("model_version")
        .first()
    )
    # A reading writes its hypotheses and the line at one moment.
    if reading is not None and reading.created_at >= line.updated_at:
        return {"reading": reading}
    return {}


def _line_id(line: Line | int) -> int:
    return line.pk if isinstance(line, Line) else int(line)


def clean_text(text: str) -> str:
    if not isinstance(text, str):
        raise ReviewError("The text must be a string.")
    try:
        return typed_line_text(text)
    except ValueError as exc:
        raise ReviewError(str(exc)) from None


def _clamp_time(time_spent_ms: int) -> int:
    return max(0, min(int(time_spent_ms), MAX_TIME_SPENT_MS))


def _lease_seconds() -> int:
    return settings.OCRREVIEW_LEASE_SECONDS


def _lease_end() -> ExpressionWrapper:
    # By the database's clock, as every lease is compared: two web servers' clocks differ.
    return database_now_plus(_lease_seconds())


def _lease_end_now() -> datetime:
    """_lease_end as a value, for a page view that is told when its leases run out."""
    return database_now() + timedelta(seconds=_lease_seconds())


# --- Leases -----------------------------------------------------------------------------


def do_claim_next_line(
    collection: Collection | int,
    user,
    *,
    document_id: int | None = None,
    order: str = queue.QueueOrder.CONFIDENCE,
    exclude: Sequence[int] = (),
) -> int | None:
    """Give the reviewer the next line that needs a human, leased to them, or None when the
    queue is empty. A line the reviewer already holds comes back first."""
    sql, params = _claim(collection, user, document_id, order, exclude)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def do_claim_and_open_next_line(
    collection: Collection | int,
    user,
    *,
    document_id: int | None = None,
    order: str = queue.QueueOrder.CONFIDENCE,
    exclude: Sequence[int] = (),
) -> queue.EditorLine | None:
    """do_claim_next_line and the editor's view of the line it claims, in one statement."""
    claim, params = _claim(collection, user, document_id, order, exclude)
    with connection.cursor() as cursor:
        cursor.execute(queue.editor_line_sql(claim), params)
        row = cursor.fetchone()
    return queue.editor_line_from_row(row, user) if row else None


def _claim(collection, user, document_id, order, exclude) -> tuple[str, dict]:
    params = {
        "user": user.pk,
        "lease": _lease_seconds(),
        "collection": collection.pk if isinstance(collection, Collection) else collection,
        "document": document_id,
        "exclude": list(exclude),
    }
    sql = queue.claim_sql(order, by_document=document_id is not None, excluding=bool(exclude))
    return sql, params


def do_claim_line(line: Line | int, user) -> bool:
    """Lease one particular line (the reviewer opened it directly) if nobody else holds it.
    One lease at a time: lines of the collection this reviewer opened before and left without
    a word typed (glanced at with Alt+Up, opened from search) go back to the queue, rather
    than coming back first from it (a skipped line among them) and being kept from colleagues
    until their lease runs out. A line holding their draft stays theirs. A final document's
    lines are not claimed: nobody works on them."""
    line_id = _line_id(line)
    # Read apart: a join in the update below would take its rows from the statement's
    # snapshot, and a colleague's claim committed meanwhile would not stop it.
    if Line.objects.filter(in_final_document(), pk=line_id).exists():
        return False
    with transaction.atomic():
        claimed = Line.objects.filter(_claimable(user), pk=line_id).update(
            status=S.IN_REVIEW, claimed_by=user, claimed_until=_lease_end(), page_view_claim=None
        )
        if claimed:
            _release_untyped(
                user,
                Line.objects.filter(pk=line_id).values("collection_id")[:1],
                keeping=Q(pk=line_id),
            )
    return bool(claimed)


def _release_untyped(user, collection_id, *, keeping: Q) -> None:
    """Hand back to the queue the lines of the collection the reviewer holds and has typed
    nothing into, but those `keeping` names."""
    Line.objects.filter(collection_id=collection_id, status=S.IN_REVIEW, claimed_by=user).exclude(
        keeping
    ).exclude(drafts__user=user).update(status=S.NEEDS_REVIEW, claimed_by=None, claimed_until=None)


def _claimable(user) -> Q:
    return _free() | Q(status=S.IN_REVIEW, claimed_by=user)


def _free() -> Q:
    """Waiting, or held by a lease that ran out."""
    return Q(status=S.NEEDS_REVIEW) | Q(status=S.IN_REVIEW, claimed_until__lt=DatabaseNow())


def do_renew_lease(line: Line | int, user) -> bool:
    """Keep the line while the reviewer types. False when the lease was lost meanwhile."""
    return bool(
        Line.objects.filter(pk=_line_id(line), status=S.IN_REVIEW, claimed_by=user).update(
            claimed_until=_lease_end()
        )
    )


def new_page_view_claim() -> uuid.UUID:
    """A claim for one opening of the page view, laid out as a UUIDv7 from the database's
    clock (to the microsecond, then random bits), so that claims sort by when they were made:
    of two page views of one reviewer on a page, the later keeps the lines (do_claim_page).
    The database's clock, not the web server's: two web servers' clocks differ."""
    micros = (database_now() - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    millis, rest = divmod(micros, 1000)
    return uuid.UUID(
        int=(millis << 80)
        | (0x7 << 76)
        | (rest * 4096 // 1000 << 64)
        | (0b10 << 62)
        | secrets.randbits(62)
    )


# How far after the database's now a claim may be dated: new_page_view_claim dated it by
# that clock, earlier, so only the clock stepping back (NTP) makes it later.
CLAIM_CLOCK_TOLERANCE = timedelta(seconds=60)


def claim_dated_after_now(claim: uuid.UUID) -> bool:
    """A claim no new_page_view_claim made: dated after the database's now. Such a claim,
    forged or sent from a client with its own idea of the time, would sort after every page
    view of the reviewer opened until that date, and hold the page's lines against them."""
    if not _ordered(claim):
        return False
    # In milliseconds: the latest a claim can be dated is after the year 9999.
    latest = (database_now() + CLAIM_CLOCK_TOLERANCE).timestamp() * 1000
    return claim.int >> 80 > latest


def _ordered(claim: uuid.UUID) -> bool:
    """Made by new_page_view_claim. The page views opened before it (a random UUID4 each)
    are older than any that are. The version's digit alone, as _ORDERED_CLAIM reads it in
    SQL: UUID.version is None for a UUID of another variant, which SQL would still order."""
    return (claim.int >> 76) & 0xF == 7


# The claims new_page_view_claim makes: the version digit of a UUID's text.
_ORDERED_CLAIM = Q(claim_version="7")


def _page_lines(page: Page) -> QuerySet:
    return Line.objects.alias(
        claim_version=Substr(Cast("page_view_claim", CharField()), 15, 1)
    ).filter(page_id=page.pk)


def _held_by_page_views(user) -> Q:
    return Q(status=S.IN_REVIEW, claimed_by=user, page_view_claim__isnull=False)


def _newer_than(claim: uuid.UUID) -> Q:
    if _ordered(claim):
        return _ORDERED_CLAIM & Q(page_view_claim__gt=claim)
    return _ORDERED_CLAIM


def _older_than(claim: uuid.UUID) -> Q:
    if _ordered(claim):
        return ~_ORDERED_CLAIM | Q(page_view_claim__lt=claim)
    # Two page views opened before ordered claims keep each their own lines.
    return Q(pk__in=[])


@dataclass(frozen=True)
class PageViewLeases:
    until: datetime | None  # when its leases run out, by the database's clock
    # A later page view of the same reviewer on this page holds its lines: `mine_elsewhere`.
    superseded: bool = False
    mine_elsewhere: dict[int, datetime] = field(default_factory=dict)


def do_claim_page(page: Page, user, *, claim: uuid.UUID, opening: bool) -> PageViewLeases | None:
    """Lease to the reviewer every line of the page that waits for a human and that nobody
    else holds, and renew those this page view holds: in the page view every line is
    editable, so the queue must not hand them to a colleague meanwhile. A line a colleague
    holds stays theirs. `claim` names this page view (one opening of the page, in one tab):
    the lines it holds are those it may hand back (do_release_page).

    Of the reviewer's page views of the page, the one opened last (the later claim,
    new_page_view_claim) holds the lines: it takes over those an earlier one holds (the page
    before a reload, which hands back only its own; a tab left open), and an earlier one,
    while a later one holds live lines, takes and renews nothing and is told (`superseded`,
    the lines the later one holds), until the reviewer takes the lines back to it with a new
    claim. Two tabs never take each other's lines turn about, and closing the older one
    hands back nothing the newer one shows. It never takes a line the reviewer holds for
    itself (open in the line editor, in another tab or left for this page view by Alt+G):
    that one it renews but never hands back, since the editor leaves a line without handing
    it back. `opening` the page (rather than renewing from it) hands back the other lines of
    the collection the reviewer left untyped, as opening one line does (one lease at a time).
    None for a final document's page, whose lines nobody works on.

    One UPDATE, with no join: on a line a colleague's claim (or another page view's) has
    locked it waits, then checks the line again as that claim left it, and passes it over.
    Whether a later tab holds the lines is asked again after it: a later tab that committed
    after the first asking took what this UPDATE then passed over."""
    if _final(page):
        return None
    until = _lease_end_now()
    try:
        with transaction.atomic():
            _check_no_later_tab(page, user, claim)
            # Each condition on the row itself (no subquery), so that a line another page view
            # took meanwhile is checked again as it left it.
            mine = _held_by_page_views(user) & (Q(page_view_claim=claim) | _older_than(claim))
            _page_lines(page).filter(_free() | mine).update(
                status=S.IN_REVIEW, claimed_by=user, claimed_until=until, page_view_claim=claim
            )
            # Again: a later tab whose claim committed after the check above (the UPDATE
            # waited on its lines, or began after it) left this one nothing to take.
            _check_no_later_tab(page, user, claim)
            _renew_unclaimed(page, user, until)
            if opening:
                _release_untyped(user, page.document.collection_id, keeping=Q(page_id=page.pk))
    except _Superseded as superseded:
        return PageViewLeases(until=None, superseded=True, mine_elsewhere=superseded.later)
    return PageViewLeases(until=until)


class _Superseded(Exception):
    """A later page view of the reviewer holds live lines of the page: what this one took
    goes back (its transaction is rolled back)."""

    def __init__(self, later: dict[int, datetime]):
        super().__init__()
        self.later = later


def _check_no_later_tab(page: Page, user, claim: uuid.UUID) -> None:
    later = dict(
        _page_lines(page)
        .filter(_held_by_page_views(user), _newer_than(claim))
        .filter(claimed_until__gt=DatabaseNow())
        .order_by()
        .values_list("pk", "claimed_until")
    )
    if later:
        raise _Superseded(later)


def _renew_unclaimed(page: Page, user, until: datetime) -> None:
    """The reviewer's lines of the page that no page view claims: those open in the line
    editor, or taken by a page view from before claims."""
    Line.objects.filter(
        page_id=page.pk, status=S.IN_REVIEW, claimed_by=user, page_view_claim__isnull=True
    ).update(claimed_until=until)


def _final(page: Page) -> bool:
    """A final document's page, whose lines nobody works on."""
    return Document.objects.filter(
        pk=page.document_id, review_state=Document.ReviewState.FINAL
    ).exists()


def do_renew_page_unclaimed(page: Page, user) -> datetime | None:
    """A renewal from a page view loaded before page views had claims (its page.js, in a tab
    left open over a deploy, names none, and ignores a refusal: its lines would run out
    under the reviewer). It renews the reviewer's lines of the page that no page view claims
    (those that page view took, and any open in the line editor: renewing those keeps them
    for the same reviewer) and takes nothing: not a colleague's line, nor a line a page view
    of the reviewer claims, which that page view keeps. When they run out by the database's
    clock; None for a final document's page."""
    if _final(page):
        return None
    until = _lease_end_now()
    _renew_unclaimed(page, user, until)
    return until


def do_release_page(page: Page, user, *, claim: uuid.UUID, keep: Sequence[int] = ()) -> int:
    """The reviewer left the page view `claim`: the lines it holds go back to the queue, but
    those they typed into (their draft keeps the line theirs until its lease runs out), and
    `keep`, whose draft the page sent as it went, maybe after this. Lines another page view
    took since (a reload of the page, whose claim may well come before this release arrives)
    or that the reviewer opened in the line editor are not its own."""
    return (
        Line.objects.filter(
            page_id=page.pk, status=S.IN_REVIEW, claimed_by=user, page_view_claim=claim
        )
        .exclude(drafts__user=user)
        .exclude(pk__in=keep)
        .update(status=S.NEEDS_REVIEW, claimed_by=None, claimed_until=None, page_view_claim=None)
    )


def do_set_queue_order(user, order: str) -> None:
    if order not in ReviewerPreference.QueueOrder.values:
        raise ReviewError(f"Unknown queue order {order!r}.")
    ReviewerPreference.objects.update_or_create(user=user, defaults={"queue_order": order})


def do_apply_threshold(collection: Collection, threshold: float, *, actor) -> dict[str, int]:
    """Set a collection's threshold and route its machine-read lines by it: lines below go to
    reviewers, lines at or above are accepted. Lines a human holds, has reviewed, or has
    typed a fix into (a draft, kept when they skipped the line) stay, and so do a final
    document's: it was published as it is, and is in no queue (queue.threshold_preview
    counts them apart)."""
    if not 0.0 <= threshold <= 1.0:
        raise ReviewError("The threshold is a confidence between 0 and 1.")
    lines = Line.objects.filter(collection=collection).exclude(in_final_document())
    below = Q(confidence__lt=threshold) | Q(confidence__isnull=True)
    changed = {"version": F("version") + 1, "updated_at": timezone.now()}
    with transaction.atomic():
        # Locked as the update below locks it (not against new lines' key checks), so that
        # the threshold read is the one this replaces.
        old = (
            Collection.objects.select_for_update(no_key=True)
            .values_list("confidence_threshold", flat=True)
            .get(pk=collection.pk)
        )
        Collection.objects.filter(pk=collection.pk).update(confidence_threshold=threshold)
        collection.confidence_threshold = threshold
        to_humans = lines.filter(below, status=S.AUTO_ACCEPTED).update(
            status=S.NEEDS_REVIEW, **changed
        )
        accepted = (
            lines.filter(~below, status=S.NEEDS_REVIEW)
            .exclude(queue.drafted())
            .update(status=S.AUTO_ACCEPTED, **changed)
        )
        record_event(
            collection,
            CollectionEvent.Type.THRESHOLD_APPLIED,
            actor=actor,
            old_value=old,
            new_value=threshold,
            to_humans=to_humans,
            accepted=accepted,
        )
    return {"to_humans": to_humans, "accepted": accepted}


# --- Text -------------------------------------------------------------------------------


def _hypothesis_id(hypothesis: Hypothesis | int | None) -> int | None:
    if hypothesis is None:
        return None
    return hypothesis.pk if isinstance(hypothesis, Hypothesis) else int(hypothesis)


# Saving is what reviewers do all day, so after the line's lock it is one statement: check the
# version the reviewer saw, write the text, append to the trail and drop the reviewer's draft.
# It writes nothing when the version is stale or the hypothesis belongs to
# another line; _write_text then finds out which and says so. The action, when not given, is
# worked out from what changed: unchanged is an accept, an alternative (rank > 0) taken as
# is is a pick, anything else an edit.
_SAVE = """
WITH old AS (
    SELECT id, text, version FROM corpus_line WHERE id = %(line)s
), hypothesis AS (
    SELECT id, rank, text FROM transcription_hypothesis
    WHERE id = %(hypothesis)s AND line_id = %(line)s
), saved AS (
    UPDATE corpus_line AS l
    SET text = COALESCE(%(text)s, old.text), status = %(status)s,
        human_text = COALESCE(%(human)s::boolean, l.human_text), claimed_by_id = NULL,
        claimed_until = NULL, version = old.version + 1, updated_at = %(now)s
    FROM old
    WHERE l.id = old.id AND old.version = %(expected)s
      AND (%(hypothesis)s::bigint IS NULL OR EXISTS (SELECT 1 FROM hypothesis))
    RETURNING old.text AS text_before, l.text AS text_after, l.version
), recorded AS (
    INSERT INTO review_correction (line_id, user_id, action, created_at, text_before,
        text_after, hypothesis_id, line_version, time_spent_ms, line_status)
    SELECT %(line)s, %(user)s,
        COALESCE(%(action)s, CASE
            WHEN saved.text_after = saved.text_before THEN 'accept'
            WHEN EXISTS (SELECT 1 FROM hypothesis h WHERE h.rank > 0 AND h.text = saved.text_after)
                THEN 'pick'
            ELSE 'edit' END),
        %(now)s, saved.text_before, saved.text_after, %(hypothesis)s, saved.version, %(ms)s,
        %(status)s
    FROM saved
    RETURNING id, action, text_before, text_after, line_version
), dropped AS (
    DELETE FROM review_draft
    WHERE line_id = %(line)s AND user_id = %(user)s AND EXISTS (SELECT 1 FROM saved)
)
SELECT id, action, text_before, text_after, line_version FROM recorded
"""


def _write_text(
    line_id: int,
    user,
    *,
    text: str | None,
    action: str | None,
    expected_version: int,
    hypothesis: Hypothesis | int | None = None,
    time_spent_ms: int = 0,
    status: str = S.REVIEWED,
    human: bool | None = None,
) -> Correction:
    """The one place a line's text changes; text None keeps the current text (an accept).
    `human` sets whether the text is a person's words (Line.human_text), which no model reading
    replaces; None leaves it as the line has it."""
    now = timezone.now()
    hypothesis_id = _hypothesis_id(hypothesis)
    params = {
        "line": line_id,
        "user": user.pk,
        "text": text,
        "action": action,
        "status": status,
        "human": human,
        "expected": expected_version,
        "hypothesis": hypothesis_id,
        "ms": _clamp_time(time_spent_ms),
        "now": now,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # Locked by a statement of its own: a statement sees what was committed when it began,
        # so a save that waited inside _SAVE for a draft's lock would not see that draft to
        # remove it. The document's review state is read once the line is ours, not locked:
        # making a document final waits for the lines it hands back, and a save that waited
        # for it sees it final.
        locked = _locked_with_document(line_id, "id")
        if locked is not None:
            _refuse_if_final(locked.document)
        cursor.execute(_SAVE, params)
        row = cursor.fetchone()
    if row is None:
        return _answer_refusal(line_id, user, expected_version, text, action, hypothesis_id)
    correction_id, action, text_before, text_after, version = row
    correction = Correction(
        id=correction_id,
        line_id=line_id,
        user=user,
        action=action,
        created_at=now,
        text_before=text_before,
        text_after=text_after,
        hypothesis_id=hypothesis_id,
        line_version=version,
        time_spent_ms=params["ms"],
        line_status=status,
    )
    correction._state.adding = False
    correction._state.db = connection.alias
    return correction


def _answer_refusal(
    line_id: int,
    user,
    expected_version: int,
    text: str | None,
    action: str | None,
    hypothesis_id: int | None,
) -> Correction:
    """Why _SAVE wrote nothing, raised; or the caller's own earlier save of the very same
    change, which a retried request (its first answer lost on the way) asks for again: the
    save is done, and a conflict with it would have the client offer its own text as theirs."""
    line = Line.objects.select_related("claimed_by").filter(pk=line_id).first()
    if line is None:
        raise ReviewError(LINE_GONE)
    if (
        hypothesis_id is not None
        and not Hypothesis.objects.filter(pk=hypothesis_id, line_id=line_id).exists()
    ):
        raise ReviewError("That alternative does not belong to this line.")
    newest = Correction.objects.filter(line_id=line_id).order_by("-created_at", "-id").first()
    if (
        newest is not None
        and newest.user_id == user.pk
        # A save's own record, not a skip or a box edit, which leave the text as it was.
        and newest.action in ((action,) if action else SAVES)
        and newest.line_version == expected_version + 1
        # Nothing since (a model's reading, a threshold) that the client has not seen.
        and line.version == newest.line_version
        and newest.hypothesis_id == hypothesis_id
        and (text is None or newest.text_after == text)
    ):
        newest.replayed = True
        return newest
    raise VersionConflict(line, line.text if text is None else text)


def do_save_line(
    line: Line | int,
    user,
    text: str,
    *,
    expected_version: int,
    hypothesis: Hypothesis | int | None = None,
    time_spent_ms: int = 0,
    allow_empty: bool = False,
) -> Correction:
    """Save what the reviewer typed (Enter). hypothesis is the reading they started from.
    Spaces at its ends are not kept: no line holds them, and a reading kept unchanged but
    for a space typed after it would count as a wrong reading in calibration.

    Emptying a line that holds text is refused unless allow_empty: select-all and Backspace
    then Enter would otherwise drop the reading and mark the line reviewed, and a reviewed
    empty line is left out of every export, unseen. A box with no writing in it is a real
    answer, so the caller says when the person confirmed it (the editor asks twice; an API
    client's empty text is meant)."""
    line_id = _line_id(line)
    text = clean_text(text).strip()
    if not text and not allow_empty and Line.objects.filter(pk=line_id).exclude(text="").exists():
        raise ReviewError(EMPTY_REFUSED)
    return _write_text(
        line_id,
        user,
        text=text,
        action=None,
        expected_version=expected_version,
        hypothesis=hypothesis,
        time_spent_ms=time_spent_ms,
    )


def do_accept_line(
    line: Line | int,
    user,
    *,
    expected_version: int,
    hypothesis: Hypothesis | int | None = None,
    time_spent_ms: int = 0,
) -> Correction:
    """Confirm the line's current text unchanged (Ctrl+Enter)."""
    return _write_text(
        _line_id(line),
        user,
        text=None,
        action=A.ACCEPT,
        expected_version=expected_version,
        hypothesis=hypothesis,
        time_spent_ms=time_spent_ms,
    )


def do_pick_hypothesis(
    line: Line | int,
    user,
    hypothesis: Hypothesis | int,
    *,
    expected_version: int,
    time_spent_ms: int = 0,
) -> Correction:
    """Take one of the n-best readings as the line's text."""
    line_id = _line_id(line)
    chosen = Hypothesis.objects.filter(pk=_hypothesis_id(hypothesis), line_id=line_id).first()
    if chosen is None:
        raise ReviewError("That alternative does not belong to this line.")
    return _write_text(
        line_id,
        user,
        text=chosen.text,
        action=A.PICK,
        expected_version=expected_version,
        hypothesis=chosen,
        time_spent_ms=time_spent_ms,
    )


def do_revert_line(
    line: Line | int,
    user,
    correction: Correction | int,
    *,
    expected_version: int,
    before: bool = False,
) -> Correction:
    """Put back the text a line had after (or, with before, just before) an earlier action:
    reviewed where that text was a person's, back in the review queue where it was a model's."""
    line_id = _line_id(line)
    correction_id = correction.pk if isinstance(correction, Correction) else int(correction)
    earlier = Correction.objects.filter(pk=correction_id, line_id=line_id).first()
    if earlier is None:
        raise ReviewError("That history entry does not belong to this line.")
    source = earlier
    if before:
        source = (
            Correction.objects.filter(line_id=line_id)
            .exclude(action__in=TEXT_KEPT)
            .filter(
                Q(created_at__lt=earlier.created_at)
                | Q(created_at=earlier.created_at, pk__lt=earlier.pk)
            )
            .order_by("-created_at", "-id")
            .first()
        )
    status, human = _state_of_text(source)
    return _write_text(
        line_id,
        user,
        text=earlier.text_before if before else earlier.text_after,
        action=A.REVERT,
        expected_version=expected_version,
        status=status,
        human=human,
    )


# --- Undoing one person's saves ---------------------------------------------------------

# How a person sets a line's text, which a coordinator may undo for them all at once. Box edits
# (SEGMENT) are left out: they change the box as well, which putting back a text would not
# undo; and imports come with an admin's upload, before anyone reviews the line.
REVERTIBLE = (A.ACCEPT, A.EDIT, A.PICK, A.REVERT)
# After these the line holds a person's text, and is reviewed; after a revert, it depends on
# the text put back (_state_of_text).
HUMAN_TEXT = (A.ACCEPT, A.EDIT, A.PICK, A.IMPORT)
# Lines locked and put back in one transaction: saves of them wait until it commits.
REVERT_BATCH = 200


@dataclass
class LeftAlone:
    """A line that undoing a person's saves leaves as it is: why, and its newest change."""

    class Reason(TextChoices):
        CHANGED = (
            "changed",
            "changed since by someone else or after the undo was asked for, or its box edited",
        )
        FINAL = "final", "its document is final (a collection admin reopens it first)"

    CHANGED = Reason.CHANGED
    FINAL = Reason.FINAL

    newest: Correction
    reason: str

    @property
    def because(self) -> str:
        return self.Reason(self.reason).label


@dataclass
class UserRevert:
    """What undoing one person's saves did, or would do."""

    # The lines put back to the text they had before that person's saves.
    reverted: list[int] = field(default_factory=list)
    # Of those, lines whose earlier text was a model's: back in the review queue.
    requeued: list[int] = field(default_factory=list)
    # The lines left as they are, each with why.
    skipped: list[LeftAlone] = field(default_factory=list)


@dataclass
class _Undo:
    line_id: int
    version: int
    text: str
    status: str
    human: bool | None


def revert_user_saves_preview(collection: Collection, user, since) -> UserRevert:
    """What do_revert_user_saves would do now, for a coordinator to confirm. Nothing is locked,
    so a line may yet change before they do; do_revert_user_saves decides again."""
    result = UserRevert()
    for batch in _lines_saved_by(collection, user, since):
        _add_plans(result, _revert_lines(batch), user, since)
    return result


def do_revert_user_saves(
    collection: Collection,
    user,
    since,
    actor,
    *,
    until=None,
    after_line_id: int = 0,
    on_batch: Callable[[UserRevert, int], None] | None = None,
) -> UserRevert:
    """Undo what `user` wrote into the collection's lines since `since`, and up to `until`
    (when the coordinator confirmed: their saves after it are not those the preview showed,
    and a line saved since is left alone as changed); a volunteer with a
    wrong convention, or a vandal): each line whose newest change is still theirs goes back to
    the text it had before their saves, recorded as `actor`'s revert, as do_revert_line records
    one. The line goes back to the status that text had: reviewed where it was a person's,
    in the review queue where it was a model's (else a reading nobody checked would be
    exported as ground truth). Where someone else saved between their saves, it goes back to
    that person's text, not past it. Lines changed since by anyone else, or by a box edit, are
    skipped: the coordinator sees them, and who changed them, and decides line by line; so are
    lines of a final document, which its admins reopen first (LeftAlone says which). What
    each batch put back is recorded in the collection's events, in the batch's transaction (so
    one event for up to REVERT_BATCH lines, and what is recorded is what was committed).
    `on_batch` is told, in each batch's transaction, what the batch did and its last line;
    `after_line_id` goes on after the last line of a batch committed before (saves_undo.py)."""
    result = UserRevert()
    for batch in _lines_saved_by(collection, user, since, after_line_id, until):
        part = UserRevert()
        with transaction.atomic():
            # A save that committed before these locks is in the history read under them, and
            # its line is skipped; one that comes after waits for them and finds the version
            # changed, a conflict as for any stale save. Locked in id order, as every batch, so
            # that two coordinators reverting at once take turns rather than deadlock.
            lines = _revert_lines(batch).select_for_update(of=("self",))
            undos = _add_plans(part, lines, user, since, until)
            for undo in undos:
                _write_text(
                    undo.line_id,
                    actor,
                    text=undo.text,
                    action=A.REVERT,
                    expected_version=undo.version,
                    status=undo.status,
                    human=undo.human,
                )
            if undos:
                record_event(
                    collection,
                    CollectionEvent.Type.SAVES_UNDONE,
                    actor=actor,
                    member=member_label(user),
                    since=since.isoformat(),
                    reverted=len(undos),
                    requeued=sum(undo.status == S.NEEDS_REVIEW for undo in undos),
                )
            if on_batch is not None:
                on_batch(part, batch[-1])
        result.reverted += part.reverted
        result.requeued += part.requeued
        result.skipped += part.skipped
    return result


def lines_saved_by(collection: Collection, user, since, until=None) -> int:
    """How many lines undoing `user`'s saves since `since` decides on."""
    return sum(len(batch) for batch in _lines_saved_by(collection, user, since, until=until))


def _lines_saved_by(
    collection: Collection, user, since, after_line_id: int = 0, until=None
) -> list[list[int]]:
    """The lines `user` set a text of since `since` (and up to `until`), in batches, by id."""
    saves = Correction.objects.filter(
        line__collection=collection,
        user=user,
        created_at__gte=since,
        action__in=REVERTIBLE,
        line_id__gt=after_line_id,
    )
    if until is not None:
        saves = saves.filter(created_at__lte=until)
    line_ids = list(saves.order_by("line_id").values_list("line_id", flat=True).distinct())
    return [line_ids[i : i + REVERT_BATCH] for i in range(0, len(line_ids), REVERT_BATCH)]


def _revert_lines(batch: list[int]) -> QuerySet[Line]:
    """The lines _add_plans decides on, by id: their versions, and whether their document is
    final."""
    return (
        Line.objects.filter(pk__in=batch)
        .select_related("document")
        .only("id", "version", "document__title", "document__review_state")
        .order_by("pk")
    )


def _add_plans(result: UserRevert, lines: QuerySet[Line], user, since, until=None) -> list[_Undo]:
    """Decide for each line whether to put it back, and to what text and status, or to leave
    it; add each to `result`, and return the ones to put back."""
    lines = list(lines)
    trails = defaultdict(list)
    history = Correction.objects.filter(line_id__in=[line.pk for line in lines])
    history = history.exclude(action__in=TEXT_KEPT)
    for correction in history.select_related("user").order_by("line_id", "created_at", "id"):
        trails[correction.line_id].append(correction)
    undos = []
    for line in lines:
        line_id, version = line.pk, line.version
        trail = trails[line_id]
        newest = trail[-1]
        if not _saved_by(newest, user, since, until) or newest.line_version != version:
            result.skipped.append(LeftAlone(newest, LeftAlone.CHANGED))
            continue
        # Said only of a line the undo would put back: reopened, it would be.
        if line.document.is_final:
            result.skipped.append(LeftAlone(newest, LeftAlone.FINAL))
            continue
        first = len(trail) - 1
        while first > 0 and _saved_by(trail[first - 1], user, since, until):
            first -= 1
        status, human = _state_of_text(trail[first - 1] if first > 0 else None)
        undos.append(_Undo(line_id, version, trail[first].text_before, status, human))
        result.reverted.append(line_id)
        if status == S.NEEDS_REVIEW:
            result.requeued.append(line_id)
    return undos


def _state_of_text(correction: Correction | None) -> tuple[str, bool | None]:
    """The status and `human_text` (None: as the line has it) for putting back the text a line
    held after `correction`: reviewed where a person checked it; in the queue where nobody
    did, a person's words (a find and replace) which no model reading may replace, or a
    model's reading. None: before the line's first correction, when it held a model's reading,
    nothing, or a person's text cut from a split line (human_text, which stays as it is)."""
    if correction is None:
        return S.NEEDS_REVIEW, None
    if correction.action == A.REVERT:
        # What a revert put back was a person's text or a model's, and the status it recorded
        # says which; its action cannot (undoing a volunteer twice would otherwise make the
        # model's reading the first undo put back ground truth). The text cannot either: a
        # person may have accepted that very reading, in saves that were undone since. Blank:
        # recorded before the status was kept, when a revert always marked the line reviewed.
        return (S.NEEDS_REVIEW if correction.line_status == S.NEEDS_REVIEW else S.REVIEWED), None
    if correction.action not in HUMAN_TEXT:
        # A box edit's cut of the text: the line's human_text says whose it was.
        return S.NEEDS_REVIEW, None
    if correction.line_status in ("", S.REVIEWED):
        return S.REVIEWED, None
    # A replace changed words of a line nobody had checked, and left it unchecked.
    return S.NEEDS_REVIEW, True


def _saved_by(correction: Correction, user, since, until=None) -> bool:
    return (
        correction.user_id == user.pk
        and correction.action in REVERTIBLE
        and correction.created_at >= since
        and (until is None or correction.created_at <= until)
    )


def do_skip_line(line: Line | int, user, *, time_spent_ms: int = 0) -> Correction | None:
    """Hand the line back to the queue untouched (Esc); the skip is recorded. A reviewer who
    no longer holds the line hands nothing back, and nothing is recorded: a record would make
    the line part of the kept history (never deleted) for a skip that did nothing."""
    line_id = _line_id(line)
    with transaction.atomic():
        current = (
            Line.objects.select_for_update()
            .only("id", "text", "version", "status")
            .filter(pk=line_id)
            .first()
        )
        if current is None:  # merged or deleted since the request found it
            return None
        released = Line.objects.filter(pk=line_id, status=S.IN_REVIEW, claimed_by=user).update(
            status=S.NEEDS_REVIEW, claimed_by=None, claimed_until=None
        )
        if not released:
            return None
        return Correction.objects.create(
            line_id=line_id,
            user=user,
            action=A.SKIP,
            text_before=current.text,
            text_after=current.text,
            line_version=current.version,
            time_spent_ms=_clamp_time(time_spent_ms),
        )


# --- Unclear lines ----------------------------------------------------------------------


def do_mark_unclear(line: Line | int, user, note: str = "") -> Correction:
    """Mark the line as one the reviewer could not read for sure, with what they could not
    read: its text is left out of training data, and experts find it (search, the API) to
    read it. Its text, status and version stay as they are, so that a save the reviewer has on
    its way meets no conflict; marking it again replaces the note. Recorded in the trail."""
    note = " ".join(clean_text(note).split())
    if len(note) > UNCLEAR_NOTE_LENGTH:
        raise ReviewError(f"The note holds at most {UNCLEAR_NOTE_LENGTH} characters.")
    return _set_unclear(_line_id(line), user, A.UNCLEAR, note)


def do_clear_unclear(line: Line | int, user) -> Correction | None:
    """Remove the unclear mark (someone read the line); None where it had none."""
    return _set_unclear(_line_id(line), user, A.CLEAR, "")


def _set_unclear(line_id: int, user, action: str, note: str) -> Correction | None:
    with transaction.atomic():
        current = _locked_with_document(line_id, "id", "text", "version", "unclear")
        if current is None:
            raise ReviewError(LINE_GONE)
        # The mark decides whether the text goes to training, and a transcript says it is a
        # guess: a final document's marks are as published, as its text is.
        _refuse_if_final(current.document)
        if action == A.CLEAR and not current.unclear:
            return None
        Line.objects.filter(pk=line_id).update(unclear=action == A.UNCLEAR, unclear_note=note)
        return Correction.objects.create(
            line_id=line_id,
            user=user,
            action=action,
            text_before=current.text,
            text_after=current.text,
            line_version=current.version,
            note=note,
        )


# --- Drafts -----------------------------------------------------------------------------


def do_save_draft(
    line: Line | int,
    user,
    text: str,
    *,
    base_version: int,
    hypothesis: Hypothesis | int | None = None,
) -> Draft | None:
    """Keep unsaved text on the server (one upsert) and renew the reviewer's lease. A draft
    typed before this reviewer's own later save is dropped: sent just before the save, it can
    arrive after it, and would bring the old text back as unsaved when the line is opened.
    The line's row is locked for it, as a save locks it, so a draft that arrives while the
    save commits waits to see it rather than being stored after the save removed drafts."""
    line_id = _line_id(line)
    hypothesis_id = _hypothesis_id(hypothesis)
    with transaction.atomic():
        if not Line.objects.select_for_update().filter(pk=line_id).exists():
            raise ReviewError(LINE_GONE)
        # A skip or a box moved, split or merged keeps the text the draft was typed over.
        saved_since = Correction.objects.filter(
            line_id=line_id, user=user, line_version__gt=base_version
        ).exclude(action__in=[*TEXT_KEPT, A.SEGMENT])
        if saved_since.exists():
            return None
        if (
            hypothesis_id
            and not Hypothesis.objects.filter(pk=hypothesis_id, line_id=line_id).exists()
        ):
            # The text is what matters; a reading that is not this line's is simply forgotten.
            hypothesis_id = None
        draft = Draft(
            line_id=line_id,
            user=user,
            text=clean_text(text),
            base_version=base_version,
            hypothesis_id=hypothesis_id,
            updated_at=timezone.now(),
        )
        Draft.objects.bulk_create(
            [draft],
            update_conflicts=True,
            unique_fields=["line", "user"],
            update_fields=["text", "base_version", "hypothesis", "updated_at"],
        )
        do_renew_lease(line_id, user)
    return draft


def do_discard_draft(line: Line | int, user) -> None:
    Draft.objects.filter(line_id=_line_id(line), user=user).delete()


def _drafts_of_member(collection: Collection, user) -> QuerySet[Draft]:
    return Draft.objects.filter(user=user, line__collection=collection)


def drop_drafts_of_former_member(sender, collection: Collection, user, **kwargs: Any) -> None:
    """corpus's `member_removed`: the user's drafts in the collection they left."""
    _drafts_of_member(collection, user).delete()


def count_drafts_of_member(sender, collection: Collection, user, **kwargs: Any) -> int:
    """corpus's `unsaved_work_of_member`: what `member_removed` would delete."""
    return _drafts_of_member(collection, user).count()


def texts_corrections_wrote(sender, line_ids: list[int], **kwargs: Any) -> list[tuple[int, str]]:
    """corpus's `texts_held_before`: every text the lines' corrections wrote."""
    return list(
        Correction.objects.filter(line_id__in=line_ids).values_list("line_id", "text_after")
    )


def record_imported_text(sender: type[Line], lines: Sequence[Line], user, **kwargs: Any) -> None:
    """corpus's `text_imported`: text a PAGE or ALTO file brought is reviewed text, kept with
    its history like every other human-made text."""
    Correction.objects.bulk_create(
        Correction(
            line=line,
            user=user,
            action=A.IMPORT,
            text_after=line.text,
            line_version=line.version,
        )
        for line in lines
    )


def record_imported_marks(sender: type[Line], lines: Sequence[Line], user, **kwargs: Any) -> None:
    """corpus's `unclear_imported`: the unclear mark a PAGE or ALTO file brought, in the trail
    after the text's own import, so that the line's history says where its mark came from
    (the uploader's, as the imported text is), and so that recognition knows the mark was no
    member's judgement of the line (drop_imported_marks)."""
    Correction.objects.bulk_create(
        Correction(
            line=line,
            user=user,
            action=A.IMPORT_UNCLEAR,
            text_before=line.text,
            text_after=line.text,
            line_version=line.version,
            note=line.unclear_note,
        )
        for line in lines
    )


def drop_imported_marks(sender: Any, texts_before: dict[int, str], **kwargs: Any) -> None:
    """transcription's `marked_text_replaced`: a model's reading replaced the text of lines
    marked unclear. A mark an import restored with a model's reading (from another system, or
    one of our exports) was about that text, and its note names what in it was unsure: the
    text gone, the mark would make the new reading a guess no one made, and keep it out of
    training once reviewed. It is taken off, recorded as the system's with the text it was
    about. A mark a member set, or set again, since is their judgement of the line, and stays
    until someone takes it off; so does a mark with no record of where it came from, and one
    on a line cut or joined since (SEGMENT: a merge keeps either line's mark, which may have
    been a member's)."""
    last_marks = (
        Correction.objects.filter(line_id__in=texts_before, action__in=(*MARKS, A.SEGMENT))
        # By id, the order they were written in: created_at is the clock of the machine that
        # wrote each (the import's worker, the member's web server), which may disagree.
        .order_by("line_id", "-id")
        .distinct("line_id")
        .values_list("line_id", "action")
    )
    imported = [line_id for line_id, action in last_marks if action == A.IMPORT_UNCLEAR]
    if not imported:
        return
    lines = list(Line.objects.filter(pk__in=imported, unclear=True).only("id", "text", "version"))
    Line.objects.filter(pk__in=[line.pk for line in lines]).update(unclear=False, unclear_note="")
    Correction.objects.bulk_create(
        Correction(
            line_id=line.pk,
            user=None,
            action=A.CLEAR,
            text_before=texts_before[line.pk],
            text_after=line.text,
            line_version=line.version,
        )
        for line in lines
    )


# --- Segmentation -----------------------------------------------------------------------


def clean_bbox(bbox: Sequence, page: Page) -> list[int]:
    """A box [x0, y0, x1, y1] in page pixels, clipped to the page, at least 2 px each way."""
    try:
        x0, y0, x1, y1 = (round(float(v)) for v in bbox)
    except (TypeError, ValueError):
        raise ReviewError("A line box is four numbers: x0, y0, x1, y1.") from None
    x0, x1 = sorted((max(0, min(x0, page.width)), max(0, min(x1, page.width))))
    y0, y1 = sorted((max(0, min(y0, page.height)), max(0, min(y1, page.height))))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ReviewError("The line box is empty or lies outside the page.")
    return [x0, y0, x1, y1]


def _locked_line(line_id: int, expected_version: int) -> Line:
    # Looked up before, it may be gone once its lock is ours: a double press, or a colleague's
    # merge or delete committed while this waited.
    line = Line.objects.select_for_update().select_related("page").filter(pk=line_id).first()
    if line is None:
        raise ReviewError(LINE_GONE)
    _refuse_if_final(line.document)
    if line.version != expected_version:
        raise VersionConflict(line, line.text)
    return line


def do_move_line(line: Line | int, user, bbox: Sequence, *, expected_version: int) -> Line:
    """Move or resize a line's box. A pure move shifts the polygon and baseline with it; a
    resize drops them, since they no longer describe the box, and crops fall back to it. On a
    reviewed line the trail records who moved the box: its text becomes ground truth for the
    new crop. Other lines' moves are recorded in the collection's events instead: any history
    keeps a line for good, and a box that turns out to be no line must stay deletable."""
    with transaction.atomic():
        current = _locked_line(_line_id(line), expected_version)
        new = clean_bbox(bbox, current.page)
        old = current.bbox
        dx, dy = new[0] - old[0], new[1] - old[1]
        same_size = (new[2] - new[0], new[3] - new[1]) == (old[2] - old[0], old[3] - old[1])
        if same_size:
            current.polygon = [[x + dx, y + dy] for x, y in current.polygon]
            current.baseline = [[x + dx, y + dy] for x, y in current.baseline]
        else:
            current.polygon, current.baseline = [], []
        current.bbox = new
        current.version += 1
        current.save(update_fields=["bbox", "polygon", "baseline", "version", "updated_at"])
        if current.status == S.REVIEWED:
            _record_segmentation(current, user, current.text)
        else:
            record_event(
                current.collection_id,
                CollectionEvent.Type.LINE_MOVED,
                actor=user,
                line=current,
                old_value=old,
                new_value=new,
            )
    return current


def _split_text(text: str, fraction: float) -> tuple[str, str]:
    """Cut at the space nearest to where the box was cut."""
    if not text:
        return "", ""
    target = round(len(text) * fraction)
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return text, ""
    cut = min(spaces, key=lambda i: abs(i - target))
    return text[:cut].rstrip(), text[cut + 1 :].lstrip()


def do_split_line(
    line: Line | int,
    user,
    *,
    at_x: float,
    expected_version: int,
    text: str | None = None,
    at_char: int | None = None,
) -> Line:
    """Cut a line box in two at x. Both halves go back to the queue, since nobody has read
    them as they now are.

    The page view sends the row's text as the person sees it (`text`, their unsaved typing
    included) and where they cut it (`at_char`, in code points of `text`; None: at the space
    nearest to x): each half keeps its part, and their draft of the line, now in the halves,
    goes. A text they changed is a person's (`human_text`), which no model reading replaces.
    Without `text` the saved text is cut at the space nearest to x. Halves of a model's text
    nobody changed stay the model's to read again.

    A half of a model's text is queued for the model (the first was read by it already: the
    pipeline reads a line once per model version, so it waits for a human, its old readings
    put aside); of a person's text its reading only adds alternatives, and of a reviewed text
    nothing is queued."""
    with transaction.atomic():
        current = _locked_line(_line_id(line), expected_version)
        x0, y0, x1, y1 = current.bbox
        cut = round(float(at_x))
        if not x0 + 2 <= cut <= x1 - 2:
            raise ReviewError("Split the line inside its box.")
        typed = current.text if text is None else clean_text(text)
        if at_char is None:
            left, right = _split_text(typed, (cut - x0) / (x1 - x0))
        elif at_char <= len(text):
            # The place is in the text as the person saw it: cleaning it first (NFC, invisible
            # marks removed) would move every character after a change.
            left = clean_text(text[:at_char]).rstrip()
            right = clean_text(text[at_char:]).lstrip()
        else:
            raise ReviewError("Split the text inside it.")
        # A model's reading only cut in two is still the model's, for its next reading to replace.
        human = _text_is_human(current) or typed != current.text
        Line.objects.filter(page_id=current.page_id, order__gt=current.order).update(
            order=F("order") + 1
        )
        new = Line.objects.create(
            page_id=current.page_id,
            document_id=current.document_id,
            collection_id=current.collection_id,
            order=current.order + 1,
            bbox=[cut, y0, x1, y1],
            status=S.NEEDS_REVIEW,
            text=right,
            human_text=human,
            # Which half holds the guess nobody can tell: both keep the mark.
            unclear=current.unclear,
            unclear_note=current.unclear_note,
        )
        if not _text_is_human(current):
            do_queue_recognition(Line.objects.filter(pk=new.pk))
        if text is not None:
            Draft.objects.filter(line=current, user=user).delete()
        before = current.text
        current.bbox = [x0, y0, cut, y1]
        current.polygon, current.baseline = [], []
        current.text = left
        current.human_text = human
        # No model has read the new box, so no hypothesis describes it.
        current.confidence, current.model_version = None, None
        current.status = S.NEEDS_REVIEW
        current.claimed_by, current.claimed_until = None, None
        current.version += 1
        current.save()
        _record_segmentation(current, user, before)
    return new


def do_merge_lines(line: Line | int, user, *, expected_version: int) -> Line:
    """Join a line with the next one of its page: one box around both, texts joined, marked
    unclear if either was, with both notes."""
    with transaction.atomic():
        current = _locked_line(_line_id(line), expected_version)
        following = (
            Line.objects.select_for_update()
            .filter(page_id=current.page_id, order__gte=current.order)
            .exclude(pk=current.pk)
            .order_by("order", "id")
            .first()
        )
        if following is None:
            raise ReviewError("This is the last line of the page; there is nothing to merge.")
        _refuse_if_history(following)
        _refuse_if_someone_else_is_typing(following, user, "merge")
        # The merge joins the saved texts: the reviewer's own typing would go with the line.
        if Draft.objects.filter(line=following, user=user).exists():
            raise ReviewError(
                f"You have unsaved text in line {following.order + 1}; "
                "save or discard it there, then merge."
            )
        before = current.text
        boxes = (current.bbox, following.bbox)
        current.bbox = [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        current.polygon, current.baseline = [], []
        current.text = " ".join(t for t in (current.text, following.text) if t)
        current.human_text = _text_is_human(current) or _text_is_human(following)
        # A guess in either part is a guess in the whole: unmarked, it would go to training.
        current.unclear = current.unclear or following.unclear
        current.unclear_note = _joined_notes(current.unclear_note, following.unclear_note)
        current.confidence, current.model_version = None, None
        current.status = S.NEEDS_REVIEW
        current.claimed_by, current.claimed_until = None, None
        current.version += 1
        # The merge is in the kept line's trail; what the other takes with it (an unclear mark
        # and its note, skips, box edits) only an event can keep.
        if trail := _removal_trail(following):
            _record_removal(following, user, trail, merged_into=current.order + 1)
        _remove_line(following)
        current.save()
        _record_segmentation(current, user, before)
        # The line that went may have been the last one the model had still to read.
        finish_documents({current.document_id})
    return current


def do_add_line(page: Page, user, bbox: Sequence) -> Line:
    """A line the segmentation missed. It is placed in reading order by its top edge, in the
    queue for a human, and queued for the model to read (which fills in its text unless a
    reviewer has it by then). It has no history yet: the collection's events record it."""
    box = clean_bbox(bbox, page)
    with transaction.atomic():
        above = list(
            Line.objects.select_for_update()
            .filter(page=page)
            .order_by("order", "id")
            .values_list("order", "bbox")
        )
        _refuse_if_page_final(page)
        order = 0
        for line_order, line_box in above:
            if line_box[1] <= box[1]:
                order = line_order + 1
        Line.objects.filter(page=page, order__gte=order).update(order=F("order") + 1)
        line = Line.objects.create(
            page=page,
            document_id=page.document_id,
            collection_id=page.document.collection_id,
            order=order,
            bbox=box,
            status=S.NEEDS_REVIEW,
        )
        record_event(
            line.collection_id, CollectionEvent.Type.LINE_ADDED, actor=user, line=line, bbox=box
        )
        do_queue_recognition(Line.objects.filter(pk=line.pk))
    return line


def do_delete_line(line: Line | int, user, *, expected_version: int) -> None:
    """Remove a box that is not a line. A line with review history of its text cannot go: the
    trail keeps it (correct its box instead); skips and box edits do not keep it, or a box
    that is no line would stay in the queue for good. The collection's event of the deletion
    is its record (_record_removal)."""
    with transaction.atomic():
        current = _locked_line(_line_id(line), expected_version)
        _refuse_if_history(current)
        _refuse_if_someone_else_is_typing(current, user, "delete it")
        _record_removal(current, user, _removal_trail(current))
        _remove_line(current)
        # It may have been the last line the model had still to read.
        finish_documents({current.document_id})


# --- Reading order -----------------------------------------------------------------------
#
# A line's place in its page is the page's, not the line's: moving it records a collection
# event, whether or not the line is reviewed (it changes neither its text nor its crop, which
# is what the correction trail keeps), and leaves its version as it is, so that a colleague
# typing in it is not told that someone changed it. The version sent is still checked: the
# line moved is the one the person saw, not a half of it split meanwhile.


class OrderChanged(ReviewError):
    """The page's reading order is not the one a sort left: its undo would undo more."""


def _lock_page_lines(page_id: int) -> list[Line]:
    """Every line of the page, locked, in reading order. A split or an add that commits while
    this waits for its lock adds a line that this statement's snapshot does not hold, and
    renumbering without it would give two lines one place: read again until no line came or
    went. (Each segmentation edit locks a line of the page first, which is ours by then.)"""
    seen: set[int] | None = None
    while True:
        lines = list(
            Line.objects.select_for_update().filter(page_id=page_id).order_by("order", "id")
        )
        ids = {line.pk for line in lines}
        if ids == seen:
            return lines
        seen = ids


def _renumber(lines: list[Line]) -> None:
    """Number the lines 0, 1, 2… as listed, in one statement. Line.order has no unique constraint (splits and adds shift the lines after them one by
    one), so no two-step renumbering is needed."""
    changed = [line for place, line in enumerate(lines) if line.order != place]
    for place, line in enumerate(lines):
        line.order = place
    Line.objects.bulk_update(changed, ["order"])


def do_reorder_line(
    line: Line | int,
    user,
    *,
    expected_version: int,
    position: int | None = None,
    before: int | None = None,
    after: int | None = None,
) -> list[int]:
    """Move a line to `position` in its page's reading order (from 1, as the page view numbers
    its rows), or just `before` or `after` another line of its page (the page view's
    Alt+PageUp and Alt+PageDown: the neighbour named stays the neighbour whatever a colleague
    added meanwhile). The page's lines are renumbered 0, 1, 2… under a lock of them all. The
    page's line ids in their new order."""
    if sum(place is not None for place in (position, before, after)) != 1:
        raise ReviewError(
            "Say where the line goes: a position, or the line it goes before or after."
        )
    line_id = _line_id(line)
    page_id = Line.objects.filter(pk=line_id).values_list("page_id", flat=True).first()
    if page_id is None:
        raise ReviewError(LINE_GONE)
    page = Page.objects.select_related("document").get(pk=page_id)
    with transaction.atomic():
        lines = _lock_page_lines(page_id)
        current = next((each for each in lines if each.pk == line_id), None)
        if current is None:
            raise ReviewError(LINE_GONE)
        _refuse_if_page_final(page)
        if current.version != expected_version:
            raise VersionConflict(current, current.text)
        old = lines.index(current)
        others = [each for each in lines if each is not current]
        if position is not None:
            if not 1 <= position <= len(lines):
                raise ReviewError(f"A place on this page is from 1 to {len(lines)}.")
            new = position - 1
        else:
            neighbour = before if before is not None else after
            ids = [each.pk for each in others]
            if neighbour not in ids:
                raise ReviewError(
                    "The line to put it next to is not another line of this page "
                    "(merged or deleted meanwhile?)."
                )
            new = ids.index(neighbour) + (after is not None)
        others.insert(new, current)
        if new != old:
            _renumber(others)
            record_event(
                current.collection_id,
                CollectionEvent.Type.LINE_REORDERED,
                actor=user,
                page=page,
                line=current,
                old_value=old + 1,
                new_value=new + 1,
            )
    return [each.pk for each in others]


@dataclass
class PageSort:
    order: list[int]  # the page's line ids in reading order now
    moved: int  # lines that changed places
    event: CollectionEvent | None  # the sort's, to undo it; None when nothing moved


def do_sort_page(page: Page, user) -> PageSort:
    """Put the page's lines in the order of their boxes (corpus.reading_order: columns left to
    right, each top to bottom). The event holds the order before, for do_undo_page_sort."""
    with transaction.atomic():
        lines = _lock_page_lines(page.pk)
        _refuse_if_page_final(page)
        before = [line.pk for line in lines]
        ordered = [lines[i] for i in reading_order([line.bbox for line in lines])]
        after = [line.pk for line in ordered]
        if after == before:
            return PageSort(after, 0, None)
        _renumber(ordered)
        moved = sum(old != new for old, new in zip(before, after, strict=True))
        event = record_event(
            page.document.collection_id,
            CollectionEvent.Type.PAGE_SORTED,
            actor=user,
            page=page,
            old_value=before,
            new_value=after,
            moved=moved,
        )
    return PageSort(after, moved, event)


def do_undo_page_sort(page: Page, user, sort_event_id: int) -> list[int]:
    """Put back the reading order a sort of the page replaced, if the page's order is still
    the one the sort left (OrderChanged otherwise: a line moved, added or removed since would
    be undone too, or put back wrong). The page's line ids in their order now."""
    with transaction.atomic():
        sort = CollectionEvent.objects.filter(
            pk=sort_event_id, page_id=page.pk, event_type=CollectionEvent.Type.PAGE_SORTED
        ).first()
        if sort is None:
            raise ReviewError("That is no sort of this page.")
        lines = _lock_page_lines(page.pk)
        _refuse_if_page_final(page)
        if [line.pk for line in lines] != sort.extra_data["new_value"]:
            raise OrderChanged(
                "The page's reading order changed since the sort (or the sort was undone "
                "already), so it is left as it is: move its lines by hand."
            )
        by_id = {line.pk: line for line in lines}
        _renumber([by_id[pk] for pk in sort.extra_data["old_value"]])
        record_event(
            page.document.collection_id,
            CollectionEvent.Type.PAGE_SORT_UNDONE,
            actor=user,
            page=page,
            sort=sort.pk,
            old_value=sort.extra_data["new_value"],
            new_value=sort.extra_data["old_value"],
        )
    return sort.extra_data["old_value"]


def _locked_with_document(line_id: int, *fields: str) -> Line | None:
    """The line locked (its document read, not locked), with `fields` and what
    _refuse_if_final reads of its document; None if it is gone."""
    lines = (
        Line.objects.select_for_update(of=("self",))
        .select_related("document")
        .only(*fields, "document__title", "document__review_state")
        .filter(pk=line_id)
        .order_by()
    )
    return next(iter(lines), None)


def _refuse_if_final(document: Document) -> None:
    """Every change of a final document's lines is refused here: their text, boxes, reading
    order and unclear marks."""
    if document.is_final:
        raise DocumentFinal(final_refusal(document.title))


def _refuse_if_page_final(page: Page) -> None:
    """_refuse_if_final once the page's lines are locked, with its document's state read then:
    the page and its document were read before, and a document made final while this waited
    for the lines (held by a colleague's find and replace, say) would be changed all the
    same."""
    _refuse_if_final(Document.objects.only("title", "review_state").get(pk=page.document_id))


def _refuse_if_someone_else_is_typing(line: Line, user, retry: str) -> None:
    """Merging and deleting remove a line, and its drafts with it: a reviewer's unsaved typing
    is not ours to throw away. (Versions do not catch this: claiming and drafting leave a
    line's version as it was.)"""
    held = queue.held_by_other(
        line.status, line.claimed_by_id, line.claimed_until, user, database_now()
    )
    if held or Draft.objects.filter(line=line).exclude(user=user).exists():
        raise ReviewError(
            f"Someone is working on line {line.order + 1}; {retry} once they are done."
        )


def _text_is_human(line: Line) -> bool:
    return line.status == S.REVIEWED or line.human_text


# What a line's removal takes with it: a skip, a box edit or an unclear mark says nothing of
# its text. Any other record is its text's history, kept for good, and keeps the line.
NOT_TEXT_HISTORY = (A.SKIP, A.SEGMENT, A.UNCLEAR, A.CLEAR, A.IMPORT_UNCLEAR)


def _refuse_if_history(line: Line) -> None:
    if Correction.objects.filter(line=line).exclude(action__in=NOT_TEXT_HISTORY).exists():
        raise ReviewError(
            f"Line {line.order + 1} has review history, which is kept for good; "
            "correct its box instead of removing it."
        )


def _removal_trail(line: Line) -> list[dict]:
    """The skips, box edits and unclear marks (with their notes) that _remove_line takes with
    the line: once it goes, its collection's event is their only record."""
    records = (
        Correction.objects.filter(line=line)
        .order_by("created_at", "id")
        .values_list("action", "user__username", "created_at", "note")
    )
    return [
        {
            "action": action,
            "user": username,
            "at": at.isoformat(),
            **({"note": note} if note else {}),
        }
        for action, username, at, note in records
    ]


def _record_removal(line: Line, user, trail: list[dict], **extra: Any) -> None:
    """The collection's event of a line that goes: its box, its text and its trail."""
    record_event(
        line.collection_id,
        CollectionEvent.Type.LINE_DELETED,
        actor=user,
        line=line,
        bbox=line.bbox,
        text=line.text,
        **({"trail": trail} if trail else {}),
        **extra,
    )


def _joined_notes(*notes: str) -> str:
    """Two lines' unclear notes as the merged line's, cut to a note's length: whole, they
    stay in the lines' trails and in the merged-away line's event."""
    # A line split and merged again has one note twice.
    joined = "; ".join(dict.fromkeys(note for note in notes if note))
    if len(joined) > UNCLEAR_NOTE_LENGTH:
        joined = joined[: UNCLEAR_NOTE_LENGTH - 1] + "…"
    return joined


def _remove_line(line: Line) -> None:
    """Delete a line that _refuse_if_history let go, with its skips and box edits. The trail's
    trigger refuses to delete any record but those, and those only of the line named in this
    transaction (migration 0005)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('review.removing_line', %s, true)", [str(line.pk)])
        cursor.execute("DELETE FROM review_correction WHERE line_id = %s", [line.pk])
        cursor.execute("SELECT set_config('review.removing_line', '', true)")
    line.delete()


def _record_segmentation(line: Line, user, text_before: str) -> None:
    Correction.objects.create(
        line=line,
        user=user,
        action=A.SEGMENT,
        text_before=text_before,
        text_after=line.text,
        line_version=line.version,
    )

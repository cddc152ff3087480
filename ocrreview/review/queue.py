"""The review queue, read side: which line comes next, what a reviewer sees of it, and what a
threshold would do. Every change goes through ocrreview.review.actions."""

import json
from dataclasses import dataclass
from datetime import datetime

import regex
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Exists, F, FloatField, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from ocrreview.corpus.models import Collection, Document, Line, Page
from ocrreview.corpus.workflow import in_final_document
from ocrreview.db_clock import database_now
from ocrreview.review.models import Draft, ReviewerPreference
from ocrreview.transcription.models import Hypothesis

S = Line.Status
QueueOrder = ReviewerPreference.QueueOrder

# The statement that hands out lines. One UPDATE, so two reviewers can never be given the
# same line: each branch locks its candidate with FOR UPDATE SKIP LOCKED, and a row another
# transaction claimed between our snapshot and our lock is re-checked and passed over.
# "mine" gives a reviewer back a line they already hold (a reload, a second tab; held by a
# page view of theirs, it becomes the line's own claim, which that page view's leaving leaves
# alone), "expired"
# takes back lines whose lease ran out, "assigned" is the queue of the documents assigned to
# the reviewer and "waiting" the queue proper; the branch numbers rank them: a held line, an
# expired line of an assigned document, a waiting one, then the same of the other documents,
# which a collection set to "assigned only" does not offer. A final document's lines are
# never offered. Each is a short index scan (in-review lines are few, sorted whole); in
# confidence order NULLS LAST keeps to the (collection, status, confidence) index, and the
# assigned documents' waiting lines are read from the partial index of waiting lines, by
# document (a reviewer with no assignment reads none). (FOR UPDATE is not allowed inside a UNION, hence the CTEs.)
# statement_timestamp(), not now(): inside a longer transaction now() is its start, and
# leases would look younger.
_CLAIM = """
WITH mine AS (
    SELECT 0 AS branch, {sort_columns} FROM corpus_line l {join}
    WHERE l.collection_id = %(collection)s AND l.status = 'in_review'
      AND l.claimed_by_id = %(user)s {mine_filters} AND {not_final}
    ORDER BY {sort} LIMIT 1 FOR UPDATE OF l SKIP LOCKED
), expired AS (
    SELECT CASE WHEN l.document_id IN ({assigned}) THEN 1 ELSE 3 END AS branch,
        {sort_columns} FROM corpus_line l {join}
    WHERE l.collection_id = %(collection)s AND l.status = 'in_review'
      AND l.claimed_until < statement_timestamp() {filters} AND {not_final}
      AND (l.document_id IN ({assigned}) OR {others_offered})
    ORDER BY branch, {sort} LIMIT 1 FOR UPDATE OF l SKIP LOCKED
), assigned AS ({assigned_waiting}), waiting AS ({waiting})
UPDATE corpus_line SET status = 'in_review', claimed_by_id = %(user)s,
    claimed_until = statement_timestamp() + make_interval(secs => %(lease)s),
    page_view_claim = NULL
WHERE id = (
    SELECT id FROM (
        SELECT * FROM mine UNION ALL SELECT * FROM expired
        UNION ALL SELECT * FROM assigned UNION ALL SELECT * FROM waiting
    ) AS candidates
    ORDER BY {outer_sort} LIMIT 1
)
RETURNING id, status, claimed_by_id, claimed_until
"""

# The documents assigned to the reviewer, and whether the collection offers the others' lines.
_ASSIGNED = "SELECT a.document_id FROM corpus_documentassignment a WHERE a.user_id = %(user)s"
_OTHERS_OFFERED = (
    "NOT (SELECT c.assigned_only FROM corpus_collection c WHERE c.id = %(collection)s)"
)
_NOT_FINAL = (
    "NOT EXISTS (SELECT 1 FROM corpus_document f "
    "WHERE f.id = l.document_id AND f.review_state = 'final')"
)

_ORDERS = {
    QueueOrder.CONFIDENCE: {
        "sort_columns": "l.id, l.confidence AS k1, 0 AS k2, 0 AS k3",
        "join": "",
        "sort": "l.confidence ASC NULLS LAST, l.id",
        "waiting": """
    SELECT {branch} AS branch, l.id, l.confidence AS k1, 0 AS k2, 0 AS k3 FROM corpus_line l
    WHERE l.collection_id = %(collection)s AND l.status = 'needs_review' {filters}
      AND {not_final} AND {which}
    ORDER BY l.confidence ASC NULLS LAST, l.id LIMIT 1 FOR UPDATE OF l SKIP LOCKED
""",
        # From the reviewer's assignments, the least sure waiting line of each document: a
        # reviewer without any reads no line. "+ 0" keeps the planner from walking the
        # collection's whole queue in confidence order (the review_queue index) for the few
        # lines of these documents; it reads each document's waiting lines from the partial
        # index of them instead.
        "assigned_waiting": """
    SELECT 2 AS branch, w.id, w.confidence AS k1, 0 AS k2, 0 AS k3
    FROM corpus_documentassignment a
    CROSS JOIN LATERAL (
        SELECT l.id, l.confidence FROM corpus_line l
        WHERE l.collection_id = %(collection)s AND l.document_id = a.document_id
          AND l.status = 'needs_review' {filters} AND {not_final}
        ORDER BY l.confidence + 0 ASC NULLS LAST, l.id LIMIT 1 FOR UPDATE OF l SKIP LOCKED
    ) AS w
    WHERE a.user_id = %(user)s
    ORDER BY w.confidence ASC NULLS LAST, w.id LIMIT 1
""",
    },
    # In reading order the queue walks the pages in order (the (document, index) index)
    # and takes the first waiting line of the first page that has one (the reading_order
    # index), instead of sorting every waiting line of the collection by page and line.
    QueueOrder.READING: {
        "sort_columns": 'l.id, l.document_id AS k1, p.index AS k2, l."order" AS k3',
        "join": "JOIN corpus_page p ON p.id = l.page_id",
        "sort": 'l.document_id, p.index, l."order", l.id',
        "waiting": """
    SELECT {branch} AS branch, w.id, p.document_id AS k1, p.index AS k2, w."order" AS k3
    FROM corpus_page p
    JOIN corpus_document d ON d.id = p.document_id
    CROSS JOIN LATERAL (
        SELECT l.id, l."order" FROM corpus_line l
        WHERE l.collection_id = %(collection)s AND l.document_id = p.document_id
          AND l.page_id = p.id AND l.status = 'needs_review' {filters}
        ORDER BY l."order", l.id LIMIT 1 FOR UPDATE OF l SKIP LOCKED
    ) AS w
    WHERE d.collection_id = %(collection)s AND d.review_state <> 'final' {page_filters}
      AND {which_page}
      -- From the first document that has a waiting line: the documents reviewed before it
      -- are not walked page by page on every claim.
      AND p.document_id >= (
          SELECT min(l.document_id) FROM corpus_line l
          WHERE l.collection_id = %(collection)s AND l.status = 'needs_review' AND {which}
      )
    ORDER BY p.document_id, p.index LIMIT 1
""",
    },
}


def claim_sql(order: str, *, by_document: bool, excluding: bool) -> str:
    mine_filters = " AND l.document_id = %(document)s" if by_document else ""
    # A line the reviewer holds comes back even when excluded: it stays one lease at a time.
    filters = mine_filters + (" AND l.id <> ALL(%(exclude)s)" if excluding else "")
    parts = dict(_ORDERS[QueueOrder(order)])
    page_filters = " AND p.document_id = %(document)s" if by_document else ""

    def waiting(branch: int, which: str, which_page: str) -> str:
        return parts["waiting"].format(
            branch=branch,
            filters=filters,
            page_filters=page_filters,
            not_final=_NOT_FINAL,
            which=which,
            which_page=which_page,
        )

    if "assigned_waiting" in parts:
        parts["assigned_waiting"] = parts["assigned_waiting"].format(
            filters=filters, not_final=_NOT_FINAL
        )
    else:
        assigned = f"l.document_id IN ({_ASSIGNED})"
        parts["assigned_waiting"] = waiting(2, assigned, f"p.document_id IN ({_ASSIGNED})")
    parts["waiting"] = waiting(4, _OTHERS_OFFERED, _OTHERS_OFFERED)
    return _CLAIM.format(
        filters=filters,
        mine_filters=mine_filters,
        not_final=_NOT_FINAL,
        assigned=_ASSIGNED,
        others_offered=_OTHERS_OFFERED,
        outer_sort="branch, k1 ASC NULLS LAST, k2, k3, id",
        **parts,
    )


def queue_order_for(user) -> str:
    preference = ReviewerPreference.objects.filter(user=user).values_list("queue_order", flat=True)
    return preference.first() or QueueOrder.CONFIDENCE


def waiting_lines(collection: Collection, document_id: int | None = None) -> QuerySet[Line]:
    lines = collection.lines.filter(status__in=[S.NEEDS_REVIEW, S.IN_REVIEW]).exclude(
        in_final_document()
    )
    if document_id:
        lines = lines.filter(document_id=document_id)
    return lines


@dataclass
class Span:
    text: str
    level: str  # "" for confident characters, "low" or "mid" for unsure ones


@dataclass
class EditorLine:
    line: Line
    start_hypothesis: Hypothesis | None
    marked: list[Span]
    draft: Draft | None
    previous_id: int | None
    next_id: int | None
    held_by_other: bool
    position: int
    page_lines: int
    alternatives: list[Hypothesis]


LOW, MID = 0.5, 0.8


def marked_spans(text: str, tokens: list[dict]) -> list[Span]:
    """Cut the text into runs of characters by how sure the model was of the token that
    produced them, so the editor can underline exactly the characters worth a second look."""
    levels = [""] * len(text)
    for token in tokens:
        try:
            start, end, prob = int(token["start"]), int(token["end"]), float(token["prob"])
        except (KeyError, TypeError, ValueError):
            continue
        level = "low" if prob < LOW else "mid" if prob < MID else ""
        for i in range(max(start, 0), min(end, len(text))):
            if level == "low" or (level == "mid" and levels[i] == ""):
                levels[i] = level
    spans: list[Span] = []
    start = 0
    # Token offsets count code points, and a token may end between a letter and its combining
    # mark (q̃ has no precomposed form): a span cut there draws the mark on nothing, so each
    # grapheme cluster takes the least sure level of its code points.
    for char in regex.findall(r"\X", text):
        found = levels[start : start + len(char)]
        start += len(char)
        level = "low" if "low" in found else "mid" if "mid" in found else ""
        if spans and spans[-1].level == level:
            spans[-1].text += char
        else:
            spans.append(Span(char, level))
    return spans


# The editor's view of a line in one round trip: the line with its page, document and lease
# holder, its neighbours in reading order, its readings and the reviewer's draft. This runs
# on every "save and open next", where the ORM's compiling of five queries cost more than
# the database took to answer them.
_EDITOR_LINE = """
{with_claim}
SELECT l.id, l.text, l.version, {claim}.status, l.confidence, l.bbox, l."order", l.page_id,
    l.document_id, l.collection_id, l.model_version_id, {claim}.claimed_by_id,
    {claim}.claimed_until, p.index, p.width, p.height, d.title, d.review_state, u.username,
    (SELECT s.id FROM corpus_line s
     WHERE s.document_id = l.document_id AND s.page_id = l.page_id AND s."order" < l."order"
     ORDER BY s."order" DESC, s.id DESC LIMIT 1),
    (SELECT s.id FROM corpus_line s
     WHERE s.document_id = l.document_id AND s.page_id = l.page_id AND s."order" > l."order"
     ORDER BY s."order", s.id LIMIT 1),
    (SELECT count(*) FROM corpus_line s
     WHERE s.document_id = l.document_id AND s.page_id = l.page_id AND s."order" < l."order"),
    (SELECT count(*) FROM corpus_line s
     WHERE s.document_id = l.document_id AND s.page_id = l.page_id),
    (SELECT json_agg(json_build_object('id', h.id, 'rank', h.rank, 'text', h.text,
                                       'share', h.share, 'tokens', h.tokens) ORDER BY h.rank)
     FROM transcription_hypothesis h
     WHERE h.line_id = l.id AND h.model_version_id = l.model_version_id),
    dr.text, dr.base_version, dr.hypothesis_id, dr.updated_at, l.unclear, l.unclear_note,
    statement_timestamp()
FROM {source}
JOIN corpus_page p ON p.id = l.page_id
JOIN corpus_document d ON d.id = l.document_id
LEFT JOIN auth_user u ON u.id = {claim}.claimed_by_id
LEFT JOIN review_draft dr ON dr.line_id = l.id AND dr.user_id = %(user)s
"""


def editor_line_sql(claim: str | None = None) -> str:
    """The editor's query for line %(line)s, or, given a claim statement, for the line that
    statement claims: one round trip for "open the next line". The claim's own RETURNING
    gives the lease, since the rest of the statement sees the line as it was before."""
    if claim is None:
        return _EDITOR_LINE.format(with_claim="", claim="l", source="corpus_line l") + (
            "WHERE l.id = %(line)s"
        )
    return _EDITOR_LINE.format(
        with_claim=f"WITH claimed AS ({claim})",
        claim="claimed",
        source="claimed JOIN corpus_line l ON l.id = claimed.id",
    )


def editor_line(line_id: int, user) -> EditorLine | None:
    """Everything the editor shows about a line, as model instances the templates know."""
    with connection.cursor() as cursor:
        cursor.execute(editor_line_sql(), {"line": line_id, "user": user.pk})
        row = cursor.fetchone()
    return editor_line_from_row(row, user) if row else None


def editor_line_from_row(row: tuple, user) -> EditorLine:
    (id_, text, version, status, confidence, bbox, order, page_id, document_id, collection_id,
     model_version_id, claimed_by_id, claimed_until, page_index, width, height, title,
     review_state, username, previous_id, next_id, before, page_lines, readings, draft_text, draft_version,
     draft_hypothesis, draft_at, unclear, unclear_note, now) = row  # fmt: skip
    line = Line(
        id=id_,
        text=text,
        version=version,
        status=status,
        confidence=confidence,
        bbox=bbox if isinstance(bbox, list) else json.loads(bbox),
        order=order,
        collection_id=collection_id,
        model_version_id=model_version_id,
        claimed_until=claimed_until,
        unclear=unclear,
        unclear_note=unclear_note,
    )
    line.page = Page(
        id=page_id, document_id=document_id, index=page_index, width=width, height=height
    )
    line.document = Document(
        id=document_id, title=title, collection_id=collection_id, review_state=review_state
    )
    if claimed_by_id is not None:
        line.claimed_by = get_user_model()(id=claimed_by_id, username=username)
    hypotheses = [
        Hypothesis(
            id=h["id"],
            line_id=id_,
            rank=h["rank"],
            text=h["text"],
            share=h["share"],
            tokens=h["tokens"],
        )
        for h in (json.loads(readings) if isinstance(readings, str) else readings or [])
    ]
    draft = None
    if draft_version is not None:
        draft = Draft(
            line_id=id_,
            user=user,
            text=draft_text,
            base_version=draft_version,
            hypothesis_id=draft_hypothesis,
            updated_at=draft_at,
        )
    start = next((h for h in hypotheses if h.text == text), None)
    return EditorLine(
        line=line,
        start_hypothesis=start or (hypotheses[0] if hypotheses else None),
        marked=marked_spans(text, start.tokens) if start else [Span(text, "")],
        draft=draft,
        previous_id=previous_id,
        next_id=next_id,
        held_by_other=held_by_other(status, claimed_by_id, claimed_until, user, now),
        position=before + 1,
        page_lines=page_lines,
        # Alt+1 to Alt+9 reach nine readings; a collection may keep up to ten.
        alternatives=hypotheses[:9],
    )


@dataclass
class ThresholdPreview:
    threshold: float
    to_humans: int
    auto_accepted: int
    expected_errors: float
    already_reviewed: int
    # Lines of final documents no human reviewed: left as they are, in no queue.
    final_kept: int
    # Accepted lines whose model was never calibrated: their confidences are raw products of
    # token probabilities, over-confident, so the expected errors among them are too few.
    accepted_uncalibrated: int


def threshold_preview(collection: Collection, threshold: float) -> ThresholdPreview:
    """What a threshold would do to the machine-read lines, counted as `do_apply_threshold`
    routes them: below it a human reads the line; at or above it the line is accepted, and
    each accepted line is wrong with probability 1 - its calibrated confidence, so their sum
    is the errors we expect to leave behind. A line a reviewer has open, or has typed into,
    stays with them. A final document's lines stay as they are, counted apart."""
    final = in_final_document()
    machine = Q(status__in=[S.NEEDS_REVIEW, S.AUTO_ACCEPTED]) & ~final
    below = Q(confidence__lt=threshold) | Q(confidence__isnull=True)
    kept = (Q(status=S.IN_REVIEW) | Q(status=S.NEEDS_REVIEW, drafted=True)) & ~final
    accepted = machine & Q(confidence__gte=threshold) & ~kept
    numbers = collection.lines.annotate(drafted=drafted()).aggregate(
        to_humans=Count("id", filter=(machine & below) | kept),
        auto_accepted=Count("id", filter=accepted),
        expected_errors=Coalesce(
            Sum(Value(1.0) - F("confidence"), filter=accepted, output_field=FloatField()),
            Value(0.0),
        ),
        already_reviewed=Count("id", filter=Q(status=S.REVIEWED)),
        final_kept=Count("id", filter=final & ~Q(status=S.REVIEWED)),
        accepted_uncalibrated=Count(
            "id", filter=accepted & Q(model_version__calibration__isnull=True)
        ),
    )
    return ThresholdPreview(threshold=threshold, **numbers)


def drafted() -> Exists:
    """A line someone has typed into and not saved: their fix waits in a draft."""
    return Exists(Draft.objects.filter(line=OuterRef("pk")))


def lines_with_drafts(sender, line_ids: list[int], **kwargs) -> set[int]:
    """corpus's `being_corrected`: these lines hold someone's unsaved fix."""
    return set(Draft.objects.filter(line_id__in=line_ids).values_list("line_id", flat=True))


def page_lines(page: Page, user) -> list[Line]:
    """The page's lines in reading order, each with `held_by_other` set: the page view shows
    those a colleague holds now as theirs, read-only, rather than two people typing one line;
    and with `own_draft`, the user's draft of it or None: typed in the line editor, or on
    another computer, it is the page view's to show, not to write over unseen."""
    lines = list(page.lines.select_related("claimed_by").order_by("order", "id"))
    drafts = {draft.line_id: draft for draft in Draft.objects.filter(user=user, line__page=page)}
    now = database_now()
    for line in lines:
        line.held_by_other = held_by_other(
            line.status, line.claimed_by_id, line.claimed_until, user, now
        )
        line.own_draft = drafts.get(line.pk)
    return lines


def held_by_other(
    status: str, claimed_by_id: int | None, claimed_until, user, now: datetime
) -> bool:
    """Another reviewer holds the line's lease at `now`, the database's time (db_clock)."""
    return (
        status == S.IN_REVIEW
        and claimed_by_id not in (None, user.pk)
        and claimed_until is not None
        and claimed_until > now
    )

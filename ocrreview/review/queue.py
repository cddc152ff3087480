"""The review queue, read side: which line comes next, what a reviewer sees of it, and what a
threshold would do. Every change goes through ocrreview.review.actions."""

from dataclasses import dataclass

from django.db.models import Count, F, FloatField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from ocrreview.corpus.models import Collection, Line
from ocrreview.review.models import Draft, ReviewerPreference
from ocrreview.transcription.models import Hypothesis

S = Line.Status
QueueOrder = ReviewerPreference.QueueOrder

# The statement that hands out lines. One UPDATE, so two reviewers can never be given the
# same line: each branch locks its candidate with FOR UPDATE SKIP LOCKED, and a row another
# transaction claimed between our snapshot and our lock is re-checked and passed over.
# "mine" gives a reviewer back a line they already hold (a reload, a second tab), "expired"
# takes back lines whose lease ran out, "waiting" is the queue proper. Each is a short scan
# of the (collection, status, confidence) index; NULLS LAST keeps to the index's order.
# (FOR UPDATE is not allowed inside a UNION, hence the CTEs.) statement_timestamp(), not
# now(): inside a longer transaction now() is its start, and leases would look younger.
_CLAIM = """
WITH mine AS (
    SELECT 0 AS branch, {sort_columns} FROM corpus_line l {join}
    WHERE l.collection_id = %(collection)s AND l.status = 'in_review'
      AND l.claimed_by_id = %(user)s {filters}
    ORDER BY {sort} LIMIT 1 FOR UPDATE OF l SKIP LOCKED
), expired AS (
    SELECT 1 AS branch, {sort_columns} FROM corpus_line l {join}
    WHERE l.collection_id = %(collection)s AND l.status = 'in_review'
      AND l.claimed_until < statement_timestamp() {filters}
    ORDER BY {sort} LIMIT 1 FOR UPDATE OF l SKIP LOCKED
), waiting AS (
    SELECT 2 AS branch, {sort_columns} FROM corpus_line l {join}
    WHERE l.collection_id = %(collection)s AND l.status = 'needs_review' {filters}
    ORDER BY {sort} LIMIT 1 FOR UPDATE OF l SKIP LOCKED
)
UPDATE corpus_line SET status = 'in_review', claimed_by_id = %(user)s,
    claimed_until = statement_timestamp() + make_interval(secs => %(lease)s)
WHERE id = (
    SELECT id FROM (
        SELECT * FROM mine UNION ALL SELECT * FROM expired UNION ALL SELECT * FROM waiting
    ) AS candidates
    ORDER BY {outer_sort} LIMIT 1
)
RETURNING id
"""

_ORDERS = {
    QueueOrder.CONFIDENCE: {
        "sort_columns": "l.id, l.confidence AS k1, 0 AS k2, 0 AS k3",
        "join": "",
        "sort": "l.confidence ASC NULLS LAST, l.id",
    },
    # Reading order needs the page's index; pages are few, so the join is cheap per
    # document, and a reviewer who reads in order usually filters by document.
    QueueOrder.READING: {
        "sort_columns": 'l.id, l.document_id AS k1, p.index AS k2, l."order" AS k3',
        "join": "JOIN corpus_page p ON p.id = l.page_id",
        "sort": 'l.document_id, p.index, l."order", l.id',
    },
}


def claim_sql(order: str, *, by_document: bool, excluding: bool) -> str:
    filters = ""
    if by_document:
        filters += " AND l.document_id = %(document)s"
    if excluding:
        filters += " AND l.id <> ALL(%(exclude)s)"
    parts = _ORDERS[QueueOrder(order)]
    return _CLAIM.format(
        filters=filters,
        outer_sort="branch, k1 ASC NULLS LAST, k2, k3, id",
        **parts,
    )


def queue_order_for(user) -> str:
    preference = ReviewerPreference.objects.filter(user=user).values_list("queue_order", flat=True)
    return preference.first() or QueueOrder.CONFIDENCE


def waiting_count(collection: Collection, document_id: int | None = None) -> int:
    lines = collection.lines.filter(status__in=[S.NEEDS_REVIEW, S.IN_REVIEW])
    if document_id:
        lines = lines.filter(document_id=document_id)
    return lines.count()


@dataclass
class Span:
    text: str
    level: str  # "" for confident characters, "low" or "mid" for unsure ones


@dataclass
class EditorLine:
    line: Line
    hypotheses: list[Hypothesis]
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
    for char, level in zip(text, levels, strict=True):
        if spans and spans[-1].level == level:
            spans[-1].text += char
        else:
            spans.append(Span(char, level))
    return spans


def editor_lines() -> QuerySet[Line]:
    """Lines with what the editor shows around them: the collection (palette), the page,
    the holder of the lease, and the neighbours in reading order, in one query."""
    siblings = Line.objects.filter(
        document_id=OuterRef("document_id"), page_id=OuterRef("page_id")
    ).order_by()
    count = siblings.values("page_id").annotate(n=Count("id")).values("n")
    return Line.objects.select_related("collection", "page", "document", "claimed_by").annotate(
        previous_id=Subquery(
            siblings.filter(order__lt=OuterRef("order")).order_by("-order", "-id").values("id")[:1]
        ),
        next_id=Subquery(
            siblings.filter(order__gt=OuterRef("order")).order_by("order", "id").values("id")[:1]
        ),
        position=Coalesce(Subquery(count.filter(order__lt=OuterRef("order"))), 0) + 1,
        page_lines=Subquery(count),
    )


def editor_line(line: Line, user) -> EditorLine:
    """Everything the editor shows about a line from editor_lines(): two more queries."""
    hypotheses = list(
        Hypothesis.objects.filter(line=line, model_version_id=line.model_version_id).order_by(
            "rank"
        )
    )
    start = next((h for h in hypotheses if h.text == line.text), None)
    marked = marked_spans(line.text, start.tokens) if start else [Span(line.text, "")]
    return EditorLine(
        line=line,
        hypotheses=hypotheses,
        start_hypothesis=start or (hypotheses[0] if hypotheses else None),
        marked=marked,
        draft=Draft.objects.filter(line=line, user=user).first(),
        previous_id=line.previous_id,
        next_id=line.next_id,
        held_by_other=line.status == S.IN_REVIEW and line.claimed_by_id not in (None, user.pk),
        position=line.position,
        page_lines=line.page_lines,
        alternatives=hypotheses[:9],
    )


@dataclass
class ThresholdPreview:
    threshold: float
    to_humans: int
    auto_accepted: int
    expected_errors: float
    already_reviewed: int


def threshold_preview(collection: Collection, threshold: float) -> ThresholdPreview:
    """What a threshold would do to the machine-read lines: below it a human reads the line;
    at or above it the line is accepted, and each accepted line is wrong with probability
    1 - its calibrated confidence, so their sum is the errors we expect to leave behind."""
    machine = Q(status__in=[S.RECOGNIZED, S.NEEDS_REVIEW, S.IN_REVIEW, S.AUTO_ACCEPTED])
    below = Q(confidence__lt=threshold) | Q(confidence__isnull=True)
    above = Q(confidence__gte=threshold)
    numbers = collection.lines.aggregate(
        to_humans=Count("id", filter=machine & below),
        auto_accepted=Count("id", filter=machine & above),
        expected_errors=Coalesce(
            Sum(Value(1.0) - F("confidence"), filter=machine & above, output_field=FloatField()),
            Value(0.0),
        ),
        already_reviewed=Count("id", filter=Q(status=S.REVIEWED)),
    )
    return ThresholdPreview(threshold=threshold, **numbers)

"""Progress of a collection: where its lines stand, and how each reviewer is doing."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from ocrreview.corpus.models import Collection, Document, DocumentAssignment, Line
from ocrreview.corpus.progress import summed_line_counts, with_line_counts
from ocrreview.corpus.workflow import next_states
from ocrreview.review.models import Correction

A = Correction.Action
# Actions that settle a line; skips, segmentation and imports are not review work done.
SETTLING = [A.ACCEPT, A.EDIT, A.PICK, A.REVERT]


@dataclass
class ReviewerStats:
    username: str
    lines: int
    changed: int
    # The lines settled with the time spent on them measured, and that time: saves from the
    # page view, the API or a revert carry none, and would make a reviewer look faster.
    timed_lines: int
    hours: float

    @property
    def lines_per_hour(self) -> float | None:
        return self.timed_lines / self.hours if self.hours else None

    @property
    def changed_share(self) -> float:
        return self.changed / self.lines if self.lines else 0.0


@dataclass
class Holder:
    """Someone who holds lines of a document now, and until when the latest of them."""

    username: str
    lines: int
    until: datetime


@dataclass
class DocumentRow:
    """A document as its coordinators follow it: its lines, its review state and who it is
    assigned to, who holds its lines now, who settled a line of it last and when, and the
    states the person looking may move it to."""

    document: Document
    counts: dict
    assignees: list = field(default_factory=list)
    holders: list[Holder] = field(default_factory=list)
    last_by: str | None = None
    last_at: datetime | None = None
    next_states: list[str] = field(default_factory=list)


@dataclass
class Progress:
    counts: dict
    documents: list[DocumentRow]
    reviewers: list[ReviewerStats]

    @property
    def max_rate(self) -> float:
        return max((r.lines_per_hour or 0 for r in self.reviewers), default=0) or 1.0


def reviewer_stats(collection: Collection) -> list[ReviewerStats]:
    """Lines a reviewer settled, each once however often they saved it. Lines per hour counts
    the time reviewers spent on the lines they settled, as the editor measured it, so coffee
    breaks with the editor closed do not count against them."""
    timed = Q(time_spent_ms__gt=0)
    rows = (
        Correction.objects.filter(line__collection=collection, action__in=SETTLING)
        .values("user__username")
        .annotate(
            lines=Count("line", distinct=True),
            changed=Count("line", distinct=True, filter=~Q(text_before=F("text_after"))),
            timed_lines=Count("line", distinct=True, filter=timed),
            ms=Sum("time_spent_ms", filter=timed),
        )
        .order_by("user__username")
    )
    return [
        ReviewerStats(
            username=row["user__username"] or "(deleted user)",
            lines=row["lines"],
            changed=row["changed"],
            timed_lines=row["timed_lines"],
            hours=(row["ms"] or 0) / 3_600_000,
        )
        for row in rows
    ]


def collection_progress(
    collection: Collection,
    user,
    *,
    is_admin: bool,
    review_state: str | None = None,
    assignee=None,
) -> Progress:
    """The collection's progress as `user` sees it, its documents filtered by review state
    and assignee if given (the totals stay the collection's)."""
    counted = with_line_counts(
        collection.documents.without_iiif_json(), collection.lines.all(), "document_id"
    )
    shown = [
        (document, counts)
        for document, counts in counted
        if review_state in (None, document.review_state)
    ]
    assignees = defaultdict(list)
    for assignment in (
        DocumentAssignment.objects.filter(document__collection=collection)
        .select_related("user")
        .order_by("user__username")
    ):
        assignees[assignment.document_id].append(assignment.user)
    if assignee is not None:
        shown = [(d, c) for d, c in shown if assignee in assignees[d.pk]]
    holders = _holders(collection)
    last = _last_settled(collection)
    rows = []
    for document, counts in shown:
        by, at = last.get(document.pk, (None, None))
        rows.append(
            DocumentRow(
                document,
                counts,
                assignees=assignees[document.pk],
                holders=holders[document.pk],
                last_by=by,
                last_at=at,
                next_states=next_states(
                    document.review_state,
                    is_admin=is_admin,
                    is_assignee=user in assignees[document.pk],
                ),
            )
        )
    return Progress(
        counts=summed_line_counts(counted),
        documents=rows,
        reviewers=reviewer_stats(collection),
    )


def _holders(collection: Collection) -> dict[int, list[Holder]]:
    """Who holds lines of each document now (a lease run out is nobody's any longer)."""
    held = (
        Line.objects.filter(
            collection=collection, status=Line.Status.IN_REVIEW, claimed_until__gt=timezone.now()
        )
        .values("document_id", "claimed_by__username")
        .annotate(n=Count("id"), until=Max("claimed_until"))
        .order_by("document_id", "claimed_by__username")
    )
    holders = defaultdict(list)
    for row in held:
        holders[row["document_id"]].append(
            Holder(row["claimed_by__username"], row["n"], row["until"])
        )
    return holders


def _last_settled(collection: Collection) -> dict[int, tuple[str, datetime]]:
    """Per document, who settled a line of it last, and when: read from the collection's
    trail, as reviewer_stats reads it."""
    latest = (
        Correction.objects.filter(line__collection=collection, action__in=SETTLING)
        .order_by("line__document_id", "-created_at", "-id")
        .distinct("line__document_id")
        .values_list("line__document_id", "user__username", "created_at")
    )
    return {document_id: (name or "(deleted user)", at) for document_id, name, at in latest}

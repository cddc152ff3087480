"""Progress of a collection: where its lines stand, and how each reviewer is doing."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import Count, Max

from ocrreview.corpus.models import Collection, Document, DocumentAssignment, Line
from ocrreview.corpus.progress import with_line_counts
from ocrreview.corpus.workflow import next_states
from ocrreview.db_clock import DatabaseNow
from ocrreview.review.models import Correction, ReviewerTotals

A = Correction.Action
# Documents on a page of the progress view: its rows are read for these alone (their counts,
# assignees, holders and last work), so that a collection of 2,000 documents is not 2,000
# rows of forms on one page, and "last worked" reads these documents' trails, not the whole
# collection's (1.7 s on 2.2 M corrections).
DOCUMENTS_PER_PAGE = 50
# Actions that settle a line; skips, segmentation and imports are not review work done. The
# trigger that keeps the reviewer statistics (migration 0008) counts the same ones.
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
    # The page of documents shown (its number, whether others precede and follow).
    page: Page | None = None

    @property
    def max_rate(self) -> float:
        return max((r.lines_per_hour or 0 for r in self.reviewers), default=0) or 1.0


def reviewer_stats(collection: Collection) -> list[ReviewerStats]:
    """Lines a reviewer settled, each once however often they saved it. Lines per hour counts
    the time reviewers spent on the lines they settled, as the editor measured it, so coffee
    breaks with the editor closed do not count against them. Read from the running totals the
    trail's trigger keeps (models.ReviewerTotals): counting distinct lines over the trail took
    2.1-2.6 s at 2.2 M corrections, on every load of the page."""
    rows = (
        ReviewerTotals.objects.filter(collection=collection)
        .values("user__username", "lines", "changed", "timed_lines", "time_spent_ms")
        .order_by("user__username")
    )
    return [
        ReviewerStats(
            username=row["user__username"] or "(deleted user)",
            lines=row["lines"],
            changed=row["changed"],
            timed_lines=row["timed_lines"],
            hours=row["time_spent_ms"] / 3_600_000,
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
    page: int | str | None = 1,
) -> Progress:
    """The collection's progress as `user` sees it: its totals, and one page of its documents
    (DOCUMENTS_PER_PAGE, newest first), filtered by review state and assignee if given."""
    documents = collection.documents.without_iiif_json()
    if review_state is not None:
        documents = documents.filter(review_state=review_state)
    if assignee is not None:
        documents = documents.filter(assignments__user=assignee)
    shown = Paginator(documents.order_by("-uploaded_at", "-id"), DOCUMENTS_PER_PAGE).get_page(page)
    ids = [document.pk for document in shown]
    counted = with_line_counts(shown, Line.objects.filter(document_id__in=ids), "document_id")
    [(_, totals)] = with_line_counts([collection], collection.lines.all(), "collection_id")
    assignees = defaultdict(list)
    for assignment in (
        DocumentAssignment.objects.filter(document_id__in=ids)
        .select_related("user")
        .order_by("user__username")
    ):
        assignees[assignment.document_id].append(assignment.user)
    holders = _holders(collection, ids)
    last = _last_settled(ids)
    rows = []
    for document, counts in counted:
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
    return Progress(counts=totals, documents=rows, reviewers=reviewer_stats(collection), page=shown)


def _holders(collection: Collection, document_ids: list[int]) -> dict[int, list[Holder]]:
    """Who holds lines of each document now (a lease run out is nobody's any longer)."""
    held = (
        Line.objects.filter(
            collection=collection,
            document_id__in=document_ids,
            status=Line.Status.IN_REVIEW,
            claimed_until__gt=DatabaseNow(),
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


def _last_settled(document_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """Per document, who settled a line of it last, and when: read from these documents'
    trails alone (their lines by the reading_order index, then each line's corrections)."""
    latest = (
        Correction.objects.filter(line__document_id__in=document_ids, action__in=SETTLING)
        .order_by("line__document_id", "-created_at", "-id")
        .distinct("line__document_id")
        .values_list("line__document_id", "user__username", "created_at")
    )
    return {document_id: (name or "(deleted user)", at) for document_id, name, at in latest}

"""Progress of a collection: where its lines stand, and how each reviewer is doing."""

from dataclasses import dataclass

from django.db.models import Count, F, Q, Sum

from ocrreview.corpus.models import Collection
from ocrreview.corpus.progress import summed_line_counts, with_line_counts
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
class Progress:
    counts: dict
    documents: list[tuple]
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


def collection_progress(collection: Collection) -> Progress:
    documents = with_line_counts(
        collection.documents.without_iiif_json(),
        collection.lines.all(),
        "document_id",
    )
    return Progress(
        counts=summed_line_counts(documents),
        documents=documents,
        reviewers=reviewer_stats(collection),
    )

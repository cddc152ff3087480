from django.db.models import Count, Q, QuerySet

from ocrreview.corpus.models import Line

S = Line.Status


def line_counts(lines: QuerySet[Line]) -> dict[str, int]:
    """Totals an admin reads at a glance: how many lines, and how many still need eyes."""
    counts = lines.aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(status__in=[S.PENDING, S.RECOGNIZED])),
        auto_accepted=Count("id", filter=Q(status=S.AUTO_ACCEPTED)),
        needs_review=Count("id", filter=Q(status__in=[S.NEEDS_REVIEW, S.IN_REVIEW])),
        reviewed=Count("id", filter=Q(status=S.REVIEWED)),
        failed=Count("id", filter=Q(status=S.FAILED)),
    )
    done = counts["auto_accepted"] + counts["needs_review"] + counts["reviewed"] + counts["failed"]
    counts["recognized"] = done
    return counts

from django.db.models import Count, Q, QuerySet

from ocrreview.corpus.models import Line

S = Line.Status


def _counted() -> dict[str, Count]:
    return {
        "total": Count("id"),
        "pending": Count("id", filter=Q(status__in=[S.PENDING, S.RECOGNIZED])),
        "auto_accepted": Count("id", filter=Q(status=S.AUTO_ACCEPTED)),
        "needs_review": Count("id", filter=Q(status__in=[S.NEEDS_REVIEW, S.IN_REVIEW])),
        "reviewed": Count("id", filter=Q(status=S.REVIEWED)),
        "failed": Count("id", filter=Q(status=S.FAILED)),
    }


def _with_recognized(counts: dict[str, int]) -> dict[str, int]:
    done = counts["auto_accepted"] + counts["needs_review"] + counts["reviewed"] + counts["failed"]
    return {**counts, "recognized": done}


NO_LINES = _with_recognized(dict.fromkeys(_counted(), 0))


def line_counts(lines: QuerySet[Line]) -> dict[str, int]:
    """Totals an admin reads at a glance: how many lines, and how many still need eyes."""
    return _with_recognized(lines.aggregate(**_counted()))


def line_counts_by(lines: QuerySet[Line], field: str) -> dict[int, dict[str, int]]:
    """line_counts for each value of `field` ("document_id", "collection_id") in one query, so
    that a list of 800 documents is not 800 queries; a value without lines is absent (NO_LINES)."""
    rows = lines.order_by().values(field).annotate(**_counted())
    return {row.pop(field): _with_recognized(row) for row in rows}

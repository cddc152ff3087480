"""The reviewer statistics per day: what each person settled in a collection on each day, and
the collection's totals of those days, for coordinators who plan shifts, thank volunteers
and report to funders. Read from the rows the trail's trigger keeps (models.ReviewerDay,
migration 0009), which say what counts on a day."""

import importlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from ocrreview.corpus.models import Collection
from ocrreview.review.models import ReviewerDay

# The trigger's function and backfill are the migration's, made for another zone.
migration = importlib.import_module("ocrreview.review.migrations.0009_reviewer_days")

# Days shown when no range is asked for, and the most one request may ask for: a year and a
# day, so that a year's report and the same day a year before both fit.
DEFAULT_DAYS = 30
MAX_DAYS = 366
DELETED_USER = "(deleted user)"  # as progress.reviewer_stats names records with no user


@dataclass
class DayStats:
    """One person's work on one day, or everyone's (the day's total: each person's lines added,
    so a line two people settled counts for each, as in the running totals' table)."""

    username: str
    user: int | None = None  # the account's id; None for a total, and a deleted user
    lines: int = 0
    changed: int = 0
    timed_lines: int = 0
    time_spent_ms: int = 0

    @property
    def accepted(self) -> int:
        """Lines settled that day that none of their saves that day changed."""
        return self.lines - self.changed

    @property
    def hours(self) -> float:
        return self.time_spent_ms / 3_600_000

    @property
    def lines_per_hour(self) -> float | None:
        return self.timed_lines / self.hours if self.time_spent_ms else None

    def add(self, other: "DayStats") -> None:
        self.lines += other.lines
        self.changed += other.changed
        self.timed_lines += other.timed_lines
        self.time_spent_ms += other.time_spent_ms


@dataclass
class Day:
    day: date
    reviewers: list[DayStats] = field(default_factory=list)
    # None where the person looking sees only their own work.
    total: DayStats | None = None


@dataclass
class ReviewerDays:
    zone: str  # the time zone the days are counted in
    since: date
    until: date
    days: list[Day]  # every day of the range, newest first

    @property
    def worked(self) -> bool:
        return any(day.reviewers for day in self.days)


def day_zone(using: str = "default") -> str:
    """The zone the trigger counts days in: settings.TIME_ZONE as it was at the last migrate."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT review_day_zone()")
        return cursor.fetchone()[0]


def today(zone: str) -> date:
    return timezone.localdate(timezone=ZoneInfo(zone))


def reviewer_days(
    collection: Collection, since: date, until: date, *, zone: str, only=None
) -> ReviewerDays:
    """Each day from `since` to `until`, newest first, with what each reviewer did on it (those
    who did something) and, unless `only` (a user) limits it to their own work, the day's
    totals. `zone`: day_zone(), which the caller read to know which day is today."""
    rows = ReviewerDay.objects.filter(collection=collection, day__range=(since, until))
    if only is not None:
        rows = rows.filter(user=only)
    by_day: dict[date, Day] = {}
    span = (until - since).days
    for offset in range(span + 1):
        day = until - timedelta(days=offset)
        by_day[day] = Day(day, total=None if only is not None else DayStats("(all reviewers)"))
    values = rows.values(
        "day", "user", "user__username", "lines", "changed", "timed_lines", "time_spent_ms"
    ).order_by("-day", "user__username")
    for row in values:
        stats = DayStats(
            username=row["user__username"] or DELETED_USER,
            user=row["user"],
            lines=row["lines"],
            changed=row["changed"],
            timed_lines=row["timed_lines"],
            time_spent_ms=row["time_spent_ms"],
        )
        shown = by_day[row["day"]]
        shown.reviewers.append(stats)
        if shown.total is not None:
            shown.total.add(stats)
    return ReviewerDays(zone, since, until, list(by_day.values()))


def recount_days(zone: str, using: str = "default") -> None:
    """Count every day again in `zone`, and from now on: the trigger's function made for it,
    and its rows filled again from the trail. Saves wait meanwhile, as for the migration."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            migration.LOCK
            + migration.count_days(zone)
            + "DELETE FROM review_reviewerlineday; DELETE FROM review_reviewerday;"
            + migration.backfill_days(zone)
        )


def count_days_in_the_sites_zone(using: str = "default", **kwargs) -> None:
    """After a migrate (post_migrate): where TIME_ZONE changed since the days were counted,
    count them again in the new zone, so that a day is the site's day."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regproc('review_day_zone') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return  # migrated back before 0009
    if day_zone(using) != settings.TIME_ZONE:
        recount_days(settings.TIME_ZONE, using)

"""A collection's correction trail as its coordinators read it: newest first, by person and by
time, a page at a time, to find one volunteer's work (and undo it: actions.py).

Pages are keyset cursors over (created_at, id), newest first, so corrections saved while a
coordinator pages shift no page. The trail has no collection column (it is append-only, so one
cannot be filled in for the rows it holds): a page walks the index of times, or with a person
chosen the index of their corrections by time (`corrections_by_reviewer`), newest first, and
keeps the rows whose line is the collection's. That reads few rows more than it shows where the
collection makes much of the site's traffic; one small beside a busy one reads past the other's."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from ocrreview.corpus.models import Collection, Membership
from ocrreview.review.models import Correction

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([on])(-?[0-9]{1,18})\.([0-9]{1,19})")


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Position:
    """Where a page starts or ends, in the trail's order."""

    created_at: datetime
    id: int


@dataclass
class TrailPage:
    corrections: list[Correction]
    # The last correction shown, when older ones follow; the first, when newer ones precede.
    older: Position | None
    newer: Position | None


def trail_users(collection: Collection) -> QuerySet:
    """The people whose corrections may be looked for in the collection: its members, and
    anyone whose corrections are in it. A volunteer removed from it (the first thing to do
    about a vandal) leaves their corrections behind, which must still be found and undone."""
    member = Membership.objects.filter(user=OuterRef("pk"), collection=collection)
    corrected = Correction.objects.filter(user=OuterRef("pk"), line__collection=collection)
    return get_user_model().objects.filter(Exists(member) | Exists(corrected))


def trail(collection: Collection, *, user=None, since=None, until=None) -> QuerySet[Correction]:
    """The collection's corrections, by `user` if given, from `since` and before `until`."""
    corrections = Correction.objects.filter(line__collection=collection)
    if user is not None:
        corrections = corrections.filter(user=user)
    if since is not None:
        corrections = corrections.filter(created_at__gte=since)
    if until is not None:
        corrections = corrections.filter(created_at__lt=until)
    return corrections


def trail_page(
    corrections: QuerySet[Correction],
    cursor: tuple[Position, bool] | None = None,
    size: int = PAGE_SIZE,
) -> TrailPage:
    """A page of `corrections`, newest first: the first, or the one after or (newer) before
    a cursor's position."""
    shown = corrections.select_related("user", "line__document", "line__page")
    if cursor is None:
        rows = list(shown.order_by("-created_at", "-id")[: size + 1])
        return TrailPage(rows[:size], _last(rows, size), None)
    position, newer = cursor
    at = position.created_at
    if not newer:
        # `created_at <= at` as well, for the index: the scan starts at the position.
        after = Q(created_at__lt=at) | Q(created_at=at, id__lt=position.id)
        rows = list(
            shown.filter(after, created_at__lte=at).order_by("-created_at", "-id")[: size + 1]
        )
        return TrailPage(rows[:size], _last(rows, size), _position(rows[0]) if rows else None)
    before = Q(created_at__gt=at) | Q(created_at=at, id__gt=position.id)
    rows = list(shown.filter(before, created_at__gte=at).order_by("created_at", "id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size][::-1]
    return TrailPage(
        rows, _position(rows[-1]) if rows else None, _position(rows[0]) if more else None
    )


def _last(rows: list[Correction], size: int) -> Position | None:
    return _position(rows[size - 1]) if len(rows) > size else None


def _position(correction: Correction) -> Position:
    return Position(correction.created_at, correction.pk)


def encode_cursor(position: Position, *, newer: bool) -> str:
    microseconds = (position.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{'n' if newer else 'o'}{microseconds}.{position.id}"


def decode_cursor(cursor: str) -> tuple[Position, bool]:
    """The position and whether the page is of the corrections newer than it; BadCursor for
    anything this module did not make."""
    found = _CURSOR.fullmatch(cursor)
    if found is None or not 0 < int(found[3]) < 2**63:
        raise BadCursor("Not a cursor of this list.")
    try:
        created_at = _EPOCH + timedelta(microseconds=int(found[2]))
    except OverflowError:
        raise BadCursor("Not a cursor of this list.") from None
    return Position(created_at, int(found[3])), found[1] == "n"

"""Lists read newest first, a page at a time, as coordinators read a collection's trails (its
corrections, its events): keyset cursors over (a time, id), so rows added while someone pages
shift no page. A cursor is opaque to clients: `o` or `n` (the page older or newer than the
position), the time in microseconds since the epoch, and the id."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.http import HttpRequest, QueryDict

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([on])(-?[0-9]{1,18})\.([0-9]{1,19})")
CURSOR_MAX_LENGTH = 60
# Rows on a page of a trail: unless asked for, and at most.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Position:
    """Where a page starts or ends, in the list's order."""

    time: datetime
    id: int


@dataclass
class KeysetPage:
    rows: list[Any]
    # The last row shown, when older ones follow; the first, when newer ones precede.
    older: Position | None
    newer: Position | None


def newest_first(
    rows: QuerySet, time: str, cursor: tuple[Position, bool] | None, size: int
) -> KeysetPage:
    """A page of `rows`, newest first by their `time` field, then id: the first, or the one
    after or (newer) before a cursor's position. An index on (…, time, id) answers it."""
    if cursor is None:
        found = list(rows.order_by(f"-{time}", "-id")[: size + 1])
        return KeysetPage(found[:size], _last(found, size, time), None)
    position, newer = cursor
    at = position.time
    if not newer:
        # `time <= at` as well, for the index: the scan starts at the position.
        after = Q(**{f"{time}__lt": at}) | Q(**{time: at, "id__lt": position.id})
        found = list(
            rows.filter(after, **{f"{time}__lte": at}).order_by(f"-{time}", "-id")[: size + 1]
        )
        first = _position(found[0], time) if found else None
        return KeysetPage(found[:size], _last(found, size, time), first)
    before = Q(**{f"{time}__gt": at}) | Q(**{time: at, "id__gt": position.id})
    found = list(rows.filter(before, **{f"{time}__gte": at}).order_by(time, "id")[: size + 1])
    more = len(found) > size
    found = found[:size][::-1]
    return KeysetPage(
        found,
        _position(found[-1], time) if found else None,
        _position(found[0], time) if more else None,
    )


def _last(rows: list, size: int, time: str) -> Position | None:
    return _position(rows[size - 1], time) if len(rows) > size else None


def _position(row, time: str) -> Position:
    return Position(getattr(row, time), row.pk)


def encode_cursor(position: Position, *, newer: bool) -> str:
    microseconds = (position.time - _EPOCH) // timedelta(microseconds=1)
    return f"{'n' if newer else 'o'}{microseconds}.{position.id}"


def decode_cursor(cursor: str) -> tuple[Position, bool]:
    """The position and whether the page is of the rows newer than it; BadCursor for anything
    this module did not make."""
    found = _CURSOR.fullmatch(cursor)
    if found is None or not 0 < int(found[3]) < 2**63:
        raise BadCursor("Not a cursor of this list.")
    try:
        time = _EPOCH + timedelta(microseconds=int(found[2]))
    except OverflowError:
        raise BadCursor("Not a cursor of this list.") from None
    return Position(time, int(found[3])), found[1] == "n"


def page_query(params: QueryDict, position: Position | None, *, newer: bool) -> str | None:
    """The query string of the page older or newer than `position`, with the request's other
    parameters (its filters) kept; None where there is no such page."""
    if position is None:
        return None
    params = params.copy()
    params["cursor"] = encode_cursor(position, newer=newer)
    return f"?{params.urlencode()}"


def _page_url(request: HttpRequest, position: Position | None, *, newer: bool) -> str | None:
    query = page_query(request.GET, position, newer=newer)
    return None if query is None else request.build_absolute_uri(request.path + query)


def api_page(request: HttpRequest, page: KeysetPage, results: list) -> dict:
    """An API answer of one page: its rows and the absolute URLs of the pages either side."""
    return {
        "next": _page_url(request, page.older, newer=False),
        "previous": _page_url(request, page.newer, newer=True),
        "results": results,
    }


class CursorField(forms.CharField):
    """A form's cursor: cleaned to (position, newer), or None for the first page."""

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=CURSOR_MAX_LENGTH, **kwargs)

    def clean(self, value) -> tuple[Position, bool] | None:
        cursor = super().clean(value)
        if not cursor:
            return None
        try:
            return decode_cursor(cursor)
        except BadCursor as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc

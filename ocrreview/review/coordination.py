"""A collection's correction trail as its coordinators read it: newest first, by person and by
time, a page at a time, to find one volunteer's work (and undo it: actions.py).

Pages are keyset cursors over (created_at, id), newest first (corpus/keyset.py), so
corrections saved while a coordinator pages shift no page. The trail has no collection column (it is append-only, so one
cannot be filled in for the rows it holds): a page walks the index of times, or with a person
chosen the index of their corrections by time (`corrections_by_reviewer`), newest first, and
keeps the rows whose line is the collection's. That reads few rows more than it shows where the
collection makes much of the site's traffic; one small beside a busy one reads past the other's."""

from django.db.models import OuterRef, QuerySet

from ocrreview.corpus import keyset, trail_people
from ocrreview.corpus.models import Collection, iiif_json_through
from ocrreview.review.models import Correction


def trail_users(collection: Collection) -> QuerySet:
    """The people whose corrections may be looked for in the collection: its members, and
    anyone whose corrections are in it. A volunteer removed from it (the first thing to do
    about a vandal) leaves their corrections behind, which must still be found and undone."""
    corrected = Correction.objects.filter(user=OuterRef("pk"), line__collection=collection)
    return trail_people.members_or(collection, corrected)


def trail(
    collection: Collection, *, user=None, document=None, since=None, until=None
) -> QuerySet[Correction]:
    """The collection's corrections, by `user` and of `document`'s lines if given, from
    `since` and before `until`."""
    corrections = Correction.objects.filter(line__collection=collection)
    if user is not None:
        corrections = corrections.filter(user=user)
    if document is not None:
        corrections = corrections.filter(line__document=document)
    if since is not None:
        corrections = corrections.filter(created_at__gte=since)
    if until is not None:
        corrections = corrections.filter(created_at__lt=until)
    return corrections


def trail_page(
    corrections: QuerySet[Correction],
    cursor: tuple[keyset.Position, bool] | None = None,
    size: int = keyset.PAGE_SIZE,
) -> keyset.KeysetPage:
    """A page of `corrections`, newest first: the first, or the one after or (newer) before
    a cursor's position."""
    shown = corrections.select_related("user", "line__document", "line__page").defer(
        *iiif_json_through("line__document")
    )
    return keyset.newest_first(shown, "created_at", cursor, size)

"""A collection's events (CollectionEvent): recorded by the actions that make the changes, of
every app (`record_event`), and read by its admins on the History page and in the API, newest
first, by type and by person, as sentences ("alice changed the review threshold from 0.80 to
0.85").

extra_data holds who made the change (`actor`: `id` and `username` as they were then, kept once
the account is deleted, which empties acting_user; null for the system: a training run's
promotion gate) and, by event type: the changes of settings (`changes`: each setting's
`property`, `old_value` and `new_value`); a threshold applied (`old_value`, `new_value`, and
the lines moved, `to_humans` and `accepted`); a model promoted (`old_value`, `new_value`: each
the model's `id` and `name`, null for the site's default); lines queued to be read again
(`model`, `lines`, `unreviewed_only`); a member added, re-roled or removed (`member`: `id` and
`username`; `role`, or `old_value` and `new_value`; added by an invitation, also `invited`: the
`email` it was sent to and whether it made a `new_account`); a person's saves undone (`member`,
`since`, `reverted`, `requeued`); a line moved (`old_value`, `new_value`: boxes), deleted
(`bbox`, `text`) or added (`bbox`); a line moved in reading order (`old_value`, `new_value`:
its places, from 1); a page's lines sorted by position (`old_value`, `new_value`: the line
ids in reading order before and after, `moved`: how many lines changed places), and such a
sort undone (`sort`: the sort's event, `old_value`, `new_value` as a sort's); a document's
review state changed (`old_value`, `new_value`: states) or its assignees (`added`, `removed`:
members); a collection created (`name`, as it was named then). An event about a document, page or line also holds its
`title`, `page` and `line` numbers as shown (from 1), read once it is gone."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ocrreview.corpus import keyset, trail_people
from ocrreview.corpus.models import Collection, CollectionEvent, Document, Line, Membership, Page

T = CollectionEvent.Type
# Edits of lines, one event each, shown as one row where one person made them one after the
# other on one page ("bob removed 3 lines on page 12 of 'Letter to X'").
LINE_EDITS = (T.LINE_ADDED, T.LINE_MOVED, T.LINE_DELETED, T.LINE_REORDERED)


def record_event(
    collection: Collection | int,
    event_type: str,
    *,
    actor,
    document: Document | None = None,
    page: Page | None = None,
    line: Line | None = None,
    **extra,
) -> CollectionEvent:
    """Record a change of `collection` made by `actor` (None: the system), from inside the
    transaction that makes it. The actor, and the line, page and document it is about, are
    named by id and described as shown, so that the event still reads once they are deleted."""
    about = {}
    if line is not None:
        page = page or line.page
        about["line"] = line.order + 1
    if page is not None:
        document = document or page.document
        about["page"] = page.index + 1
    if document is not None:
        about["title"] = document.title
    return CollectionEvent.objects.create(
        collection_id=collection if isinstance(collection, int) else collection.pk,
        acting_user=actor,
        event_type=event_type,
        document_id=document.pk if document else None,
        page_id=page.pk if page else None,
        line_id=line.pk if line else None,
        extra_data={**about, **extra, "actor": None if actor is None else member_label(actor)},
    )


def model_label(version) -> dict | None:
    """A model version as events name it; None is the site's default model."""
    return None if version is None else {"id": version.pk, "name": version.name}


def member_label(user) -> dict:
    return {"id": user.pk, "username": user.get_username()}


# --- Reading ----------------------------------------------------------------------------


def events(collection: Collection, *, event_type: str = "", user=None) -> QuerySet:
    """The collection's events, of one type and by one person if given."""
    found = CollectionEvent.objects.filter(collection=collection)
    if event_type:
        found = found.filter(event_type=event_type)
    if user is not None:
        found = found.filter(acting_user=user)
    return found


def events_page(
    found: QuerySet, cursor: tuple[keyset.Position, bool] | None, size: int = keyset.PAGE_SIZE
) -> keyset.KeysetPage:
    return keyset.newest_first(found.select_related("acting_user"), "event_time", cursor, size)


def event_users(collection: Collection) -> QuerySet:
    """Whose events may be looked for: the collection's members, and anyone who made a change
    of it (a former member, site staff)."""
    acted = CollectionEvent.objects.filter(acting_user=OuterRef("pk"), collection=collection)
    return trail_people.members_or(collection, acted)


def actor_label(event: CollectionEvent) -> dict | None:
    """Who made the change, as record_event kept them (member_label), whatever became of the
    account since; None for the system. An event recorded before events kept it (in no
    production database) has the account as it is now, None once deleted."""
    if "actor" in event.extra_data:
        return event.extra_data["actor"]
    return None if event.acting_user is None else member_label(event.acting_user)


def actor_name(event: CollectionEvent) -> str:
    actor = actor_label(event)
    if actor is not None:
        return actor["username"]
    if event.event_type == T.MODEL_PROMOTED:
        return "the promotion gate"
    # None kept is the system; none at all, an event from before events kept who made them,
    # by an account deleted since.
    return "the system" if "actor" in event.extra_data else "a deleted account"


def sentence(event: CollectionEvent) -> str:
    """What happened, whole: "alice changed the review threshold from 0.80 to 0.85"."""
    return f"{actor_name(event)} {describe([event])}"


@dataclass
class HistoryRow:
    """Events shown as one row of the History page: one event, or several edits of lines one
    person made one after the other on one page. `events` are newest first."""

    events: list[CollectionEvent]
    text: str

    @property
    def first(self) -> CollectionEvent:
        return self.events[0]

    @property
    def actor(self) -> str:
        return actor_name(self.first)

    @property
    def started(self) -> datetime:
        return self.events[-1].event_time


def history_rows(shown: list[CollectionEvent]) -> list[HistoryRow]:
    groups: list[list[CollectionEvent]] = []
    for event in shown:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and event.event_type in LINE_EDITS
            and (event.event_type, actor_label(event), event.page_id)
            == (last.event_type, actor_label(last), last.page_id)
        ):
            groups[-1].append(event)
        else:
            groups.append([event])
    return [HistoryRow(group, describe(group)) for group in groups]


def pages_still_there(collection: Collection, shown: list[CollectionEvent]) -> set[int]:
    """Of the pages the events are about, those not deleted since, to link to."""
    ids = {event.page_id for event in shown if event.page_id is not None}
    pages = Page.objects.filter(document__collection=collection, pk__in=ids)
    return set(pages.values_list("pk", flat=True))


# --- Sentences --------------------------------------------------------------------------

SETTINGS = {
    "description": "the description",
    "confidence_threshold": "the review threshold",
    "nbest_size": "the number of readings kept of each line",
    "model_version": "the model",
    "special_characters": "the editor's palette",
    "licence": "the licence",
    "language": "the language",
    "assigned_only": "'assigned documents only'",
}
# Too long to quote in a sentence: the event keeps both, for the API.
UNQUOTED = ("description",)
ROLES = {Membership.Role.ADMIN: "an admin", Membership.Role.REVIEWER: "a reviewer"}


def describe(group: list[CollectionEvent]) -> str:
    """What the events of one row did, from after the actor's name. A group is of edits of
    lines (LINE_EDITS); any other row is one event."""
    kind = group[0].event_type
    if kind in LINE_EDITS:
        return _line_edits(kind, group)
    return _SENTENCES[kind](group[0].extra_data)


def _settings_changed(data: dict) -> str:
    return "changed " + _and(_setting_change(change) for change in data["changes"])


def _threshold_applied(data: dict) -> str:
    old, new = _number(data["old_value"]), _number(data["new_value"])
    was = f" (it was {old})" if old != new else ""
    return (
        f"applied a review threshold of {new}{was} to the lines: "
        f"{_count(data['to_humans'], 'line')} sent to reviewers, {data['accepted']} accepted"
    )


def _model_promoted(data: dict) -> str:
    return (
        f"made {_model(data['new_value'])} the collection's model, in place of "
        f"{_model(data['old_value'])}"
    )


def _lines_reread(data: dict) -> str:
    noun = "unreviewed line" if data["unreviewed_only"] else "line"
    where = f" of {_quoted(data['title'])}" if "title" in data else ""
    return (
        f"queued {_count(data['lines'], noun)}{where} to be read again by {_model(data['model'])}"
    )


def _document_deleted(data: dict) -> str:
    return (
        f"deleted {_quoted(data['title'])} ({_count(data['pages'], 'page')}, "
        f"{_count(data['lines'], 'line')})"
    )


def _document_segmented_again(data: dict) -> str:
    return f"had {_quoted(data['title'])} segmented again"


def _collection_created(data: dict) -> str:
    return f"created the collection as {_quoted(data['name'])}"


def _member_added(data: dict) -> str:
    if "invited" in data:
        invited = data["invited"]
        new = ", a new account" if invited["new_account"] else ""
        return (
            f"invited {data['member']['username']} ({invited['email']}{new}) "
            f"as {_role(data['role'])}"
        )
    return f"added {data['member']['username']} as {_role(data['role'])}"


def _member_role_changed(data: dict) -> str:
    return (
        f"made {data['member']['username']} {_role(data['new_value'])} "
        f"(was {_role(data['old_value'])})"
    )


def _member_removed(data: dict) -> str:
    return f"removed {data['member']['username']} ({_role(data['role'])})"


def _saves_undone(data: dict) -> str:
    since = timezone.localtime(parse_datetime(data["since"])).strftime("%Y-%m-%d %H:%M:%S")
    requeued = f", {data['requeued']} of them back in the review queue" if data["requeued"] else ""
    return (
        f"undid {data['member']['username']}'s saves since {since}: "
        f"{_count(data['reverted'], 'line')} put back{requeued}"
    )


def _page_sorted(data: dict) -> str:
    return (
        f"sorted the lines of page {data['page']} of {_quoted(data['title'])} by position "
        f"({_count(data['moved'], 'line')} moved)"
    )


def _page_sort_undone(data: dict) -> str:
    return (
        f"undid the sort of page {data['page']} of {_quoted(data['title'])}: "
        "its reading order is back as it was"
    )


def _text_replaced(data: dict) -> str:
    where = f" of {_quoted(data['title'])}" if "title" in data else ""
    skipped = f" ({data['skipped']} skipped)" if data["skipped"] else ""
    return (
        f"replaced “{data['query']}” with “{data['replacement']}” in "
        f"{_count(data['lines'], 'line')}{where}{skipped}"
    )


def _review_state_changed(data: dict) -> str:
    old, new = (Document.ReviewState(data[key]).label.lower() for key in ("old_value", "new_value"))
    return f"moved {_quoted(data['title'])} from {old} to {new}"


def _assignees_changed(data: dict) -> str:
    parts = []
    if data["added"]:
        parts.append(f"assigned {_quoted(data['title'])} to {_names(data['added'])}")
    if data["removed"]:
        taken = "took it from" if data["added"] else f"took {_quoted(data['title'])} from"
        parts.append(f"{taken} {_names(data['removed'])}")
    return _and(parts)


def _names(members: list[dict]) -> str:
    return _and(member["username"] for member in members)


_SENTENCES = {
    T.SETTINGS_CHANGED: _settings_changed,
    T.THRESHOLD_APPLIED: _threshold_applied,
    T.MODEL_PROMOTED: _model_promoted,
    T.LINES_REREAD: _lines_reread,
    T.DOCUMENT_DELETED: _document_deleted,
    T.DOCUMENT_SEGMENTED_AGAIN: _document_segmented_again,
    T.COLLECTION_CREATED: _collection_created,
    T.MEMBER_ADDED: _member_added,
    T.MEMBER_ROLE_CHANGED: _member_role_changed,
    T.MEMBER_REMOVED: _member_removed,
    T.SAVES_UNDONE: _saves_undone,
    T.PAGE_SORTED: _page_sorted,
    T.PAGE_SORT_UNDONE: _page_sort_undone,
    T.REVIEW_STATE_CHANGED: _review_state_changed,
    T.ASSIGNEES_CHANGED: _assignees_changed,
    T.TEXT_REPLACED: _text_replaced,
}


def _line_edits(kind: str, group: list[CollectionEvent]) -> str:
    data = group[0].extra_data
    where = f"on page {data['page']} of {_quoted(data['title'])}"
    if len(group) > 1:
        verb, noun = {
            T.LINE_ADDED: ("added", "line"),
            T.LINE_MOVED: ("moved", "line box"),
            T.LINE_DELETED: ("removed", "line"),
            T.LINE_REORDERED: ("moved", "line"),
        }[kind]
        if kind == T.LINE_REORDERED:
            where = f"in reading order {where}"
        return f"{verb} {_count(len(group), noun)} {where}"
    line = data["line"]
    if kind == T.LINE_REORDERED:
        return f"moved line {data['old_value']} to place {line} in reading order {where}"
    if "merged_into" in data:
        return f"merged line {line} into line {data['merged_into']} {where}"
    return {
        T.LINE_ADDED: f"added line {line} {where}",
        T.LINE_MOVED: f"moved the box of line {line} {where}",
        T.LINE_DELETED: f"removed line {line} {where}",
    }[kind]


def _setting_change(change: dict) -> str:
    name = change["property"]
    label = SETTINGS.get(name, name)
    if name in UNQUOTED:
        return label
    old, new = (_setting(name, change[key]) for key in ("old_value", "new_value"))
    return f"{label} from {old} to {new}"


def _setting(name: str, value) -> str:
    if name == "model_version":
        return _model(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return _number(value)
    if value in ("", None):
        return "none"
    return _quoted(value) if isinstance(value, str) else str(value)


def _model(label: dict | None) -> str:
    return "the site's default model" if label is None else _quoted(label["name"])


def _role(role: str) -> str:
    return ROLES.get(role, role)


def _number(value: float) -> str:
    return f"{value:.2f}" if round(value, 2) == value else f"{value:g}"


def _quoted(text: str) -> str:
    return f"'{text}'"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _and(parts) -> str:
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

"""A document's review, as people run it: its review state (open, in progress, in QA, final)
and the members it is assigned to. The pipeline's own state is Document.status.

Who moves the state: a collection's admins (and staff) to any state, a final document's
reopening included; a member the document is assigned to takes it from open to in progress
and from in progress to in QA (their part done, for a second person to check), no further.
Each change says the state it was made from (`expected`): two people changing it at once
are one conditional update each, and the second finds the state changed and is refused
(StateConflict) rather than overwriting what it never saw. So does a change of its assignees,
a whole new list, which may say those it was made from (AssigneesConflict).

A final document is what was published, and is locked: review/actions.py refuses its lines'
saves, accepts, reverts, box edits, reading order and unclear marks, and its claims; the queue
never offers them; a threshold applied routes none of them, and a model's reading changes none
(its readings are kept as alternatives). Drafts stay, so nothing typed is lost if an admin
reopens it. Document.is_final says whether a document is; in_final_document selects its lines
in a query."""

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q

from ocrreview.corpus.access import is_collection_admin
from ocrreview.corpus.audit import member_label, record_event
from ocrreview.corpus.models import (
    CollectionEvent,
    Document,
    DocumentAssignment,
    Line,
    Membership,
    hand_back_claims,
)

R = Document.ReviewState
# The steps an assignee takes themselves; every other step is a coordinator's.
ASSIGNEE_STEPS = {(R.OPEN, R.IN_PROGRESS), (R.IN_PROGRESS, R.IN_QA)}


class WorkflowError(ValueError):
    """A change that cannot be made; the message says why (a 400)."""


class NotAllowed(WorkflowError):
    """The person may not make this change (a 403)."""


class StateConflict(WorkflowError):
    """The state changed since the person saw it (a 409)."""

    def __init__(self, document: Document, current: str):
        super().__init__(
            f"Someone changed the review state of '{document.title}' meanwhile: it is "
            f"{R(current).label.lower()} now. Nothing was changed."
        )
        self.current = current


class AssigneesConflict(WorkflowError):
    """The assignees changed since the person saw them (a 409): a whole new list, sent over a
    colleague's change, would undo it unseen."""

    def __init__(self, document: Document, current: Sequence):
        names = ", ".join(user.get_username() for user in current) or "nobody"
        super().__init__(
            f"Someone changed who '{document.title}' is assigned to meanwhile: it is assigned "
            f"to {names} now. Nothing was changed."
        )


def in_final_document(path: str = "") -> Q:
    """Lines of a final document, as a filter of lines, or of what `path` (like "line__")
    leads to lines from; the query's Document.is_final."""
    return Q(**{f"{path}document__review_state": R.FINAL})


def final_refusal(title: str) -> str:
    return (
        f"'{title}' is final, so its lines can no longer be changed; nothing was saved. "
        "A collection admin can reopen it."
    )


def is_assignee(user, document: Document) -> bool:
    return DocumentAssignment.objects.filter(document=document, user_id=user.pk).exists()


def next_states(state: str, *, is_admin: bool, is_assignee: bool) -> list[str]:
    """The states a person may move a document in `state` to."""
    if is_admin:
        return [other for other in R.values if other != state]
    if not is_assignee:
        return []
    return [new for old, new in ASSIGNEE_STEPS if old == state]


def states_open_to(user, document: Document) -> list[str]:
    """The states `user` may move `document` to from its state now."""
    return next_states(
        document.review_state,
        is_admin=is_collection_admin(user, document.collection),
        is_assignee=is_assignee(user, document),
    )


@transaction.atomic
def do_set_review_state(
    document: Document, state: str, *, actor, expected: str | None = None
) -> Document:
    """Move the document to `state` from `expected` (default: the state it was read with).
    Made final, the claims on its lines end: nobody works on them any longer."""
    if state not in R.values:
        raise WorkflowError(f"Unknown review state {state!r}.")
    expected = document.review_state if expected is None else expected
    if expected not in R.values:
        raise WorkflowError(f"Unknown review state {expected!r}.")
    if state != expected:
        document.review_state = expected
        if state not in states_open_to(actor, document):
            raise NotAllowed(_not_allowed(expected, state))
    changed = Document.objects.filter(pk=document.pk, review_state=expected)
    if not (changed.update(review_state=state) if state != expected else changed.exists()):
        current = Document.objects.filter(pk=document.pk).values_list("review_state", flat=True)
        if not current:
            raise WorkflowError("This document no longer exists.")
        raise StateConflict(document, current[0])
    document.review_state = state
    if state == expected:
        return document
    if state == R.FINAL:
        hand_back_claims(Line.objects.filter(document=document, claimed_by__isnull=False))
    record_event(
        document.collection_id,
        CollectionEvent.Type.REVIEW_STATE_CHANGED,
        actor=actor,
        document=document,
        old_value=expected,
        new_value=state,
    )
    return document


def _not_allowed(old: str, new: str) -> str:
    if (old, new) in ASSIGNEE_STEPS:
        return "Only the collection's admins and the members it is assigned to may do this."
    return (
        f"Only the collection's admins may move a document from {R(old).label.lower()} "
        f"to {R(new).label.lower()}."
    )


@transaction.atomic
def do_set_assignees(document: Document, users, *, actor, expected=None) -> list:
    """Assign the document to exactly `users`, each a member of its collection; returns them.
    With `expected` (the assignees the person saw), refused with AssigneesConflict unless
    those are the assignees still. Changes of one document's assignees take turns on its
    row, and each assignee's membership is locked until this commits, so a member removed
    meanwhile is either refused here or has the assignment removed with them."""
    Document.objects.select_for_update(no_key=True).filter(pk=document.pk).exists()
    wanted = {user.pk: user for user in users}
    members = set(
        Membership.objects.select_for_update()
        .filter(collection_id=document.collection_id, user_id__in=list(wanted))
        .values_list("user_id", flat=True)
    )
    outsiders = sorted(u.get_username() for pk, u in wanted.items() if pk not in members)
    if outsiders:
        raise WorkflowError(
            f"{', '.join(outsiders)} {'is' if len(outsiders) == 1 else 'are'} no member of "
            "the collection; add them on Members first."
        )
    current = {
        a.user_id: a.user
        for a in DocumentAssignment.objects.filter(document=document)
        .select_related("user")
        .order_by("user__username")
    }
    if expected is not None and {user.pk for user in expected} != set(current):
        raise AssigneesConflict(document, list(current.values()))
    removed = [current[pk] for pk in current if pk not in wanted]
    added = [wanted[pk] for pk in wanted if pk not in current]
    DocumentAssignment.objects.filter(document=document, user__in=removed).delete()
    DocumentAssignment.objects.bulk_create(
        DocumentAssignment(document=document, user=user, assigned_by=actor) for user in added
    )
    if added or removed:
        record_event(
            document.collection_id,
            CollectionEvent.Type.ASSIGNEES_CHANGED,
            actor=actor,
            document=document,
            added=[member_label(u) for u in sorted(added, key=lambda u: u.get_username())],
            removed=[member_label(u) for u in sorted(removed, key=lambda u: u.get_username())],
        )
    return sorted(wanted.values(), key=lambda u: u.get_username())

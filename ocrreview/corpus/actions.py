"""State changes of the corpus that are not ingestion (ingestion.py)."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from ocrreview import storage
from ocrreview.corpus.audit import member_label, model_label, record_event
from ocrreview.corpus.claims import unclaimed
from ocrreview.corpus.forms import CollectionSettingsForm
from ocrreview.corpus.ingestion import start_processing
from ocrreview.corpus.models import (
    Collection,
    CollectionEvent,
    Document,
    Line,
    Membership,
    ModelVersion,
    Page,
)
from ocrreview.corpus.signals import lines_being_corrected
from ocrreview.db_clock import database_now

logger = logging.getLogger(__name__)

T = CollectionEvent.Type
BUSY = (Document.Status.FETCHING, Document.Status.SEGMENTING, Document.Status.RECOGNIZING)


class DocumentInUse(ValueError):
    """The document cannot be deleted now, or at all; the message says why."""


class MembershipError(ValueError):
    """A change of a collection's members that cannot be made; the message says why."""


class CannotSegmentAgain(ValueError):
    """The document is not one a new segmentation can mend; the message says why."""


class NotAMember(MembershipError):
    pass


class AlreadyAMember(MembershipError):
    pass


class NameTaken(ValueError):
    pass


class LastAdmin(MembershipError):
    """The change would leave the collection with no admin, whom only site staff could then
    replace."""


@transaction.atomic
def do_set_collection_model(collection: Collection, version: ModelVersion, *, actor) -> None:
    """Promote `version` to the collection's model: by the gate of a training run (actor None)
    or over it, by an admin."""
    collection = Collection.objects.select_for_update().get(pk=collection.pk)
    previous = collection.model_version
    collection.model_version = version
    collection.save(update_fields=["model_version"])
    _mark_in_use(previous, version)
    if previous != version:
        record_event(
            collection,
            T.MODEL_PROMOTED,
            actor=actor,
            old_value=model_label(previous),
            new_value=model_label(version),
        )


@transaction.atomic
def do_save_collection_settings(
    form: CollectionSettingsForm, changed: list[str], *, actor
) -> Collection:
    """Write the settings of a valid form that the admin changed onto the collection as it is
    now: a setting changed meanwhile elsewhere (a model promoted by a training run, a
    threshold applied from the review page, another admin) keeps its new value unless the
    admin changed it too. The lock makes two admins' changes of model take turns, so the
    versions' statuses end up saying which are in use. The settings whose values this changed
    are recorded, in one event."""
    collection = Collection.objects.select_for_update().get(pk=form.instance.pk)
    previous = collection.model_version
    before = {name: _setting(collection, name) for name in changed}
    for name in changed:
        setattr(collection, name, form.cleaned_data[name])
    if changed:
        collection.save(update_fields=changed)
    _mark_in_use(previous, collection.model_version)
    changes = [
        {"property": name, "old_value": before[name], "new_value": _setting(collection, name)}
        for name in changed
        if before[name] != _setting(collection, name)
    ]
    if changes:
        record_event(collection, T.SETTINGS_CHANGED, actor=actor, changes=changes)
    return collection


def _setting(collection: Collection, name: str):
    """A setting's value as events keep it."""
    if name == "model_version":
        return model_label(collection.model_version)
    return getattr(collection, name)


def _mark_in_use(previous: ModelVersion | None, current: ModelVersion | None) -> None:
    """`current` is active; `previous`, which it replaced, is ready again unless another
    collection still reads with it."""
    if current is not None:
        ModelVersion.objects.filter(pk=current.pk).update(status=ModelVersion.Status.ACTIVE)
        current.status = ModelVersion.Status.ACTIVE
    if previous is not None and previous != current and not previous.active_in_collections.exists():
        ModelVersion.objects.filter(pk=previous.pk, status=ModelVersion.Status.ACTIVE).update(
            status=ModelVersion.Status.READY
        )


def do_delete_document(document: Document, actor) -> None:
    """Delete the document, its pages and lines, then their files once that is committed (a
    rolled-back delete keeps its images). The lock makes a worker starting on the document
    wait, and makes this wait for one that holds it."""
    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document.pk)
        if locked.status in BUSY:
            raise DocumentInUse(
                f"The document is {locked.get_status_display().lower()}; delete it when "
                "that is finished."
            )
        _refuse_if_being_corrected(locked)
        files = [page.image for page in locked.pages.all()]
        # Before the delete, which takes the document's id: a refused delete rolls it back.
        record_event(
            locked.collection_id,
            T.DOCUMENT_DELETED,
            actor=actor,
            document=locked,
            pages=len(files),
            lines=locked.lines.count(),
        )
        if locked.source_file:
            files.append(locked.source_file)
        try:
            locked.delete()
        except ProtectedError as exc:
            raise DocumentInUse(
                "Lines of this document carry corrections, and every correction is kept with "
                "its history; the document cannot be deleted."
            ) from exc
        transaction.on_commit(lambda: storage.delete_files(files))
    logger.info("document %s (%r) deleted by %s", document.pk, document.title, actor)


def _refuse_if_being_corrected(document: Document) -> None:
    """A reviewer's unsaved typing is not the admin's to throw away with the lines. The lines
    are locked, so that none is claimed or drafted between the look and the delete."""
    lines = list(
        Line.objects.select_for_update()
        .filter(document=document)
        .order_by("id")
        .values_list("id", "status", "claimed_until")
    )
    now = database_now()  # the lease's own clock, not this web server's
    open_now = any(
        status == Line.Status.IN_REVIEW and until is not None and until > now
        for _, status, until in lines
    )
    if open_now or lines_being_corrected([line_id for line_id, _, _ in lines]):
        raise DocumentInUse(
            "Reviewers are correcting lines of this document or hold unsaved text in them; "
            "delete it once they have saved or discarded it (staff can remove drafts in the "
            "admin)."
        )


def do_segment_again(document: Document, actor) -> None:
    """A document whose segmentation failed (kraken's limits, a storage outage waited out) is
    segmented again from its first page not segmented; the lines of pages segmented before
    are kept."""
    with transaction.atomic():
        locked = Document.objects.without_iiif_json().select_for_update().get(pk=document.pk)
        if locked.status != Document.Status.FAILED:
            raise CannotSegmentAgain(f"The document is {locked.get_status_display().lower()}.")
        if locked.segmentation != Document.Segmentation.KRAKEN or not locked.pages.exists():
            raise CannotSegmentAgain(
                "Its images were never all stored: import its manifest again to resume."
            )
        locked.pages.filter(status=Page.Status.FAILED).update(status=Page.Status.PENDING, error="")
        Document.objects.filter(pk=locked.pk).update(
            status=Document.Status.UPLOADED, error="", **unclaimed()
        )
        record_event(locked.collection_id, T.DOCUMENT_SEGMENTED_AGAIN, actor=actor, document=locked)
        start_processing(locked)
    logger.info("document %s (%r) segmented again, asked by %s", document.pk, document.title, actor)


@transaction.atomic
def do_create_collection(collection: Collection, admin, *, actor) -> Collection:
    """Save the new `collection` (unsaved, its fields validated by the caller's form) with
    `admin` as its first admin member: a collection without one could be run by nobody but
    site staff. Its creation and the membership are recorded as two events."""
    try:
        # A savepoint: the name taken by another request since the form checked it fails
        # the insert alone, and the error is ours to word.
        with transaction.atomic():
            collection.save(force_insert=True)
    except IntegrityError:
        raise NameTaken(f"A collection named “{collection.name}” already exists.") from None
    _mark_in_use(None, collection.model_version)
    record_event(collection, T.COLLECTION_CREATED, actor=actor, name=collection.name)
    do_add_member(collection, admin, Membership.Role.ADMIN, actor=actor)
    logger.info("collection %s created by %s, admin %s", collection.pk, actor, admin)
    return collection


# --- Members ----------------------------------------------------------------------------


def _locked_memberships(collection: Collection) -> dict[int, Membership]:
    """The collection's memberships by user id, locked until the transaction ends, always in
    the same order so that two changes cannot each wait for the other. Changes of one
    collection's members take turns: without the lock, two admins demoting or removing each
    other at once would each count two admins, and leave the collection with none. A change
    that waited reads the rows as the other left them (PostgreSQL reads a row it waited for
    again); a member added meanwhile is not among them, which can only make it refuse. Only
    the memberships are locked (`of`): a lock on their users' rows would wait for every
    transaction that writes a row naming one of them, such as a long upload."""
    rows = (
        Membership.objects.select_for_update(of=("self",))
        .filter(collection=collection)
        .select_related("user")
        .order_by("pk")
    )
    return {membership.user_id: membership for membership in rows}


def _member(members: dict[int, Membership], user, collection: Collection) -> Membership:
    if user.pk not in members:
        raise NotAMember(f"{user.get_username()} is not a member of {collection}.")
    return members[user.pk]


def _refuse_if_last_admin(
    members: dict[int, Membership], leaving: set[int], collection: Collection
) -> None:
    """Refuses when the members leaving the admins (removed or demoted) are all its active
    admins: a deactivated admin cannot sign in to run the collection."""
    admins = {
        m.user_id for m in members.values() if m.role == Membership.Role.ADMIN and m.user.is_active
    }
    if admins and admins <= leaving:
        names = ", ".join(sorted(members[pk].user.get_username() for pk in admins))
        only = "the only admin" if len(admins) == 1 else "the only admins"
        raise LastAdmin(
            f"{names} {'is' if len(admins) == 1 else 'are'} {only} of {collection}; "
            "make another member an admin first."
        )


def check_admins_left(collection: Collection, leaving: set[int]) -> None:
    """Raises LastAdmin where removing or demoting these users together would leave the
    collection without an admin: for a form that asks before the change (the Django admin).
    Nothing is locked; the change itself asks again under the lock."""
    members = Membership.objects.filter(collection=collection).select_related("user")
    _refuse_if_last_admin({m.user_id: m for m in members}, leaving, collection)


@transaction.atomic
def do_add_member(
    collection: Collection, user, role: str, *, actor, invited: dict | None = None
) -> Membership:
    """`invited`: the invitation that adds them (invitations.py), kept in the event: the
    address it was sent to, and whether it made the account. A pending account (invited,
    its password not chosen yet) added otherwise, by its username, loses the links made to
    choose its password, as an invitation's does: one that another admin was shown would
    let its holder in as them, here too. Its owner asks for a password reset."""
    members = _locked_memberships(collection)
    already = f"{user.get_username()} is already a member of {collection}"
    if user.pk in members:
        raise AlreadyAMember(f"{already} ({members[user.pk].get_role_display().lower()}).")
    try:
        # The lock holds the rows there were: the same user added meanwhile by another request
        # is not among them, and the unique constraint refuses this one.
        membership = Membership.objects.create(user=user, collection=collection, role=role)
    except IntegrityError:
        raise AlreadyAMember(f"{already}.") from None
    if not invited:
        # Imported here: invitations imports this module.
        from ocrreview.corpus.invitations import is_pending, retire_links

        if is_pending(user):
            retire_links(user)
    invitation = {"invited": invited} if invited else {}
    record_event(
        collection, T.MEMBER_ADDED, actor=actor, member=member_label(user), role=role, **invitation
    )
    logger.info("%s added to collection %s as %s by %s", user, collection.pk, role, actor)
    return membership


def _retire_links_shown_to(collection: Collection, admin, actor) -> None:
    # Imported here: invitations imports this module.
    from ocrreview.corpus.invitations import do_retire_links_shown_to

    do_retire_links_shown_to(collection, admin, actor=actor)


@transaction.atomic
def do_set_member_role(collection: Collection, user, role: str, *, actor) -> Membership:
    members = _locked_memberships(collection)
    membership = _member(members, user, collection)
    if membership.role == role:
        return membership
    if role != Membership.Role.ADMIN:
        _refuse_if_last_admin(members, {membership.user_id}, collection)
    record_event(
        collection,
        T.MEMBER_ROLE_CHANGED,
        actor=actor,
        member=member_label(user),
        old_value=membership.role,
        new_value=role,
    )
    if membership.role == Membership.Role.ADMIN:
        _retire_links_shown_to(collection, user, actor)
    membership.role = role
    membership.save(update_fields=["role"])
    logger.info("%s made %s of collection %s by %s", user, role, collection.pk, actor)
    return membership


@transaction.atomic
def do_remove_member(collection: Collection, user, *, actor) -> None:
    """Take the user out of the collection, with what they held in it: the lines they
    claimed go back to the queue, for the colleagues who can still open them, and review
    deletes their drafts (`member_removed`, sent by `models.membership_deleted`)."""
    members = _locked_memberships(collection)
    membership = _member(members, user, collection)
    _refuse_if_last_admin(members, {membership.user_id}, collection)
    membership.delete()  # models.membership_deleted hands back what they held
    if membership.role == Membership.Role.ADMIN:
        _retire_links_shown_to(collection, user, actor)
    record_event(
        collection, T.MEMBER_REMOVED, actor=actor, member=member_label(user), role=membership.role
    )
    logger.info("%s removed from collection %s by %s", user, collection.pk, actor)

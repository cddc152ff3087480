"""Who may see and manage what. Reviewers see only their collections (anything else is a
404, so collection names do not leak); admin actions need the collection's admin role or
staff status (403 otherwise)."""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from ocrreview.corpus.models import Collection, Document, Membership


def visible_collections(user) -> QuerySet[Collection]:
    if not user.is_authenticated:
        return Collection.objects.none()
    if user.is_staff:
        return Collection.objects.all()
    return Collection.objects.filter(memberships__user=user)


def collection_for(user, pk: int) -> Collection:
    return get_object_or_404(visible_collections(user), pk=pk)


def visible_document(user, pk: int) -> Document:
    """A document of one of the user's collections, with its collection; any other is a 404."""
    documents = Document.objects.without_iiif_json().select_related("collection")
    return get_object_or_404(documents.filter(collection__in=visible_collections(user)), pk=pk)


def is_collection_admin(user, collection: Collection) -> bool:
    if user.is_staff:
        return True
    return Membership.objects.filter(
        user=user, collection=collection, role=Membership.Role.ADMIN
    ).exists()


def admin_collection_for(user, pk: int) -> Collection:
    collection = collection_for(user, pk)
    if not is_collection_admin(user, collection):
        raise PermissionDenied("Only the collection's admins may do this.")
    return collection


def member_for(user, pk: int, member_id: int) -> Membership:
    """The membership of user `member_id` in collection `pk`, which `user` administers: 404
    when that user is no member of it."""
    collection = admin_collection_for(user, pk)
    memberships = Membership.objects.select_related("user", "collection")
    return get_object_or_404(memberships, collection=collection, user_id=member_id)

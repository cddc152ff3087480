import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Func, IntegerField
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ocrreview.corpus import invitations, tokens
from ocrreview.corpus.access import (
    admin_collection_for,
    collection_for,
    is_collection_admin,
    member_for,
    visible_collections,
    visible_document,
)
from ocrreview.corpus.actions import (
    CannotSegmentAgain,
    DocumentInUse,
    LastAdmin,
    MembershipError,
    NameTaken,
    check_admins_left,
    do_add_member,
    do_create_collection,
    do_delete_document,
    do_remove_member,
    do_save_collection_settings,
    do_segment_again,
    do_set_member_role,
)
from ocrreview.corpus.forms import (
    AddMemberForm,
    ApiTokenForm,
    CollectionSettingsForm,
    InviteMemberForm,
    MemberRoleForm,
    NewCollectionForm,
)
from ocrreview.corpus.iiif_export import IIIF_JSON, NoCanvases, document_manifest
from ocrreview.corpus.invitations import Throttled, invite, pending_invitations
from ocrreview.corpus.models import Document, Invitation, Line, Membership
from ocrreview.corpus.progress import summed_line_counts, with_line_counts
from ocrreview.corpus.signals import lines_with_unsaved_work
from ocrreview.db_clock import DatabaseNow

logger = logging.getLogger(__name__)


@login_required
def home(request):
    collections = visible_collections(request.user).select_related("model_version")
    lines = Line.objects.filter(collection__in=collections)
    rows = with_line_counts(collections, lines, "collection_id")
    return render(request, "corpus/home.html", {"rows": rows})


@login_required
def new_collection(request):
    """A new collection and its first admin (site staff only)."""
    if not request.user.is_staff:
        raise PermissionDenied("Only site staff may create collections.")
    form = NewCollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        admin = form.cleaned_data["admin"] or request.user
        try:
            collection = do_create_collection(form.save(commit=False), admin, actor=request.user)
        except NameTaken as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Collection created; {admin.get_username()} is its admin.")
            return redirect("collection_detail", pk=collection.pk)
    return render(request, "corpus/new_collection.html", {"form": form})


@login_required
def collection_detail(request, pk: int):
    collection = collection_for(request.user, pk)
    # The imported manifest's canvases are counted, not read.
    documents = (
        collection.documents.without_iiif_json()
        .annotate(
            page_count=Count("pages"),
            canvas_count=Func(
                F("iiif_canvases"), function="jsonb_array_length", output_field=IntegerField()
            ),
        )
        .order_by("-uploaded_at", "-id")
    )
    rows = with_line_counts(documents, collection.lines.all(), "document_id")
    return render(
        request,
        "corpus/collection_detail.html",
        {
            "collection": collection,
            "rows": rows,
            "counts": summed_line_counts(rows),
            "is_admin": is_collection_admin(request.user, collection),
        },
    )


@login_required
def document_detail(request, pk: int):
    """A document's pages in order, each with its line counts, linking to the page view: the
    way into a document besides the review queue. A few queries however many pages it has."""
    document = visible_document(request.user, pk)
    rows = with_line_counts(document.pages.order_by("index", "id"), document.lines.all(), "page_id")
    return render(
        request,
        "corpus/document_detail.html",
        {
            "collection": document.collection,
            "document": document,
            "rows": rows,
            "counts": summed_line_counts(rows),
            "assignees": list(document.assignees.order_by("username")),
            "is_admin": is_collection_admin(request.user, document.collection),
        },
    )


@login_required
def document_iiif_manifest(request, pk: int):
    """The document's transcription as a IIIF Presentation 3 manifest (as the API's)."""
    visible = Document.objects.filter(collection__in=visible_collections(request.user))
    document = get_object_or_404(visible.select_related("collection"), pk=pk)
    try:
        manifest = document_manifest(
            document,
            request.build_absolute_uri,
            image_path=lambda page: reverse(
                "review_page_image", args=[document.collection_id, page.pk]
            ),
        )
    except NoCanvases as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    return JsonResponse(manifest, content_type=IIIF_JSON, json_dumps_params={"ensure_ascii": False})


@login_required
def collection_settings(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = CollectionSettingsForm(request.POST or None, instance=collection)
    if request.method == "POST" and form.is_valid():
        do_save_collection_settings(form, form.changed_data, actor=request.user)
        messages.success(request, "Settings saved.")
        return redirect("collection_detail", pk=collection.pk)
    return render(
        request, "corpus/collection_settings.html", {"collection": collection, "form": form}
    )


@login_required
@never_cache  # it may show an invitation's link, which lets in whoever holds it
def collection_members(request, pk: int):
    """The collection's members and their roles; its admins add, invite, re-role and remove
    them."""
    collection = admin_collection_for(request.user, pk)
    form = AddMemberForm(request.POST or None, auto_id="add_%s")
    if request.method == "POST" and form.is_valid():
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        try:
            do_add_member(collection, user, role, actor=request.user)
        except MembershipError as exc:
            form.add_error("username", str(exc))
        else:
            messages.success(request, f"{user.get_username()} added as {role}.")
            return redirect("collection_members", pk=collection.pk)
    return _members_page(request, collection, form, InviteMemberForm(auto_id="invite_%s"))


def _members_page(request, collection, add_form, invite_form, status=400):
    # The page's two forms both have a role: each its own ids, for labels to name one field.
    invitation = request.session.pop(_invitation_key(collection), None)
    memberships = list(collection.memberships.select_related("user").order_by("user__username"))
    pending = pending_invitations(collection)
    for membership in memberships:
        membership.invitation = pending.get(membership.user_id)
    context = {
        "collection": collection,
        "form": add_form,
        "invite_form": invite_form,
        "invitation": invitation,
        "mail_to_files": settings.EMAIL_BACKEND.endswith(".filebased.EmailBackend"),
        "memberships": memberships,
        "roles": Membership.Role.choices,
    }
    if not (add_form.errors or invite_form.errors):
        status = 200
    return render(request, "corpus/collection_members.html", context, status=status)


def _invitation_key(collection) -> str:
    return f"invitation:{collection.pk}"


@login_required
@require_POST
def invite_member(request, pk: int):
    """Invites an address (invitations.py), then shows the members page once with the link
    to choose a password: kept in the session, server-side, for the redirect, as a message
    would keep it in a cookie."""
    collection = admin_collection_for(request.user, pk)
    form = InviteMemberForm(request.POST, auto_id="invite_%s")
    if not form.is_valid():
        return _members_page(request, collection, AddMemberForm(auto_id="add_%s"), form)
    email, role = form.cleaned_data["email"], form.cleaned_data["role"]
    try:
        sent = invite(request, collection, email, form.cleaned_data["name"], role)
    except MembershipError as exc:
        form.add_error("email", str(exc))
        return _members_page(
            request,
            collection,
            AddMemberForm(auto_id="add_%s"),
            form,
            status=429 if isinstance(exc, Throttled) else 400,
        )
    invited = sent.invited
    not_queued = (
        sent.invitation is not None
        and sent.invitation.mail_state == Invitation.MailState.NOT_QUEUED
    )
    if sent.sent_again:
        # Their own pending member, mailed again: the link is its owner's alone.
        if not_queued:
            messages.error(
                request,
                f"The invitation to {email} could not be sent again: {invitations.NOT_QUEUED}; "
                "try again in a few minutes.",
            )
        else:
            messages.success(
                request,
                f"The invitation to {email} is queued to be sent again; "
                "the links sent before no longer work.",
            )
        return redirect("collection_members", pk=collection.pk)
    if not invited.created:
        # An account found by its address is named to site admins alone; the members list
        # shows a collection's admin the member they added. Whether it was mailed a link (a
        # pending one) says what a collection's admin is not told.
        messages.success(
            request,
            f"{email} is the address of {invited.user.get_username()}: added as {role}."
            if request.user.is_staff or request.user.is_superuser
            else f"{email} is now a member, as {role}.",
        )
        return redirect("collection_members", pk=collection.pk)
    request.session[_invitation_key(collection)] = {
        "email": email,
        "username": invited.user.get_username(),
        "role": invited.role,
        "link": sent.link,
        "not_queued": not_queued,
    }
    return redirect("collection_members", pk=collection.pk)


@login_required
@require_POST
def set_member_role(request, pk: int, user_id: int):
    membership = member_for(request.user, pk, user_id)
    collection, user = membership.collection, membership.user
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Role of {user.get_username()}: {form.errors['role'][0]}")
        return redirect("collection_members", pk=pk)
    try:
        do_set_member_role(collection, user, form.cleaned_data["role"], actor=request.user)
    except MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']}.")
    return _back_to_members(request, collection)


@login_required
def remove_member(request, pk: int, user_id: int):
    """Asks first (GET), saying what goes with the member, then removes them (POST)."""
    membership = member_for(request.user, pk, user_id)
    collection, user = membership.collection, membership.user
    if request.method != "POST":
        try:
            check_admins_left(collection, {user.pk})
        except LastAdmin as exc:
            refused = str(exc)
        else:
            refused = ""
        context = {
            "collection": collection,
            "member": user,
            "refused": refused,
            "claimed": Line.objects.filter(
                collection=collection,
                status=Line.Status.IN_REVIEW,
                claimed_by=user,
                claimed_until__gt=DatabaseNow(),
            ).count(),
            "drafts": lines_with_unsaved_work(collection, user),
        }
        return render(request, "corpus/member_remove.html", context)
    try:
        do_remove_member(collection, user, actor=request.user)
    except MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.get_username()} removed from {collection}.")
    return _back_to_members(request, collection)


def _back_to_members(request, collection):
    """An admin who gave up their own role, or left, can no longer open the members page."""
    if not is_collection_admin(request.user, collection):
        if visible_collections(request.user).filter(pk=collection.pk).exists():
            return redirect("collection_detail", pk=collection.pk)
        return redirect("home")
    return redirect("collection_members", pk=collection.pk)


@login_required
@never_cache  # the answer that shows a new key must not be kept by the browser or a proxy
def api_tokens(request):
    """The user's own API tokens: create one (its key is shown on this answer only), see when
    each was last used, revoke them."""
    form = ApiTokenForm(request.POST or None)
    key, status = None, 200
    if request.method == "POST" and form.is_valid():
        if not tokens.take_creation_slot(request.user):
            form.add_error(None, "You created many tokens in the last hour; try again later.")
            status = 429
        else:
            try:
                key = tokens.do_create_api_token(
                    request.user, form.cleaned_data["name"], form.cleaned_data["once"]
                )
            except tokens.FormSentAgain as exc:
                form = ApiTokenForm()  # with a nonce of its own, for the next token
                messages.error(request, str(exc))
                status = 409
            except tokens.TokenError as exc:
                form.add_error("name", str(exc))
            else:
                form = ApiTokenForm()
    if form.errors and status == 200:
        status = 400
    context = {"form": form, "key": key, "tokens": request.user.api_tokens.all()}
    return render(request, "corpus/api_tokens.html", context, status=status)


@login_required
@require_POST
def revoke_api_token(request, pk: int):
    try:
        token = tokens.do_revoke_api_token(request.user, pk)
    except tokens.TokenError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("api_tokens")


@login_required
def delete_document(request, pk: int):
    """Asks first (GET), then deletes (POST); the API's DELETE does the same for scripts."""
    document = get_object_or_404(Document.objects.without_iiif_json(), pk=pk)
    collection = admin_collection_for(request.user, document.collection_id)
    if request.method == "POST":
        try:
            do_delete_document(document, request.user)
        except DocumentInUse as exc:
            messages.error(request, f"{document.title} was not deleted: {exc}")
        else:
            messages.success(request, f"{document.title} was deleted.")
        return redirect("collection_detail", pk=collection.pk)
    counts = {"pages": document.pages.count(), "lines": document.lines.count()}
    return render(
        request,
        "corpus/document_delete.html",
        {"collection": collection, "document": document, **counts},
    )


@login_required
@require_POST
def segment_again(request, pk: int):
    document = get_object_or_404(Document.objects.without_iiif_json(), pk=pk)
    collection = admin_collection_for(request.user, document.collection_id)
    try:
        do_segment_again(document, request.user)
    except CannotSegmentAgain as exc:
        messages.error(request, f"{document.title} cannot be segmented again: {exc}")
    else:
        messages.success(request, f"{document.title} is queued to be segmented again.")
    return redirect("collection_detail", pk=collection.pk)

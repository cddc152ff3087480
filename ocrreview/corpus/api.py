"""The HTTP API of collections (Django REST framework; the schema and its documentation page
are at /api/schema/ and /api/docs/). Same rules as the web: collections not yours are 404,
admin actions 403. Authentication, pagination and the error shape: `api_base.py`. Documents,
whose answers carry their recognition progress, are in `transcription/api.py`."""

from django.core.exceptions import PermissionDenied
from django.forms.models import model_to_dict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus.access import (
    admin_collection_for,
    collection_for,
    member_for,
    visible_collections,
)
from ocrreview.corpus.actions import (
    AlreadyAMember,
    LastAdmin,
    MembershipError,
    NameTaken,
    NotAMember,
    do_add_member,
    do_create_collection,
    do_remove_member,
    do_save_collection_settings,
    do_set_member_role,
)
from ocrreview.corpus.api_base import TextJSONParser, bind_form, error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.forms import (
    AddMemberForm,
    CollectionSettingsForm,
    InviteMemberForm,
    MemberRoleForm,
    NewCollectionForm,
)
from ocrreview.corpus.iiif_export import IIIF_JSON, NoCanvases, document_manifest
from ocrreview.corpus.invitations import Throttled, invite, pending_invitations
from ocrreview.corpus.models import Collection, Document, Invitation, Membership


class CollectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collection
        fields = [
            "id",
            "name",
            "description",
            "licence",
            "confidence_threshold",
            "nbest_size",
            "model_version",
            "special_characters",
            "language",
            "assigned_only",
            "created_at",
        ]


class CollectionSettingsSerializer(serializers.Serializer):
    """For the schema; the change itself is validated by the web's settings form."""

    description = serializers.CharField(required=False, allow_blank=True)
    confidence_threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
    nbest_size = serializers.IntegerField(required=False, min_value=1, max_value=10)
    model_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="a shared model, or one of the collection's own that the promotion gate "
        "(or an override) let through",
    )
    confirm_uncalibrated = serializers.BooleanField(
        required=False,
        help_text="true to change the threshold or model although the model's confidences "
        "are not calibrated (lines are accepted unseen on raw confidences); without it such "
        "a change is a 400",
    )
    special_characters = serializers.CharField(required=False, allow_blank=True, max_length=500)
    licence = serializers.CharField(required=False, allow_blank=True, max_length=200)
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=35, help_text="a BCP 47 tag: fr, la, en-GB"
    )
    assigned_only = serializers.BooleanField(
        required=False,
        help_text="the review queue offers each member only the documents assigned to them",
    )


# The request's shape for the schema; it is validated by the New collection page's form.
class NewCollectionSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200,
        help_text="unique among the collections; stored without control characters, line "
        "breaks and bidi controls (a name of only those is a 400, code no_visible_characters)",
    )
    description = serializers.CharField(required=False, allow_blank=True)
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=35, help_text="a BCP 47 tag: fr, la, en-GB"
    )
    licence = serializers.CharField(required=False, allow_blank=True, max_length=200)
    admin = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=150,
        help_text="the username of the active account that becomes its first admin; "
        "left out or empty: yours",
    )


class CollectionList(generics.ListAPIView):
    """The collections you are a member of (all of them for site staff)."""

    serializer_class = CollectionSerializer
    parser_classes = [TextJSONParser]

    def get_queryset(self):
        return visible_collections(self.request.user).order_by("id")

    @extend_schema(request=NewCollectionSerializer, responses={201: CollectionSerializer})
    def post(self, request: Request) -> Response:
        """Create a collection with its first admin (site staff only), as the New collection
        page does."""
        if not request.user.is_staff:
            raise PermissionDenied("Only site staff may create collections.")
        form = bind_form(NewCollectionForm, request.data)
        if not form.is_valid():
            return error("Invalid collection.", fields=form.errors.get_json_data())
        admin = form.cleaned_data["admin"] or request.user
        try:
            collection = do_create_collection(form.save(commit=False), admin, actor=request.user)
        except NameTaken as exc:
            return error(str(exc), fields={"name": [{"message": str(exc), "code": "unique"}]})
        return Response(CollectionSerializer(collection).data, status=status.HTTP_201_CREATED)


class CollectionDetail(generics.RetrieveAPIView):
    serializer_class = CollectionSerializer
    parser_classes = [TextJSONParser]

    def get_object(self):
        return collection_for(self.request.user, self.kwargs["pk"])

    @extend_schema(request=CollectionSettingsSerializer, responses=CollectionSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        """Change the collection's settings (collection admins only), as its settings page
        does; fields left out keep their values."""
        collection = admin_collection_for(request.user, pk)
        fields = CollectionSettingsForm._meta.fields
        form = bind_form(
            CollectionSettingsForm,
            request.data,
            defaults=model_to_dict(collection, fields),
            instance=collection,
        )
        if not form.is_valid():
            return error("Invalid settings.", fields=form.errors.get_json_data())
        changed = [name for name in fields if name in request.data]
        saved = do_save_collection_settings(form, changed, actor=request.user)
        return Response(CollectionSerializer(saved).data)


class InvitationMailSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(
        source="mail_state",
        choices=Invitation.MailState.choices,
        help_text="`queued`: a worker sends it (and tries again for some 40 minutes while the "
        "mail server fails, `error` saying why); `sent`; `failed`: the mail server refused it "
        "at every try; `not_queued`: our mail queue could not be reached, the mail workers "
        "send it once it is back (OCRREVIEW_LOST_MESSAGE_SECONDS after the invitation, while "
        "its link would still work: PASSWORD_RESET_TIMEOUT); "
        "`cancelled`: not sent, a later invitation replaced it. Invite the address again "
        "to send a new link",
    )
    error = serializers.CharField(
        source="mail_error", help_text="why the last try failed; empty when none did"
    )
    sent_at = serializers.DateTimeField(source="mail_sent_at", allow_null=True)

    class Meta:
        model = Invitation
        fields = ["email", "state", "error", "created_at", "sent_at"]
        read_only_fields = fields


class MemberSerializer(serializers.ModelSerializer):
    user = serializers.IntegerField(
        source="user_id", read_only=True, help_text="the id the member's URL names"
    )
    username = serializers.CharField(source="user.get_username", read_only=True)
    name = serializers.CharField(
        source="user.get_full_name", read_only=True, help_text="empty when not given"
    )
    active = serializers.BooleanField(
        source="user.is_active",
        read_only=True,
        help_text="false once site staff deactivated the account",
    )
    invitation = serializers.SerializerMethodField(
        help_text="of a member invited by email who has not chosen a password yet: the "
        "newest invitation's mail; null otherwise"
    )

    class Meta:
        model = Membership
        fields = ["user", "username", "name", "active", "role", "joined_at", "invitation"]
        read_only_fields = fields

    @extend_schema_field(InvitationMailSerializer(allow_null=True))
    def get_invitation(self, membership: Membership) -> dict | None:
        # A list's are found at once (CollectionMembers); one member's, here.
        pending = self.context.get("pending_invitations")
        if pending is None:
            pending = pending_invitations(membership.collection)
        invitation = pending.get(membership.user_id)
        return InvitationMailSerializer(invitation).data if invitation else None


# The requests' shapes for the schema; each is validated by the members page's own form.
class AddMemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="an active account's username")
    role = serializers.ChoiceField(
        choices=Membership.Role.choices, default=Membership.Role.REVIEWER
    )


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InviteMemberSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(
        max_length=150,
        default="",
        allow_blank=True,
        help_text="for a new account: how the person is named (no line breaks)",
    )
    role = serializers.ChoiceField(
        choices=Membership.Role.choices, default=Membership.Role.REVIEWER
    )


class InvitationSerializer(serializers.Serializer):
    member = MemberSerializer(help_text="the member, as the members list shows them")
    outcome = serializers.ChoiceField(
        choices=["invited", "added", "sent_again"],
        help_text="`invited`: an account was made for the address, and mailed a link to "
        "choose its password; `added`: the account that uses the address is now a member; "
        "`sent_again`: a member of this collection who has not chosen a password yet was "
        "mailed a new link (their role is left as it is), which makes the earlier ones fail",
    )
    link = serializers.CharField(
        allow_null=True,
        help_text="with `invited` only: a link to choose the password, as the mail carries, "
        "to pass on where mail does not arrive (it lets in whoever holds it, once)",
    )
    mail = InvitationMailSerializer(
        allow_null=True,
        help_text="the mail, sent by a worker after this answer: `queued`, or `not_queued` "
        "when our mail queue could not be reached (the member stays; the mail workers send "
        "it once the queue is back, within PASSWORD_RESET_TIMEOUT of the invitation, or invite "
        "again); follow it in the members list (`invitation`). Null with `added`",
    )


def _member_error(exc: MembershipError) -> Response:
    if isinstance(exc, LastAdmin):
        return error(str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, NotAMember):  # removed by another request since this one found them
        return error("Not found.", status.HTTP_404_NOT_FOUND)
    return error(str(exc), fields={"username": [{"message": str(exc), "code": "already_member"}]})


class CollectionMembers(generics.ListAPIView):
    """The collection's members and their roles (collection admins only)."""

    serializer_class = MemberSerializer
    parser_classes = [TextJSONParser]

    def get_queryset(self):
        collection = admin_collection_for(self.request.user, self.kwargs["pk"])
        self.collection = collection
        return collection.memberships.select_related("user")

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if hasattr(self, "collection"):  # a list: its pending invitations found at once
            context["pending_invitations"] = pending_invitations(self.collection)
        return context

    @extend_schema(request=AddMemberSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Add an existing, active account to the collection by its username, as a reviewer
        unless `role` says admin (collection admins only), as the members page does."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(AddMemberForm, request.data)
        if not form.is_valid():
            return error("Invalid member.", fields=form.errors.get_json_data())
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        try:
            membership = do_add_member(collection, user, role, actor=request.user)
        except MembershipError as exc:
            return _member_error(exc)
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class CollectionMemberInvitations(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=InviteMemberSerializer,
        responses={200: InvitationSerializer, 201: InvitationSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Invite an email address to the collection (collection admins only), as the members
        page does: the active account that uses it is added; for an address no account uses,
        an account is made (no password) and mailed a link to choose one. A 201 for a new
        member, a 200 for a pending member of this collection mailed again. At most 30
        invitations an hour per admin, and one mail every 10 minutes per account (429)."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(InviteMemberForm, request.data)
        if not form.is_valid():
            return error("Invalid invitation.", fields=form.errors.get_json_data())
        try:
            sent = invite(
                request,
                collection,
                form.cleaned_data["email"],
                form.cleaned_data["name"],
                form.cleaned_data["role"],
            )
        except Throttled as exc:
            response = error(str(exc), status.HTTP_429_TOO_MANY_REQUESTS)
            response["Retry-After"] = str(exc.retry_after)
            return response
        except MembershipError as exc:
            code = "already_member" if isinstance(exc, AlreadyAMember) else "not_invitable"
            return error(str(exc), fields={"email": [{"message": str(exc), "code": code}]})
        invited = sent.invited
        membership = Membership.objects.select_related("user").get(
            collection=collection, user=invited.user
        )
        outcome = "sent_again" if sent.sent_again else "invited" if invited.created else "added"
        answer = {
            "member": MemberSerializer(membership).data,
            "outcome": outcome,
            "link": sent.link or None,
            "mail": InvitationMailSerializer(sent.invitation).data if sent.invitation else None,
        }
        response = Response(
            answer, status=status.HTTP_200_OK if sent.sent_again else status.HTTP_201_CREATED
        )
        # It may carry a link that lets in whoever holds it.
        add_never_cache_headers(response)
        return response


class CollectionMember(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(responses=MemberSerializer)
    def get(self, request: Request, pk: int, user_id: int) -> Response:
        """One member of the collection and their role (collection admins only)."""
        return Response(MemberSerializer(member_for(request.user, pk, user_id)).data)

    @extend_schema(
        request=MemberRoleSerializer, responses={200: MemberSerializer, 409: ErrorSerializer}
    )
    def put(self, request: Request, pk: int, user_id: int) -> Response:
        """Set the member's role (collection admins only); a 409 when it would leave the
        collection without an admin."""
        membership = member_for(request.user, pk, user_id)
        form = bind_form(MemberRoleForm, request.data)
        if not form.is_valid():
            return error("Invalid role.", fields=form.errors.get_json_data())
        try:
            membership = do_set_member_role(
                membership.collection,
                membership.user,
                form.cleaned_data["role"],
                actor=request.user,
            )
        except MembershipError as exc:
            return _member_error(exc)
        return Response(MemberSerializer(membership).data)

    @extend_schema(request=None, responses={204: None, 409: ErrorSerializer})
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        """Remove the member from the collection (collection admins only): the lines they
        hold go back to the queue, and what they typed but did not save in it is deleted. A
        409 when they are its only admin."""
        membership = member_for(request.user, pk, user_id)
        try:
            do_remove_member(membership.collection, membership.user, actor=request.user)
        except MembershipError as exc:
            return _member_error(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class IiifManifestRenderer(JSONRenderer):
    """JSON-LD, for a IIIF viewer or client that asks for a manifest by its media type."""

    media_type = "application/ld+json"


class DocumentIiifManifest(APIView):
    renderer_classes = [JSONRenderer, IiifManifestRenderer]

    @extend_schema(
        operation_id="documents_iiif_manifest",
        responses={200: OpenApiTypes.OBJECT, 409: ErrorSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        """The document's transcription as a IIIF Presentation 3 manifest: every line with
        text a `supplementing` Web Annotation on its page's canvas (polygon as SvgSelector,
        else an `#xywh=` box), with its reviewed text, or the model's text and confidence.
        A document imported from IIIF keeps its source's canvas ids and image services."""
        visible = Document.objects.filter(collection__in=visible_collections(request.user))
        document = get_object_or_404(visible.select_related("collection"), pk=pk)
        try:
            manifest = document_manifest(
                document,
                request.build_absolute_uri,
                image_path=lambda page: reverse("api_page_image", args=[page.pk]),
            )
        except NoCanvases as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        if isinstance(request.accepted_renderer, IiifManifestRenderer):
            return Response(manifest, content_type=IIIF_JSON)
        return Response(manifest)

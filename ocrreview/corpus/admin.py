from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse

from ocrreview.admin_rules import ChangedFieldsAdmin, LargeTable, ReadOnly
from ocrreview.corpus import audit
from ocrreview.corpus.actions import (
    LastAdmin,
    MembershipError,
    NameTaken,
    check_admins_left,
    do_add_member,
    do_create_collection,
    do_remove_member,
    do_save_collection_settings,
    do_set_member_role,
)
from ocrreview.corpus.models import (
    ApiToken,
    Collection,
    CollectionEvent,
    Document,
    DocumentAssignment,
    Invitation,
    Line,
    Membership,
    ModelVersion,
    Page,
    SearchWord,
    UnprovenAddress,
)


class MembershipInline(admin.TabularInline):
    """Shown with the collection; changed in the memberships' own admin, which goes through
    the app's actions (MembershipAdmin)."""

    model = Membership
    fields = ["user", "role", "joined_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ChangedFieldsAdmin):
    list_display = ["name", "source", "revision", "status", "parent", "created_at"]
    list_filter = ["status"]


@admin.register(Collection)
class CollectionAdmin(ChangedFieldsAdmin):
    list_display = ["name", "confidence_threshold", "nbest_size", "model_version", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        # As the settings page offers: a version the gate kept inactive comes in through the
        # audited override, not by being picked here.
        versions = ModelVersion.objects
        form.base_fields["model_version"].queryset = (
            versions.choosable_in(obj) if obj else versions.choosable_in_new()
        )
        return form

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # As the New collection page creates one: the staff member adding it is its first
        # admin, so that someone can run it, and both are recorded in its events.
        try:
            do_create_collection(obj, request.user, actor=request.user)
        except NameTaken as exc:  # taken by another request since the form checked it
            request.collection_refused = True
            self.message_user(request, str(exc), messages.ERROR)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "collection_refused", False):
            return HttpResponseRedirect(reverse("admin:corpus_collection_changelist"))
        return super().response_add(request, obj, post_url_continue)

    def save_changed(self, request, obj, form) -> None:
        # As the settings page saves: a changed model marks the versions in use, and the
        # change is recorded in the collection's events.
        do_save_collection_settings(form, form.changed_data, actor=request.user)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "collection", "role"]

    def clean(self):
        cleaned = super().clean()
        membership = self.instance
        demoted = membership.pk and cleaned.get("role") != Membership.Role.ADMIN
        if demoted:
            try:
                check_admins_left(membership.collection, {membership.user_id})
            except LastAdmin as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Members are added, re-roled and removed through the app's actions, as on the members
    page: the last admin stays, what a removed member held in the collection goes back, and
    each change is recorded in the collection's events."""

    form = MembershipForm
    list_display = ["user", "collection", "role", "joined_at"]
    list_filter = ["role", "collection"]
    list_select_related = ["user", "collection"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        # A membership is one person in one collection: another person or collection is
        # another membership, added as such.
        return ["user", "collection"] if obj else []

    def save_model(self, request, obj, form, change) -> None:
        with self._refusals(request):
            if change:
                do_set_member_role(obj.collection, obj.user, obj.role, actor=request.user)
            else:
                obj.pk = do_add_member(obj.collection, obj.user, obj.role, actor=request.user).pk

    @contextmanager
    def _refusals(self, request) -> Iterator[None]:
        """What the form's check let through and the action, under its lock, refused: another
        change came between them. Said in place of the admin's word of success."""
        try:
            yield
        except MembershipError as exc:
            request.membership_refused = True
            self.message_user(request, str(exc), messages.ERROR)

    def _refused(self, request) -> HttpResponse | None:
        if getattr(request, "membership_refused", False):
            return HttpResponseRedirect(reverse("admin:corpus_membership_changelist"))
        return None

    def response_add(self, request, obj, post_url_continue=None):
        return self._refused(request) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        return self._refused(request) or super().response_change(request, obj)

    def response_delete(self, request, obj_display, obj_id):
        return self._refused(request) or super().response_delete(request, obj_display, obj_id)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        leaving: dict[Collection, set[int]] = defaultdict(set)
        for membership in objs:
            leaving[membership.collection].add(membership.user_id)
        for collection, users in leaving.items():
            try:
                check_admins_left(collection, users)
            except LastAdmin as exc:
                protected = [*protected, str(exc)]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj) -> None:
        with self._refusals(request):
            do_remove_member(obj.collection, obj.user, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for membership in queryset.select_related("collection", "user"):
                do_remove_member(membership.collection, membership.user, actor=request.user)


class KeptInPlace:
    """Where a document, page or line belongs is set when it is made. A line carries its
    page's document and collection, which scope the review queue, search and permissions, so
    moving one part here would leave the others behind. Deleting goes through the app, which
    removes the files too and waits for the workers (corpus.actions.do_delete_document)."""

    placed_in: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *(self.placed_in if obj else ())]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(KeptInPlace, ChangedFieldsAdmin):
    list_display = ["title", "collection", "status", "review_state", "uploaded_by", "uploaded_at"]
    list_filter = ["status", "review_state", "collection"]
    list_select_related = ["collection", "uploaded_by"]
    search_fields = ["title"]
    # uploaded_by: a fact, and often nobody (imports, the demo); the review state is changed
    # by the app's workflow, which records who changed it.
    readonly_fields = ["uploaded_by", "review_state"]
    placed_in = ("collection",)

    def get_queryset(self, request):
        return super().get_queryset(request).without_iiif_json()


@admin.register(DocumentAssignment)
class DocumentAssignmentAdmin(ReadOnly, admin.ModelAdmin):
    """Made on the collection's progress page or through the API, which record who changed
    them in the collection's events."""

    list_display = ["document", "user", "assigned_by", "assigned_at"]
    list_select_related = ["document", "user", "assigned_by"]
    list_filter = ["document__collection"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnly, admin.ModelAdmin):
    """What became of each invitation's mail, for staff looking into one that did not arrive;
    sent again from the collection's members page, which voids the older links."""

    list_display = ["email", "collection", "mail_state", "mail_tries", "created_at", "mail_sent_at"]
    list_select_related = ["collection"]
    list_filter = ["mail_state", "collection"]
    search_fields = ["email"]


@admin.register(UnprovenAddress)
class UnprovenAddressAdmin(ReadOnly, admin.ModelAdmin):
    """Accounts that invitations by address do not add: their password was chosen through a
    link shown to an admin. A site admin who knows the address is the account owner's deletes
    the row; its owner's password reset does the same."""

    list_display = ["user", "created_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]


@admin.register(Page)
class PageAdmin(ReadOnly, KeptInPlace, admin.ModelAdmin):
    list_display = ["document", "index", "width", "height", "status"]
    list_filter = ["status"]


@admin.register(Line)
class LineAdmin(ReadOnly, KeptInPlace, LargeTable, admin.ModelAdmin):
    list_display = ["id", "document", "page", "order", "status", "confidence", "text", "version"]
    list_select_related = ["document", "page__document"]
    list_filter = ["status", "collection"]
    search_fields = ["text"]


@admin.register(SearchWord)
class SearchWordAdmin(ReadOnly, admin.ModelAdmin):
    """The database triggers keep the vocabulary (see SearchWord)."""

    list_display = ["word", "collection"]
    list_filter = ["collection"]
    search_fields = ["word"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are minted with `manage.py create_api_token` (the key is shown once); here
    they can be reviewed and revoked."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CollectionEvent)
class CollectionEventAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """The collections' events, as their History pages show them: recorded by the app's
    actions, never changed or removed here."""

    list_display = ["event_time", "collection", "acting_user", "event_type", "description"]
    list_filter = ["collection", "event_type"]
    list_select_related = ["collection", "acting_user"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="what")
    def description(self, event: CollectionEvent) -> str:
        return audit.sentence(event)

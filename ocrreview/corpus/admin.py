from django.contrib import admin

from ocrreview.corpus.models import (
    ApiToken,
    Collection,
    Document,
    Line,
    Membership,
    Page,
    SearchWord,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "confidence_threshold", "nbest_size", "model_version", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "collection", "role", "joined_at"]
    list_filter = ["role", "collection"]


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
class DocumentAdmin(KeptInPlace, admin.ModelAdmin):
    list_display = ["title", "collection", "status", "uploaded_by", "uploaded_at"]
    list_filter = ["status", "collection"]
    search_fields = ["title"]
    placed_in = ("collection",)


@admin.register(Page)
class PageAdmin(KeptInPlace, admin.ModelAdmin):
    list_display = ["document", "index", "width", "height", "status"]
    list_filter = ["status"]
    raw_id_fields = ["document"]
    placed_in = ("document",)


@admin.register(Line)
class LineAdmin(KeptInPlace, admin.ModelAdmin):
    list_display = ["id", "document", "page", "order", "status", "confidence", "text", "version"]
    list_filter = ["status", "collection"]
    search_fields = ["text"]
    raw_id_fields = ["page", "model_version", "claimed_by"]
    # Always: a line takes them from its page when it is made (Line.save).
    readonly_fields = ["collection", "document"]
    placed_in = ("page",)


@admin.register(SearchWord)
class SearchWordAdmin(admin.ModelAdmin):
    """Read-only: the database triggers keep the vocabulary (see SearchWord)."""

    list_display = ["word", "collection"]
    list_filter = ["collection"]
    search_fields = ["word"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are minted with `manage.py create_api_token` (the key is shown once); here
    they can be reviewed and revoked."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False

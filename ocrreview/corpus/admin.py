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


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "collection", "status", "uploaded_by", "uploaded_at"]
    list_filter = ["status", "collection"]
    search_fields = ["title"]


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ["document", "index", "width", "height", "status"]
    list_filter = ["status"]
    raw_id_fields = ["document"]


@admin.register(Line)
class LineAdmin(admin.ModelAdmin):
    list_display = ["id", "document", "page", "order", "status", "confidence", "text", "version"]
    list_filter = ["status", "collection"]
    search_fields = ["text"]
    raw_id_fields = ["collection", "document", "page", "model_version", "claimed_by"]


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

from django.contrib import admin

from ocrreview.corpus.models import Collection, Document, Line, Membership, Page


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

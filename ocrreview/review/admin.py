from django.contrib import admin

from ocrreview.review.models import Correction, Draft, ReviewerPreference


@admin.register(Correction)
class CorrectionAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is never edited, not even by staff."""

    list_display = ["created_at", "line", "user", "action", "text_after", "time_spent_ms"]
    list_filter = ["action"]
    raw_id_fields = ["line", "hypothesis"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ["updated_at", "line", "user", "text", "base_version"]
    raw_id_fields = ["line", "hypothesis"]


@admin.register(ReviewerPreference)
class ReviewerPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "queue_order"]

from django.contrib import admin

from ocrreview.review.models import Correction


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

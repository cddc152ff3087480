from django.contrib import admin

from ocrreview.admin_rules import LargeTable, ReadOnly
from ocrreview.review.models import (
    Correction,
    Draft,
    ReviewerDay,
    ReviewerLine,
    ReviewerLineDay,
    ReviewerPreference,
    ReviewerTotals,
    SavesUndo,
)


@admin.register(Correction)
class CorrectionAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """The audit trail is never edited, not even by staff."""

    list_display = ["created_at", "line", "user", "action", "text_after", "time_spent_ms"]
    list_select_related = ["line", "user"]
    # Every account and every collection is offered, not only those with corrections: those
    # would be found by reading the whole trail. Coordinators who are no staff have
    # the collection's Corrections page.
    list_filter = ["action", "user", "line__collection"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Draft)
class DraftAdmin(ReadOnly, admin.ModelAdmin):
    """A reviewer's unsaved typing is theirs to save or discard."""

    list_display = ["updated_at", "line", "user", "text", "base_version"]


@admin.register(ReviewerPreference)
class ReviewerPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "queue_order"]


@admin.register(ReviewerTotals)
class ReviewerTotalsAdmin(ReadOnly, admin.ModelAdmin):
    """Kept by the trail's trigger (migration 0008): a row changed or deleted here would count
    wrong for good."""

    list_display = ["collection", "user", "lines", "changed", "timed_lines", "time_spent_ms"]
    list_select_related = ["collection", "user"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewerLine)
class ReviewerLineAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """Kept by the trail's trigger, as ReviewerTotals: a line per person who settled it."""

    list_display = ["id", "line", "user", "counted"]
    list_select_related = ["line", "user"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewerDay)
class ReviewerDayAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """Kept by the trail's trigger (migration 0009), as ReviewerTotals: a person's day."""

    list_display = ["day", "collection", "user", "lines", "changed", "timed_lines"]
    list_select_related = ["collection", "user"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewerLineDay)
class ReviewerLineDayAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """Kept by the trail's trigger, as ReviewerLine: a line per person and day they settled it."""

    list_display = ["id", "day", "line", "user", "counted"]
    list_select_related = ["line", "user"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SavesUndo)
class SavesUndoAdmin(ReadOnly, admin.ModelAdmin):
    """Made by a coordinator's undo and written by the worker that runs it (saves_undo.run):
    a site admin follows a stuck one here, and a change would misreport what was undone."""

    list_display = ["id", "collection", "person", "since", "actor", "status", "lines_done"]
    list_filter = ["status"]
    list_select_related = ["collection", "person", "actor"]

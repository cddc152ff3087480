from django.contrib import admin

from ocrreview.admin_rules import ChangedFieldsAdmin
from ocrreview.training.models import (
    DatasetExport,
    EvaluationLine,
    EvaluationSplit,
    EvaluationSplitChange,
    HeldOutDocument,
    PromotionEvent,
    TrainingRun,
)


@admin.register(DatasetExport)
class DatasetExportAdmin(ChangedFieldsAdmin):
    list_display = ["id", "collection", "status", "progress", "created_by", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["created_by", "evaluation_split"]  # facts, and nobody for the demo's


@admin.register(TrainingRun)
class TrainingRunAdmin(ChangedFieldsAdmin):
    list_display = ["id", "base_model", "status", "result_model", "promoted", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["created_by"]  # a fact, and nobody for the demo's


class Frozen:
    """Frozen means frozen: a split changed would make earlier and later CERs incomparable,
    and a split deleted (or a line taken out) would let the next export train on lines that
    earlier models were measured on, and the next split measure a model on lines it trained
    on; a held-out document deleted here would train on a published test split. Exports and
    imports make them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EvaluationSplit)
class EvaluationSplitAdmin(Frozen, admin.ModelAdmin):
    list_display = ["collection", "unit", "seed", "frozen_at"]


@admin.register(EvaluationSplitChange)
class EvaluationSplitChangeAdmin(Frozen, admin.ModelAdmin):
    """The split's record (frozen, grown, drawn again): read, never rewritten."""

    list_display = [
        "created_at",
        "split",
        "kind",
        "by_export",
        "imported",
        "lines_added",
        "lines",
        "sealed",
        "actor",
    ]
    list_filter = ["kind", "imported"]
    list_select_related = ["split__collection", "actor"]

    @admin.display(description="export", ordering="export_number")
    def by_export(self, change: EvaluationSplitChange) -> str:
        return change.export_label


@admin.register(EvaluationLine)
class EvaluationLineAdmin(Frozen, admin.ModelAdmin):
    list_display = ["split", "line"]
    list_select_related = ["split__collection", "line"]
    raw_id_fields = ["line"]


@admin.register(HeldOutDocument)
class HeldOutDocumentAdmin(Frozen, admin.ModelAdmin):
    list_display = ["document", "reason", "created_at"]
    list_select_related = ["document"]


@admin.register(PromotionEvent)
class PromotionEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "model_version", "kind", "collection", "actor"]
    list_filter = ["kind"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

from django.contrib import admin

from ocrreview.training.models import DatasetExport, ModelVersion, TrainingRun


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "revision", "status", "parent", "created_at"]
    list_filter = ["status"]


@admin.register(DatasetExport)
class DatasetExportAdmin(admin.ModelAdmin):
    list_display = ["id", "collection", "status", "progress", "created_by", "created_at"]
    list_filter = ["status"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "base_model", "status", "result_model", "promoted", "created_at"]
    list_filter = ["status"]

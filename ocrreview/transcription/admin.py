from django.contrib import admin

from ocrreview.admin_rules import LargeTable, ReadOnly
from ocrreview.transcription.models import Hypothesis, ModelFallback, RecognitionRequest


@admin.register(Hypothesis)
class HypothesisAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """A model's readings, as it gave them."""

    list_display = ["line", "model_version", "rank", "text", "confidence", "share"]
    list_select_related = ["line", "model_version"]
    list_filter = ["model_version"]


@admin.register(RecognitionRequest)
class RecognitionRequestAdmin(ReadOnly, LargeTable, admin.ModelAdmin):
    """Workers claim and finish these; a request changed here could be read twice or lost."""

    list_display = ["line", "document", "model_version", "status", "attempts", "worker", "error"]
    list_select_related = ["line", "document", "model_version"]
    list_filter = ["status", "model_version"]


@admin.register(ModelFallback)
class ModelFallbackAdmin(ReadOnly, admin.ModelAdmin):
    """Written and cleared by the workers as the model loads or not."""

    list_display = ["model_version", "stand_in", "since", "failed_at", "worker", "reason"]
    list_select_related = ["model_version", "stand_in"]

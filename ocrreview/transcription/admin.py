from django.contrib import admin

from ocrreview.transcription.models import Hypothesis, RecognitionRequest


@admin.register(Hypothesis)
class HypothesisAdmin(admin.ModelAdmin):
    list_display = ["line", "model_version", "rank", "text", "confidence", "share"]
    list_filter = ["model_version"]
    raw_id_fields = ["line"]


@admin.register(RecognitionRequest)
class RecognitionRequestAdmin(admin.ModelAdmin):
    list_display = ["line", "document", "model_version", "status", "attempts", "worker", "error"]
    list_filter = ["status", "model_version"]
    raw_id_fields = ["line", "document"]
    readonly_fields = ["claim", "lease_until", "created_at", "finished_at", "model_seconds"]

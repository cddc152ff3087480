from django.contrib import admin

from ocrreview.transcription.models import Hypothesis


@admin.register(Hypothesis)
class HypothesisAdmin(admin.ModelAdmin):
    list_display = ["line", "model_version", "rank", "text", "confidence", "share"]
    list_filter = ["model_version"]
    raw_id_fields = ["line"]

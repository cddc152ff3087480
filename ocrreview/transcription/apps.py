from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "ocrreview.transcription"
    verbose_name = "Recognition"

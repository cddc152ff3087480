from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "ocrreview.transcription"
    verbose_name = "Recognition"

    def ready(self) -> None:
        from ocrreview.corpus.signals import lines_ready
        from ocrreview.transcription.services import read_document_lines

        lines_ready.connect(read_document_lines, dispatch_uid="read_document_lines")

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "ocrreview.review"
    verbose_name = "Review"

    def ready(self) -> None:
        from ocrreview.corpus.signals import text_imported
        from ocrreview.review.actions import record_imported_text

        text_imported.connect(record_imported_text, dispatch_uid="record_imported_text")

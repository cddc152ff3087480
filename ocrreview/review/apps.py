from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "ocrreview.review"
    verbose_name = "Review"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from ocrreview.corpus.models import Page
        from ocrreview.corpus.signals import text_imported
        from ocrreview.review.actions import record_imported_text
        from ocrreview.review.images import forget_page

        text_imported.connect(record_imported_text, dispatch_uid="record_imported_text")
        post_delete.connect(forget_page, sender=Page, dispatch_uid="forget_page")

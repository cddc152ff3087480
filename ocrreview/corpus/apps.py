from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "ocrreview.corpus"
    verbose_name = "Collections, documents, pages and lines"

    def ready(self) -> None:
        # The storage layer is the project's, not this app's; corpus, at the bottom of the
        # apps, is the one every process loads.
        from django.conf import settings
        from django.core import checks
        from django.db.models.signals import pre_delete

        from ocrreview.corpus.models import hand_back_claims
        from ocrreview.storage import storage_check

        checks.register(storage_check, "storage")
        pre_delete.connect(
            hand_back_claims, sender=settings.AUTH_USER_MODEL, dispatch_uid="hand_back_claims"
        )

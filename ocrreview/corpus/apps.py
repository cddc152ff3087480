from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "ocrreview.corpus"
    verbose_name = "Collections, documents, pages and lines"

    def ready(self) -> None:
        # The storage layer is the project's, not this app's; corpus, at the bottom of the
        # apps, is the one every process loads.
        from django.conf import settings
        from django.core import checks
        from django.db.models.signals import post_delete, pre_delete

        from ocrreview.corpus.models import Membership, membership_deleted, user_deleted
        from ocrreview.storage import storage_check

        checks.register(storage_check, "storage")
        pre_delete.connect(
            user_deleted, sender=settings.AUTH_USER_MODEL, dispatch_uid="user_deleted"
        )
        post_delete.connect(
            membership_deleted, sender=Membership, dispatch_uid="membership_deleted"
        )

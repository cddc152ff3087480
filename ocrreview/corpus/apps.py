from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "ocrreview.corpus"
    verbose_name = "Collections, documents, pages and lines"

    def ready(self) -> None:
        # The storage layer is the project's, not this app's; corpus, at the bottom of the
        # apps, is the one every process loads.
        from django.core import checks

        from ocrreview.storage import storage_check

        checks.register(storage_check, "storage")

from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "ocrreview.corpus"
    verbose_name = "Collections, documents, pages and lines"

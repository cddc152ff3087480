from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "ocrreview.review"
    verbose_name = "Review"

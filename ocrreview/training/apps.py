from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "ocrreview.training"
    verbose_name = "Models, datasets and training"

"""Thin Celery wrappers; the work is in actions. Exports run on the default queue, training on
the training queue (routed by the ``train_*`` name; one run at a time on a solo worker)."""

from celery import shared_task

from ocrreview.training import actions


@shared_task
def build_dataset_export(export_id: int) -> None:
    actions.run_export(export_id)


@shared_task
def train_model(run_id: int) -> None:
    actions.run_training(run_id)

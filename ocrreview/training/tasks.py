"""Thin Celery wrappers; the work is in actions. Exports run on the default queue, training on
the training queue (routed by the ``train_*`` name; one run at a time on a solo worker)."""

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down

from ocrreview.sweep import consumes, start_sweeping
from ocrreview.training import actions


# Acknowledged on receipt, unlike most tasks: a message given again after an hour (a large
# export still being built then) would build it beside the first. A worker that dies mid-build
# is covered by the sweep.
@shared_task(acks_late=False)
def build_dataset_export(export_id: int) -> None:
    actions.run_export(export_id)


@shared_task(bind=True)
def train_model(self, run_id: int) -> None:
    actions.run_training(run_id, worker=self.request.hostname or "worker", retry=True)


@worker_shutting_down.connect
def _stop_training(sender, **kwargs) -> None:
    # Sent from the signal handler, in the solo pool's one thread, while the task trains.
    actions.stop_training_for_shutdown()


@worker_ready.connect
def _sweep_while_serving(sender, **kwargs) -> None:
    # A run whose worker died is queued again by whichever training worker is alive.
    if consumes(sender, "training"):
        start_sweeping("training", actions.do_requeue_abandoned_runs)
    if consumes(sender, "default"):
        start_sweeping("exports", actions.do_requeue_abandoned_exports)

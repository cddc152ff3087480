"""The Celery app. Workers: `celery -A ocrreview worker -Q default,segment` (fetching, exports,
segmentation), `-Q gpu,segment --pool solo` (recognition, and segmentation on the GPU),
`-Q training --pool solo --concurrency 1` (one training at a time), `-Q mail` (invitations'
and password resets' mail)."""

import os
import sys

from celery import Celery
from celery.signals import worker_init, worker_ready
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ocrreview.settings")

app = Celery("ocrreview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    # State lives in the database rows the tasks update, so no result backend is needed.
    task_ignore_result=True,
    # A task is acknowledged only after it ran; a worker killed mid-task gives it back.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="default",
    task_queues=(
        Queue("default"),
        Queue("segment"),
        Queue("gpu"),
        Queue("training"),
        Queue("mail"),
    ),
    task_routes={
        # Apart from `default`, so that both CPU and GPU workers take it: kraken runs where it
        # finds a GPU (ocrreview/corpus/kraken_child.py).
        "ocrreview.corpus.tasks.segment_document": {"queue": "segment"},
        "ocrreview.transcription.tasks.*": {"queue": "gpu"},
        "ocrreview.training.tasks.train_*": {"queue": "training"},
        # A queue of its own, with workers of its own: behind an export or an undo on
        # `default`, a person waiting for their link would wait for it to end.
        "ocrreview.corpus.tasks.mail_*": {"queue": "mail"},
    },
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()


@worker_init.connect
def _refuse_unreachable_storage(**kwargs) -> None:
    """A worker that cannot reach the storage would fail every task; it stops at start with
    the setting to fix instead."""
    from ocrreview.storage import StorageUnavailable, check_storage

    try:
        check_storage()
    except StorageUnavailable as exc:
        # SystemExit, since Celery logs and ignores what a signal handler raises otherwise.
        sys.exit(f"ocrreview: {exc}")


@worker_ready.connect
def _sweep_partial_files(**kwargs) -> None:
    """Every worker, since each host has a model cache of its own; the store's leftovers are
    few, so that several workers look for them costs little."""
    from ocrreview.storage import sweep_partial_files
    from ocrreview.sweep import start_sweeping

    start_sweeping("partial-files", sweep_partial_files, PARTIAL_FILES_SWEEP_SECONDS)


# Hourly: OCRREVIEW_PARTIAL_FILES_SECONDS is at least that.
PARTIAL_FILES_SWEEP_SECONDS = 3600


@worker_init.connect
def _refuse_a_gpu_it_does_not_have(**kwargs) -> None:
    """A worker told to read on the GPU (OCRREVIEW_DEVICE=cuda) where torch finds none (no
    driver, or one that does not match) would fail every chunk of lines when it loads the
    model, and fail the lines after their attempts; it stops at start instead."""
    from django.conf import settings

    if settings.OCRREVIEW_DEVICE != "cuda":
        return
    # Asked of NVML, not of the CUDA driver: a driver set up in this process would be unusable
    # in the pool's children that fork from it.
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    import torch

    if not torch.cuda.is_available():
        sys.exit(
            "ocrreview: OCRREVIEW_DEVICE=cuda, but torch finds no usable GPU here (is the "
            "NVIDIA driver installed and does it match torch's CUDA?); set it to auto or cpu"
        )

"""Every state change of the training app: exports, training runs and promotions.

Views, tasks and management commands call these and nothing else writes the app's rows.
"""

import errno
import logging
import re
import shutil
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ocrreview import storage
from ocrreview.corpus.actions import do_set_collection_model
from ocrreview.corpus.audit import model_label, record_event
from ocrreview.corpus.calibration_guard import uncalibrated_auto_accept, uncalibrated_model
from ocrreview.corpus.models import Collection, CollectionEvent, Line, ModelVersion
from ocrreview.db_clock import DatabaseNow, database_now
from ocrreview.sweep import beating
from ocrreview.training import checkpoints, exports, splits, tasks
from ocrreview.training.exports import ExportError, ExportOptions
from ocrreview.training.models import DatasetExport, EvaluationSplit, PromotionEvent, TrainingRun
from ocrreview.transcription.services import default_model_name, do_queue_recognition

logger = logging.getLogger(__name__)


class TrainingError(ValueError):
    """A training run cannot be started or finished as asked; the message says why."""


# --- Exports -----------------------------------------------------------------------------


def do_start_export(
    collection: Collection, options: ExportOptions, *, user, queue: bool = True
) -> DatasetExport:
    """Record an export and hand it to a worker (``queue=False``: the caller builds it with
    run_export, as the management command does)."""
    foreign = set(options.documents) - set(
        collection.documents.filter(pk__in=options.documents).values_list("pk", flat=True)
    )
    if foreign:
        raise ExportError(f"documents {sorted(foreign)} are not in {collection}")
    refusal = exports.start_refusal(collection)
    if refusal is not None:
        raise ExportError(refusal)
    export = DatasetExport.objects.create(
        collection=collection,
        created_by=user,
        filters=options.filters(),
        formats=options.formats,
        heartbeat_at=database_now(),
    )
    if queue:
        _queue_export(export.pk)
    return export


def _queue_export(export_id: int) -> None:
    # Robust: with the broker down the export stands, and the sweep sends it later.
    # A lambda, not a partial: Django names the callable in its log when it fails.
    transaction.on_commit(lambda: tasks.build_dataset_export.delay(export_id), robust=True)


class _ExportTakenOver(Exception):
    """The export was given up for dead and queued again; the successor builds it."""


# Well within EXPORT_SILENCE_SECONDS.
EXPORT_BEAT_SECONDS = 60.0


def run_export(export_id: int) -> DatasetExport:
    """Build a queued export (the task's body) under a claim of its own; a failure is recorded
    on the row, never raised. An export finished, or being built by another worker, is left
    as it is."""
    claim = uuid.uuid4()
    DatasetExport.objects.filter(pk=export_id, status=DatasetExport.Status.QUEUED).update(
        status=DatasetExport.Status.RUNNING, progress=0.0, claim=claim, heartbeat_at=DatabaseNow()
    )
    export = DatasetExport.objects.select_related("collection", "created_by").get(pk=export_id)
    if export.claim != claim:
        return export
    held = DatasetExport.objects.filter(pk=export.pk, claim=claim)

    def progress(fraction: float) -> None:
        if not held.update(progress=round(fraction, 3), heartbeat_at=DatabaseNow()):
            raise _ExportTakenOver

    try:
        # Zipping, checksumming and uploading a large export report no progress for minutes.
        with beating(_heartbeat(held), EXPORT_BEAT_SECONDS, f"export-{export.pk}"):
            counts = exports.build_export(export, progress)
    except _ExportTakenOver:
        logger.warning("Export %s was queued again while this worker built it; it stops", export.pk)
        return export
    except (ExportError, splits.SplitError) as exc:
        return _fail_export(export, str(exc))
    except Exception as exc:
        logger.exception("Export %s failed", export.pk)
        return _fail_export(export, f"internal error ({type(exc).__name__}: {exc})")
    done = {
        "status": DatasetExport.Status.DONE,
        "progress": 1.0,
        "counts": counts,
        "path": export.path,
        "checksum": export.checksum,
        "evaluation_split": export.evaluation_split,
        "train_documents": export.train_documents,
        "train_pages": export.train_pages,
        "error": "",
    }
    if not held.update(**done):
        default_storage.delete(export.path)  # the successor stores its own
    export.refresh_from_db()
    return export


def _fail_export(export: DatasetExport, message: str) -> DatasetExport:
    DatasetExport.objects.filter(pk=export.pk, claim=export.claim).update(
        status=DatasetExport.Status.FAILED, error=message
    )
    export.refresh_from_db()
    return export


# An export whose workers die this many times, or a run tried this many times at the same
# step (see TrainingRun.stalls), is failed rather than handed to the next worker to end the
# same way, for ever.
MAX_LOST_WORKERS = 3
MAX_STALLS = 3


def do_requeue_abandoned_exports() -> int:
    """Queue again the exports whose worker died mid-build or whose message was lost (the
    default workers' periodic sweep, see ocrreview/sweep.py); the next worker builds each
    anew. Returns how many."""
    with transaction.atomic():
        abandoned = list(DatasetExport.objects.abandoned().select_for_update(skip_locked=True))
        now = database_now()
        requeued = []
        for export in abandoned:
            # A queued export's message was lost; a running one's worker died.
            if export.status == DatasetExport.Status.RUNNING:
                export.lost_workers += 1
            export.claim, export.progress, export.heartbeat_at = None, 0.0, now
            if export.lost_workers >= MAX_LOST_WORKERS:
                export.status = DatasetExport.Status.FAILED
                export.error = (
                    f"its worker died {export.lost_workers} times while building it (killed "
                    "for memory?); export fewer documents or formats at once"
                )
            else:
                export.status = DatasetExport.Status.QUEUED
                requeued.append(export.pk)
            export.save(
                update_fields=[
                    "status",
                    "error",
                    "claim",
                    "progress",
                    "heartbeat_at",
                    "lost_workers",
                ]
            )
        for export_id in requeued:
            _queue_export(export_id)
    return len(requeued)


# --- Training ----------------------------------------------------------------------------


@dataclass
class TrainingParams:
    train_part: str = "decoder"  # "decoder" or "all"
    epochs: int = 10
    max_steps: int | None = None
    learning_rate: float = 5e-5
    batch_size: int = 8
    grad_accum: int = 1
    patience: int | None = 5  # validations without a better CER before stopping
    eval_every: int = 100
    warmup_steps: int = 20
    seed: int = 0
    # A run whose worker dies resumes from its last checkpoint.
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.train_part not in ("decoder", "all"):
            raise TrainingError(f"train_part must be 'decoder' or 'all', not {self.train_part!r}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "eval_every": self.eval_every,
            "checkpoint_every": self.checkpoint_every,
        }
        if self.max_steps is not None:
            positive["max_steps"] = self.max_steps
        if self.patience is not None:
            positive["patience"] = self.patience
        for name, value in positive.items():
            if value < 1:
                raise TrainingError(f"{name} must be at least 1, not {value}")
        if not 0 < self.learning_rate < 1:
            raise TrainingError(f"learning_rate must be between 0 and 1, not {self.learning_rate}")
        if self.warmup_steps < 0:
            raise TrainingError(f"warmup_steps cannot be negative ({self.warmup_steps})")


def do_start_training(
    base: ModelVersion, dataset: DatasetExport, params: TrainingParams, *, user, queue: bool = True
) -> TrainingRun:
    """Record a run and put it on the training queue (``queue=False``: the caller runs it with
    run_training)."""
    if dataset.status != DatasetExport.Status.DONE:
        raise TrainingError(f"dataset export {dataset.pk} is {dataset.get_status_display()}")
    if "imagefolder" not in dataset.formats:
        raise TrainingError("training reads the image folder; export the dataset with it")
    if not dataset.counts.get("train"):
        raise TrainingError(f"dataset export {dataset.pk} has no training lines")
    _check_split_of(dataset)
    run = TrainingRun.objects.create(
        base_model=base,
        dataset=dataset,
        params=asdict(params),
        created_by=user,
        heartbeat_at=database_now(),
    )
    if queue:
        _queue_run(run.pk)
    return run


def _check_split_of(dataset: DatasetExport) -> None:
    """A run is measured on its collection's frozen split: an export made under another one
    (or before exports recorded theirs) may have put those very lines in training."""
    current = EvaluationSplit.objects.filter(
        pk=dataset.evaluation_split_id, collection=dataset.collection_id
    )
    if not current.exists():
        raise TrainingError(
            f"dataset export {dataset.pk} was not made under the collection's current "
            "evaluation split, which measures every run; export the dataset again"
        )


# Set when this worker is told to stop (a deploy, `docker compose stop`): the run in training
# stops at its next step, stores its checkpoint and is queued again, rather than training on
# until the container is killed and losing every step since its last checkpoint.
_worker_stopping = threading.Event()


def stop_training_for_shutdown() -> None:
    _worker_stopping.set()


def _queue_run(run_id: int, *, countdown: int = 0) -> None:
    # Robust: with the broker down the run stays queued, and the sweep sends it again.
    transaction.on_commit(
        lambda: tasks.train_model.apply_async((run_id,), countdown=countdown), robust=True
    )


def do_request_cancel(run: TrainingRun) -> bool:
    """Cancel a queued run at once (its message may never come), and ask a running one to
    stop; it stops after its current optimiser step, or before its model is stored."""
    now = timezone.now()
    with transaction.atomic():
        # A run queued again with its model already gated is ended as succeeded by the
        # worker that takes it, not cancelled.
        queued = TrainingRun.objects.filter(
            pk=run.pk, status=TrainingRun.Status.QUEUED, result_model__isnull=True
        )
        if queued.update(
            cancel_requested=True, status=TrainingRun.Status.CANCELLED, finished_at=now
        ):
            run.refresh_from_db()
            run.log += f"[{_stamp(now)}] cancelled while queued\n"
            run.save(update_fields=["log"])
            # A run queued again after its worker died has checkpoints in storage.
            transaction.on_commit(lambda: _discard_checkpoints(run))  # it logs its own errors
            return True
        return bool(
            TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
                cancel_requested=True
            )
        )


class _RunLost(Exception):
    """A sweep gave this worker up for dead and queued the run again; another worker has it."""


def _stamp(when) -> str:
    return when.strftime("%H:%M:%S")


# How long steps go on without asking about cancelling once the database did not answer.
DATABASE_RETRY_SECONDS = 10.0


class _RunLog:
    """Appends to the run's log and history as training reports, so the page shows them live.
    Every write holds the run's claim: once a sweep has queued the run again, this worker's
    writes change nothing, and training stops at its next step."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.lost = False
        self.finished = False
        self.trained_steps: int | None = None  # once training has ended
        # While the database is gone: when steps ask about cancelling again (time.monotonic).
        self.database_back_at: float | None = None

    def update(self, **fields: Any) -> None:
        if not TrainingRun.objects.filter(pk=self.run.pk, claim=self.run.claim).update(**fields):
            self.lost = True

    def _keep(self, **fields: Any) -> None:
        """The log and the history are written whole each time, so one the database missed
        (restarting, failing over) is in the next write; training goes on meanwhile."""
        try:
            self.update(**fields)
        except (OperationalError, InterfaceError) as exc:
            self._database_lost(exc)
        else:
            self.database_back_at = None

    def write(self, message: str) -> None:
        self.run.log += f"[{_stamp(timezone.now())}] {message}\n"
        self._keep(log=self.run.log)

    def progress(self, event: dict[str, Any]) -> None:
        if event.get("event") == "resumed":
            # The steps after the checkpoint were reported by the worker that died; they are
            # trained again, and reported again.
            step = event["step"]
            self.run.history = [e for e in self.run.history if e.get("step", 0) <= step]
            self._keep(history=self.run.history)
            self.write(f"resumed from step {step}, its last checkpoint")
            return
        self.run.history.append(event)
        self._keep(history=self.run.history)
        if event.get("event") == "warning":
            # Lines left out, a precision fallen back to: what the admin reads the log for.
            self.write(event["message"])
        elif event.get("event") == "eval":
            self.write(f"step {event['step']}: validation CER (greedy) {event['cer']:.4f}")

    def cancelled(self) -> bool:
        """Asked every step: an admin's cancel, or the run given to another worker. A step
        that cannot ask (the database restarting) goes on, and the steps of the next
        DATABASE_RETRY_SECONDS do not ask: a step takes a fraction of a second on a GPU, and
        each try costs a connection attempt, up to its connect_timeout."""
        if self.database_back_at is not None and time.monotonic() < self.database_back_at:
            return self.lost
        try:
            row = TrainingRun.objects.filter(pk=self.run.pk).values("cancel_requested", "claim")[0]
        except (OperationalError, InterfaceError) as exc:
            self._database_lost(exc)
            return self.lost
        self.database_back_at = None
        self.lost = self.lost or row["claim"] != self.run.claim
        return self.lost or row["cancel_requested"]

    def _database_lost(self, exc: Exception) -> None:
        if self.database_back_at is None:  # once an outage, not once a step
            logger.warning(
                "Training run %s lost the database (%s); it trains on, and asks again every %s s",
                self.run.pk,
                exc,
                DATABASE_RETRY_SECONDS,
            )
        self.database_back_at = time.monotonic() + DATABASE_RETRY_SECONDS
        connection.close()  # the next query opens a new connection

    def should_stop(self) -> bool:
        """Asked every step: cancelled, or the worker is stopping."""
        return self.cancelled() or _worker_stopping.is_set()

    def beating(self) -> AbstractContextManager[None]:
        """Steps alone would not do: an evaluation or one step of a large model can outlast
        a lease."""
        held = TrainingRun.objects.filter(pk=self.run.pk, claim=self.run.claim)
        interval = settings.OCRREVIEW_TRAINING_LEASE_SECONDS / 4
        return beating(_heartbeat(held), interval, f"run-{self.run.pk}")


def _heartbeat(held: QuerySet) -> Callable[[], int]:
    # By the database's clock, as abandoned() compares them: the worker's clock may drift.
    return lambda: held.update(heartbeat_at=DatabaseNow())


def _claim_run(run_id: int, worker: str) -> TrainingRun | None:
    """Take a queued run, or a running one whose worker died; None when the run finished or
    another live worker has it (a message redelivered after its worker was given up)."""
    takeable = Q(status=TrainingRun.Status.QUEUED) | Q(
        pk__in=TrainingRun.objects.abandoned().values("pk")
    )
    now = database_now()
    with transaction.atomic():
        run = (
            TrainingRun.objects.select_for_update(of=("self",))
            .select_related("base_model", "dataset__collection")
            .filter(takeable, pk=run_id)
            .first()
        )
        if run is None:
            return None
        run.status = TrainingRun.Status.RUNNING
        run.claim = uuid.uuid4()
        run.worker = worker[:200]
        run.heartbeat_at = now
        run.started_at = run.started_at or now
        run.save(update_fields=["status", "claim", "worker", "heartbeat_at", "started_at"])
    return run


def run_training(run_id: int, worker: str = "", *, retry: bool = False) -> TrainingRun:
    """Train, evaluate and gate (the task's body); a failure is recorded on the run. A run
    whose worker died resumes from its last checkpoint. `retry` (a worker's task): a failure
    after training queues the run again rather than failing it; a command that trains here
    reports it."""
    runs = Path(settings.OCRREVIEW_MODELS_DIR) / ".runs"
    _remove_ended_runs_folders(runs)
    run = _claim_run(run_id, worker)
    if run is None:
        return TrainingRun.objects.get(pk=run_id)
    log = _RunLog(run)
    work = runs / f"run-{run.pk}"
    try:
        if run.result_model_id is not None:  # its worker died once the gate had ruled
            return _finish(run, TrainingRun.Status.SUCCEEDED, log, "done")
        if run.cancel_requested:  # perhaps after another worker died in it
            return _finish(run, TrainingRun.Status.CANCELLED, log, "cancelled before it started")
        with log.beating():
            return _train_and_gate(run, work, log)
    except _RunLost:
        logger.warning("Training run %s was given to another worker; leaving it", run.pk)
        return TrainingRun.objects.get(pk=run_id)
    except KeyboardInterrupt:
        # `manage.py train` stopped by its admin: left running, a sweep would resume it. Once
        # the gate has ruled, the run is done whatever comes after.
        if not log.finished:
            if TrainingRun.objects.filter(pk=run.pk, result_model__isnull=False).exists():
                _finish(run, TrainingRun.Status.SUCCEEDED, log, "done")
            else:
                _finish(run, TrainingRun.Status.CANCELLED, log, "interrupted (Ctrl+C)")
        raise
    except Exception as exc:
        logger.exception("Training run %s failed", run.pk)
        log.write(traceback.format_exc())
        error = str(exc) if isinstance(exc, TrainingError) else f"{type(exc).__name__}: {exc}"
        if log.trained_steps is not None and log.cancelled():
            return _cancelled_after_training(run, log)
        if retry and (log.trained_steps is not None or _passing_fault(exc)):
            if storage.store_is_down(exc):
                # Not counted as a stall: the store's outage is no fault of the run's, and
                # recognition waits one out without charging its lines either. The run waits
                # queued, costing nothing, until the store answers or an admin cancels it;
                # failing it would delete the checkpoints the store keeps for it.
                return _queue_again(run, log, error, _longest_retry_wait())
            # Counted at the step a worker's death is counted at too: the last one logged.
            if _stalled(run, _steps_done(run)) < MAX_STALLS:
                return _queue_again(run, log, error, _retry_wait(run.stalls))
            error += f"; {run.stalls} tries in a row ended this way at step {run.stalled_at_step}"
        run.error = error
        return _finish(run, TrainingRun.Status.FAILED, log, f"failed: {run.error}")
    finally:
        # Only once the run is recorded as ended: a run left running (the database gone
        # mid-run) is queued again by a sweep, and resumes from these checkpoints.
        if log.finished:
            shutil.rmtree(work, ignore_errors=True)
            _discard_checkpoints(run)


def _remove_ended_runs_folders(runs: Path) -> None:
    """A run's folder is removed by the worker that ends it; this removes those of runs that
    ended elsewhere: taken over by another host after this one died, or finished by another
    worker after a sweep gave this one up for dead. Folders of queued or running runs stay."""
    try:
        folders = {
            int(folder.name.removeprefix("run-")): folder
            for folder in runs.glob("run-*")
            if folder.name.removeprefix("run-").isdecimal()
        }
        alive = TrainingRun.objects.filter(
            pk__in=folders, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
        ).values_list("pk", flat=True)
        for pk in folders.keys() - set(alive):
            shutil.rmtree(folders[pk], ignore_errors=True)
    except Exception:
        # Leftovers cost disk, not the run.
        logger.exception("Folders of ended training runs in %s were not removed", runs)


def _discard_checkpoints(run: TrainingRun) -> None:
    try:
        checkpoints.discard(run.pk)
    except Exception:
        # Storage's trouble must not hide how the run ended; what is left is a few files.
        logger.exception("Training run %s: its checkpoints in storage were not deleted", run.pk)


def _steps_done(run: TrainingRun) -> int:
    return max((e["step"] for e in run.history if e.get("event") == "step"), default=0)


def _stalled(run: TrainingRun, step: int) -> int:
    """Count a try that ended at `step`; the tries in a row that ended there."""
    if run.stalled_at_step == step:
        run.stalls += 1
    else:
        run.stalls, run.stalled_at_step = 1, step
    return run.stalls


# A disk that is full or failing, as the writers of a checkpoint report it: the tokenizer's
# and image processor's files with an OSError, safetensors (the weights) with Rust's
# "(os error N)", and torch.save (the optimizer's state) with its zip writer's complaint, which
# names no error at all.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT})
_DISK_FAILURE = re.compile(
    r"\(os error (?:{})\)|PytorchStreamWriter failed|unexpected pos \d+ vs \d+".format(
        "|".join(str(number) for number in sorted(_DISK_ERRNOS))
    )
)


def _passing_fault(exc: BaseException) -> bool:
    """Whether a run failed for a moment, not for its data or parameters: the GPU's memory
    taken by recognition beside it, a checkpoint's disk full or failing, the store down while
    the run's dataset, base model or checkpoint is fetched."""
    import torch  # here, not at import: the web processes import this module too

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return True
    return storage.store_is_down(exc) or bool(_DISK_FAILURE.search(str(exc)))


def _longest_retry_wait() -> int:
    """Below a lease: a queued run whose message is not taken within a lease of its heartbeat
    is sent again by the sweep (_runs_whose_message_was_lost), and _queue_again beats as it
    queues. A copy sent all the same would be harmless (one claim of a queued run succeeds),
    but it would cut the wait short."""
    return max(1, settings.OCRREVIEW_TRAINING_LEASE_SECONDS - 10)


def _retry_wait(stalls: int) -> int:
    """Seconds before a run queued again after its `stalls`-th try in a row at one step is
    tried again: sent at once, the worker would take it straight back and meet the fault again
    (the GPU still full, the disk not yet cleared), reaching MAX_STALLS within a minute."""
    return min(30 * 2 ** (stalls - 1), _longest_retry_wait())


def _queue_again(run: TrainingRun, log: _RunLog, error: str, wait: int) -> TrainingRun:
    """Queue again a run that failed for a moment, its work and checkpoints kept, as one whose
    worker stops is (_hand_back). After training, evaluating, calibrating and storing the model
    take minutes after hours of training, and may fail with the store unreachable: the next try
    starts from the trained checkpoint, not from step 0. During training (or before it), a
    passing fault (_passing_fault) would otherwise end the run and delete its checkpoints, hours
    of training: the next try resumes from the last checkpoint. run_training counts the try
    (_stalled), so a fault that comes back at the same step every time fails the run after
    MAX_STALLS tries instead of holding the worker for ever. It is tried again in `wait`
    seconds."""
    if log.trained_steps is None:
        log.write(f"{error}; queued again, to resume from its last checkpoint in {wait} s")
    else:
        log.write(
            f"failed after training: {error}; queued again, to try once more from its model "
            f"in {wait} s"
        )
    log.update(
        status=TrainingRun.Status.QUEUED,
        claim=None,
        heartbeat_at=DatabaseNow(),  # the sweep's lost-message clock starts now
        stalls=run.stalls,
        stalled_at_step=run.stalled_at_step,
    )
    if not log.lost:
        _queue_run(run.pk, countdown=wait)
    run.refresh_from_db()
    return run


def _hand_back(run: TrainingRun, log: _RunLog, step: int | None) -> TrainingRun:
    """The worker is stopping: the run, checkpointed at this step (None: before training),
    waits for the next one (this one restarted, or another, which fetches the checkpoint
    from storage)."""
    if step is None:
        log.write("the worker stopped before training; queued again")
    else:
        log.write(f"the worker stopped at step {step}; queued again, to resume from there")
    log.update(status=TrainingRun.Status.QUEUED, claim=None)
    if not log.lost:
        _queue_run(run.pk)
    run.refresh_from_db()
    return run


def _finish(run: TrainingRun, status: str, log: _RunLog, message: str) -> TrainingRun:
    log.write(message)
    run.status = status
    run.finished_at = timezone.now()
    log.update(status=status, finished_at=run.finished_at, error=run.error)
    log.finished = not log.lost
    return run


def do_requeue_abandoned_runs() -> int:
    """Queue again the runs whose worker died (the training workers' periodic sweep, see
    ocrreview/sweep.py), saying so in their log; the next training worker resumes each from
    its last checkpoint. Returns how many were queued."""
    now = database_now()
    with transaction.atomic():
        runs = list(TrainingRun.objects.abandoned().select_for_update(skip_locked=True))
        requeued, given_up = [], []
        for run in runs:
            step = _steps_done(run)
            beat = _stamp(run.heartbeat_at) if run.heartbeat_at else "none"
            run.log += (
                f"[{_stamp(now)}] {run.worker or 'its worker'} stopped answering at step "
                f"{step} (last heartbeat {beat}); "
            )
            run.claim, run.heartbeat_at = None, now
            if _stalled(run, step) >= MAX_STALLS:
                run.status, run.finished_at = TrainingRun.Status.FAILED, now
                run.error = (
                    f"its worker died {run.stalls} times at step {step} (killed for memory?); "
                    "lower the batch size or train the decoder only"
                )
                run.log += f"{run.error}\n"
                given_up.append(run)
            else:
                run.status = TrainingRun.Status.QUEUED
                run.log += "queued again, to resume from its last checkpoint\n"
                requeued.append(run.pk)
            run.save(
                update_fields=[
                    "log",
                    "status",
                    "claim",
                    "heartbeat_at",
                    "stalls",
                    "stalled_at_step",
                    "error",
                    "finished_at",
                ]
            )
        for run_id in requeued:
            _queue_run(run_id)
        lost = _runs_whose_message_was_lost(now)
        for run_id in lost:
            _queue_run(run_id)
    for run in given_up:
        _discard_checkpoints(run)
    return len(requeued) + len(lost)


def _runs_whose_message_was_lost(now) -> list[int]:
    """Queued runs that waited a whole lease while no run was running: an idle training
    worker would have taken them, so their message never reached the broker (it was down).
    Marked as sent now, so that each is sent once a lease while it waits, not every sweep. A
    copy of a message that was not lost after all is harmless: one claim of a run succeeds."""
    if TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).exists():
        return []
    stale = now - timedelta(seconds=settings.OCRREVIEW_TRAINING_LEASE_SECONDS)
    waiting = TrainingRun.objects.select_for_update(skip_locked=True).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
        status=TrainingRun.Status.QUEUED,
    )
    lost = list(waiting.values_list("pk", flat=True))
    TrainingRun.objects.filter(pk__in=lost).update(heartbeat_at=now)
    return lost


def _train_and_gate(run: TrainingRun, work: Path, log: _RunLog) -> TrainingRun:
    # torch and transformers load here, in the training worker, not in every web process.
    from ocrreview.training import evaluation
    from recognition.training import TrainingConfig, find_unknown_chars, train

    params = TrainingParams(**run.params)
    collection = run.dataset.collection
    split = getattr(collection, "evaluation_split", None)
    if split is None:
        raise TrainingError(f"{collection} has no frozen evaluation split; export a dataset")
    _check_split_of(run.dataset)  # a run queued before its split was changed in a shell
    # Found out now, not after hours of training.
    if not splits.evaluation_lines(split):
        raise TrainingError(
            "every line of the frozen evaluation split was reopened since it was frozen; "
            "review them again before training"
        )
    training_lines = exports.read_split(run.dataset, splits.TRAIN, work / "data")
    # Validation chooses the checkpoint kept and fits its calibration: a model's own readings
    # there would score the parent's output against itself.
    validation_lines = exports.read_split(
        run.dataset, splits.VALIDATION, work / "data", reviewed_only=True
    )
    train_samples, val_samples = training_lines.samples, validation_lines.samples
    if not train_samples:
        raise TrainingError(f"dataset export {run.dataset.pk} has no training lines")
    log.write(
        f"training {run.base_model} on {len(train_samples)} lines "
        f"({training_lines.machine_read} of them machine-read, not reviewed), "
        f"validating on {len(val_samples)} reviewed lines ({params.train_part} trained)"
    )
    if validation_lines.left_out:
        log.write(
            f"{validation_lines.left_out} auto-accepted lines of the export's validation split left "
            "out: only reviewed lines validate"
        )
    base = evaluation.load_for_training(run.base_model)
    unknown = find_unknown_chars(base.tokenizer, [text for _, text in train_samples + val_samples])
    if unknown:
        log.write(
            "characters the base tokenizer cannot encode, added to its vocabulary before "
            "training: " + " ".join(unknown)
        )
    config = TrainingConfig(
        epochs=params.epochs,
        max_steps=params.max_steps,
        batch_size=params.batch_size,
        grad_accum=params.grad_accum,
        learning_rate=params.learning_rate,
        warmup_steps=params.warmup_steps,
        train_encoder=params.train_part == "all",
        eval_every=params.eval_every,
        max_new_tokens=settings.OCRREVIEW_MAX_NEW_TOKENS,
        patience=params.patience,
        seed=params.seed,
        log_every=max(1, min(20, params.eval_every // 2)),
        checkpoint_every=params.checkpoint_every,
        # A run taken over after its worker died picks up its last checkpoint; a run that
        # ends in any other way deletes its work directory, so nothing stale is resumed.
        resume=True,
    )
    if _worker_stopping.is_set():  # before a checkpoint's download, and a step to store again
        return _hand_back(run, log, None)
    fetched = checkpoints.fetch(run.pk, work / "out")
    if fetched is not None:
        log.write(f"the checkpoint of step {fetched} fetched from storage")

    def keep_checkpoint(checkpoint: Path, step: int) -> None:
        if log.lost:  # what the successor resumes from is its own now
            return
        try:
            checkpoints.keep(run.pk, str(run.claim), checkpoint.parent, step)
        except Exception as exc:
            logger.exception("Training run %s: checkpoint of step %s not stored", run.pk, step)
            log.write(
                f"the checkpoint of step {step} could not be stored ({exc}); a worker on "
                "another host would resume from an earlier one"
            )

    result = train(
        base,
        train_samples,
        val_samples,
        config,
        work / "out",
        on_progress=log.progress,
        should_cancel=log.should_stop,
        on_checkpoint=keep_checkpoint,
    )
    if log.lost:
        raise _RunLost
    if result.cancelled and not log.cancelled():
        return _hand_back(run, log, result.steps)
    if result.cancelled:
        return _finish(run, TrainingRun.Status.CANCELLED, log, f"cancelled at step {result.steps}")
    log.write(
        f"trained {result.steps} steps in {result.wall_s:.0f} s; best step {result.best_step}"
    )
    log.trained_steps = result.steps

    name = child_name(run.base_model.name, run.pk)
    trained = result.model_dir
    # Read as the workers read, beam search over the collection's n-best (training validated
    # greedily).
    nbest = collection.nbest_size
    calibration = evaluation.fit_calibration_on(trained, val_samples, nbest=nbest)
    log.write(
        "calibration fitted on the validation lines"
        if calibration
        else "too few validation lines to fit a calibration; confidences stay raw"
    )
    eval_lines, unreadable = evaluation.readable_lines(splits.evaluation_lines(split))
    if unreadable and not eval_lines:
        raise TrainingError(
            f"none of the {unreadable} lines of the frozen evaluation split can be scored: "
            "their page images cannot be read"
        )
    if unreadable:
        log.write(
            f"{unreadable} lines of the frozen evaluation split left out of both scores: "
            "their page images cannot be read"
        )
    if eval_lines:
        parent_score = evaluation.score(
            run.base_model.source, run.base_model.revision, eval_lines, nbest
        )
        child_score = evaluation.score(str(trained), "", eval_lines, nbest)
        log.write(
            f"frozen evaluation split ({len(eval_lines)} lines, {decoding(nbest)}): "
            f"CER {child_score['cer']:.4f}, {child_score['edits']} edits in "
            f"{child_score['characters']} characters (parent {parent_score['cer']:.4f}, "
            f"{parent_score['edits']} edits), WER {child_score['wer']:.4f} "
            f"(parent {parent_score['wer']:.4f})"
        )
    else:
        # Every line of the split reopened during training (a person's saves undone, say):
        # a failure would be tried again to the same end, then delete hours of training. The
        # model is kept, unmeasured, and the gate keeps it inactive for want of lines.
        parent_score = child_score = {"cer": None, "wer": None, "edits": None, "characters": 0}
        log.write(
            "the frozen evaluation split has no reviewed lines left to score on: the model "
            "is kept unmeasured"
        )
    metrics = {
        "eval_split": split.pk,
        "lines": len(eval_lines),
        "unreadable_lines": unreadable,
        "num_beams": nbest,
        **child_score,
        "parent": {"name": run.base_model.name, **parent_score},
        "val_cer": result.best_cer,
        "best_step": result.best_step,
        "steps": result.steps,
        "train_lines": len(train_samples),
        "machine_read_train_lines": training_lines.machine_read,
        "validation_lines": len(val_samples),
        "added_chars": result.added_chars,
    }
    # Evaluation and upload take minutes in which steps no longer ask.
    if log.cancelled():
        return _cancelled_after_training(run, log)
    # In storage, where every worker finds it, before the row that points at it exists.
    stored = stored_model_folder(run)
    try:
        storage.put_directory(stored, trained)
    except Exception:
        # A part of the model (a disk filled, the store went away): the retry stores a whole
        # one in a folder of its own claim, and copies of gigabytes would pile up each time.
        _delete_stored_model(stored)
        raise
    with transaction.atomic():
        held = TrainingRun.objects.select_for_update().filter(pk=run.pk, claim=run.claim)
        cancel_requested = held.values_list("cancel_requested", flat=True).first()
        if cancel_requested is None:
            _delete_stored_model(stored)
            raise _RunLost
        if cancel_requested:
            _delete_stored_model(stored)
            return _cancelled_after_training(run, log)
        child = ModelVersion.objects.create(
            name=name,
            source=storage.model_source(stored),
            parent=run.base_model,
            metrics=metrics,
            calibration=calibration,
            created_by=run.created_by,
        )
        run.result_model = child
        run.save(update_fields=["result_model"])
        verdict = do_apply_gate(run)
    if verdict.kind == PromotionEvent.Kind.PROMOTED:
        log.write(f"{child} promoted: it beats {run.base_model}")
    else:
        log.write(
            f"{child} kept inactive: {verdict.reason or f'it does not beat {run.base_model}'}"
        )
    return _finish(run, TrainingRun.Status.SUCCEEDED, log, "done")


def decoding(num_beams: int) -> str:
    return "greedy decoding" if num_beams == 1 else f"beam search over {num_beams}"


def child_name(base: str, run_pk: int) -> str:
    """A trained model's name: its first ancestor's and the run's. Suffixing the parent's name
    would add "-runN" a generation, and the name outgrow its column after a few dozen."""
    suffix = f"-run{run_pk}"
    root = re.sub(r"(-run\d+)+$", "", base)
    return root[: ModelVersion._meta.get_field("name").max_length - len(suffix)] + suffix


def stored_model_folder(run: TrainingRun) -> str:
    """Where the run's model goes in storage. Named by the claim too: a worker given up for
    dead in a long upload would otherwise write over the files its successor stored, which
    a promoted version may already be read from."""
    return f"models/{child_name(run.base_model.name, run.pk)}-{run.claim.hex[:8]}"


def _delete_stored_model(stored: str) -> None:
    try:
        storage.delete_directory(stored)
    except Exception:
        # Storage's trouble must not hide why the run ended; the files are unused.
        logger.exception("The run's unused model in %s was not deleted", stored)


def _cancelled_after_training(run: TrainingRun, log: _RunLog) -> TrainingRun:
    if log.lost:
        raise _RunLost
    return _finish(run, TrainingRun.Status.CANCELLED, log, "cancelled before its model was kept")


def gate_numbers(child: ModelVersion) -> dict[str, Any]:
    parent = child.metrics.get("parent", {})
    return {
        "cer": child.metrics.get("cer"),
        "wer": child.metrics.get("wer"),
        "parent_cer": parent.get("cer"),
        "parent_wer": parent.get("wer"),
        # Exact counts, where two CERs can round to the same figure.
        "edits": child.metrics.get("edits"),
        "parent_edits": parent.get("edits"),
        "characters": child.metrics.get("characters"),
        "lines": child.metrics.get("lines"),
        "eval_split": child.metrics.get("eval_split"),
    }


def beats_parent(child: ModelVersion) -> bool:
    numbers = gate_numbers(child)
    if numbers["cer"] is None or numbers["parent_cer"] is None:
        return False
    return numbers["cer"] < numbers["parent_cer"]


def _too_few_lines(collection: Collection, lines: int) -> str:
    """Why the gate did not decide on a split of ``lines`` lines, and what makes it decide:
    a provisional split grows (splits.grow), and an admin who does not know it waits for
    nothing, or overrides the gate where a few more reviewed documents would have let it
    decide."""
    minimum = settings.OCRREVIEW_GATE_MIN_LINES
    split = EvaluationSplit.objects.filter(collection=collection).first()
    held = (
        f"holds {lines} lines, fewer than the {minimum} the gate decides on: too few to tell "
        "a better model from luck"
    )
    if split is not None and split.sealed_at is None:
        unit = split.unit
        return (
            f"the evaluation split is provisional and {held}. It grows as reviewers finish "
            f"more ground truth (new reviewed lines of its own {unit}s, then of {unit}s no "
            f"export has trained on) and the next export runs, until it holds {minimum} "
            "lines and is sealed; train again then, or promote this model anyway if its "
            "numbers convince you"
        )
    return (
        f"the evaluation split is sealed and {held}; it grows no more (an imported test "
        "split, one frozen before splits grew, or lines reopened since, which count again "
        "once reviewed); promote this model anyway if its numbers convince you"
    )


def do_apply_gate(run: TrainingRun) -> PromotionEvent:
    """Activate the run's model in its collection if it beats its parent on the frozen split,
    that split is large enough to tell (OCRREVIEW_GATE_MIN_LINES), and that parent is still the
    model the collection reads with: one promoted or chosen since is not what the child was
    measured against, and may read better. Either way the verdict and its numbers are
    recorded, and returned."""
    child = run.result_model
    collection = Collection.objects.select_for_update().get(pk=run.dataset.collection_id)
    reason = ""
    # A collection that chose no model reads with the default one.
    reads_with = collection.model_version or default_model_name()
    lines = child.metrics.get("lines") or 0
    if str(reads_with) != child.parent.name:
        reason = (
            f"the collection reads with {reads_with} now, not with "
            f"{child.parent}, the model this one was measured against"
        )
    elif lines < settings.OCRREVIEW_GATE_MIN_LINES:
        reason = _too_few_lines(collection, lines)
    elif (
        beats_parent(child)
        and uncalibrated_model(child)
        and not uncalibrated_model(collection.model_version)
    ):
        # Accepting lines unseen on raw confidences is an admin's choice (calibration_guard),
        # not the gate's to make for a collection whose model's confidences are calibrated.
        reason = (
            f"its confidences are not calibrated (too few validation lines to fit them on), "
            f"so at the collection's threshold of {collection.confidence_threshold:.2f} lines "
            "would be accepted unseen on raw confidences; promote it anyway, confirming that, "
            "if its numbers convince you"
        )
    if beats_parent(child) and not reason:
        do_set_collection_model(collection, child, actor=None)
        run.promoted = True
        run.save(update_fields=["promoted"])
        kind = PromotionEvent.Kind.PROMOTED
    else:
        kind = PromotionEvent.Kind.REJECTED
    return PromotionEvent.objects.create(
        model_version=child,
        parent=child.parent,
        collection=collection,
        training_run=run,
        kind=kind,
        numbers=gate_numbers(child),
        reason=reason,
    )


@transaction.atomic
def do_override_promotion(
    run: TrainingRun, *, actor, reason: str, confirm_uncalibrated: bool = False
) -> PromotionEvent:
    """An admin activates a model the gate kept inactive; who, when and why is recorded. A
    model whose confidences are not calibrated asks `confirm_uncalibrated`, as choosing it in
    the collection's settings does."""
    run = (
        TrainingRun.objects.select_for_update().select_related("dataset__collection").get(pk=run.pk)
    )
    if run.status != TrainingRun.Status.SUCCEEDED or run.result_model_id is None:
        raise TrainingError("only a finished run's model can be promoted")
    if run.promoted:
        raise TrainingError(f"{run.result_model} is already promoted")
    if not reason.strip():
        raise TrainingError("say why the gate is overridden")
    child = run.result_model
    problem = uncalibrated_auto_accept(run.dataset.collection.confidence_threshold, child)
    if problem and not confirm_uncalibrated:
        raise TrainingError(problem)
    do_set_collection_model(run.dataset.collection, child, actor=actor)
    run.promoted = True
    run.promotion_overridden_by = actor
    run.save(update_fields=["promoted", "promotion_overridden_by"])
    return PromotionEvent.objects.create(
        model_version=child,
        parent=child.parent,
        collection=run.dataset.collection,
        training_run=run,
        kind=PromotionEvent.Kind.OVERRIDDEN,
        actor=actor,
        numbers=gate_numbers(child),
        reason=reason.strip(),
    )


def do_rerecognize_unreviewed(collection: Collection, version: ModelVersion, *, actor) -> int:
    """Queue the lines no human has settled for reading by ``version`` (the pipeline's
    re-recognition), those open in an editor included; reviewed text is never touched.
    Returns how many lines were queued."""
    if collection.model_version_id != version.pk:
        raise TrainingError(f"{version} is not the active model of {collection}")
    lines = collection.lines.exclude(status=Line.Status.REVIEWED)
    with transaction.atomic():
        queued = do_queue_recognition(lines, model_version=version, reread=True)
        record_event(
            collection,
            CollectionEvent.Type.LINES_REREAD,
            actor=actor,
            model=model_label(version),
            lines=queued,
            unreviewed_only=True,
        )
    return queued

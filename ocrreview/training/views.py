"""Thin views over ocrreview.training.actions. Everything here is for a collection's admins:
other members get 403, and users outside the collection 404."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from ocrreview import storage
from ocrreview.corpus.access import admin_collection_for
from ocrreview.corpus.models import Collection
from ocrreview.training import actions, exports, splits, tasks
from ocrreview.training.charts import history_chart, last_step
from ocrreview.training.exports import ExportError
from ocrreview.training.forms import (
    ExportForm,
    ImportForm,
    OverrideForm,
    RedrawSplitForm,
    TrainingForm,
)
from ocrreview.training.imports import DatasetImportError, do_import_zip
from ocrreview.training.models import DatasetExport, PromotionEvent, TrainingRun
from ocrreview.transcription import ops

FINISHED_RUN = (
    TrainingRun.Status.SUCCEEDED,
    TrainingRun.Status.FAILED,
    TrainingRun.Status.CANCELLED,
)


def _polled(request) -> bool:
    """htmx asks for the status fragment alone while a job runs."""
    return request.headers.get("HX-Request") == "true"


def _export(request, pk: int) -> DatasetExport:
    export = get_object_or_404(DatasetExport.objects.select_related("created_by"), pk=pk)
    export.collection = admin_collection_for(request.user, export.collection_id)
    return export


def _run(request, pk: int) -> TrainingRun:
    run = get_object_or_404(
        TrainingRun.objects.select_related(
            "base_model", "result_model", "dataset", "created_by", "promotion_overridden_by"
        ),
        pk=pk,
    )
    run.collection = admin_collection_for(request.user, run.dataset.collection_id)
    return run


def _home(request, collection: Collection, status: int = 200, **forms):
    """The training page; a refused form comes back in it with its errors, beside the same
    lists as ever (without them the page said "No exports yet" and that no split was frozen)."""
    context = {
        "collection": collection,
        "export_form": ExportForm(collection=collection),
        "export_refusal": exports.start_refusal(collection),
        "training_form": TrainingForm(collection=collection),
        "import_form": ImportForm(),
        **_split_context(collection),
        **forms,
        "exports": collection.exports.select_related("created_by")[:20],
        "runs": TrainingRun.objects.filter(dataset__collection=collection).select_related(
            "base_model", "result_model"
        )[:20],
        "events": PromotionEvent.objects.filter(collection=collection).select_related(
            "model_version", "parent", "actor"
        )[:20],
    }
    return render(request, "training/home.html", context, status=status)


def _split_context(collection: Collection) -> dict:
    """The evaluation split's size against the gate's minimum, and its changes."""
    split = getattr(collection, "evaluation_split", None)
    if split is None:
        return {"split": None}
    return {
        "split": split,
        "redraw_refusal": splits.redraw_refusal(split),
        "redraw_form": RedrawSplitForm(),
        "split_lines": splits.counted_lines(split),
        "gate_minimum": settings.OCRREVIEW_GATE_MIN_LINES,
        "split_changes": [
            (change, exports.describe_change(change))
            for change in split.changes.select_related("actor", "export", "split")[:20]
        ],
    }


@login_required
def training_home(request, pk: int):
    return _home(request, admin_collection_for(request.user, pk))


@login_required
@require_POST
def start_export(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = ExportForm(request.POST, collection=collection)
    if form.is_valid():
        try:
            export = actions.do_start_export(collection, form.options(), user=request.user)
        except ExportError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("training_export", pk=export.pk)
    return _home(request, collection, 400, export_form=form)


@login_required
@require_POST
def redraw_split(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = RedrawSplitForm(request.POST)
    if form.is_valid():
        try:
            change = splits.do_redraw_evaluation_split(
                collection,
                unit=form.cleaned_data["unit"],
                seed=form.cleaned_data["seed"],
                fraction=form.cleaned_data["test_fraction"],
                user=request.user,
            )
        except splits.SplitError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, exports.describe_change(change))
            return redirect("training_home", pk=collection.pk)
    return _home(request, collection, 400, redraw_form=form)


@login_required
@require_POST
def import_dataset(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = ImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["archive"]
        try:
            result = do_import_zip(
                collection,
                upload,
                user=request.user,
                title=Path(upload.name).stem,
                text_column=form.cleaned_data["text_column"],
                freeze_test=form.cleaned_data["freeze_test"],
            )
        except (DatasetImportError, splits.SplitError) as exc:
            form.add_error("archive", str(exc))
        else:
            messages.success(request, result.summary())
            return redirect("training_home", pk=collection.pk)
    return _home(request, collection, 400, import_form=form)


@login_required
def export_detail(request, pk: int):
    export = _export(request, pk)
    template = "training/_export_status.html" if _polled(request) else "training/export.html"
    context = {"export": export, "collection": export.collection}
    if export.status == DatasetExport.Status.DONE:
        context["split_sentences"] = exports.split_sentences(export)
    if export.status == DatasetExport.Status.QUEUED:
        context["waiting"] = ops.why_waiting(tasks.build_dataset_export.name)
    elif DatasetExport.objects.abandoned().filter(pk=export.pk).exists():
        context["waiting"] = _silent_worker(
            "Its worker",
            export.heartbeat_at,
            actions.EXPORT_BEAT_SECONDS,
            "A default worker's sweep queues the export again, to be built anew, or fails it "
            f"once {actions.MAX_LOST_WORKERS} workers have died building it.",
            tasks.build_dataset_export.name,
        )
    return render(request, template, context)


def _silent_worker(
    who: str, heartbeat_at, beat_seconds: float, recovery: str, task_name: str
) -> str:
    """What an export's or a run's page says once its worker stopped beating: only a sweep by
    a worker of its queue takes the work up again, and with none left, "Running" would stay
    on the page for good."""
    since = f" since {localtime(heartbeat_at):%Y-%m-%d %H:%M:%S}" if heartbeat_at else ""
    return (
        f"{who} has not answered{since} (it beats every {beat_seconds:.0f} s): it was "
        f"stopped, killed or hung. {recovery} " + ops.why_waiting(task_name)
    )


@login_required
def export_download(request, pk: int):
    export = _export(request, pk)
    if export.status != DatasetExport.Status.DONE:
        raise Http404("This export is not finished.")
    if not export.path or not default_storage.exists(export.path):
        raise Http404("The export file is gone from storage.")
    return storage.download_response(
        export.path, f"{export.collection.name}-export-{export.pk}.zip", "application/zip"
    )


@login_required
@require_POST
def start_training(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = TrainingForm(request.POST, collection=collection)
    if form.is_valid():
        try:
            run = actions.do_start_training(
                form.cleaned_data["base"],
                form.cleaned_data["dataset"],
                form.params(),
                user=request.user,
            )
        except actions.TrainingError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("training_run", pk=run.pk)
    return _home(request, collection, 400, training_form=form)


@login_required
def run_detail(request, pk: int):
    run = _run(request, pk)
    events = PromotionEvent.objects.filter(training_run=run).select_related("actor")
    context = {
        "run": run,
        "collection": run.collection,
        # What the collection reads with now, not whether the run once promoted its model.
        "active": run.result_model_id is not None
        and run.result_model_id == run.collection.model_version_id,
        "rejection": events.filter(kind=PromotionEvent.Kind.REJECTED).first(),
        "chart": history_chart(run.history),
        "last_step": last_step(run.history),
        "finished": run.status in FINISHED_RUN,
        "override_form": OverrideForm(
            calibrated=bool(run.result_model and run.result_model.calibration)
        ),
        "events": events,
    }
    if run.status == TrainingRun.Status.QUEUED:
        context["waiting"] = ops.why_waiting(tasks.train_model.name)
    elif TrainingRun.objects.abandoned().filter(pk=run.pk).exists():
        context["waiting"] = _silent_worker(
            run.worker or "Its worker",
            run.heartbeat_at,
            settings.OCRREVIEW_TRAINING_LEASE_SECONDS // 4,
            "A training worker's sweep queues the run again, to resume from its last "
            f"checkpoint, or fails it once {actions.MAX_STALLS} workers have died at one step.",
            tasks.train_model.name,
        )
    if _polled(request):
        return render(request, "training/_run_status.html", context)
    return render(request, "training/run.html", context)


@login_required
@require_POST
def cancel_run(request, pk: int):
    run = _run(request, pk)
    if actions.do_request_cancel(run):
        run.refresh_from_db(fields=["status"])
        messages.success(
            request,
            "Cancelled while it was queued."
            if run.status == TrainingRun.Status.CANCELLED
            else "Cancelling: the run stops after its current step.",
        )
    else:
        messages.error(
            request, f"The run is {run.get_status_display().lower()}; nothing to cancel."
        )
    return redirect("training_run", pk=run.pk)


@login_required
@require_POST
def override_promotion(request, pk: int):
    run = _run(request, pk)
    form = OverrideForm(request.POST)
    if form.is_valid():
        try:
            actions.do_override_promotion(run, actor=request.user, **form.cleaned_data)
        except actions.TrainingError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{run.result_model} is now the active model.")
    else:
        messages.error(request, "Say why the gate is overridden.")
    return redirect("training_run", pk=run.pk)


@login_required
@require_POST
def rerecognize(request, pk: int):
    run = _run(request, pk)
    if run.result_model is None:
        raise Http404("This run produced no model.")
    try:
        queued = actions.do_rerecognize_unreviewed(
            run.collection, run.result_model, actor=request.user
        )
    except actions.TrainingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{queued} unreviewed lines queued for {run.result_model}.")
    return redirect("training_run", pk=run.pk)

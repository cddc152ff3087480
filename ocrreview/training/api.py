"""The HTTP API of exports, training runs and model versions: the same actions as the
training page, for the same people (a collection's admins; other members get 403, users
outside the collection 404). Requests are validated by the page's own forms."""

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.http import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview import storage
from ocrreview.corpus.access import admin_collection_for, visible_collections
from ocrreview.corpus.api_base import ServesFile, TextJSONParser, bind_form, error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.models import ModelVersion
from ocrreview.training import actions, splits
from ocrreview.training.exports import FORMATS, UNITS, ExportError, describe_change
from ocrreview.training.forms import ExportForm, OverrideForm, RedrawSplitForm, TrainingForm
from ocrreview.training.models import (
    EXPORT_SILENCE_SECONDS,
    DatasetExport,
    EvaluationSplit,
    EvaluationSplitChange,
    PromotionEvent,
    TrainingRun,
)


class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField(
        help_text="where the zip is once the export is done"
    )

    class Meta:
        model = DatasetExport
        fields = [
            "id",
            "collection",
            "status",
            "progress",
            "filters",
            "formats",
            "counts",
            "checksum",
            "error",
            "created_at",
            "heartbeat_at",
            "download_url",
        ]
        extra_kwargs = {
            "heartbeat_at": {
                "help_text": "the last progress report of the worker building it (while queued: "
                "when it was queued); a running export silent for "
                f"{EXPORT_SILENCE_SECONDS // 60} minutes lost its worker, and a default "
                "worker's sweep queues it again"
            }
        }

    def get_download_url(self, export: DatasetExport) -> str | None:
        if export.status != DatasetExport.Status.DONE:
            return None
        url = reverse("api_export_download", args=[export.pk])
        return self.context["request"].build_absolute_uri(url)


class ExportRequestSerializer(serializers.Serializer):
    """For the schema; the request is validated by the training page's export form."""

    documents = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="none: the whole collection"
    )
    include_auto_accepted = serializers.BooleanField(required=False)
    min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1)
    unit = serializers.ChoiceField(choices=UNITS, required=False)
    seed = serializers.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)
    validation_fraction = serializers.FloatField(required=False, min_value=0, max_value=0.9)
    test_fraction = serializers.FloatField(
        required=False,
        min_value=0.01,
        max_value=0.9,
        help_text="used only the first time: the evaluation split is then frozen",
    )
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=list(FORMATS)), required=False
    )


class TrainingRunSerializer(serializers.ModelSerializer):
    collection = serializers.IntegerField(source="dataset.collection_id")

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "collection",
            "base_model",
            "dataset",
            "result_model",
            "params",
            "status",
            "history",
            "log",
            "cancel_requested",
            "promoted",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "worker",
            "heartbeat_at",
        ]
        extra_kwargs = {
            "history": {
                "help_text": "every logged step ({step, loss, lr}) and validation "
                "({event: eval, step, cer}): the loss and CER curves"
            },
            "worker": {"help_text": "the Celery worker that last took the run"},
            "heartbeat_at": {
                "help_text": "the last beat of the worker running it, every quarter of the "
                "site's training lease: a running run silent for a whole lease lost its "
                "worker, and a training worker's sweep queues it again"
            },
        }


class TrainingRequestSerializer(serializers.Serializer):
    """For the schema; the request is validated by the training page's form."""

    base = serializers.IntegerField(
        required=False,
        help_text="default: the model the collection reads with (the site's default model "
        "where it chose none)",
    )
    dataset = serializers.IntegerField(
        required=False, help_text="a finished export; default: the latest"
    )
    train_part = serializers.ChoiceField(choices=["decoder", "all"], required=False)
    epochs = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    max_steps = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    learning_rate = serializers.FloatField(required=False, min_value=1e-8, max_value=0.5)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=512)
    grad_accum = serializers.IntegerField(required=False, min_value=1, max_value=256)
    eval_every = serializers.IntegerField(required=False, min_value=1)
    patience = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class PromotionEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_name",
        allow_null=True,
        help_text="who overrode the gate, as named then (kept once the account is deleted); "
        "null for the gate",
    )

    class Meta:
        model = PromotionEvent
        fields = ["id", "kind", "collection", "training_run", "actor", "numbers", "reason"]


class ModelVersionSerializer(serializers.ModelSerializer):
    training_run = serializers.IntegerField(source="training_run.pk", allow_null=True, default=None)
    promotions = PromotionEventSerializer(many=True, source="promotion_events")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "source",
            "revision",
            "parent",
            "status",
            "metrics",
            "training_run",
            "promotions",
            "created_at",
        ]
        extra_kwargs = {
            "metrics": {
                "help_text": "the evaluation on the collection's frozen split: cer, wer, "
                "lines, and the parent's numbers on the same lines"
            }
        }


class PromoteSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="recorded with your name")
    confirm_uncalibrated = serializers.BooleanField(
        required=False,
        help_text="true to promote a model whose confidences are not calibrated (lines are "
        "then accepted unseen on raw confidences); without it such a promotion is a 409",
    )


class SplitPartSerializer(serializers.Serializer):
    lines = serializers.IntegerField()
    documents = serializers.IntegerField()
    pages = serializers.IntegerField()


class SplitPartsSerializer(serializers.Serializer):
    measuring = SplitPartSerializer(
        help_text="the lines that measure every run now: reviewed, not blank"
    )
    reopened = SplitPartSerializer(
        help_text="the split's lines reopened (or emptied) since it was frozen: they stay in "
        "it, and measure again once reviewed"
    )


class SplitChangeSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        help_text="who drew it or whose export changed it; null for none, or once deleted",
    )
    description = serializers.SerializerMethodField(help_text="the change as a sentence")

    class Meta:
        model = EvaluationSplitChange
        fields = [
            "id",
            "kind",
            "created_at",
            "export",
            "export_number",
            "imported",
            "actor",
            "lines_added",
            "units_added",
            "lines",
            "minimum",
            "sealed",
            "note",
            "description",
        ]
        extra_kwargs = {
            "lines": {"help_text": "the lines that measured a model after the change"},
            "minimum": {"help_text": "the promotion gate's minimum then"},
            "export": {"help_text": "the export that made the change; null once deleted"},
            "export_number": {
                "help_text": "the number of the export that made the change, kept once it is "
                "deleted; null for none"
            },
            "imported": {
                "help_text": "frozen as an imported dataset's own test split, which is never "
                "drawn again"
            },
        }

    def get_description(self, change: EvaluationSplitChange) -> str:
        return describe_change(change)


class EvaluationSplitSerializer(serializers.Serializer):
    collection = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=["provisional", "sealed"],
        help_text="provisional: under the gate's minimum, each export grows it with ground "
        "truth no export under it trained on; sealed: its lines stay these",
    )
    unit = serializers.ChoiceField(choices=UNITS, help_text="what it was drawn by, whole")
    unit_fallback = serializers.BooleanField(
        help_text="drawn by page where documents were asked for (too few or too unequal)"
    )
    seed = serializers.IntegerField()
    frozen_at = serializers.DateTimeField(help_text="when it was first drawn, or drawn again")
    sealed_at = serializers.DateTimeField(allow_null=True)
    lines = serializers.IntegerField(help_text="the lines that measure a model now")
    minimum = serializers.IntegerField(
        help_text="the fewest lines the promotion gate decides on (OCRREVIEW_GATE_MIN_LINES)"
    )
    parts = SplitPartsSerializer()
    can_redraw = serializers.BooleanField()
    redraw_refusal = serializers.CharField(
        allow_blank=True, help_text="why it may not be drawn again now; empty when it may"
    )
    changes = SplitChangeSerializer(many=True, help_text="frozen, grown, drawn again; newest first")


class RedrawSplitSerializer(serializers.Serializer):
    """For the schema; the request is validated by the training page's form."""

    unit = serializers.ChoiceField(choices=UNITS, required=False)
    seed = serializers.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)
    test_fraction = serializers.FloatField(required=False, min_value=0.01, max_value=0.9)
    confirm = serializers.BooleanField(
        help_text="true: the exports made under the current draw can no longer train"
    )


def _split_body(split: EvaluationSplit) -> dict:
    parts = splits.split_parts(split)
    refusal = splits.redraw_refusal(split)
    changes = split.changes.select_related("actor", "split")
    return EvaluationSplitSerializer(
        {
            "collection": split.collection_id,
            "state": "provisional" if split.sealed_at is None else "sealed",
            "unit": split.unit,
            "unit_fallback": split.unit_fallback,
            "seed": split.seed,
            "frozen_at": split.frozen_at,
            "sealed_at": split.sealed_at,
            "lines": parts["measuring"]["lines"],
            "minimum": settings.OCRREVIEW_GATE_MIN_LINES,
            "parts": parts,
            "can_redraw": not refusal,
            "redraw_refusal": refusal,
            "changes": changes,
        }
    ).data


def _export_for(request: Request, pk: int) -> DatasetExport:
    export = get_object_or_404(DatasetExport, pk=pk)
    admin_collection_for(request.user, export.collection_id)
    return export


def _run_for(request: Request, pk: int) -> TrainingRun:
    run = get_object_or_404(TrainingRun.objects.select_related("dataset"), pk=pk)
    admin_collection_for(request.user, run.dataset.collection_id)
    return run


class CollectionExports(generics.ListAPIView):
    """The collection's dataset exports, newest last."""

    serializer_class = ExportSerializer
    parser_classes = [TextJSONParser]

    def get_queryset(self):
        return admin_collection_for(self.request.user, self.kwargs["pk"]).exports.all()

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Export the collection's ground truth as a fine-tuning dataset (a worker builds
        it; follow its status, then download it)."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(ExportForm, request.data, collection=collection)
        if not form.is_valid():
            return error("Invalid export.", fields=form.errors.get_json_data())
        try:
            export = actions.do_start_export(collection, form.options(), user=request.user)
        except ExportError as exc:
            return error(str(exc))
        body = ExportSerializer(export, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExportDetail(generics.RetrieveAPIView):
    serializer_class = ExportSerializer

    def get_object(self):
        return _export_for(self.request, self.kwargs["pk"])


class ExportDownload(ServesFile, APIView):
    file_media_type = "application/zip"

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="on S3 storage: to a short-lived presigned URL"),
            409: ErrorSerializer,
        }
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        """The export's zip, streamed, or on S3 a redirect to a short-lived link to it; a 409
        while it is not done."""
        export = _export_for(request, pk)
        if export.status != DatasetExport.Status.DONE:
            return error(
                f"The export is {export.get_status_display().lower()}.", status.HTTP_409_CONFLICT
            )
        if not export.path or not default_storage.exists(export.path):
            return error("The export file is gone from storage.", status.HTTP_404_NOT_FOUND)
        return storage.download_response(export.path, f"export-{export.pk}.zip", "application/zip")


class CollectionTrainingRuns(generics.ListAPIView):
    """The collection's training runs, newest last."""

    serializer_class = TrainingRunSerializer
    parser_classes = [TextJSONParser]

    def get_queryset(self):
        collection = admin_collection_for(self.request.user, self.kwargs["pk"])
        return TrainingRun.objects.filter(dataset__collection=collection).select_related("dataset")

    @extend_schema(request=TrainingRequestSerializer, responses={202: TrainingRunSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Fine-tune a model on a finished export; a training worker picks it up. The new
        version is evaluated on the collection's frozen split and replaces the collection's
        model only if it beats its parent there."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(TrainingForm, request.data, collection=collection)
        if not form.is_valid():
            return error("Invalid training run.", fields=form.errors.get_json_data())
        try:
            run = actions.do_start_training(
                form.cleaned_data["base"],
                form.cleaned_data["dataset"],
                form.params(),
                user=request.user,
            )
        except actions.TrainingError as exc:
            return error(str(exc))
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetail(generics.RetrieveAPIView):
    """A run's status, its loss and validation CER by step, and its log."""

    serializer_class = TrainingRunSerializer

    def get_object(self):
        return _run_for(self.request, self.kwargs["pk"])


class TrainingRunCancel(APIView):
    @extend_schema(request=None, responses={202: TrainingRunSerializer, 409: ErrorSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Cancel a queued run at once, or stop a running one after its current step (or
        before its model is stored); a 409 once it finished."""
        run = _run_for(request, pk)
        if not actions.do_request_cancel(run):
            return error(
                f"The run is {run.get_status_display().lower()}; nothing to cancel.",
                status.HTTP_409_CONFLICT,
            )
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def _versions_for(request: Request):
    """Shared models, and the versions trained in collections the user can see (their
    admins alone may read them: the views check)."""
    own = Q(training_run__dataset__collection__in=visible_collections(request.user))
    versions = ModelVersion.objects.filter(Q(training_run__isnull=True) | own)
    return versions.select_related("training_run__dataset").prefetch_related(
        "promotion_events__actor"
    )


class CollectionModelVersions(generics.ListAPIView):
    """The models the collection may use: shared ones and its own fine-tuned versions, with
    their evaluation numbers and promotion decisions."""

    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        collection = admin_collection_for(self.request.user, self.kwargs["pk"])
        return (
            ModelVersion.objects.visible_to(collection)
            .select_related("training_run")
            .prefetch_related("promotion_events__actor")
        )


class ModelVersionDetail(generics.RetrieveAPIView):
    serializer_class = ModelVersionSerializer

    def get_object(self):
        version = get_object_or_404(_versions_for(self.request), pk=self.kwargs["pk"])
        run = getattr(version, "training_run", None)
        if run is not None:
            admin_collection_for(self.request.user, run.dataset.collection_id)
        return version


class ModelVersionPromote(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=PromoteSerializer, responses={201: PromotionEventSerializer, 409: ErrorSerializer}
    )
    def post(self, request: Request, pk: int) -> Response:
        """Make a version the gate kept inactive its collection's model anyway, saying why
        (collection admins only); who, when and why go into the promotion log."""
        version = get_object_or_404(_versions_for(request), pk=pk)
        run = getattr(version, "training_run", None)
        if run is None:
            return error(
                "A shared model has no gate to override; choose it as a collection's model "
                "with PATCH /api/collections/{id}/.",
                status.HTTP_409_CONFLICT,
            )
        admin_collection_for(request.user, run.dataset.collection_id)
        form = bind_form(OverrideForm, request.data)
        if not form.is_valid():
            return error("Say why the gate is overridden.", fields=form.errors.get_json_data())
        try:
            event = actions.do_override_promotion(run, actor=request.user, **form.cleaned_data)
        except actions.TrainingError as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        return Response(PromotionEventSerializer(event).data, status=status.HTTP_201_CREATED)


NO_SPLIT = "The collection has no evaluation split yet: the first export draws it."


class CollectionEvaluationSplit(APIView):
    @extend_schema(responses={200: EvaluationSplitSerializer, 404: ErrorSerializer})
    def get(self, request: Request, pk: int) -> Response:
        """The collection's frozen evaluation split, which measures every run: provisional or
        sealed, its lines and documents against the gate's minimum, every change to it, and
        whether it may be drawn again (and why not)."""
        collection = admin_collection_for(request.user, pk)
        split = EvaluationSplit.objects.filter(collection=collection).first()
        if split is None:
            return error(NO_SPLIT, status.HTTP_404_NOT_FOUND)
        return Response(_split_body(split))


class EvaluationSplitRedraw(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=RedrawSplitSerializer,
        responses={200: EvaluationSplitSerializer, 409: ErrorSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Draw the evaluation split again from the reviewed lines there are now, as the first
        export would (collection admins only), while no model has been measured on it, no
        export or run is in flight and it is not an imported test split (a 409 says which).
        Recorded with your name as a 'redrawn' change; the exports made under the old draw
        no longer train."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(RedrawSplitForm, request.data)
        if not form.is_valid():
            return error("Invalid draw.", fields=form.errors.get_json_data())
        try:
            change = splits.do_redraw_evaluation_split(
                collection,
                unit=form.cleaned_data["unit"],
                seed=form.cleaned_data["seed"],
                fraction=form.cleaned_data["test_fraction"],
                user=request.user,
            )
        except splits.SplitError as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        return Response(_split_body(change.split))

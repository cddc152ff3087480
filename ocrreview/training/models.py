from __future__ import annotations

from django.conf import settings
from django.db import models

from ocrreview.corpus.models import ModelVersion
from ocrreview.db_clock import database_now_plus

# The longest an export being built goes without a progress report: hashing and uploading a
# zip of many gigabytes.
EXPORT_SILENCE_SECONDS = 15 * 60


class DatasetExportQuerySet(models.QuerySet):
    def abandoned(self) -> DatasetExportQuerySet:
        """Exports being built whose worker has been silent for longer than any step takes
        (it died), and exports queued that long ago that no worker took (their message was
        lost: the broker was down)."""
        stale = database_now_plus(-EXPORT_SILENCE_SECONDS)
        waiting = [DatasetExport.Status.QUEUED, DatasetExport.Status.RUNNING]
        return self.filter(status__in=waiting).filter(
            models.Q(heartbeat_at__lt=stale) | models.Q(heartbeat_at__isnull=True)
        )


class DatasetExport(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(
        "corpus.Collection", on_delete=models.CASCADE, related_name="exports"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    filters = models.JSONField(default=dict, blank=True)
    formats = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    counts = models.JSONField(default=dict, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    # The worker building the export holds it under a claim token, beats with each progress
    # report (while queued: when it was queued), and writes to the export only while it holds
    # the claim: a worker given up for dead cannot replace the zip its successor stored, nor
    # fail a finished export.
    claim = models.UUIDField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Workers that died building it (each build starts anew): the sweep fails it at
    # MAX_LOST_WORKERS.
    lost_workers = models.PositiveSmallIntegerField(default=0)
    # The frozen split its test and held-out lines were chosen by: a model trained on it is
    # measured on that split's lines only. None for exports made before exports recorded it.
    # RESTRICT: a split is deleted only with its collection (and its exports with it).
    evaluation_split = models.ForeignKey(
        "EvaluationSplit",
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="exports",
    )
    # The documents and pages whose lines it trains on (splits.units_trained_on): a model
    # trained on them must not be validated or calibrated on them by a later export. Empty
    # for exports made before exports recorded them.
    train_documents = models.JSONField(
        default=list, db_default=models.Value([], models.JSONField()), blank=True
    )
    train_pages = models.JSONField(
        default=list, db_default=models.Value([], models.JSONField()), blank=True
    )

    objects = DatasetExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.collection}"


class TrainingRunQuerySet(models.QuerySet):
    def abandoned(self) -> TrainingRunQuerySet:
        """Running runs whose worker stopped beating for a whole lease: it died. A run that
        started before runs had heartbeats has none, and its worker is gone too. By the
        database's clock, which wrote the heartbeats: the sweeping worker's may be off."""
        stale = database_now_plus(-settings.OCRREVIEW_TRAINING_LEASE_SECONDS)
        return self.filter(status=TrainingRun.Status.RUNNING).filter(
            models.Q(heartbeat_at__lt=stale) | models.Q(heartbeat_at__isnull=True)
        )


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    base_model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    dataset = models.ForeignKey(DatasetExport, on_delete=models.PROTECT, related_name="runs")
    result_model = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="training_run"
    )
    # epochs, max_steps, learning_rate, batch_size, grad_accum, train_part, patience, ...
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # [{"step": 10, "loss": 1.2, "val_cer": 0.4}, ...]: every logged step and checkpoint.
    history = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    promoted = models.BooleanField(default=False)
    promotion_overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker running the run holds it under a claim token and beats every quarter of
    # OCRREVIEW_TRAINING_LEASE_SECONDS; it writes to the run only while it holds the claim,
    # so a worker that a sweep gave up for dead cannot overwrite the one that took over.
    claim = models.UUIDField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Tries that ended at the same step, none gained in between: its worker died (killed for
    # memory at the same step each time), storing the trained model failed, or a passing fault
    # (a full disk, the GPU's memory taken) ended it. It is tried again until MAX_STALLS, then
    # failed.
    stalls = models.PositiveSmallIntegerField(default=0)
    stalled_at_step = models.PositiveIntegerField(null=True, blank=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"training run {self.pk} from {self.base_model}"


class EvaluationSplit(models.Model):
    """A collection's frozen evaluation split: made once, then used by every training run, so
    the CER of a parent and of each later child is measured on the same lines."""

    class Unit(models.TextChoices):
        DOCUMENT = "document", "Document"
        PAGE = "page", "Page"

    collection = models.OneToOneField(
        "corpus.Collection", on_delete=models.CASCADE, related_name="evaluation_split"
    )
    # Whole documents (or pages) go to one side, so a writer's hand or a page's layout never
    # appears in both training and evaluation material.
    unit = models.CharField(max_length=16, choices=Unit.choices, default=Unit.DOCUMENT)
    seed = models.IntegerField(default=0)
    frozen_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lines = models.ManyToManyField("corpus.Line", through="EvaluationLine", related_name="+")
    # Null while the split is provisional: smaller than the promotion gate's minimum, it grows
    # at each export by ground truth that never trained nor validated (splits.grow). Set once
    # it reaches the minimum (or at once for an imported split, or one frozen before splits
    # grew): from then on its lines are exactly these.
    sealed_at = models.DateTimeField(null=True, blank=True)
    # Drawn by page where documents were asked for, as they were too few or too unequal for
    # the share asked: an export by document then holds out its pages, not its whole
    # documents, which would hold out most of the material.
    unit_fallback = models.BooleanField(default=False)
    # The documents and pages some export under this split put lines of into train or
    # validation: growing the split never takes them, so no model trained on an export made
    # under it is measured on lines it learnt from. Kept only while the split is provisional.
    trained_documents = models.JSONField(default=list, blank=True)
    trained_pages = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"evaluation split of {self.collection}"


class EvaluationSplitChange(models.Model):
    """Append-only record of what happened to a collection's evaluation split: frozen, grown
    by an export, sealed; shown on the training page."""

    class Kind(models.TextChoices):
        FROZEN = "frozen", "Frozen"
        GROWN = "grown", "Grown"
        REDRAWN = "redrawn", "Drawn again"

    split = models.ForeignKey(EvaluationSplit, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    export = models.ForeignKey(
        DatasetExport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The export's number, kept once the export is deleted: the record still says which export
    # made the change.
    export_number = models.PositiveBigIntegerField(null=True, blank=True)
    # Frozen as an imported dataset's own test split, which is never drawn again. Not told by
    # a missing export: a deleted export leaves none either.
    imported = models.BooleanField(default=False, db_default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lines_added = models.PositiveIntegerField()
    units_added = models.PositiveIntegerField()
    # The lines that count (reviewed, not blank) afterwards, and the gate's minimum then.
    lines = models.PositiveIntegerField()
    minimum = models.PositiveIntegerField()
    sealed = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.split}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Evaluation split changes are a record; they are never updated.")
        if self.export_number is None:
            self.export_number = self.export_id
        super().save(*args, **kwargs)

    @property
    def export_label(self) -> str:
        """The export that made the change: "12", or "12 (deleted)"; "" for none."""
        if self.export_number is None:
            return ""
        return f"{self.export_number}{'' if self.export_id else ' (deleted)'}"


class EvaluationLine(models.Model):
    split = models.ForeignKey(EvaluationSplit, on_delete=models.CASCADE, related_name="members")
    line = models.ForeignKey("corpus.Line", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["split", "line"], name="one_evaluation_entry_per_line")
        ]

    def __str__(self) -> str:
        return f"line {self.line_id} in {self.split}"


class HeldOutDocument(models.Model):
    """A document that never trains nor validates a model of its collection: the test split of
    an imported dataset that did not become the collection's frozen evaluation split. A
    published test split stays unseen, so results on it stay comparable with others'."""

    document = models.OneToOneField("corpus.Document", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"document {self.document_id} held out"


class PromotionEvent(models.Model):
    """Append-only audit of every promotion decision: the gate's verdict and any override."""

    class Kind(models.TextChoices):
        PROMOTED = "promoted", "Promoted (beat its parent)"
        REJECTED = "rejected", "Kept inactive (did not beat its parent)"
        OVERRIDDEN = "overridden", "Promoted by an admin despite the gate"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="promotion_events"
    )
    parent = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    collection = models.ForeignKey(
        "corpus.Collection", on_delete=models.PROTECT, related_name="promotion_events"
    )
    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # None when the gate decided on its own at the end of a training run, and once the
    # account is deleted: actor_label keeps who it was (audit.member_label, as events keep
    # theirs), so an admin who overrode the gate can be deleted and still be named.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.JSONField(null=True, blank=True)
    # {"cer": ..., "wer": ..., "parent_cer": ..., "parent_wer": ..., "lines": ...}
    numbers = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.model_version}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Promotion events are an audit trail; they are never updated.")
        if self.actor is not None and self.actor_label is None:
            from ocrreview.corpus.audit import member_label

            self.actor_label = member_label(self.actor)
        super().save(*args, **kwargs)

    @property
    def actor_name(self) -> str | None:
        """Who decided, as they were named then; None for the gate."""
        return None if self.actor_label is None else self.actor_label["username"]

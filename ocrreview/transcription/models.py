from django.db import models
from django.utils import timezone


class Hypothesis(models.Model):
    """One entry of a line's n-best list, as one model version read it."""

    line = models.ForeignKey("corpus.Line", on_delete=models.CASCADE, related_name="hypotheses")
    model_version = models.ForeignKey(
        "corpus.ModelVersion", on_delete=models.PROTECT, related_name="hypotheses"
    )
    rank = models.PositiveSmallIntegerField(help_text="0 is the model's best reading.")
    text = models.TextField(blank=True)
    logprob = models.FloatField(help_text="Sequence log-probability.")
    confidence = models.FloatField(help_text="Raw line confidence (see recognition/README.md).")
    calibrated_confidence = models.FloatField(null=True, blank=True)
    share = models.FloatField(help_text="Share of probability mass among the n-best.")
    # [{"start": int, "end": int, "prob": float, "token": str}, ...]: character spans of the text.
    tokens = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line", "model_version", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "model_version", "rank"], name="one_hypothesis_per_rank"
            ),
            models.CheckConstraint(
                condition=models.Q(share__gte=0.0, share__lte=1.0), name="share_in_unit_interval"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.text[:40]}"


class RecognitionRequest(models.Model):
    """One line to be read by one model version: the unit workers claim, retry and finish.

    At most one per (line, model version), so queueing twice, or re-running a document,
    never reads a line twice with the same model. A worker claims requests with a lease
    and renews it after every batch; a worker that dies leaves its claims to expire, and
    the next worker takes them over.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    line = models.ForeignKey(
        "corpus.Line", on_delete=models.CASCADE, related_name="recognition_requests"
    )
    # Repeats line.document so a document's progress is one index scan.
    document = models.ForeignKey("corpus.Document", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        "corpus.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    # The line's share of its batch's model time; the pipeline benchmark sums it.
    model_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When this reading was last asked for: made, or queued again after it failed. Of two
    # models' readings of a line, the one asked for last is the one the line shows.
    queued_at = models.DateTimeField(default=timezone.now)
    # A re-read of lines a model read already (an admin's, with another model): claimed after
    # every line waiting for its first reading, so that re-reading a collection of a hundred
    # thousand lines does not hold up for hours the pages just uploaded to another.
    reread = models.BooleanField(default=False, db_default=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "model_version"], name="one_recognition_per_line_and_model"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="running")
                | models.Q(claim__isnull=False, lease_until__isnull=False),
                name="running_recognition_has_claim_and_lease",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "id"], name="recognition_queue"),
            models.Index(fields=["status", "reread", "id"], name="recognition_queue_by_kind"),
            models.Index(fields=["document", "status"], name="recognition_by_document"),
        ]

    def __str__(self) -> str:
        return f"recognition of line {self.line_id} by {self.model_version_id} ({self.status})"


class ModelFallback(models.Model):
    """A default model version the workers could not load, so that the starter model reads
    in its place: kept in the database, where admins' pages read it, because the only other
    trace is the log of the worker that fell back. Written by the worker whose load failed
    and deleted by one that loads the version again."""

    model_version = models.OneToOneField(
        "corpus.ModelVersion",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="fallback",
    )
    stand_in = models.ForeignKey("corpus.ModelVersion", on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    # The first failed load of this spell, and the latest.
    since = models.DateTimeField()
    failed_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.model_version_id} read by {self.stand_in_id} since {self.since}"

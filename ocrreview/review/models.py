from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class AppendOnlyError(Exception):
    pass


class CorrectionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Corrections are an append-only audit trail; they are never updated.")

    def delete(self):
        raise AppendOnlyError("Corrections are an append-only audit trail; they are never deleted.")


class Correction(models.Model):
    """Every human action on a line, in the order it happened. Never updated or deleted."""

    class Action(models.TextChoices):
        ACCEPT = "accept", "Accepted unchanged"
        EDIT = "edit", "Edited"
        PICK = "pick", "Picked an alternative"
        SKIP = "skip", "Skipped"
        REVERT = "revert", "Reverted"
        IMPORT = "import", "Imported as ground truth"
        SEGMENT = "segment", "Changed the segmentation"
        UNCLEAR = "unclear", "Marked unclear"
        CLEAR = "clear", "Removed the unclear mark"
        # The mark a PAGE or ALTO file brought with the line (corpus's store_lines), with its
        # note: the uploader's, as the text an import brings is.
        IMPORT_UNCLEAR = "import_unclear", "Imported marked unclear"

    # PROTECT: a line with history cannot disappear with its history.
    line = models.ForeignKey("corpus.Line", on_delete=models.PROTECT, related_name="corrections")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="corrections"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    text_before = models.TextField(blank=True)
    text_after = models.TextField(blank=True)
    hypothesis = models.ForeignKey(
        "transcription.Hypothesis",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The hypothesis the reviewer started from.",
    )
    line_version = models.PositiveIntegerField(help_text="The line's version after this action.")
    # For a revert, whether the text it put back was a person's (reviewed) or a model's (back
    # in the queue): see actions._state_of_text. Blank: not a save, or recorded before this.
    line_status = models.CharField(
        max_length=16, blank=True, db_default="", help_text="The line's status after this save."
    )
    time_spent_ms = models.PositiveIntegerField(default=0)
    # What a reviewer who marked the line unclear said could not be read.
    note = models.CharField(max_length=200, blank=True, default="", db_default="")

    objects = CorrectionQuerySet.as_manager()

    # Not stored: true on the correction a save answers with when the save repeated this one,
    # committed before (a retried request), and wrote nothing new.
    replayed = False

    class Meta:
        ordering = ["line", "created_at", "id"]
        indexes = [models.Index(fields=["user", "created_at"], name="corrections_by_reviewer")]

    def __str__(self) -> str:
        return f"{self.action} on line {self.line_id} by {self.user_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError(
                "Corrections are an append-only audit trail; they are never updated."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Corrections are an append-only audit trail; they are never deleted.")


# The reviewer statistics of the progress page (review.progress.reviewer_stats) count distinct
# lines over the whole trail: 2.1-2.6 s at 2.2 M corrections, on every load of a page open all
# day. These two tables hold the counts instead, kept by a trigger on review_correction
# (migration 0008) in the transaction of each insert, whoever writes it (a save, find and
# replace, an undo, a bulk_create). Settling records are never deleted (migration 0007's
# trigger refuses it), and a line with one is never deleted (PROTECT), so the counts only grow.
# The foreign keys are DO_NOTHING for the same reason: the trail keeps those rows, and a
# cascade would only add a query to every line's removal.


class SettledLine(models.Model):
    """A line someone settled in the trail (accept, edit, pick, revert), however often: what
    makes "distinct lines" an increment. `counted` holds the bits of the statistics the line
    already counts in for them; `newly_counted` the bits the last insert added, which the
    trigger reads back to add to the totals."""

    # Without constraints of their own: the trigger copies both from the correction it counts,
    # whose own keys are checked, and a check more at each save's commit would be wasted.
    # Without indexes of their own: the unique constraint's index leads with the line, and
    # nothing looks rows up by person; each index more is written by every first save.
    line = models.ForeignKey(
        "corpus.Line",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    counted = models.PositiveSmallIntegerField()
    newly_counted = models.PositiveSmallIntegerField()

    class Meta:
        abstract = True


class ReviewerLine(SettledLine):
    """A line someone settled, over all time: read back into ReviewerTotals."""

    # The bits of `counted`, as the trigger sets them.
    SETTLED, CHANGED, TIMED = 1, 2, 4

    class Meta:
        constraints = [
            # The trail's user may be null; such records count as one reviewer, as they group.
            models.UniqueConstraint(
                fields=["line", "user"], name="one_reviewer_line", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"line {self.line_id} settled by {self.user_id}"


class ReviewerCounts(models.Model):
    """One reviewer's work in one collection, as reviewer_stats reports it."""

    collection = models.ForeignKey(
        "corpus.Collection", on_delete=models.DO_NOTHING, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
    )
    # Distinct lines settled; of those, changed by a save of theirs; and timed by the editor.
    lines = models.PositiveIntegerField()
    changed = models.PositiveIntegerField()
    timed_lines = models.PositiveIntegerField()
    # The editor's time over all their timed settling saves, each counted.
    time_spent_ms = models.BigIntegerField()

    class Meta:
        abstract = True


class ReviewerTotals(ReviewerCounts):
    """One reviewer's running totals in one collection, as reviewer_stats reports them."""

    # No index of the keys' own: the unique constraint's leads with the collection, which is
    # how rows are read.

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "user"], name="one_reviewer_totals", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in collection {self.collection_id}: {self.lines} lines"


# The same work per day (migration 0009), for coordinators planning shifts and reporting: a
# day is a calendar day in the zone the trigger counts in (settings.TIME_ZONE at the last
# migrate, review.reviewer_days), and each action counts on the day it was made. Within a day
# a line counts as ReviewerTotals counts it over all time: once for a person however often
# they saved it that day, as changed if a save of theirs that day changed it, as timed if the
# editor timed one. A line settled on two days counts on both (the work of each day), so the
# days of a range add up to more than the running totals where people came back to a line.


class ReviewerLineDay(SettledLine):
    """A line someone settled on a day: ReviewerLine per day, with the same bits."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["line", "user", "day"], name="one_reviewer_line_day", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"line {self.line_id} settled by {self.user_id} on {self.day}"


class ReviewerDay(ReviewerCounts):
    """One reviewer's work in one collection on one day, counted as ReviewerTotals counts."""

    # The unique constraint's index leads with the collection and the day: a range of days is
    # what is read.
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "day", "user"],
                name="one_reviewer_day",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in collection {self.collection_id} on {self.day}: {self.lines}"


class Draft(models.Model):
    """What a reviewer has typed into a line but not saved yet, so a reload or a closed tab
    loses nothing. base_version is the line version the text was typed against: restoring
    the draft saves against it, so a line changed meanwhile shows a conflict instead of
    being overwritten."""

    line = models.ForeignKey("corpus.Line", on_delete=models.CASCADE, related_name="drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField(blank=True)
    base_version = models.PositiveIntegerField()
    hypothesis = models.ForeignKey(
        "transcription.Hypothesis",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["line", "user"], name="one_draft_per_reviewer")
        ]

    def __str__(self) -> str:
        return f"draft of line {self.line_id} by {self.user_id}"


class ReviewerPreference(models.Model):
    class QueueOrder(models.TextChoices):
        CONFIDENCE = "confidence", "Lowest confidence first"
        READING = "reading", "Reading order"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_preference"
    )
    queue_order = models.CharField(
        max_length=16, choices=QueueOrder.choices, default=QueueOrder.CONFIDENCE
    )

    def __str__(self) -> str:
        return f"{self.user}: {self.queue_order}"


class SavesUndo(models.Model):
    """An undo of a person's saves too large to run within a request (actions.
    do_revert_user_saves): a worker runs it a batch of lines at a time, and records here, in
    each batch's transaction, what the batch did, so the coordinator's page shows the lines
    done as they are committed, and a worker that takes it over goes on after the last."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(
        "corpus.Collection", on_delete=models.CASCADE, related_name="saves_undos"
    )
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    since = models.DateTimeField()
    # When the coordinator asked for it: the person's saves after it are kept. None: asked
    # for before this was recorded, undoing up to the time it runs.
    until = models.DateTimeField(null=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # When its task's message was last sent, by the database's clock: the sweep sends it
    # again once this is old and no worker holds the undo (saves_undo.requeue_lost).
    queued_at = models.DateTimeField(db_default=Now())
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    lines_total = models.PositiveIntegerField()
    lines_done = models.PositiveIntegerField(default=0)
    last_line_id = models.BigIntegerField(default=0)
    reverted = models.JSONField(default=list)
    requeued = models.JSONField(default=list)
    # [correction id, reason] of each line left alone, as LeftAlone has them.
    skipped = models.JSONField(default=list)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"undo of {self.person_id}'s saves since {self.since:%Y-%m-%d %H:%M}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

from django.conf import settings
from django.db import models


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
    time_spent_ms = models.PositiveIntegerField(default=0)

    objects = CorrectionQuerySet.as_manager()

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

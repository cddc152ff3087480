from django.db import models


class Hypothesis(models.Model):
    """One entry of a line's n-best list, as one model version read it."""

    line = models.ForeignKey("corpus.Line", on_delete=models.CASCADE, related_name="hypotheses")
    model_version = models.ForeignKey(
        "training.ModelVersion", on_delete=models.PROTECT, related_name="hypotheses"
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

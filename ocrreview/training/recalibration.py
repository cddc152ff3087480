"""Calibrating a model version on what reviewers did with its readings.

A version made by training is calibrated on its validation lines; the site's default model
and a version imported from elsewhere are not, and their raw confidences (a product of token
probabilities) are over-confident: the threshold then accepts lines unseen that a reviewer
would have changed, and the threshold preview's "wrong lines expected" is too low. Once
reviewers have answered a few hundred of its readings, those answers are the calibration
data the README describes: a first answer that kept the model's best reading unchanged
says it was right."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction
from ocrreview.training.models import ModelVersion
from ocrreview.transcription.models import Hypothesis
from recognition import calibration
from recognition.text import nfc

# The newest answers, enough to fit two numbers well, without reading a large collection's
# whole history.
MAX_PAIRS = 20_000
ANSWERS = [Correction.Action.ACCEPT, Correction.Action.EDIT, Correction.Action.PICK]


class CalibrationError(Exception):
    pass


def review_pairs(version: ModelVersion) -> list[tuple[float, bool]]:
    """(raw confidence of the best reading, kept unchanged) for each line a reviewer answered
    after this version read it: the first answer only, since later ones are second thoughts
    about a reviewer's own text, not about the reading."""
    first_answer = (
        Correction.objects.filter(
            line=OuterRef("line"), created_at__gt=OuterRef("created_at"), action__in=ANSWERS
        )
        .order_by("id")
        .values("text_after")[:1]
    )
    rows = (
        Hypothesis.objects.filter(model_version=version, rank=0)
        .annotate(answer=Subquery(first_answer))
        .exclude(answer=None)
        .order_by("-id")
        .values_list("confidence", "text", "answer")[:MAX_PAIRS]
    )
    return [(raw, same_text(text, answer)) for raw, text, answer in rows]


def same_text(reading: str, answer: str) -> bool:
    return nfc(reading.strip()) == nfc(answer.strip())


def do_calibrate_from_reviews(version: ModelVersion) -> dict[str, Any]:
    """Fit the version's calibration on its reviewed readings and store it, with every
    stored confidence of its readings recalibrated: the hypotheses', and the lines' that
    show its reading and wait for review or were accepted, so that the preview and the
    least-sure-first queue use the new numbers at once. Lines keep their status: applying
    the threshold again is the admin's decision, made after the preview."""
    try:
        fit = calibration.fit_calibration(review_pairs(version))
    except ValueError as exc:
        raise CalibrationError(f"{version}: {exc}") from exc
    fit = {**fit, "fitted_on": "reviews", "fitted_at": timezone.now().isoformat()}
    with transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(calibration=fit)
        _recalibrate_readings(version, fit)
    version.calibration = fit
    return fit


def _recalibrate_readings(version: ModelVersion, fit: dict[str, Any]) -> None:
    """In the database, as recognition.calibration maps one value (its logit clamps, a
    sigmoid kept within exp's range): a version's readings run to millions of rows."""
    calibrated = (
        "1 / (1 + exp(-least(700, greatest(-700, %(a)s * ln(p / (1 - p)) + %(b)s))))"
        " FROM (SELECT greatest(%(floor)s, least(%(ceiling)s, {raw}::float8)) AS p) clamped"
    )
    params = {
        "a": float(fit["a"]),
        "b": float(fit["b"]),
        "floor": calibration.LOGIT_FLOOR,
        "ceiling": calibration.LOGIT_CEILING,
        "version": version.pk,
    }
    hypotheses = Hypothesis._meta.db_table
    lines = Line._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {hypotheses} h SET calibrated_confidence = ("
            f"SELECT {calibrated.format(raw='h.confidence')}) WHERE h.model_version_id = %(version)s",
            params,
        )
        # A reading cut off by the token limit keeps its 0 (see transcription.services._route).
        cursor.execute(
            f"UPDATE {lines} l SET confidence = h.calibrated_confidence FROM {hypotheses} h"
            " WHERE h.line_id = l.id AND h.model_version_id = l.model_version_id AND h.rank = 0"
            " AND l.model_version_id = %(version)s AND NOT l.human_text AND l.confidence > 0"
            " AND l.status IN (%(needs_review)s, %(in_review)s, %(auto_accepted)s)",
            {
                **params,
                "needs_review": Line.Status.NEEDS_REVIEW,
                "in_review": Line.Status.IN_REVIEW,
                "auto_accepted": Line.Status.AUTO_ACCEPTED,
            },
        )

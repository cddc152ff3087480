"""Calibrating a model version on what reviewers did with its readings.

A version made by training is calibrated on its validation lines; the site's default model
and a version imported from elsewhere are not, and their raw confidences (a product of token
probabilities) are over-confident: the threshold then accepts lines unseen that a reviewer
would have changed, and the threshold preview's "wrong lines expected" is too low. Once
reviewers have answered a few hundred of its readings, those answers are the calibration
data the README describes: a first answer that kept the model's best reading unchanged
says it was right."""

from __future__ import annotations

import math
from itertools import groupby
from typing import Any

from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from ocrreview.corpus.models import Line, ModelVersion
from ocrreview.review.models import Correction
from ocrreview.transcription.models import Hypothesis
from ocrreview.transcription.services import unit_interval
from recognition import calibration
from recognition.inference import alternative_confidence
from recognition.text import nfc

# The newest answers, enough to fit two numbers well, without reading a large collection's
# whole history.
MAX_PAIRS = 20_000
# The fit rewrites every confidence of the version, for every collection reading with it:
# not on the few dozen answers that calibrate a trained version's validation lines.
MIN_PAIRS = 100
# Lines recalibrated per transaction: row locks held briefly, against reviewers' saves.
BATCH_LINES = 2_000
WAITING = [Line.Status.NEEDS_REVIEW, Line.Status.IN_REVIEW, Line.Status.AUTO_ACCEPTED]
ANSWERS = [Correction.Action.ACCEPT, Correction.Action.EDIT, Correction.Action.PICK]


class CalibrationError(Exception):
    pass


def review_pairs(version: ModelVersion) -> list[tuple[float, bool]]:
    """(raw confidence of the best reading, kept unchanged) for each line a reviewer answered
    after this version read it: the first answer only, since later ones are second thoughts
    about a reviewer's own text, and only one given to the reading's text itself (a box split
    or merged since made the answer one about another text). A score that is not a number
    (fp16 overflow) says nothing, and is left out."""
    first_answer = Correction.objects.filter(
        line=OuterRef("line"), created_at__gt=OuterRef("created_at"), action__in=ANSWERS
    ).order_by("id")
    rows = (
        Hypothesis.objects.filter(model_version=version, rank=0)
        .annotate(
            answered=Subquery(first_answer.values("text_before")[:1]),
            answer=Subquery(first_answer.values("text_after")[:1]),
        )
        .filter(answered=F("text"))
        .order_by("-id")
        .values_list("confidence", "text", "answer")[:MAX_PAIRS]
    )
    return [(raw, same_text(text, answer)) for raw, text, answer in rows if math.isfinite(raw)]


def same_text(reading: str, answer: str) -> bool:
    return nfc(reading.strip()) == nfc(answer.strip())


def do_calibrate_from_reviews(version: ModelVersion) -> dict[str, Any]:
    """Fit the version's calibration on its reviewed readings and store it, then recalibrate
    every stored confidence of its readings as the engine would have made them: the
    hypotheses', and the lines' that show its reading and wait for review or were accepted,
    so that the preview and the least-sure-first queue use the new numbers at once. Lines
    keep their status: applying the threshold again is the admin's decision, made after the
    preview. The fit is stored first, so that workers read with it from their next claim; a
    chunk a worker claimed before may store the old scale, which running this again mends."""
    pairs = review_pairs(version)
    if len(pairs) < MIN_PAIRS:
        raise CalibrationError(
            f"{version}: need at least {MIN_PAIRS} reviewed lines to calibrate, got {len(pairs)}"
        )
    fit = {
        **calibration.fit_calibration(pairs),
        "fitted_on": ModelVersion.FITTED_ON_REVIEWS,
        "fitted_at": timezone.now().isoformat(),
    }
    ModelVersion.objects.filter(pk=version.pk).update(calibration=fit)
    version.calibration = fit
    line_ids = (
        Hypothesis.objects.filter(model_version=version, rank=0)
        .order_by("line_id")
        .values_list("line_id", flat=True)
    )
    batch: list[int] = []
    for line_id in line_ids.iterator(chunk_size=BATCH_LINES):
        batch.append(line_id)
        if len(batch) == BATCH_LINES:
            _recalibrate_lines(version, fit, batch)
            batch = []
    _recalibrate_lines(version, fit, batch)
    return fit


@transaction.atomic
def _recalibrate_lines(version: ModelVersion, fit: dict[str, Any], line_ids: list[int]) -> None:
    hypotheses = list(
        Hypothesis.objects.filter(model_version=version, line_id__in=line_ids)
        .order_by("line_id", "rank")
        .only("id", "line_id", "rank", "confidence")
    )
    best_of: dict[int, float] = {}
    for line_id, readings in groupby(hypotheses, key=lambda h: h.line_id):
        best, *alternatives = readings
        best.calibrated_confidence = unit_interval(
            calibration.apply_calibration(fit, best.confidence)
        )
        for alternative in alternatives:
            alternative.calibrated_confidence = unit_interval(
                alternative_confidence(
                    alternative.confidence, best.confidence, best.calibrated_confidence
                )
            )
        best_of[line_id] = best.calibrated_confidence
    Hypothesis.objects.bulk_update(hypotheses, ["calibrated_confidence"])
    # A reading cut off by the token limit keeps its 0 (see transcription.services._route);
    # a person's text keeps the confidence it had.
    lines = list(
        Line.objects.select_for_update()
        .filter(
            pk__in=best_of,
            model_version=version,
            human_text=False,
            confidence__gt=0,
            status__in=WAITING,
        )
        .only("id", "confidence")
    )
    for line in lines:
        line.confidence = best_of[line.pk]
    Line.objects.bulk_update(lines, ["confidence"])

"""Which lines train, which validate, and which measure.

The evaluation split of a collection is frozen the first time it is needed: the human-reviewed
lines of a seeded sample of whole documents (or pages). From then on those lines are the test
set of every export and every training run, and any later ground truth from the same documents
(or pages) is held out, so a model is never trained on material that sits beside its test lines;
so are the documents of an imported dataset's own test split, when it did not become the frozen
split.
Everything else is split between train and validation by whole documents (or pages), ranked
by a seeded hash: the same seed on the same material gives the same split. Auto-accepted lines
(a model's readings that no one reviewed, when an export counts them) only ever train: the
validation lines choose the checkpoint kept and fit its calibration, and a model's own readings
there would score the parent's output against itself.
"""

import hashlib
import math
import random
from collections.abc import Iterable

from django.db import transaction

from ocrreview.corpus.models import Collection, Line
from ocrreview.training.models import EvaluationLine, EvaluationSplit, HeldOutDocument

TRAIN, VALIDATION, TEST, HELD_OUT = "train", "validation", "test", "held_out"
SPLITS = (TRAIN, VALIDATION, TEST)

# A text of whitespace alone (the editor keeps whitespace) reads nothing of its line's image:
# such a line neither trains nor measures a model (nor has ALTO a line without a word).
# PostgreSQL's \s is what its locale calls a space, which may leave out the no-break and
# other spaces Python's str.isspace() counts: they are named.
BLANK_TEXT = r"^[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"


class SplitError(ValueError):
    """The material cannot be split as asked; the message says why."""


def unit_key(line: Line, unit: str) -> int:
    return line.document_id if unit == EvaluationSplit.Unit.DOCUMENT else line.page_id


def _unit_hash(seed: int, unit: str, key: int) -> float:
    digest = hashlib.sha256(f"{seed}:{unit}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def evaluation_candidates(collection: Collection) -> list[Line]:
    """Only lines a human has read can measure a model: an auto-accepted line is the model's
    own output, and scoring a model against itself proves nothing."""
    lines = Line.objects.filter(collection=collection, status=Line.Status.REVIEWED).exclude(
        text__regex=BLANK_TEXT
    )
    # Only what sampling needs: half a million reviewed lines read whole take gigabytes.
    return list(lines.order_by("id").only("id", "document_id", "page_id"))


@transaction.atomic
def freeze_evaluation_split(
    collection: Collection,
    *,
    unit: str = EvaluationSplit.Unit.DOCUMENT,
    seed: int = 0,
    fraction: float = 0.1,
    user=None,
) -> EvaluationSplit:
    """Return the collection's evaluation split, sampling and freezing it if it has none.

    Row-locks the collection, so two exports started at once freeze one split, not two.
    """
    Collection.objects.select_for_update().get(pk=collection.pk)
    existing = EvaluationSplit.objects.filter(collection=collection).first()
    if existing is not None:
        return existing
    if not 0 < fraction < 1:
        raise SplitError(f"the evaluation fraction must be between 0 and 1, not {fraction}")
    lines = evaluation_candidates(collection)
    keys = sorted({unit_key(line, unit) for line in lines})
    if len(keys) < 2:
        raise SplitError(
            f"freezing an evaluation split needs human-reviewed lines in at least two {unit}s "
            f"(there are {len(keys)}); review more lines or split by page"
        )
    chosen = set(random.Random(seed).sample(keys, max(1, math.floor(fraction * len(keys)))))
    return _create_split(
        collection, [line for line in lines if unit_key(line, unit) in chosen], unit, seed, user
    )


@transaction.atomic
def freeze_evaluation_lines(
    collection: Collection, lines: Iterable[Line], *, unit: str, user=None
) -> EvaluationSplit:
    """Freeze a given set of lines as the evaluation split (a published test split, say)."""
    Collection.objects.select_for_update().get(pk=collection.pk)
    if EvaluationSplit.objects.filter(collection=collection).exists():
        raise SplitError(
            f"{collection} already has a frozen evaluation split; import without freezing, "
            "and the dataset's test lines are held out of training"
        )
    lines = list(lines)
    if not lines:
        raise SplitError("an evaluation split needs at least one line")
    return _create_split(collection, lines, unit, 0, user)


def _create_split(
    collection: Collection, lines: list[Line], unit: str, seed: int, user
) -> EvaluationSplit:
    split = EvaluationSplit.objects.create(
        collection=collection, unit=unit, seed=seed, created_by=user
    )
    EvaluationLine.objects.bulk_create(EvaluationLine(split=split, line=line) for line in lines)
    return split


def hold_out_documents(documents: Iterable[int], reason: str) -> None:
    """Keep these documents' lines out of training and validation for good."""
    HeldOutDocument.objects.bulk_create(
        HeldOutDocument(document_id=pk, reason=reason) for pk in documents
    )


def evaluation_lines(split: EvaluationSplit) -> list[Line]:
    """The frozen lines that are still ground truth (a line a human later reopened is skipped
    until it is reviewed again)."""
    return list(
        Line.objects.filter(pk__in=split.members.values("line"), status=Line.Status.REVIEWED)
        .exclude(text__regex=BLANK_TEXT)
        .select_related("page", "document")
        .order_by("id")
    )


def assign_splits(
    lines: list[Line], split: EvaluationSplit, *, unit: str, seed: int, validation_fraction: float
) -> dict[int, str]:
    """Map each line id to train, validation, test or held_out."""
    frozen = set(split.members.values_list("line_id", flat=True))
    # Held out by whole documents when either the frozen split or this export asks for
    # documents: a split frozen by page, exported by document, would otherwise train on the
    # other pages of its test documents, in the hand it is measured on.
    boundary = (
        EvaluationSplit.Unit.DOCUMENT
        if EvaluationSplit.Unit.DOCUMENT in (unit, split.unit)
        else EvaluationSplit.Unit.PAGE
    )
    frozen_units = {
        unit_key(line, boundary)
        for line in Line.objects.filter(pk__in=frozen).only("document_id", "page_id")
    }
    held_out = set(
        HeldOutDocument.objects.filter(document__collection=split.collection_id).values_list(
            "document_id", flat=True
        )
    )
    assignment: dict[int, str] = {}
    reviewed: dict[int, list[int]] = {}
    machine_read: dict[int, list[int]] = {}
    for line in lines:
        is_reviewed = line.status == Line.Status.REVIEWED
        if line.pk in frozen:
            # A frozen line reopened and then auto-accepted is no longer a person's reading.
            assignment[line.pk] = TEST if is_reviewed else HELD_OUT
        elif unit_key(line, boundary) in frozen_units or line.document_id in held_out:
            assignment[line.pk] = HELD_OUT
        else:
            side = reviewed if is_reviewed else machine_read
            side.setdefault(unit_key(line, unit), []).append(line.pk)
    # Units ranked by a seeded hash and the lowest share taken: an exact fraction even for a
    # handful of documents, and the same seed gives the same split. Only units with reviewed
    # lines can validate, and one of them at least is left to train: else the model would
    # learn from its parent's readings alone, every line a person corrected validating.
    ranked = sorted(reviewed, key=lambda key: _unit_hash(seed, unit, key))
    wanted = min(math.ceil(validation_fraction * len(ranked)), len(ranked) - 1)
    validation = set(ranked[:wanted])
    for key, ids in reviewed.items():
        for pk in ids:
            assignment[pk] = VALIDATION if key in validation else TRAIN
    # The machine-read lines of a validation unit are held out rather than trained on: the
    # validation documents (or pages) stay unseen, as the test ones do.
    for key, ids in machine_read.items():
        for pk in ids:
            assignment[pk] = HELD_OUT if key in validation else TRAIN
    return assignment

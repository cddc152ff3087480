"""Which lines train, which validate, and which measure.

The evaluation split of a collection is frozen the first time it is needed: the human-reviewed
lines of a seeded draw of whole documents (or pages). From then on those lines are the test set
of every export and every training run, and any later ground truth from the same documents (or
pages) is held out, so a model is never trained on material that sits beside its test lines;
so are the documents of an imported dataset's own test split, when it did not become the frozen
split.

A split drawn smaller than the promotion gate's minimum (OCRREVIEW_GATE_MIN_LINES) could never
let the gate decide, so it is provisional: each export grows it, before it assigns anything
else, by the new ground truth of its own documents (pages) and by new documents (pages) no
export under it ever put into train or validation, until it holds the minimum; then it is
sealed. Growing never takes a line out of the split, nor a line any model trained on an export
made under it may have learnt, so a model measured on it before and after is measured honestly.

Shares are asked in lines but units go whole: each unit goes to the split furthest below its
target (`apportion`), which keeps every split within one unit's lines of its target. Where
documents are too few or too unequal for that to come near the shares asked, pages (a finer
unit, when there are more of them) are used instead, and the export says so.
Everything else is split between train and validation the same way: the same seed on the same
material gives the same split. Auto-accepted lines (a model's readings that no one reviewed,
when an export counts them) only ever train: the validation lines choose the checkpoint kept
and fit its calibration, and a model's own readings there would score the parent's output
against itself.
"""

import hashlib
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.template.defaultfilters import pluralize
from django.utils import timezone

from ocrreview.corpus.models import Collection, Line, ModelVersion
from ocrreview.training.models import (
    DatasetExport,
    EvaluationLine,
    EvaluationSplit,
    EvaluationSplitChange,
    HeldOutDocument,
    TrainingRun,
)

TRAIN, VALIDATION, TEST, HELD_OUT = "train", "validation", "test", "held_out"
SPLITS = (TRAIN, VALIDATION, TEST)
DOCUMENT, PAGE = EvaluationSplit.Unit.DOCUMENT, EvaluationSplit.Unit.PAGE

# How far (in points of share) splitting by document may miss a share asked before pages are
# tried instead: 80/10/10 % of 83 lines came out 51/31/18 % with documents taken by count.
SHARE_TOLERANCE = 0.05

# A text of whitespace alone (the editor keeps whitespace) reads nothing of its line's image:
# such a line neither trains nor measures a model (nor has ALTO a line without a word).
# PostgreSQL's \s is what its locale calls a space, which may leave out the no-break and
# other spaces Python's str.isspace() counts: they are named.
BLANK_TEXT = r"^[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
# A line that measures a model: read by a person (an auto-accepted line is the model's own
# output, and scoring a model against itself proves nothing), with text, and not marked
# unclear (its text is the reviewer's guess).
MEASURES = Q(status=Line.Status.REVIEWED, unclear=False) & ~Q(text__regex=BLANK_TEXT)


class SplitError(ValueError):
    """The material cannot be split as asked; the message says why."""


def unit_key(line: Any, unit: str) -> int:
    """A line's document or page (a Line, or a _Unit)."""
    return line.document_id if unit == DOCUMENT else line.page_id


def _unit_hash(seed: int, unit: str, key: Hashable) -> float:
    digest = hashlib.sha256(f"{seed}:{unit}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def apportion(
    sizes: dict[int, int], shares: dict[str, float], *, seed: int, salt: str = ""
) -> dict[int, str]:
    """Give each unit (its size in lines) whole to one of the splits named in ``shares``
    (each a share of all the lines), coming as near the shares in lines as whole units allow.

    Units go roughly largest first, each to the split furthest below its target: no split ends
    further from its target than the largest unit's size. The order is jittered by the seed
    (a unit's size weighed by a factor from 0.5 to 1.5), so a seed draws another split of the
    same material, and the test split is not always the smallest documents. Every split with a
    share gets a unit while units go round, those named first first."""
    names = [name for name, share in shares.items() if share > 0]
    if not names:
        raise SplitError("no split has a share")
    total = sum(sizes.values())
    target = {name: shares[name] * total for name in names}
    filled = dict.fromkeys(names, 0)
    held: dict[str, list[int]] = {name: [] for name in names}

    def jitter(key: int) -> float:
        return 0.5 + _unit_hash(seed, salt, key)

    order = sorted(sizes, key=lambda key: (-sizes[key] * jitter(key), key))
    for key in order:
        # Ties go to the split named first: train, where the material is.
        name = max(names, key=lambda n: (target[n] - filled[n], -names.index(n)))
        held[name].append(key)
        filled[name] += sizes[key]
    for rank, name in enumerate(names):
        if held[name]:
            continue
        donors = [
            other
            for other in names
            if len(held[other]) > 1 or (held[other] and names.index(other) > rank)
        ]
        if not donors:
            continue
        donor = max(donors, key=lambda n: (filled[n] - target[n], -names.index(n)))
        key = min(held[donor], key=lambda k: (sizes[k], jitter(k), k))
        held[donor].remove(key)
        held[name].append(key)
        filled[donor] -= sizes[key]
        filled[name] += sizes[key]
    if len(sizes) <= REFINED_UNITS:
        _refine(sizes, held, target, max(sizes.values(), default=0))
    return {key: name for name, keys in held.items() for key in keys}


# Up to so many units, the greedy split is bettered by moves and swaps (quadratic in units):
# few units are where whole ones fall furthest from the shares, and where the greedy order
# leaves, say, validation only documents too large for it.
REFINED_UNITS = 150
REFINING_ROUNDS = 30


def _refine(
    sizes: dict[int, int], held: dict[str, list[int]], target: dict[str, float], largest: int
) -> None:
    """Move one unit to another split, or swap two, while that brings the splits nearer their
    targets in all (no split left empty, none further than ``largest`` lines from its own)."""
    names = list(held)
    filled = {name: sum(sizes[key] for key in held[name]) for name in names}
    for _ in range(REFINING_ROUNDS):
        best: tuple[float, str, str, int, int | None] | None = None
        for x in names:
            for y in names:
                if x == y:
                    continue
                dx, dy = target[x] - filled[x], target[y] - filled[y]
                before = abs(dx) + abs(dy)
                for a in held[x]:
                    options: list[int | None] = list(held[y]) if x < y else []
                    if len(held[x]) > 1:
                        options.append(None)
                    for b in options:
                        moved = sizes[a] - (sizes[b] if b is not None else 0)
                        after_x, after_y = dx + moved, dy - moved
                        if max(abs(after_x), abs(after_y)) > largest:
                            continue
                        gain = before - abs(after_x) - abs(after_y)
                        if gain > 1e-9 and (best is None or gain > best[0]):
                            best = (gain, x, y, a, b)
        if best is None:
            return
        _, x, y, a, b = best
        held[x].remove(a)
        held[y].append(a)
        filled[x] -= sizes[a]
        filled[y] += sizes[a]
        if b is not None:
            held[y].remove(b)
            held[x].append(b)
            filled[y] -= sizes[b]
            filled[x] += sizes[b]


def achieved_shares(
    sizes: dict[int, int], assignment: dict[int, str], names: Iterable[str]
) -> dict[str, float]:
    total = sum(sizes.values()) or 1
    lines: Counter[str] = Counter()
    for key, name in assignment.items():
        lines[name] += sizes[key]
    return {name: lines[name] / total for name in names}


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100, 1):g} %"


class _Unit(NamedTuple):
    """A line as drawing a split needs it: ten times smaller than the model instance."""

    pk: int
    document_id: int
    page_id: int


@dataclass
class _Draw:
    unit: str
    sizes: dict[int, int]
    chosen: dict[int, str]
    share: float  # of the lines, taken by the split that matters


def _draw(
    lines: list[Any], unit: str, shares: dict[str, float], measured: str, *, seed: int, scale: float
) -> _Draw | None:
    sizes = dict(Counter(unit_key(line, unit) for line in lines))
    if len(sizes) < 2:
        return None
    chosen = apportion(sizes, shares, seed=seed, salt=unit)
    share = achieved_shares(sizes, chosen, [measured])[measured] * scale
    return _Draw(unit, sizes, chosen, share)


def _draw_by_unit(
    lines: list[Any],
    unit: str,
    shares: dict[str, float],
    measured: str,
    *,
    seed: int,
    what: str,
    scale: float = 1.0,
) -> tuple[_Draw | None, str]:
    """The draw by ``unit``; by page instead, with a sentence saying why, where the documents
    are too few or too unequal to come within SHARE_TOLERANCE of the share ``measured`` and
    pages do better. ``scale``: what the lines drawn from are of all the lines the shares are
    asked of."""
    asked = shares[measured] * scale
    drawn = _draw(lines, unit, shares, measured, seed=seed, scale=scale)
    if unit != DOCUMENT or (drawn is not None and abs(drawn.share - asked) <= SHARE_TOLERANCE):
        return drawn, ""
    by_page = _draw(lines, PAGE, shares, measured, seed=seed, scale=scale)
    if by_page is None or len(by_page.sizes) <= (len(drawn.sizes) if drawn else 1):
        return drawn, ""
    if drawn is not None and abs(by_page.share - asked) >= abs(drawn.share - asked):
        return drawn, ""
    if drawn is None:
        why = "only one document has lines for it"
    else:
        why = (
            "documents are too few or too unequal for it (by document it would take "
            f"{_percent(drawn.share)} of the lines)"
        )
    return by_page, (
        f"{what} by page, not by document: {why}; by page it takes "
        f"{_percent(by_page.share)}, {_percent(asked)} asked"
    )


def evaluation_candidates(collection: Collection) -> list[Line]:
    lines = Line.objects.filter(MEASURES, collection=collection)
    # Only what sampling needs: half a million reviewed lines read whole take gigabytes.
    return list(lines.order_by("id").only("id", "document_id", "page_id"))


def counted_lines(split: EvaluationSplit) -> int:
    """The split's lines that measure a model now (as evaluation_lines, counted)."""
    return Line.objects.filter(MEASURES, pk__in=split.members.values("line")).count()


@transaction.atomic
def freeze_evaluation_split(
    collection: Collection,
    *,
    unit: str = DOCUMENT,
    seed: int = 0,
    fraction: float = 0.1,
    user=None,
    export: DatasetExport | None = None,
) -> EvaluationSplit:
    """Return the collection's evaluation split, drawing and freezing it if it has none, and
    growing it while it is provisional.

    Row-locks the collection, so two exports started at once freeze one split, not two, and
    grow it one after the other.
    """
    Collection.objects.select_for_update().get(pk=collection.pk)
    minimum = settings.OCRREVIEW_GATE_MIN_LINES
    existing = EvaluationSplit.objects.filter(collection=collection).first()
    if existing is not None:
        if existing.sealed_at is None:
            grow(existing, seed=seed, minimum=minimum, export=export, user=user)
        return existing
    drawn, chosen, note = _draw_test_lines(collection, unit, seed, fraction)
    split = _create_split(collection, chosen, drawn.unit, seed, user)
    sealed = len(chosen) >= minimum
    split.unit_fallback = drawn.unit != unit
    if sealed:
        split.sealed_at = split.frozen_at
    split.save(update_fields=["sealed_at", "unit_fallback"])
    EvaluationSplitChange.objects.create(
        split=split,
        kind=EvaluationSplitChange.Kind.FROZEN,
        export=export,
        actor=user,
        lines_added=len(chosen),
        units_added=sum(name == TEST for name in drawn.chosen.values()),
        lines=len(chosen),
        minimum=minimum,
        sealed=sealed,
        note=note,
    )
    return split


def _draw_test_lines(
    collection: Collection, unit: str, seed: int, fraction: float
) -> tuple[_Draw, list[Line], str]:
    """A draw of `fraction` of the collection's reviewed lines for the test split, by whole
    `unit`s (or pages, where those come nearer the share), the lines it chose, and its note."""
    if not 0 < fraction < 1:
        raise SplitError(f"the evaluation fraction must be between 0 and 1, not {fraction}")
    lines = evaluation_candidates(collection)
    shares = {TRAIN: 1 - fraction, TEST: fraction}
    drawn, note = _draw_by_unit(
        lines, unit, shares, TEST, seed=seed, what="The evaluation split is drawn"
    )
    if drawn is None:
        units = len({unit_key(line, unit) for line in lines})
        raise SplitError(
            f"drawing an evaluation split needs human-reviewed lines in at least two {unit}s "
            f"(there are {units}); review more lines or split by page"
        )
    chosen = [line for line in lines if drawn.chosen[unit_key(line, drawn.unit)] == TEST]
    return drawn, chosen, note


def grow(
    split: EvaluationSplit, *, seed: int, minimum: int, export: DatasetExport | None, user
) -> EvaluationSplitChange | None:
    """Add to a provisional split the new ground truth of its own documents (pages), which was
    held out and never trained, and then whole new documents (pages) no export under it put
    into train or validation, in seeded order, until it holds ``minimum`` lines; seal it then.
    The caller holds the collection's row lock. None when nothing changed."""
    members = set(split.members.values_list("line_id", flat=True))
    counted = counted_lines(split)
    trained = set(split.trained_documents if split.unit == DOCUMENT else split.trained_pages)
    own = {
        unit_key(line, split.unit)
        for line in Line.objects.filter(pk__in=members).only("document_id", "page_id")
    }
    fresh: dict[int, list[Line]] = {}
    for line in evaluation_candidates(split.collection):
        key = unit_key(line, split.unit)
        if line.pk not in members and key not in trained:
            fresh.setdefault(key, []).append(line)
    added: list[Line] = []
    for key in own & fresh.keys():
        added += fresh.pop(key)
    units = 0
    for key in sorted(fresh, key=lambda key: (_unit_hash(seed, "grow", key), key)):
        if counted + len(added) >= minimum:
            break
        added += fresh[key]
        units += 1
    counted += len(added)
    sealed = counted >= minimum
    if not added and not sealed:
        return None
    EvaluationLine.objects.bulk_create(EvaluationLine(split=split, line=line) for line in added)
    if sealed:
        # No longer needed: a sealed split never grows.
        split.sealed_at = timezone.now()
        split.trained_documents, split.trained_pages = [], []
        split.save(update_fields=["sealed_at", "trained_documents", "trained_pages"])
    return EvaluationSplitChange.objects.create(
        split=split,
        kind=EvaluationSplitChange.Kind.GROWN,
        export=export,
        actor=user,
        lines_added=len(added),
        units_added=units,
        lines=counted,
        minimum=minimum,
        sealed=sealed,
    )


def redraw_refusal(split: EvaluationSplit) -> str:
    """Why the split may not be drawn again now ("" when it may): once a model was measured
    on it, its lines must stay where they are (drawn again, some would train a later model
    compared with that one), and an export or run in flight uses the draw it began with.
    Measured on it: by its metrics, or by the gate's verdict on it, which keeps the numbers it
    decided on and is never edited (metrics are, in the Django admin)."""
    measured = (
        ModelVersion.objects.filter(
            Q(metrics__eval_split=split.pk) | Q(promotion_events__numbers__eval_split=split.pk)
        )
        .distinct()
        .order_by("id")
    )
    names = list(measured.values_list("name", flat=True)[:3])
    if names:
        return (
            f"{', '.join(names)} {'was' if len(names) == 1 else 'were'} measured on it: its "
            "lines stay where they are, so that later models are measured as that one was"
        )
    if split.changes.filter(imported=True).exists():
        return "it is an imported dataset's test split, kept as it was published"
    busy = (DatasetExport.Status.QUEUED, DatasetExport.Status.RUNNING)
    if DatasetExport.objects.filter(collection=split.collection_id, status__in=busy).exists():
        return "an export is being built under it; wait until it ends"
    waiting = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    if TrainingRun.objects.filter(
        dataset__collection=split.collection_id, status__in=waiting
    ).exists():
        return "a training run is queued or running under it; wait until it ends"
    return ""


@transaction.atomic
def do_redraw_evaluation_split(
    collection: Collection, *, unit: str, seed: int, fraction: float, user
) -> EvaluationSplitChange:
    """Draw the collection's evaluation split again from the reviewed lines there are now, as
    the first export would, while no model has been measured on it (redraw_refusal). The
    exports made under the old draw may have trained on the new one's lines: they are no
    longer the split's, and no run starts on them. Recorded, with who drew it, as a
    'redrawn' change of the split: the training page and the API both draw it here."""
    Collection.objects.select_for_update().get(pk=collection.pk)
    split = EvaluationSplit.objects.filter(collection=collection).first()
    if split is None:
        raise SplitError(f"{collection} has no evaluation split yet: the first export draws it")
    refusal = redraw_refusal(split)
    if refusal:
        raise SplitError(f"the evaluation split cannot be drawn again: {refusal}")
    drawn, chosen, note = _draw_test_lines(collection, unit, seed, fraction)
    before = counted_lines(split)
    split.members.all().delete()
    EvaluationLine.objects.bulk_create(EvaluationLine(split=split, line=line) for line in chosen)
    outdated = DatasetExport.objects.filter(evaluation_split=split).update(evaluation_split=None)
    minimum = settings.OCRREVIEW_GATE_MIN_LINES
    sealed = len(chosen) >= minimum
    split.unit, split.seed, split.unit_fallback = drawn.unit, seed, drawn.unit != unit
    split.frozen_at, split.created_by = timezone.now(), user
    split.sealed_at = split.frozen_at if sealed else None
    split.trained_documents, split.trained_pages = [], []
    split.save()
    replaced = (
        f"It replaced a draw of {before} lines; {outdated} export"
        f"{'s' if outdated != 1 else ''} made under that one can no longer train a model"
    )
    return EvaluationSplitChange.objects.create(
        split=split,
        kind=EvaluationSplitChange.Kind.REDRAWN,
        actor=user,
        lines_added=len(chosen),
        units_added=sum(name == TEST for name in drawn.chosen.values()),
        lines=len(chosen),
        minimum=minimum,
        sealed=sealed,
        note=f"{note}. {replaced}" if note else replaced,
    )


def split_parts(split: EvaluationSplit) -> dict[str, dict[str, int]]:
    """The split's lines by what they do now, with the documents and pages they sit in:
    those that measure a model (as counted_lines counts them), and those reopened since they
    were frozen (or emptied, or marked unclear), which measure nothing until a person
    reviews them again."""
    members = Line.objects.filter(pk__in=split.members.values("line"))
    counts = {
        "lines": Count("id"),
        "documents": Count("document", distinct=True),
        "pages": Count("page", distinct=True),
    }
    return {
        "measuring": members.filter(MEASURES).aggregate(**counts),
        "reopened": members.exclude(MEASURES).aggregate(**counts),
    }


def record_trained(split: EvaluationSplit, assignment: "SplitAssignment") -> None:
    """Note the units an export under a provisional split trains or validates on, so that
    growing the split never takes them. The caller holds the collection's row lock."""
    if split.sealed_at is not None:
        return
    documents = set(split.trained_documents) | assignment.trained_documents
    pages = set(split.trained_pages) | assignment.trained_pages
    split.trained_documents, split.trained_pages = sorted(documents), sorted(pages)
    split.save(update_fields=["trained_documents", "trained_pages"])


@transaction.atomic
def freeze_evaluation_lines(
    collection: Collection, lines: Iterable[Line], *, unit: str, user=None
) -> EvaluationSplit:
    """Freeze a given set of lines as the evaluation split (a published test split, say).
    It is sealed at once whatever its size: grown with this collection's lines, it would no
    longer be the split others report their results on."""
    Collection.objects.select_for_update().get(pk=collection.pk)
    if EvaluationSplit.objects.filter(collection=collection).exists():
        raise SplitError(
            f"{collection} already has a frozen evaluation split; import without freezing, "
            "and the dataset's test lines are held out of training"
        )
    lines = list(lines)
    if not lines:
        raise SplitError("an evaluation split needs at least one line")
    split = _create_split(collection, lines, unit, 0, user)
    split.sealed_at = split.frozen_at
    split.save(update_fields=["sealed_at"])
    EvaluationSplitChange.objects.create(
        split=split,
        kind=EvaluationSplitChange.Kind.FROZEN,
        imported=True,
        actor=user,
        lines_added=len(lines),
        units_added=len({unit_key(line, unit) for line in lines}),
        lines=len(lines),
        minimum=settings.OCRREVIEW_GATE_MIN_LINES,
        sealed=True,
        note="An imported dataset's own test split, kept as it was published.",
    )
    return split


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
    """The frozen lines that are still ground truth (a line a human later reopened or marked
    unclear is skipped until it is reviewed again)."""
    return list(
        Line.objects.filter(MEASURES, pk__in=split.members.values("line"))
        # Not the document: each line would hold its canvases (export's ground_truth_lines).
        .select_related("page")
        .order_by("id")
    )


@dataclass
class SplitAssignment:
    """Each line's split, the unit train and validation were drawn by, and why, where it is not
    the one asked."""

    splits: dict[int, str] = field(default_factory=dict)
    unit: str = DOCUMENT
    note: str = ""
    trained_documents: set[int] = field(default_factory=set)
    trained_pages: set[int] = field(default_factory=set)
    # Those of them that train (not validate).
    train: "TrainedUnits" = field(default_factory=lambda: TrainedUnits())


@dataclass
class TrainedUnits:
    documents: set[int] = field(default_factory=set)
    pages: set[int] = field(default_factory=set)

    def hold(self, line: Any, unit: str) -> bool:
        return unit_key(line, unit) in (self.documents if unit == DOCUMENT else self.pages)


def units_trained_on(collection_id: int) -> TrainedUnits:
    """The documents and pages that the models trained on the collection's exports (or being
    trained on them) learned from. Any of them may be the next run's base: validated on its
    own training lines, it would pick its best checkpoint by lines it knows, and fit its
    confidences on them too sure, auto-accepting wrong lines unseen."""
    used = (
        DatasetExport.objects.filter(
            collection_id=collection_id,
            runs__status__in=(
                TrainingRun.Status.QUEUED,
                TrainingRun.Status.RUNNING,
                TrainingRun.Status.SUCCEEDED,
            ),
        )
        .distinct()
        .values_list("train_documents", "train_pages")
    )
    units = TrainedUnits()
    for documents, pages in used:
        units.documents.update(documents)
        units.pages.update(pages)
    return units


def assign_splits(
    lines: Iterable[Line],
    split: EvaluationSplit,
    *,
    unit: str,
    seed: int,
    validation_fraction: float,
    trained_before: TrainedUnits | None = None,
) -> SplitAssignment:
    """Each line to train, validation, test or held_out: validation takes
    ``validation_fraction`` of the reviewed lines, the frozen test lines counted in, from
    units no model trained before (``trained_before``, units_trained_on), which train."""
    frozen = set(split.members.values_list("line_id", flat=True))
    # Held out by whole documents when either the frozen split or this export asks for
    # documents: a split frozen by page, exported by document, would otherwise train on the
    # other pages of its test documents, in the hand it is measured on. Not where the split
    # is by page for want of documents: most of the material would be held out.
    asks_documents = unit == DOCUMENT and not split.unit_fallback
    boundary = DOCUMENT if split.unit == DOCUMENT or asks_documents else PAGE
    frozen_units = {
        unit_key(line, boundary)
        for line in Line.objects.filter(pk__in=frozen).only("document_id", "page_id")
    }
    held_out = set(
        HeldOutDocument.objects.filter(document__collection=split.collection_id).values_list(
            "document_id", flat=True
        )
    )
    result = SplitAssignment(unit=unit)
    assignment = result.splits
    reviewed: list[_Unit] = []
    machine_read: list[_Unit] = []
    for line in lines:
        is_reviewed = line.status == Line.Status.REVIEWED
        if line.pk in frozen:
            # A frozen line reopened and then auto-accepted is no longer a person's reading.
            assignment[line.pk] = TEST if is_reviewed else HELD_OUT
        elif unit_key(line, boundary) in frozen_units or line.document_id in held_out:
            assignment[line.pk] = HELD_OUT
        else:
            side = reviewed if is_reviewed else machine_read
            side.append(_Unit(line.pk, line.document_id, line.page_id))
    # Only units with reviewed lines can validate, and one of them at least is left to train
    # (apportion's first split): else the model would learn from its parent's readings
    # alone, every line a person corrected validating.
    tested = sum(name == TEST for name in assignment.values())
    trained_before = trained_before or TrainedUnits()
    known_by = unit
    unseen = [line for line in reviewed if not trained_before.hold(line, unit)]
    if unit == DOCUMENT and len({line.document_id for line in unseen}) < 2:
        # A register of one document: its pages no model trained on, as a draw by page takes.
        known_by = PAGE
        unseen = [line for line in reviewed if not trained_before.hold(line, PAGE)]
    scale = len(unseen) / (len(reviewed) + tested) if unseen else 0.0
    validation: set[int] = set()
    if known := len(reviewed) - len(unseen):
        result.note = (
            f"{known} reviewed line{pluralize(known)} of {known_by}s that earlier models "
            "trained on train and do not validate."
            + (
                " Validation is drawn by page, not by document: fewer than two documents "
                "no model trained on are left."
                if known_by != unit
                else ""
            )
        )
    if unseen and validation_fraction > 0:
        # Training keeps a share of what is left, however large the frozen split.
        share = min(validation_fraction / scale, 0.9)
        drawn, note = _draw_by_unit(
            unseen,
            # By page where the unseen lines were: a document drawn whole would take its
            # pages that earlier models trained on into validation too.
            known_by,
            {TRAIN: 1 - share, VALIDATION: share},
            VALIDATION,
            seed=seed,
            what="Validation is drawn",
            scale=scale,
        )
        result.note = " ".join(filter(None, (result.note, note)))
        if drawn is not None:
            result.unit = drawn.unit
            validation = {key for key, name in drawn.chosen.items() if name == VALIDATION}
    for unit_line in reviewed:
        to = VALIDATION if unit_key(unit_line, result.unit) in validation else TRAIN
        assignment[unit_line.pk] = to
    # The machine-read lines of a validation unit are held out rather than trained on: the
    # validation documents (or pages) stay unseen, as the test ones do.
    for unit_line in machine_read:
        to = HELD_OUT if unit_key(unit_line, result.unit) in validation else TRAIN
        assignment[unit_line.pk] = to
    for unit_line in (*reviewed, *machine_read):
        if assignment[unit_line.pk] != HELD_OUT:
            result.trained_documents.add(unit_line.document_id)
            result.trained_pages.add(unit_line.page_id)
        if assignment[unit_line.pk] == TRAIN:
            result.train.documents.add(unit_line.document_id)
            result.train.pages.add(unit_line.page_id)
    return result

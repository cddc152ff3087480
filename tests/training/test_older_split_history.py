"""training 0012 records the freeze of the splits frozen before splits recorded their changes
(0010): without it an imported test split of that time could be drawn again, the re-draw
telling an imported split by its record."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ocrreview.corpus.models import Line
from ocrreview.training import splits
from ocrreview.training.exports import describe_change
from ocrreview.training.models import (
    DatasetExport,
    EvaluationLine,
    EvaluationSplit,
    PromotionEvent,
)
from tests import factories

BEFORE = ("training", "0011_promotion_event_actor_label")
AFTER = ("training", "0012_record_older_split_freezes")
HOUR = timedelta(hours=1)


def reviewed_documents(collection, count: int) -> list[Line]:
    lines = []
    for number in range(count):
        page = factories.make_page(factories.make_document(collection, f"Document {number}"))
        lines += [
            factories.make_line(page, order, text="ab", status=Line.Status.REVIEWED)
            for order in range(3)
        ]
    return lines


def split_as_before_0010(collection, lines: list[Line], user) -> EvaluationSplit:
    """As 0010 left a split it found: sealed at its freeze, with no change recorded."""
    split = EvaluationSplit.objects.create(collection=collection, created_by=user)
    EvaluationLine.objects.bulk_create(EvaluationLine(split=split, line=line) for line in lines)
    EvaluationSplit.objects.filter(pk=split.pk).update(sealed_at=split.frozen_at)
    split.refresh_from_db()
    return split


def export_at(collection, user, **fields):
    """An export row as BEFORE's schema has them: its model as that migration left it (the
    app's has columns added since)."""
    created_at = fields.pop("created_at")
    state = MigrationExecutor(connection).loader.project_state([BEFORE])
    model = state.apps.get_model("training", "DatasetExport")
    export = model.objects.create(collection_id=collection.pk, created_by_id=user.pk, **fields)
    model.objects.filter(pk=export.pk).update(created_at=created_at)
    return export


@pytest.mark.django_db(transaction=True)
def test_older_splits_get_their_freeze_recorded_and_an_imported_one_stays(
    letters, ledgers, alice, settings, latest_migrations_after
):
    settings.OCRREVIEW_GATE_MIN_LINES = 100
    MigrationExecutor(connection).migrate([BEFORE])
    # Letters: an imported dataset's test split (two documents of it). An export tried before
    # the import failed before it froze anything (no reviewed lines then).
    imported_lines = reviewed_documents(letters, 4)
    imported = split_as_before_0010(letters, imported_lines[:6], alice)
    export_at(
        letters,
        alice,
        status=DatasetExport.Status.FAILED,
        created_at=imported.frozen_at - HOUR,
        heartbeat_at=imported.frozen_at - HOUR,
    )
    # Ledgers: a split the first export drew (0008 gave it the split), and a model measured
    # on it whose promotion the gate refused.
    drawn_lines = reviewed_documents(ledgers, 4)
    drawn = split_as_before_0010(ledgers, drawn_lines[:3], alice)
    froze = export_at(
        ledgers,
        alice,
        status=DatasetExport.Status.DONE,
        evaluation_split_id=drawn.pk,
        created_at=drawn.frozen_at - HOUR,
    )
    parent = factories.make_model_version(name="parent")
    measured = factories.make_model_version(
        name="measured", parent=parent, metrics={"eval_split": drawn.pk, "cer": 0.1, "lines": 3}
    )
    PromotionEvent.objects.create(
        model_version=measured,
        parent=parent,
        collection=ledgers,
        kind=PromotionEvent.Kind.REJECTED,
        numbers={"eval_split": drawn.pk, "lines": 3},
    )
    # Before: nothing recorded told the imported split from a drawn one, and it could be
    # drawn again.
    assert not imported.changes.exists()

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])
    # The app's code reads the records as the latest migrations leave them (0014 tells the
    # imported split by 0012's note).
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    [record] = imported.changes.all()
    assert record.kind == "frozen" and record.export is None and record.actor == alice
    assert record.imported and record.export_number is None
    assert record.lines == 6 and record.units_added == 2 and record.sealed
    assert record.created_at == imported.frozen_at
    assert describe_change(record).startswith(
        "Froze the evaluation split: 6 lines of 2 documents; sealed under the promotion "
        "gate's minimum of 100. An imported dataset's own test split"
    )
    assert splits.redraw_refusal(imported) == (
        "it is an imported dataset's test split, kept as it was published"
    )
    with pytest.raises(splits.SplitError, match="imported dataset's test split"):
        splits.do_redraw_evaluation_split(
            letters, unit="document", seed=1, fraction=0.5, user=alice
        )
    assert set(imported.members.values_list("line_id", flat=True)) == {
        line.pk for line in imported_lines[:6]
    }

    [record] = drawn.changes.all()
    assert record.export_id == froze.pk and record.lines == 3 and record.units_added == 1
    assert record.export_number == froze.pk and not record.imported
    assert "Recorded after the fact" in record.note
    assert splits.redraw_refusal(drawn).startswith("measured was measured on it")
    # The gate's record says so too, and it is never edited: a model's metrics are, in the
    # Django admin.
    measured.metrics = {}
    measured.save()
    assert splits.redraw_refusal(drawn).startswith("measured was measured on it")
    with pytest.raises(splits.SplitError, match="measured was measured on it"):
        splits.do_redraw_evaluation_split(
            ledgers, unit="document", seed=1, fraction=0.5, user=alice
        )

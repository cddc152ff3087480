"""What froze a collection's evaluation split stays known when the export that froze it is
deleted: such a split was drawn, not imported, and may be drawn again as any drawn split may,
while an imported dataset's test split never is."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from ocrreview.training import splits
from ocrreview.training.exports import describe_change
from ocrreview.training.models import EvaluationSplit, EvaluationSplitChange
from tests.training.test_api_split import get_split
from tests.training.test_exports import export_now
from tests.training.test_redraw_split import FORM


@pytest.fixture
def deleted_export_split(letters, alice, reviewed_letters, settings):
    """A split an export froze, sealed with 4 lines under a minimum of 12 (as before splits
    grew, so it may be drawn again), that export then deleted."""
    export = export_now(letters, alice, formats=["imagefolder"])
    EvaluationSplit.objects.update(sealed_at=EvaluationSplit.objects.get().frozen_at)
    settings.OCRREVIEW_GATE_MIN_LINES = 12
    number = export.pk
    export.delete()
    return EvaluationSplit.objects.get(), number


def test_a_split_whose_freezing_export_was_deleted_is_still_drawn_by_an_export(
    client, django_user_model, letters, alice, reviewed_letters, deleted_export_split
):
    split, number = deleted_export_split
    # The split and its lines stay.
    assert split.members.count() == 4
    [frozen] = split.changes.all()
    assert frozen.export is None and frozen.export_number == number and not frozen.imported
    assert "imported" not in describe_change(frozen)
    assert splits.redraw_refusal(split) == ""

    client.force_login(alice)
    page = client.get(reverse("training_home", args=[letters.pk])).content.decode()
    section = page.split('id="evaluation-split"')[1].split("</section>")[0]
    assert f"<td>{number} (deleted)</td>" in section and 'id="split-redraw"' in section
    assert "imported dataset" not in section
    body = get_split(client, letters, alice).json()
    [change] = body["changes"]
    assert change["export"] is None and change["export_number"] == number
    assert change["imported"] is False and body["can_redraw"] is True

    client.force_login(django_user_model.objects.create_superuser("root", "r@example.org", "pw"))
    listed = client.get(reverse("admin:training_evaluationsplitchange_changelist"))
    assert f"{number} (deleted)" in listed.content.decode()

    client.force_login(alice)
    response = client.post(reverse("training_redraw_split", args=[letters.pk]), FORM, follow=True)
    assert response.status_code == 200
    assert split.changes.filter(kind=EvaluationSplitChange.Kind.REDRAWN).exists()


def test_an_imported_split_stays_imported(client, letters, alice, reviewed_letters):
    split = splits.freeze_evaluation_lines(
        letters, reviewed_letters[:4], unit="document", user=alice
    )
    [frozen] = split.changes.all()
    assert frozen.imported and frozen.export_number is None
    assert splits.redraw_refusal(split) == (
        "it is an imported dataset's test split, kept as it was published"
    )
    client.force_login(alice)
    page = client.get(reverse("training_home", args=[letters.pk])).content.decode()
    section = page.split('id="evaluation-split"')[1].split("</section>")[0]
    assert "(deleted)" not in section and "imported dataset&#x27;s own test split" in section


BEFORE = ("training", "0013_model_version_to_corpus")
AFTER = ("training", "0014_split_change_export_number_imported")


@pytest.mark.django_db(transaction=True)
def test_older_records_say_what_froze_them(letters, ledgers, alice, latest_migrations_after):
    """0014: the imported split by its note, the export's number where it is still there."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    Split = old.get_model("training", "EvaluationSplit")
    Change = old.get_model("training", "EvaluationSplitChange")
    Export = old.get_model("training", "DatasetExport")
    record = {"kind": "frozen", "lines_added": 4, "units_added": 1, "lines": 4, "minimum": 12}
    imported = Change.objects.create(
        split=Split.objects.create(collection_id=letters.pk),
        note="An imported dataset's own test split, kept as it was published.",
        **record,
    )
    drawn = Split.objects.create(collection_id=ledgers.pk)
    export = Export.objects.create(collection_id=ledgers.pk, status="done")
    orphaned = Change.objects.create(split=drawn, **record)  # its export deleted before 0014
    grown = Change.objects.create(split=drawn, export=export, **{**record, "kind": "grown"})

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])

    records = EvaluationSplitChange.objects.in_bulk([imported.pk, orphaned.pk, grown.pk])
    assert records[imported.pk].imported and records[imported.pk].export_number is None
    assert not records[orphaned.pk].imported and records[orphaned.pk].export_number is None
    assert not records[grown.pk].imported and records[grown.pk].export_number == export.pk
    assert splits.redraw_refusal(EvaluationSplit.objects.get(pk=imported.split_id)) != ""
    assert splits.redraw_refusal(EvaluationSplit.objects.get(pk=drawn.pk)) == ""

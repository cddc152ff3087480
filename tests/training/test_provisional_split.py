"""An evaluation split smaller than the promotion gate's minimum is provisional: each export
grows it with ground truth no export under it trained or validated on, until it holds the
minimum, and then it is sealed. No line ever leaves it, and the training page says where it
stands against the minimum."""

import importlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.training import actions, splits
from ocrreview.training.exports import ExportOptions
from ocrreview.training.models import DatasetExport, EvaluationSplit, EvaluationSplitChange
from tests import factories
from tests.factories import token_headers
from tests.training.conftest import make_rendered_page, mark_reviewed, succeeded_run
from tests.training.test_exports import export_now, split_of

MINIMUM = 12


@pytest.fixture
def minimum(settings):
    settings.OCRREVIEW_GATE_MIN_LINES = MINIMUM
    return MINIMUM


def new_documents(letters, bob, count: int, lines: int = 3, first: int = 100) -> list[list[Line]]:
    made = []
    for number in range(first, first + count):
        page = make_rendered_page(factories.make_document(letters, f"New {number}"), ["ab"] * lines)
        mark_reviewed(page, bob)
        made.append(page)
    return made


def in_test(assignment: dict[int, str]) -> set[int]:
    return {pk for pk, name in assignment.items() if name == "test"}


def trained_documents(assignment: dict[int, str]) -> set[int]:
    trained = [pk for pk, name in assignment.items() if name in ("train", "validation")]
    return set(Line.objects.filter(pk__in=trained).values_list("document_id", flat=True))


def test_a_split_under_the_minimum_grows_from_untrained_documents_until_sealed(
    letters, alice, bob, reviewed_letters, minimum
):
    first = export_now(letters, alice, formats=["imagefolder"])
    split = EvaluationSplit.objects.get()
    frozen = in_test(split_of(first))
    assert len(frozen) == 4 and split.sealed_at is None
    assert first.counts["split"] == {
        "unit": "document",
        "note": "",
        "evaluation_lines": 4,
        "provisional": True,
    }
    trained_first = trained_documents(split_of(first))
    assert sorted(split.trained_documents) == sorted(trained_first)

    # New ground truth: a page more of the test document, a line more in a trained document,
    # and three new documents.
    test_document = Line.objects.get(pk=min(frozen)).document
    late = make_rendered_page(test_document, ["cc", "aa"], index=1)
    trained_document = Line.objects.filter(document_id__in=trained_first).first().document
    beside_training = make_rendered_page(trained_document, ["bb"], index=1)
    mark_reviewed(late + beside_training, bob)
    fresh = new_documents(letters, bob, 3)

    second = export_now(letters, alice, formats=["imagefolder"])
    assignment = split_of(second)
    test = in_test(assignment)
    split.refresh_from_db()
    assert frozen <= test  # nothing ever leaves the split
    assert {line.pk for line in late} <= test  # its own document's new lines join it
    assert assignment[beside_training[0].pk] in ("train", "validation")  # never measures
    assert not trained_documents(split_of(first)) & {
        line.document_id for line in Line.objects.filter(pk__in=test)
    }
    # Whole new documents until the minimum: 4 + 2 + 3 + 3.
    grown = [page for page in fresh if page[0].pk in test]
    assert len(grown) == 2 and len(test) == MINIMUM
    assert all({line.pk for line in page} <= test for page in grown)
    assert split.sealed_at is not None
    assert split.trained_documents == [] and split.trained_pages == []
    assert second.counts["split"]["provisional"] is False
    frozen_change, grown_change = split.changes.order_by("id")
    assert (frozen_change.kind, frozen_change.lines, frozen_change.sealed) == ("frozen", 4, False)
    assert (grown_change.kind, grown_change.export_id, grown_change.lines_added) == (
        "grown",
        second.pk,
        8,
    )
    assert (grown_change.units_added, grown_change.lines, grown_change.sealed) == (2, 12, True)

    # Sealed: later ground truth no longer joins it, beside it or not.
    more = new_documents(letters, bob, 3, first=200)
    third = split_of(export_now(letters, alice, formats=["imagefolder"]))
    assert in_test(third) == test
    assert {third[line.pk] for page in more for line in page} <= {"train", "validation"}
    assert split.changes.count() == 2


def test_a_document_trained_on_under_a_provisional_split_never_joins_it(
    letters, alice, bob, reviewed_letters, minimum
):
    first = split_of(export_now(letters, alice, formats=["imagefolder"]))
    trained = trained_documents(first)
    for document_id in trained:
        page = make_rendered_page(
            Line.objects.filter(document_id=document_id)[0].document, ["ab"] * 5, index=1
        )
        mark_reviewed(page, bob)

    second = split_of(export_now(letters, alice, formats=["imagefolder"]))
    assert in_test(second) == in_test(first)
    split = EvaluationSplit.objects.get()
    assert split.sealed_at is None and splits.counted_lines(split) == 4
    assert split.changes.count() == 1  # nothing grew


def test_an_imported_test_split_is_sealed_whatever_its_size(letters, bob, alice, minimum):
    page = make_rendered_page(factories.make_document(letters), ["ab", "ba"])
    mark_reviewed(page, bob)
    split = splits.freeze_evaluation_lines(letters, page, unit="document", user=alice)
    assert split.sealed_at is not None
    change = split.changes.get()
    assert change.sealed and "kept as it was published" in change.note


def test_splits_frozen_before_they_grew_are_sealed_by_the_upgrade(letters, alice, reviewed_letters):
    """Their exports did not record what they trained on: growing them could measure a model
    on its own training lines."""
    migration = importlib.import_module(
        "ocrreview.training.migrations.0010_provisional_evaluation_split"
    )
    export_now(letters, alice, formats=["imagefolder"])
    EvaluationSplit.objects.update(sealed_at=None)
    sql = next(op.sql for op in migration.Migration.operations if hasattr(op, "sql"))
    with connection.cursor() as cursor:
        cursor.execute(sql)
    split = EvaluationSplit.objects.get()
    assert split.sealed_at == split.frozen_at


def test_split_changes_are_never_rewritten(letters, alice, reviewed_letters, minimum):
    export_now(letters, alice, formats=["imagefolder"])
    change = EvaluationSplitChange.objects.get()
    change.note = "rewritten"
    with pytest.raises(ValueError, match="never updated"):
        change.save()


def test_the_training_page_shows_the_split_against_the_minimum(
    client, letters, alice, bob, reviewed_letters, minimum
):
    client.force_login(alice)
    page = client.get(f"/collections/{letters.pk}/training/").content.decode()
    assert "The first export freezes the evaluation split." in page

    first = export_now(letters, alice, formats=["imagefolder"])
    page = client.get(f"/collections/{letters.pk}/training/").content.decode()
    assert 'id="split-provisional"' in page
    assert "Provisional: 4 of the 12 lines the gate needs." in page
    assert "Froze the evaluation split: 4 lines of 1 document; provisional" in page
    export_page = client.get(f"/training/exports/{first.pk}/").content.decode()
    assert "under the 12 the promotion gate decides on: it is provisional" in export_page

    new_documents(letters, bob, 3)
    second = export_now(letters, alice, formats=["imagefolder"])
    page = client.get(f"/collections/{letters.pk}/training/").content.decode()
    assert 'id="split-provisional"' not in page
    assert "13 lines</strong> measure every run" in page  # 4, and three documents of 3
    assert "Grew the evaluation split by" in page and "sealed, the promotion gate" in page
    assert f'href="/training/exports/{second.pk}/"' in page


def test_a_split_sealed_under_the_minimum_says_the_gate_cannot_decide(
    client, letters, alice, bob, reviewed_letters, settings
):
    settings.OCRREVIEW_GATE_MIN_LINES = 4
    export_now(letters, alice, formats=["imagefolder"])
    settings.OCRREVIEW_GATE_MIN_LINES = 50  # raised since
    client.force_login(alice)
    page = client.get(f"/collections/{letters.pk}/training/").content.decode()
    assert 'id="split-small"' in page and "fewer than the 50 the gate decides on" in page


@pytest.mark.django_db(transaction=True)
def test_two_exports_at_once_never_grow_the_split_into_what_the_other_trains_on(
    letters, alice, bob, reviewed_letters, settings
):
    settings.OCRREVIEW_GATE_MIN_LINES = 14
    export_now(letters, alice, formats=["imagefolder"])
    new_documents(letters, bob, 8)
    options = ExportOptions(formats=["imagefolder"])
    pending = [
        DatasetExport.objects.create(
            collection=letters, created_by=alice, filters=options.filters(), formats=["imagefolder"]
        )
        for _ in range(2)
    ]

    def run(export_id: int) -> DatasetExport:
        try:
            return actions.run_export(export_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, [export.pk for export in pending]))
    assert all(export.status == "done" for export in done), [e.error for e in done]
    split = EvaluationSplit.objects.get()
    members = set(split.members.values_list("line_id", flat=True))
    measured = set(Line.objects.filter(pk__in=members).values_list("document_id", flat=True))
    for export in done:
        assert not trained_documents(split_of(export)) & measured
    assert splits.counted_lines(split) >= 14 and split.sealed_at is not None


def test_the_gate_says_a_provisional_split_grows_where_it_is_too_small(
    client, letters, alice, reviewed_letters, minimum, tiny_version
):
    """An admin told only 'too few lines' waits for nothing, or overrides the gate where a few
    more reviewed documents would have let it decide."""
    export = export_now(letters, alice, formats=["imagefolder"])
    split = EvaluationSplit.objects.get()
    assert split.sealed_at is None
    letters.model_version = tiny_version
    letters.save()
    child = factories.make_model_version(
        name="child",
        parent=tiny_version,
        metrics={
            "cer": 0.1,
            "wer": 0.2,
            "lines": 4,
            "eval_split": split.pk,
            "parent": {"cer": 0.5},
        },
    )
    run = succeeded_run(child, export, alice)

    event = actions.do_apply_gate(run)

    assert event.kind == "rejected"
    reason = event.reason
    assert reason.startswith("the evaluation split is provisional and holds 4 lines, fewer than ")
    assert "fewer than the 12 the gate decides on" in reason
    assert "It grows as reviewers finish more ground truth" in reason
    assert "and the next export runs, until it holds 12 lines and is sealed" in reason
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[run.pk])).content.decode()
    assert f"The gate kept this model inactive: {reason}." in page
    answer = client.get(reverse("api_model_version", args=[child.pk]), headers=token_headers(alice))
    assert answer.json()["promotions"][0]["reason"] == reason


def test_a_line_marked_unclear_measures_no_model_until_someone_reads_it(
    letters, alice, bob, reviewed_letters
):
    """Its text is the reviewer's guess: scoring a model against it would count the model
    wrong wherever it read better than the guess."""
    from ocrreview.review.actions import do_clear_unclear, do_mark_unclear

    guess = reviewed_letters[0]
    do_mark_unclear(guess, bob, "ink blot over the second word")
    assert guess.pk not in {line.pk for line in splits.evaluation_candidates(letters)}

    export_now(letters, alice, formats=["imagefolder"])
    split = EvaluationSplit.objects.get()
    frozen = in_test(split_of(DatasetExport.objects.get()))
    member = Line.objects.get(pk=sorted(frozen)[0])
    do_mark_unclear(member, bob)
    assert member.pk not in {line.pk for line in splits.evaluation_lines(split)}
    assert splits.counted_lines(split) == len(frozen) - 1
    assert splits.split_parts(split)["reopened"]["lines"] == 1

    do_clear_unclear(member, bob)
    assert splits.counted_lines(split) == len(frozen)

"""Drawing the evaluation split again (a split sealed small, frozen before splits grew): only
while no model was measured on it and nothing is in flight under it, recorded, and the exports
made under the old draw no longer train."""

import pytest
from django.urls import reverse

from ocrreview.training import actions, splits
from ocrreview.training.actions import TrainingError, TrainingParams
from ocrreview.training.models import DatasetExport, EvaluationSplit, EvaluationSplitChange
from tests import factories
from tests.training.test_exports import export_now
from tests.training.test_provisional_split import new_documents

FORM = {"unit": "document", "seed": "3", "test_fraction": "0.3", "confirm": "on"}


@pytest.fixture
def small_sealed_split(letters, alice, reviewed_letters, settings):
    """Frozen before splits grew: sealed with 4 lines, under a minimum of 20. (Which whole
    documents a draw takes hangs on their ids, so a draw of 30 % of 36 lines holds 7 to 14;
    a minimum of 12 was passed by some runs' draws.)"""
    export = export_now(letters, alice, formats=["imagefolder"])
    EvaluationSplit.objects.update(sealed_at=EvaluationSplit.objects.get().frozen_at)
    settings.OCRREVIEW_GATE_MIN_LINES = 20
    return export


def test_an_admin_draws_a_small_split_again(client, letters, alice, bob, small_sealed_split):
    new_documents(letters, bob, 4)
    client.force_login(alice)
    page = client.get(reverse("training_home", args=[letters.pk])).content.decode()
    assert 'id="split-redraw"' in page

    response = client.post(reverse("training_redraw_split", args=[letters.pk]), FORM, follow=True)
    assert response.status_code == 200
    split = EvaluationSplit.objects.get()
    lines = splits.counted_lines(split)
    # 30 % of 36 lines, in whole documents: within one document's lines of 10.8.
    assert split.seed == 3 and 7 <= lines <= 14
    assert split.sealed_at is None  # under 20: provisional, and it grows from now on
    change = split.changes.get(kind=EvaluationSplitChange.Kind.REDRAWN)
    assert change.actor == alice and change.lines == lines
    assert "replaced a draw of 4 lines; 1 export made under that one can no longer train" in (
        change.note
    )
    assert "Drew the evaluation split again" in response.content.decode()

    # The export made under the old draw is no longer the split's: no run starts on it.
    small_sealed_split.refresh_from_db()
    assert small_sealed_split.evaluation_split is None
    with pytest.raises(TrainingError, match="not made under the collection's current"):
        actions.do_start_training(
            factories.make_model_version(name="base"),
            small_sealed_split,
            TrainingParams(),
            user=alice,
            queue=False,
        )


def test_a_split_a_model_was_measured_on_is_never_drawn_again(
    client, letters, alice, small_sealed_split
):
    split = EvaluationSplit.objects.get()
    factories.make_model_version(name="measured", metrics={"eval_split": split.pk, "cer": 0.1})
    before = set(split.members.values_list("line_id", flat=True))
    client.force_login(alice)
    page = client.get(reverse("training_home", args=[letters.pk])).content.decode()
    assert 'id="split-redraw-refused"' in page and "measured was measured on it" in page

    response = client.post(reverse("training_redraw_split", args=[letters.pk]), FORM)
    assert response.status_code == 400
    assert "cannot be drawn again: measured was measured on it" in response.content.decode()
    assert set(split.members.values_list("line_id", flat=True)) == before
    assert not split.changes.filter(kind=EvaluationSplitChange.Kind.REDRAWN).exists()


def test_nothing_in_flight_may_be_using_the_draw(letters, alice, small_sealed_split):
    queued = DatasetExport.objects.create(collection=letters, status="queued")
    with pytest.raises(splits.SplitError, match="an export is being built"):
        splits.do_redraw_evaluation_split(
            letters, unit="document", seed=1, fraction=0.2, user=alice
        )
    queued.delete()
    actions.do_start_training(
        factories.make_model_version(name="base"),
        small_sealed_split,
        TrainingParams(),
        user=alice,
        queue=False,
    )
    with pytest.raises(splits.SplitError, match="a training run is queued or running"):
        splits.do_redraw_evaluation_split(
            letters, unit="document", seed=1, fraction=0.2, user=alice
        )


def test_an_imported_test_split_is_never_drawn_again(letters, alice, bob, reviewed_letters):
    splits.freeze_evaluation_lines(letters, reviewed_letters[:4], unit="document", user=alice)
    with pytest.raises(splits.SplitError, match="imported dataset's test split"):
        splits.do_redraw_evaluation_split(
            letters, unit="document", seed=1, fraction=0.2, user=alice
        )


@pytest.mark.parametrize(
    "data, message",
    [
        ({**FORM, "test_fraction": "1.5"}, "less than or equal to 0.9"),
        ({**FORM, "unit": "word"}, "Select a valid choice"),
        ({**FORM, "seed": "x"}, "Enter a whole number"),
        ({key: value for key, value in FORM.items() if key != "confirm"}, "This field is required"),
    ],
)
def test_bad_redraw_forms_are_refused_with_a_message(
    client, letters, alice, small_sealed_split, data, message
):
    client.force_login(alice)
    before = set(EvaluationSplit.objects.get().members.values_list("line_id", flat=True))
    response = client.post(reverse("training_redraw_split", args=[letters.pk]), data)
    assert response.status_code == 400 and message in response.content.decode()
    after = set(EvaluationSplit.objects.get().members.values_list("line_id", flat=True))
    assert after == before


def test_a_collection_without_a_split_has_nothing_to_draw_again(client, letters, alice):
    client.force_login(alice)
    response = client.post(reverse("training_redraw_split", args=[letters.pk]), FORM)
    assert response.status_code == 400 and "the first export draws it" in response.content.decode()


@pytest.mark.parametrize("who, status", [("bob", 403), ("charlie", 404)])
def test_only_admins_draw_it_again(client, letters, bob, charlie, small_sealed_split, who, status):
    client.force_login({"bob": bob, "charlie": charlie}[who])
    response = client.post(reverse("training_redraw_split", args=[letters.pk]), FORM)
    assert response.status_code == status
    assert not EvaluationSplitChange.objects.filter(kind="redrawn").exists()

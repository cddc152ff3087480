"""Training runs in the task's body (the worker path is in test_loop and test_views): the gate,
overrides, cancellation, failures, bad parameters, and characters the tokenizer lacks."""

import errno
import os
import socket
import time
from dataclasses import asdict, replace
from pathlib import Path

import psycopg
import pytest
import torch
from botocore.exceptions import EndpointConnectionError
from django.conf import settings
from django.db.models import RestrictedError
from django.urls import reverse
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoTokenizer

from ocrreview.corpus.models import Line, ModelVersion
from ocrreview.storage import resolve_model_source
from ocrreview.training import actions, evaluation, splits, tasks
from ocrreview.training.actions import TrainingError, TrainingParams
from ocrreview.training.models import DatasetExport, EvaluationSplit, PromotionEvent, TrainingRun
from recognition.architectures import create_starter_base
from recognition.training import Diverged
from tests import factories
from tests.tiny_model import TINY_STARTER
from tests.training.conftest import make_rendered_page, mark_reviewed, succeeded_run
from tests.training.test_exports import export_now

# One step at a learning rate below float32 resolution: the child reads exactly like its parent.
UNCHANGED = TrainingParams(max_steps=1, learning_rate=1e-12, eval_every=1, warmup_steps=0)


@pytest.fixture
def done_export(letters, alice, reviewed_letters):
    export = export_now(letters, alice)
    assert export.status == DatasetExport.Status.DONE, export.error
    return export


def start(base, export, params, user) -> TrainingRun:
    return TrainingRun.objects.create(
        base_model=base, dataset=export, params=asdict(params), created_by=user
    )


def test_a_split_reopened_whole_during_training_keeps_the_model_unmeasured(
    client, letters, alice, tiny_version, done_export, monkeypatch
):
    """A coordinator undid the person who reviewed the evaluation lines while the run trained:
    nothing is left to score on, which no retry changes; the hours of training are kept, the
    gate keeping the model inactive for want of lines."""
    letters.model_version = tiny_version
    letters.save()
    fit = evaluation.fit_calibration_on

    def reopened_meanwhile(*args, **kwargs):
        split = EvaluationSplit.objects.get(collection=letters)
        members = split.members.values_list("line_id", flat=True)
        Line.objects.filter(pk__in=members).update(status=Line.Status.NEEDS_REVIEW)
        return fit(*args, **kwargs)

    monkeypatch.setattr(evaluation, "fit_calibration_on", reopened_meanwhile)
    run = actions.run_training(start(tiny_version, done_export, UNCHANGED, alice).pk, retry=True)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert "no reviewed lines left to score on" in run.log
    child = run.result_model
    assert child.metrics["lines"] == 0 and child.metrics["cer"] is None
    letters.refresh_from_db()
    assert child.status == ModelVersion.Status.READY and letters.model_version == tiny_version
    verdict = PromotionEvent.objects.get(model_version=child)
    assert verdict.kind == PromotionEvent.Kind.REJECTED and "holds 0 lines" in verdict.reason
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[run.pk])).content.decode()
    assert "Frozen evaluation split (0 lines" in page and "holds 0 lines" in page


def test_a_child_that_does_not_beat_its_parent_stays_inactive(
    letters, alice, tiny_version, done_export
):
    letters.model_version = tiny_version
    letters.save()
    run = actions.run_training(start(tiny_version, done_export, UNCHANGED, alice).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    child = run.result_model
    assert child.parent == tiny_version and child.status == ModelVersion.Status.READY
    assert child.metrics["cer"] == child.metrics["parent"]["cer"]
    assert child.metrics["edits"] == child.metrics["parent"]["edits"]
    assert child.metrics["cer"] == child.metrics["edits"] / child.metrics["characters"]
    assert child.metrics["lines"] == 4
    # The checkpoint holds the parent's parameters under the parent's names (a model
    # prepared for inference, saved as is, would not load back).
    with (
        safe_open(Path(resolve_model_source(child.source), "model.safetensors"), "pt") as saved,
        safe_open(Path(tiny_version.source, "model.safetensors"), "pt") as parent,
    ):
        assert set(saved.keys()) == set(parent.keys())
    assert Path(resolve_model_source(child.source), "tokenizer.json").exists()
    assert Path(resolve_model_source(child.source), "preprocessor_config.json").exists()
    assert not run.promoted
    letters.refresh_from_db()
    assert letters.model_version == tiny_version
    event = PromotionEvent.objects.get(training_run=run)
    assert event.kind == PromotionEvent.Kind.REJECTED and event.actor is None
    assert event.numbers["cer"] == event.numbers["parent_cer"]
    assert event.numbers["edits"] == child.metrics["edits"] == event.numbers["parent_edits"]
    assert "kept inactive" in run.log
    assert not (Path(settings.OCRREVIEW_MODELS_DIR) / ".runs" / f"run-{run.pk}").exists()


def test_a_page_of_the_frozen_split_whose_image_is_gone_is_left_out_of_both_scores(
    letters, alice, tiny_version, reviewed_letters
):
    """A file deleted, an object archived: the run was scored on it after its training,
    failed, and failed again on every retry, losing its model each time."""
    export = export_now(letters, alice, test_fraction=0.4)
    eval_lines = splits.evaluation_lines(export.evaluation_split)
    assert len({line.page_id for line in eval_lines}) > 1
    gone = eval_lines[0].page
    gone.image.storage.delete(gone.image.name)
    left = [line for line in eval_lines if line.page_id != gone.pk]

    run = actions.run_training(start(tiny_version, export, UNCHANGED, alice).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    metrics = run.result_model.metrics
    assert (metrics["lines"], metrics["unreadable_lines"]) == (
        len(left),
        len(eval_lines) - len(left),
    )
    assert (
        metrics["characters"]
        == metrics["parent"]["characters"]
        == sum(len(line.text) for line in left)
    )
    assert "of the frozen evaluation split left out of both scores" in run.log


def test_a_run_says_how_many_of_its_training_lines_were_machine_read(
    client, letters, alice, tiny_version, reviewed_letters
):
    document = factories.make_document(letters, "Auto")
    make_rendered_page(document, ["cab", "abc"], status=Line.Status.AUTO_ACCEPTED, confidence=0.99)
    export = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)

    run = actions.run_training(start(tiny_version, export, UNCHANGED, alice).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    metrics = run.result_model.metrics
    assert metrics["machine_read_train_lines"] == 2
    assert metrics["validation_lines"] == export.counts["validation"] > 0
    assert "(2 of them machine-read, not reviewed)" in run.log
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[run.pk])).content.decode()
    assert "(2 of them machine-read: auto-accepted, never reviewed)" in page


def test_an_admin_can_override_the_gate_and_it_is_recorded(
    letters, alice, tiny_version, done_export
):
    run = actions.run_training(start(tiny_version, done_export, UNCHANGED, alice).pk)
    with pytest.raises(TrainingError, match="say why"):
        actions.do_override_promotion(run, actor=alice, reason="  ")
    # Four validation lines fit no calibration: lines would be accepted on raw confidences.
    assert not run.result_model.calibration
    with pytest.raises(TrainingError, match="are not calibrated: at a threshold of 0.90"):
        actions.do_override_promotion(run, actor=alice, reason="the parent is retired")

    event = actions.do_override_promotion(
        run, actor=alice, reason="the parent is retired", confirm_uncalibrated=True
    )

    assert event.kind == PromotionEvent.Kind.OVERRIDDEN and event.actor == alice
    assert event.reason == "the parent is retired"
    assert event.numbers["cer"] == run.result_model.metrics["cer"]
    run.refresh_from_db()
    assert run.promoted and run.promotion_overridden_by == alice
    letters.refresh_from_db()
    assert letters.model_version == run.result_model
    assert letters.model_version.status == ModelVersion.Status.ACTIVE
    with pytest.raises(TrainingError, match="already promoted"):
        actions.do_override_promotion(run, actor=alice, reason="again", confirm_uncalibrated=True)
    with pytest.raises(ValueError, match="never updated"):
        event.save()


@pytest.mark.parametrize(
    "collection_reads_with", ["the parent", "a model chosen since", "the default model"]
)
def test_a_better_child_replaces_only_the_model_it_was_measured_against(
    letters, alice, tiny_version, done_export, collection_reads_with, settings
):
    """A collection that chose no model reads with OCRREVIEW_MODEL's: a child of another
    model was never compared with it."""
    settings.OCRREVIEW_MODEL = "/models/since"
    since = factories.make_model_version(name="/models/since", source="/models/since")
    letters.model_version = {"the parent": tiny_version, "a model chosen since": since}.get(
        collection_reads_with
    )
    letters.save()
    letters_model = letters.model_version
    child = factories.make_model_version(
        name="child",
        source="/models/child",
        parent=tiny_version,
        metrics={"cer": 0.1, "wer": 0.2, "lines": 4, "parent": {"cer": 0.5, "wer": 0.8}},
    )
    run = succeeded_run(child, done_export, alice)

    event = actions.do_apply_gate(run)

    letters.refresh_from_db()
    if collection_reads_with == "the parent":
        assert event.kind == PromotionEvent.Kind.PROMOTED and not event.reason
        assert letters.model_version == child and run.promoted
    else:
        assert event.kind == PromotionEvent.Kind.REJECTED
        assert event.reason == (
            f"the collection reads with {since} now, not with {tiny_version}, "
            "the model this one was measured against"
        )
        assert letters.model_version == letters_model and not run.promoted


@pytest.mark.parametrize("lines", [99, 100])
def test_the_gate_decides_on_a_frozen_split_of_enough_lines_only(
    letters, alice, tiny_version, done_export, settings, lines
):
    """On a few lines, a handful of them decides which model reads better."""
    settings.OCRREVIEW_GATE_MIN_LINES = 100
    letters.model_version = tiny_version
    letters.save()
    child = factories.make_model_version(
        name="child",
        source="/models/child",
        parent=tiny_version,
        metrics={"cer": 0.1, "wer": 0.2, "lines": lines, "parent": {"cer": 0.5, "wer": 0.8}},
    )

    event = actions.do_apply_gate(succeeded_run(child, done_export, alice))

    letters.refresh_from_db()
    if lines == 100:
        assert event.kind == PromotionEvent.Kind.PROMOTED and letters.model_version == child
    else:
        assert event.kind == PromotionEvent.Kind.REJECTED and letters.model_version == tiny_version
        # Sealed (at 4 lines, the minimum then): it no longer grows, and the reason says so.
        assert event.reason == (
            "the evaluation split is sealed and holds 99 lines, fewer than the 100 the gate "
            "decides on: too few to tell a better model from luck; it grows no more (an "
            "imported test split, one frozen before splits grew, or lines reopened since, "
            "which count again once reviewed); promote this model anyway if its numbers "
            "convince you"
        )


def test_a_run_cancelled_before_it_starts_does_not_train(alice, tiny_version, done_export):
    run = start(tiny_version, done_export, UNCHANGED, alice)
    assert actions.do_request_cancel(run)
    run = actions.run_training(run.pk)
    assert run.status == TrainingRun.Status.CANCELLED
    assert run.result_model is None and not run.history
    assert not actions.do_request_cancel(run)  # finished runs cannot be cancelled


def test_a_run_removes_what_this_host_kept_of_runs_that_ended_elsewhere(
    alice, tiny_version, done_export
):
    """A host that died mid-run, or was given up for dead, keeps the run's checkpoints; they go
    once the run has ended, whoever ended it, and the next run on the host removes them."""
    ended_elsewhere, running_elsewhere, queued, deleted = (
        start(tiny_version, done_export, UNCHANGED, alice) for _ in range(4)
    )
    TrainingRun.objects.filter(pk=ended_elsewhere.pk).update(status=TrainingRun.Status.SUCCEEDED)
    TrainingRun.objects.filter(pk=running_elsewhere.pk).update(status=TrainingRun.Status.RUNNING)
    runs = Path(settings.OCRREVIEW_MODELS_DIR) / ".runs"
    for run in (ended_elsewhere, running_elsewhere, queued, deleted):
        (runs / f"run-{run.pk}" / "checkpoint").mkdir(parents=True)
    deleted.delete()
    (runs / "notes").mkdir()

    run = start(tiny_version, done_export, UNCHANGED, alice)
    actions.do_request_cancel(run)
    actions.run_training(run.pk)

    assert sorted(p.name for p in runs.iterdir()) == sorted(
        ["notes", f"run-{running_elsewhere.pk}", f"run-{queued.pk}"]
    )


def test_a_base_model_that_cannot_load_fails_the_run_with_its_reason(alice, done_export):
    missing = factories.make_model_version(name="gone", source="/nonexistent/model")
    run = actions.run_training(start(missing, done_export, UNCHANGED, alice).pk)
    assert run.status == TrainingRun.Status.FAILED
    assert "/nonexistent/model" in run.error
    assert run.result_model is None
    assert ModelVersion.objects.filter(parent=missing).count() == 0


def test_a_run_needs_a_finished_export_with_training_lines(letters, alice, tiny_version):
    failed = DatasetExport.objects.create(collection=letters, status=DatasetExport.Status.FAILED)
    with pytest.raises(TrainingError, match="is Failed"):
        actions.do_start_training(tiny_version, failed, TrainingParams(), user=alice)
    no_images = DatasetExport.objects.create(
        collection=letters, status="done", formats=["text"], counts={"train": 3}
    )
    with pytest.raises(TrainingError, match="image folder"):
        actions.do_start_training(tiny_version, no_images, TrainingParams(), user=alice)


def test_a_run_is_refused_on_an_export_not_made_under_the_current_split(
    letters, alice, tiny_version, done_export
):
    """An export made before exports recorded their split may have been made under one since
    deleted: its training lines may be the lines the run would be measured on."""
    split = letters.evaluation_split
    assert done_export.evaluation_split == split
    with pytest.raises(RestrictedError):
        split.delete()
    DatasetExport.objects.filter(pk=done_export.pk).update(evaluation_split=None)
    done_export.refresh_from_db()
    with pytest.raises(TrainingError, match="not made under the collection's current evaluation"):
        actions.do_start_training(tiny_version, done_export, UNCHANGED, user=alice)

    queued_before = actions.run_training(start(tiny_version, done_export, UNCHANGED, alice).pk)
    assert queued_before.status == TrainingRun.Status.FAILED
    assert "export the dataset again" in queued_before.error
    assert not [event for event in queued_before.history if event.get("event") == "step"]


def test_a_collection_is_deleted_with_its_split_and_exports(ledgers):
    """What holds a split is deleted with it: the exports made under it."""
    split = EvaluationSplit.objects.create(collection=ledgers)
    DatasetExport.objects.create(collection=ledgers, evaluation_split=split)
    ledgers.delete()
    assert not DatasetExport.objects.exists() and not EvaluationSplit.objects.exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"train_part": "encoder"}, "train_part must be"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"learning_rate": 3.0}, "learning_rate must be between"),
        ({"max_steps": -5}, "max_steps must be at least 1"),
    ],
)
def test_bad_training_parameters_are_refused(params, message):
    with pytest.raises(TrainingError, match=message):
        TrainingParams(**params)


@pytest.fixture
def char_model_version(db, tmp_path):
    """A tiny model with the starter's character tokenizer, which has no ſ."""
    directory = create_starter_base(tmp_path / "charmodel", TINY_STARTER)
    return factories.make_model_version(name="chars", source=str(directory))


def test_characters_the_tokenizer_lacks_are_added_and_reported(
    letters, alice, bob, char_model_version, settings
):
    settings.OCRREVIEW_MAX_NEW_TOKENS = 20
    lines = []
    for number in range(3):
        document = factories.make_document(letters, f"Letter {number}")
        # The last is longer than the model writes: left out, and the log says so.
        lines += make_rendered_page(document, ["ſab", "ba", "ab ba " * 4])
    mark_reviewed(lines, bob)
    export = export_now(letters, alice)
    run = actions.run_training(start(char_model_version, export, UNCHANGED, alice).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert "cannot encode, added to its vocabulary before training: ſ" in run.log
    assert "training lines left out as longer than the 20 tokens" in run.log
    child = run.result_model
    assert child.metrics["added_chars"] == ["ſ"]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source(child.source))
    assert tokenizer.decode(tokenizer("ſ", add_special_tokens=False)["input_ids"]) == "ſ"


def test_a_child_of_the_default_model_replaces_it_where_no_model_was_chosen(
    letters, alice, done_export, tiny_model_dir, settings
):
    settings.OCRREVIEW_MODEL = str(tiny_model_dir)
    default = factories.make_model_version(name=str(tiny_model_dir), source=str(tiny_model_dir))
    child = factories.make_model_version(
        name="child",
        source="/models/child",
        parent=default,
        metrics={"cer": 0.1, "wer": 0.2, "lines": 4, "parent": {"cer": 0.5, "wer": 0.8}},
    )
    event = actions.do_apply_gate(succeeded_run(child, done_export, alice))
    letters.refresh_from_db()
    assert event.kind == PromotionEvent.Kind.PROMOTED and letters.model_version == child


def test_the_frozen_split_is_read_a_chunk_at_a_time_with_the_same_scores(
    letters, tiny_version, done_export, monkeypatch
):
    """A split of thousands of lines read at once is one tensor of gigabytes."""
    lines = splits.evaluation_lines(letters.evaluation_split)
    whole = evaluation.score(tiny_version.source, "", lines, 1)
    sizes = []
    recognize = evaluation.recognize

    def counted(loaded, images, **options):
        sizes.append(len(images))
        return recognize(loaded, images, **options)

    monkeypatch.setattr(evaluation, "recognize", counted)
    monkeypatch.setattr(evaluation, "CHUNK_LINES", 3)
    assert evaluation.score(tiny_version.source, "", lines, 1) == whole
    assert sizes == [3, len(lines) - 3]


def test_the_gate_reads_the_frozen_split_as_the_workers_read(
    client, letters, alice, tiny_version, done_export, monkeypatch
):
    """The workers read with beam search over the collection's n-best; greedy decoding may
    read better or worse, and the gate would judge readings the collection never gets."""
    letters.nbest_size = 3
    letters.save()
    beams = []
    recognize = evaluation.recognize

    def spied(loaded, images, **options):
        beams.append(options["nbest"])
        return recognize(loaded, images, **options)

    monkeypatch.setattr(evaluation, "recognize", spied)

    run = actions.run_training(start(tiny_version, done_export, UNCHANGED, alice).pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert beams and set(beams) == {3}  # the calibration, the parent's and the child's scores
    assert run.result_model.metrics["num_beams"] == 3
    assert "(4 lines, beam search over 3)" in run.log
    assert "validation CER (greedy) " in run.log
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[run.pk])).content.decode()
    assert "read with beam search over 3, as the workers read" in page
    assert "Best validation CER (greedy decoding)" in page


def test_a_frozen_split_with_every_line_reopened_fails_the_run_before_training(
    letters, alice, tiny_version, done_export
):
    frozen = letters.evaluation_split.members.values("line")
    Line.objects.filter(pk__in=frozen).update(status=Line.Status.NEEDS_REVIEW)
    run = actions.run_training(start(tiny_version, done_export, UNCHANGED, alice).pk)
    assert run.status == TrainingRun.Status.FAILED
    assert "every line of the frozen evaluation split was reopened" in run.error
    assert not [event for event in run.history if event.get("event") == "step"]


def test_a_run_whose_worker_died_after_the_gate_ruled_ends_as_it_ruled(
    letters, alice, tiny_version, done_export
):
    """The model is stored and gated in one commit, the run's end in the next: a worker that
    dies between them leaves a run to resume that must not train and store it again."""
    letters.model_version = tiny_version
    letters.save()
    child = factories.make_model_version(
        name=f"{tiny_version.name}-run", source="/models/child", parent=tiny_version
    )
    run = succeeded_run(child, done_export, alice)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.QUEUED)
    run = actions.run_training(run.pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert ModelVersion.objects.filter(parent=tiny_version).get() == child
    assert not [event for event in run.history if event.get("event") == "step"]


def test_a_retrained_model_is_named_after_its_first_ancestor(
    letters, alice, done_export, tiny_model_dir
):
    """The training form offers the active model as the base: a pinned hub name (73 characters)
    suffixed once a generation outgrew the name's column, failing the run after training."""
    pinned = f"microsoft/trocr-base-handwritten@{'0' * 40}"
    base = factories.make_model_version(
        name=f"{pinned}-run3-run17", source=str(tiny_model_dir), status="active"
    )
    run = actions.run_training(start(base, done_export, UNCHANGED, alice).pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.result_model.name == f"{pinned}-run{run.pk}"
    assert actions.child_name("x" * 300, 12) == "x" * 194 + "-run12"


def block_model_uploads() -> Path:
    """A file where the trained models' folder goes: the store refuses the upload."""
    blocked = Path(settings.MEDIA_ROOT) / "models"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("in the way")
    return blocked


def test_a_run_whose_model_cannot_be_stored_is_tried_again_from_its_trained_model(
    letters, alice, tiny_version, done_export
):
    """The store unreachable for a moment after hours of training: the run failed, and its
    trained model and checkpoints were deleted with it."""
    run = start(tiny_version, done_export, replace(UNCHANGED, max_steps=3), alice)
    blocked = block_model_uploads()

    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.QUEUED and run.error == ""
    assert "failed after training" in run.log and "queued again" in run.log
    steps = [e["step"] for e in run.history if e["event"] == "step"]

    blocked.unlink()
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log
    assert "resumed from step 3" in run.log
    assert [e["step"] for e in run.history if e["event"] == "step"] == steps  # not retrained


@pytest.fixture
def worker_stopping():
    """The training worker told to stop, as Celery tells it on SIGTERM."""
    from celery.signals import worker_shutting_down

    from ocrreview.transcription import tasks as recognition_tasks

    worker_shutting_down.send(sender="training@test", sig="SIGTERM", how="Warm", exitcode=0)
    yield
    # The signal told this process's recognition to stop too.
    actions._worker_stopping.clear()
    recognition_tasks._shutting_down.value = False


def test_a_run_whose_worker_is_stopping_is_queued_again_from_its_step(
    letters, alice, tiny_version, done_export, worker_stopping, monkeypatch
):
    """A deploy stops the training worker: killed after its grace period, it lost every step
    since its last checkpoint, and the run waited for a sweep to notice it."""
    run = start(tiny_version, done_export, replace(UNCHANGED, max_steps=3), alice)
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.QUEUED and run.claim is None
    assert "the worker stopped before training; queued again" in run.log

    actions._worker_stopping.clear()  # the worker that takes it next, stopped in its turn
    from recognition import training

    real_step = training.train

    def stopping_after_a_step(*args, **kwargs):
        on_progress = kwargs["on_progress"]

        def progress(event):
            on_progress(event)
            if event.get("event") == "step":
                actions.stop_training_for_shutdown()

        return real_step(*args, **{**kwargs, "on_progress": progress})

    # SIGTERM arriving during the first step, as Celery relays it.
    monkeypatch.setattr(training, "train", stopping_after_a_step)
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.QUEUED and run.claim is None
    assert "the worker stopped at step 1; queued again" in run.log
    assert not run.cancel_requested

    actions._worker_stopping.clear()
    monkeypatch.setattr(training, "train", real_step)
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log
    assert "resumed from step 1" in run.log
    assert [e["step"] for e in run.history if e["event"] == "step"] == [1, 2, 3]


def end_this_database_session() -> None:
    """What a PostgreSQL restart does to the worker's connection, done from another one."""
    from django.db import connection

    config = connection.settings_dict
    pid = connection.connection.info.backend_pid
    with psycopg.connect(
        host=config["HOST"], port=config["PORT"], user=config["USER"], dbname=config["NAME"]
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
def test_a_run_that_loses_the_database_for_a_moment_trains_on(
    letters, alice, tiny_version, done_export, monkeypatch
):
    from recognition import training

    real_train = training.train

    def database_lost_after_the_first_step(*args, **kwargs):
        on_progress = kwargs["on_progress"]

        def progress(event):
            if event == {**event, "event": "step", "step": 1}:
                end_this_database_session()
            on_progress(event)

        return real_train(*args, **{**kwargs, "on_progress": progress})

    monkeypatch.setattr(training, "train", database_lost_after_the_first_step)
    run = start(tiny_version, done_export, replace(UNCHANGED, max_steps=3), alice)
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log
    # The step the database missed is in the history written after it.
    assert [e["step"] for e in run.history if e["event"] == "step"] == [1, 2, 3]


def test_a_run_whose_model_is_never_stored_fails_after_three_tries(
    letters, alice, tiny_version, done_export
):
    run = start(tiny_version, done_export, replace(UNCHANGED, max_steps=3), alice)
    block_model_uploads()
    for _ in range(3):
        run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.FAILED
    assert run.log.count("queued again") == 2
    assert not (Path(settings.OCRREVIEW_MODELS_DIR) / ".runs" / f"run-{run.pk}").exists()


def test_a_run_trained_here_by_a_command_reports_a_failure_after_training(
    letters, alice, tiny_version, done_export
):
    """`manage.py train` waits for its run: queued again, it would wait for a worker."""
    run = start(tiny_version, done_export, replace(UNCHANGED, max_steps=3), alice)
    block_model_uploads()
    run = actions.run_training(run.pk)
    assert run.status == TrainingRun.Status.FAILED
    assert run.error.startswith("NotADirectoryError")  # a file where the models folder goes


def failing_checkpoint_save(monkeypatch, step: int, fault: Exception, times: int | None) -> None:
    """The checkpoint of `step` cannot be saved: `fault` comes instead, `times` times (None:
    every time). A disk cannot be filled safely here, nor the GPU's memory taken."""
    from recognition import training

    real = training._save_checkpoint
    raised = []

    def saving(out_dir, bundle, extra, state):
        if state.step == step and (times is None or len(raised) < times):
            raised.append(step)
            raise fault
        return real(out_dir, bundle, extra, state)

    monkeypatch.setattr(training, "_save_checkpoint", saving)


FULL_DISK = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
PASSING_FAULTS = {
    "a full disk": FULL_DISK,
    "the GPU's memory taken": torch.OutOfMemoryError("CUDA out of memory."),
}
EVERY_STEP = replace(UNCHANGED, max_steps=3, checkpoint_every=1)


@pytest.mark.parametrize("fault", PASSING_FAULTS.values(), ids=PASSING_FAULTS.keys())
def test_a_run_that_meets_a_passing_fault_keeps_its_checkpoint_and_resumes_from_it(
    letters, alice, tiny_version, done_export, monkeypatch, fault
):
    """A disk full for a moment as a checkpoint is saved, or the GPU's memory taken by the
    recognition beside the training: the run failed, and its work and checkpoints were
    deleted with it, hours of training lost."""
    run = start(tiny_version, done_export, EVERY_STEP, alice)
    failing_checkpoint_save(monkeypatch, 2, fault, times=1)

    run = actions.run_training(run.pk, retry=True)
    assert (run.status, run.claim, run.error) == (TrainingRun.Status.QUEUED, None, "")
    assert "queued again, to resume from its last checkpoint" in run.log
    checkpoint = (
        Path(settings.OCRREVIEW_MODELS_DIR) / ".runs" / f"run-{run.pk}" / "out" / "checkpoint"
    )
    saved = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    assert saved["state"]["step"] == 1

    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log
    assert "resumed from step 1" in run.log
    assert [e["step"] for e in run.history if e["event"] == "step"] == [1, 2, 3]


def test_a_passing_fault_that_comes_back_at_the_same_step_fails_the_run_after_three_tries(
    letters, alice, tiny_version, done_export, monkeypatch
):
    run = start(tiny_version, done_export, EVERY_STEP, alice)
    failing_checkpoint_save(monkeypatch, 2, FULL_DISK, times=None)
    for _ in range(3):
        run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.FAILED
    assert run.log.count("queued again") == 2
    assert run.error == (
        "OSError: [Errno 28] No space left on device; 3 tries in a row ended this way at step 2"
    )
    assert not (Path(settings.OCRREVIEW_MODELS_DIR) / ".runs" / f"run-{run.pk}").exists()


OWN_FAULTS = {
    "diverged": Diverged("the training loss is nan at step 2"),
    "a folder it may not write": OSError(errno.EACCES, os.strerror(errno.EACCES)),
}


@pytest.mark.parametrize("fault", OWN_FAULTS.values(), ids=OWN_FAULTS.keys())
def test_a_run_that_fails_for_a_reason_of_its_own_fails_at_once(
    letters, alice, tiny_version, done_export, monkeypatch, fault
):
    run = start(tiny_version, done_export, EVERY_STEP, alice)
    failing_checkpoint_save(monkeypatch, 2, fault, times=None)
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.FAILED
    assert run.error == f"{type(fault).__name__}: {fault}"
    assert "queued again" not in run.log


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to write to")
def test_a_full_disk_is_a_passing_fault_however_a_checkpoint_s_writers_report_it():
    """safetensors (the weights) and torch.save (the optimizer's state) raise no OSError when
    the disk is full; /dev/full answers every write as a full disk does."""
    tensors = {"weights": torch.zeros(4096)}
    writers = {
        "safetensors": lambda: save_file(tensors, "/dev/full"),
        "torch.save": lambda: torch.save(tensors, "/dev/full"),
        "a file": lambda: Path("/dev/full").write_bytes(bytes(1 << 16)),
    }
    for writer, write in writers.items():
        with pytest.raises(Exception) as failed:
            write()
        assert actions._passing_fault(failed.value), (writer, failed.value)
    assert actions._passing_fault(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert not actions._passing_fault(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def sent_with_countdowns(monkeypatch) -> list[int]:
    """The countdowns the training task is sent again with: a test cannot wait them out, nor
    would an eager Celery keep them."""
    countdowns: list[int] = []
    monkeypatch.setattr(
        tasks.train_model, "apply_async", lambda args, countdown: countdowns.append(countdown)
    )
    return countdowns


def test_a_passing_fault_is_tried_again_later_each_time_it_comes_back(
    letters, alice, tiny_version, done_export, monkeypatch, django_capture_on_commit_callbacks
):
    """Sent again at once, the worker took its own message straight back, met the same full
    disk or GPU within seconds, and failed the run, deleting hours of checkpoints, within a
    minute."""
    run = start(tiny_version, done_export, EVERY_STEP, alice)
    failing_checkpoint_save(monkeypatch, 2, FULL_DISK, times=None)
    countdowns = sent_with_countdowns(monkeypatch)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            run = actions.run_training(run.pk, retry=True)
        assert run.status == TrainingRun.Status.QUEUED
        # Waiting for its countdown, it is not taken for a run whose message was lost.
        with django_capture_on_commit_callbacks(execute=True):
            assert actions.do_requeue_abandoned_runs() == 0
    assert countdowns == [30, 60]
    assert "resume from its last checkpoint in 60 s" in run.log
    with django_capture_on_commit_callbacks(execute=True):
        run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.FAILED
    assert countdowns == [30, 60]


def test_a_store_that_stays_down_is_waited_out_with_the_run_s_checkpoint(
    letters, alice, tiny_version, done_export, monkeypatch, django_capture_on_commit_callbacks
):
    """The store's outage is no fault of the run's: it was counted as a stall, and the third
    try failed the run and deleted its checkpoint."""
    run = start(tiny_version, done_export, EVERY_STEP, alice)
    failing_checkpoint_save(monkeypatch, 2, FULL_DISK, times=1)
    countdowns = sent_with_countdowns(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        run = actions.run_training(run.pk, retry=True)
    assert countdowns == [30]

    # A store that cannot be taken down between two steps of a test: its client's error.
    def store_down(run_id, out_dir):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    real_fetch = actions.checkpoints.fetch
    monkeypatch.setattr(actions.checkpoints, "fetch", store_down)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            run = actions.run_training(run.pk, retry=True)
        assert (run.status, run.stalls) == (TrainingRun.Status.QUEUED, 1)
    longest = settings.OCRREVIEW_TRAINING_LEASE_SECONDS - 10
    assert countdowns == [30, longest, longest, longest]

    monkeypatch.setattr(actions.checkpoints, "fetch", real_fetch)
    run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log
    assert "resumed from step 1" in run.log


def end_this_database_session_for(seconds: float, monkeypatch) -> list[bool]:
    """The database gone for a while, as in a failover: this session ended, and new ones
    refused (on a port nothing listens on) until `seconds` have passed. Returns the
    connection attempts since, whether each was refused."""
    from django.db import connection

    end_this_database_session()
    back_at = time.monotonic() + seconds
    real_connect = connection.get_new_connection
    attempts: list[bool] = []

    def connect(params):
        attempts.append(time.monotonic() < back_at)
        return real_connect({**params, "port": closed_port()} if attempts[-1] else params)

    monkeypatch.setattr(connection, "get_new_connection", connect)
    return attempts


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_a_run_without_its_database_asks_again_every_few_seconds_and_says_so_once(
    letters, alice, tiny_version, done_export, monkeypatch, caplog
):
    """Each step tried to connect, logged a warning and closed the connection: thousands of
    lines a minute on a GPU, and a step's worth of connection timeout each."""
    attempts = []
    outage_s = 3.0
    real_should_stop = actions._RunLog.should_stop
    steps = []

    def step_of_a_real_model(log):  # slower, so that the outage spans many steps
        steps.append(1)
        if len(steps) == 2:
            attempts.extend([end_this_database_session_for(outage_s, monkeypatch)])
        time.sleep(outage_s / 20)
        return real_should_stop(log)

    monkeypatch.setattr(actions._RunLog, "should_stop", step_of_a_real_model)
    params = replace(UNCHANGED, max_steps=40, eval_every=1000, checkpoint_every=1000)
    run = start(tiny_version, done_export, params, alice)
    with caplog.at_level("WARNING", logger=actions.logger.name):
        run = actions.run_training(run.pk, retry=True)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log
    lost = [r for r in caplog.records if "lost the database" in r.getMessage()]
    assert len(lost) == 1
    # Not one a step: a report's write perhaps, then one that finds it back.
    assert len(attempts[0]) <= 3, attempts
    assert [e["step"] for e in run.history if e["event"] == "step"][-1] == 40
    # A server that answers nothing holds an attempt this long, not the TCP timeout.
    assert settings.DATABASES["default"]["OPTIONS"]["connect_timeout"] == 5

"""The whole loop on the real stack: the pipeline reads pages with a (random) tiny model,
reviewers correct the lines through the review code, an export is built and a training run
fine-tunes on it on real Celery workers, and the new version's CER on the frozen evaluation
split beats its parent's, so it is promoted and re-reads the lines nobody has reviewed."""

import time

import pytest

from ocrreview.corpus.models import Line
from ocrreview.review.actions import do_save_line
from ocrreview.training import actions
from ocrreview.training.actions import TrainingParams
from ocrreview.training.exports import ExportOptions
from ocrreview.training.models import DatasetExport, PromotionEvent, TrainingRun
from ocrreview.transcription.models import Hypothesis
from ocrreview.transcription.services import do_queue_recognition
from tests import factories
from tests.training.conftest import WORDS, make_rendered_page, worker_settings
from tests.workers import celery_worker


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def finished_export(export: DatasetExport) -> DatasetExport:
    return wait_for(
        lambda: DatasetExport.objects.filter(pk=export.pk, status__in=["done", "failed"]).first(),
        120,
        "the export",
    )


def finished_run(run: TrainingRun) -> TrainingRun:
    return wait_for(
        lambda: TrainingRun.objects.filter(
            pk=run.pk, status__in=["succeeded", "failed", "cancelled"]
        ).first(),
        600,
        "the training run",
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_corrections_retrain_a_better_model(letters, alice, bob, tiny_version):
    letters.model_version = tiny_version
    letters.nbest_size = 2  # beams cost CPU time; two readings are enough to pick from
    letters.save()
    truth: dict[int, str] = {}
    for number in range(9):
        document = factories.make_document(letters, f"Letter {number}")
        words = [WORDS[(number + k) % len(WORDS)] for k in range(4)]
        for line in make_rendered_page(document, words):
            truth[line.pk] = line.text
    Line.objects.update(text="")  # the pipeline has not read them yet
    unreviewed = Line.objects.filter(document__title="Letter 8")

    with celery_worker(
        "default,gpu,training",
        name="loop",
        timeout=120,
        **worker_settings(),
    ):
        do_queue_recognition(Line.objects.all())
        wait_for(
            lambda: not Line.objects.filter(status=Line.Status.PENDING).exists(),
            180,
            "the pipeline to read every line",
        )
        for line in Line.objects.exclude(document__title="Letter 8"):
            best = line.hypotheses.filter(model_version=tiny_version, rank=0).first()
            do_save_line(line, bob, truth[line.pk], expected_version=line.version, hypothesis=best)

        export = actions.do_start_export(
            letters, ExportOptions(seed=1, validation_fraction=0.35), user=alice
        )
        export = finished_export(export)
        assert export.status == DatasetExport.Status.DONE, export.error
        assert export.counts["test"] == 4 and export.counts["validation"] >= 10

        params = TrainingParams(
            train_part="all",
            max_steps=100,
            learning_rate=3e-3,
            batch_size=8,
            eval_every=50,
            warmup_steps=10,
            patience=1,
        )
        run = actions.do_start_training(tiny_version, export, params, user=alice)
        run = finished_run(run)
        print(run.log)
        assert run.status == TrainingRun.Status.SUCCEEDED, run.error
        child = run.result_model
        cer_after, cer_before = child.metrics["cer"], child.metrics["parent"]["cer"]
        print(
            f"frozen split, {child.metrics['lines']} lines: "
            f"cer_before: {cer_before:.3f} cer_after: {cer_after:.3f}"
        )
        assert cer_after < cer_before
        assert child.parent == tiny_version
        assert child.calibration is not None and child.calibration["n"] >= 10
        assert [e for e in run.history if e["event"] == "eval"]
        event = PromotionEvent.objects.get(model_version=child)
        assert event.kind == PromotionEvent.Kind.PROMOTED
        assert event.numbers["cer"] == cer_after and event.numbers["parent_cer"] == cer_before
        letters.refresh_from_db()
        assert letters.model_version == child and run.promoted

        queued = actions.do_rerecognize_unreviewed(letters, child, actor=None)
        assert queued == 4
        wait_for(
            lambda: (
                Hypothesis.objects.filter(line__in=unreviewed, model_version=child).count() >= 4
            ),
            120,
            "re-recognition with the new model",
        )
    reviewed = Line.objects.filter(status=Line.Status.REVIEWED)
    assert reviewed.count() == 32
    assert all(line.text == truth[line.pk] for line in reviewed)

"""A training run's message and its cancellation: a run queued while the broker is down
stands and is sent by the sweep once no worker is busy, a queued run is cancelled at once, a
cancel that comes while the trained model is evaluated or stored keeps no model, and Ctrl+C
on `manage.py train` ends the run rather than leaving it for a sweep to resume."""

import errno
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from ocrreview import storage
from ocrreview.corpus.models import ModelVersion
from ocrreview.training import actions, evaluation
from ocrreview.training.models import TrainingRun
from tests import factories
from tests.training.conftest import succeeded_run
from tests.training.test_training_run import UNCHANGED, start

pytestmark = pytest.mark.django_db
S = TrainingRun.Status


def test_a_run_started_while_the_broker_is_down_stands(
    alice, tiny_version, done_export, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as sent:
        run = actions.do_start_training(tiny_version, done_export, UNCHANGED, user=alice)
    assert len(sent) == 1
    run.refresh_from_db()
    assert run.status == S.QUEUED and run.heartbeat_at is not None


def test_the_sweep_sends_again_the_queued_runs_an_idle_worker_never_took(
    alice, tiny_version, done_export, django_capture_on_commit_callbacks
):
    lost, waiting = (start(tiny_version, done_export, UNCHANGED, alice) for _ in range(2))
    long_ago = timezone.now() - timedelta(seconds=settings.OCRREVIEW_TRAINING_LEASE_SECONDS + 1)
    TrainingRun.objects.filter(pk=lost.pk).update(heartbeat_at=long_ago)
    TrainingRun.objects.filter(pk=waiting.pk).update(heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks() as sent:
        assert actions.do_requeue_abandoned_runs() == 1
    assert len(sent) == 1
    with django_capture_on_commit_callbacks() as sent:
        assert actions.do_requeue_abandoned_runs() == 0  # sent once, not every sweep
    assert not sent


def test_queued_runs_wait_without_a_new_message_while_a_run_trains(
    alice, tiny_version, done_export, django_capture_on_commit_callbacks
):
    training, waiting = (start(tiny_version, done_export, UNCHANGED, alice) for _ in range(2))
    long_ago = timezone.now() - timedelta(hours=3)
    TrainingRun.objects.filter(pk=training.pk).update(status=S.RUNNING, heartbeat_at=timezone.now())
    TrainingRun.objects.filter(pk=waiting.pk).update(heartbeat_at=long_ago)
    with django_capture_on_commit_callbacks() as sent:
        assert actions.do_requeue_abandoned_runs() == 0
    assert not sent


def test_cancelling_a_queued_run_ends_it_at_once(alice, tiny_version, done_export):
    run = start(tiny_version, done_export, UNCHANGED, alice)
    assert actions.do_request_cancel(run)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (S.CANCELLED, True)
    assert run.finished_at is not None and "cancelled while queued" in run.log
    # Its message, should it come after all, trains nothing.
    run = actions.run_training(run.pk)
    assert run.status == S.CANCELLED and not run.history


@pytest.mark.parametrize("moment", ["evaluation", "upload"])
def test_a_cancel_while_the_model_is_evaluated_or_stored_keeps_no_model(
    letters, alice, tiny_version, done_export, monkeypatch, moment
):
    """Steps no longer ask once training is done; the minutes of evaluating and storing the
    model must not end in a promoted model the admin cancelled."""
    letters.model_version = tiny_version
    letters.save()
    run = start(tiny_version, done_export, UNCHANGED, alice)
    real = {"evaluation": evaluation.score, "upload": storage.put_directory}[moment]

    def cancelled_meanwhile(*args, **kwargs):
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
        return real(*args, **kwargs)

    target = {"evaluation": (evaluation, "score"), "upload": (storage, "put_directory")}[moment]
    monkeypatch.setattr(*target, cancelled_meanwhile)

    run = actions.run_training(run.pk)

    assert run.status == S.CANCELLED, run.error
    assert "cancelled before its model was kept" in run.log
    assert not ModelVersion.objects.filter(parent=tiny_version).exists()
    letters.refresh_from_db()
    assert letters.model_version == tiny_version
    assert stored_models() == []


def stored_models() -> list[str]:
    return default_storage.listdir("models")[0] if default_storage.exists("models") else []


def test_an_upload_that_fails_part_way_leaves_no_part_of_the_model_in_storage(
    alice, tiny_version, done_export, monkeypatch
):
    """A disk that fills as the model is stored: the run is tried again, and the retry stores
    a whole model under its own claim, so the part stored must not stay behind."""
    run = start(tiny_version, done_export, UNCHANGED, alice)
    real, stored = storage.put_file, []

    def disk_full_at_the_third_file(name, path):
        if len(stored) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        stored.append(name)
        return real(name, path)

    monkeypatch.setattr(storage, "put_file", disk_full_at_the_third_file)
    run = actions.run_training(run.pk, retry=True)

    assert run.status == S.QUEUED and "No space left on device" in run.log
    assert len(stored) == 2
    assert stored_models() == []


def test_a_worker_given_up_for_dead_in_its_upload_leaves_its_successors_model_alone(
    alice, tiny_version, done_export, monkeypatch
):
    run = start(tiny_version, done_export, UNCHANGED, alice)
    real = storage.put_directory
    successor = {}

    def taken_over_meanwhile(prefix, directory):
        # A sweep gave the run to another worker, which trained and stored its model first.
        TrainingRun.objects.filter(pk=run.pk).update(claim=uuid.uuid4())
        run.refresh_from_db()
        successor["folder"] = actions.stored_model_folder(run)
        default_storage.save(f"{successor['folder']}/config.json", ContentFile(b"successor"))
        return real(prefix, directory)

    monkeypatch.setattr(storage, "put_directory", taken_over_meanwhile)
    actions.run_training(run.pk)

    with default_storage.open(f"{successor['folder']}/config.json") as kept:
        assert kept.read() == b"successor"
    assert stored_models() == [successor["folder"].removeprefix("models/")]
    assert not ModelVersion.objects.filter(parent=tiny_version).exists()


def test_ctrl_c_ends_the_run_it_interrupts(alice, tiny_version, done_export, monkeypatch):
    run = start(tiny_version, done_export, UNCHANGED, alice)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as Python raises it in the main thread on Ctrl+C

    monkeypatch.setattr(evaluation, "load_for_training", interrupted)
    with pytest.raises(KeyboardInterrupt):
        actions.run_training(run.pk)
    run.refresh_from_db()
    assert run.status == S.CANCELLED and "interrupted (Ctrl+C)" in run.log


def test_a_run_queued_again_with_its_model_gated_is_not_cancelled(
    letters, alice, tiny_version, done_export
):
    """Its worker died after the gate ruled; the next worker ends it as succeeded."""
    child = factories.make_model_version(name="child", source="/models/child", parent=tiny_version)
    run = succeeded_run(child, done_export, alice)
    TrainingRun.objects.filter(pk=run.pk).update(status=S.QUEUED)
    assert not actions.do_request_cancel(run)
    assert actions.run_training(run.pk).status == S.SUCCEEDED

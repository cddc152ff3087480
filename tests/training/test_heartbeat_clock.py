"""Training runs' and exports' heartbeats by the database's clock: a worker whose clock is
off writes heartbeats the sweep reads as they are, and a sweeping worker whose clock is off
neither gives up a live run nor keeps a dead one. The skew is this process's Python clock
(timezone.now), set an hour either way; the database's clock is the one every worker
shares."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection

from ocrreview.db_clock import database_now
from ocrreview.training import actions
from ocrreview.training.models import EXPORT_SILENCE_SECONDS, DatasetExport, TrainingRun

SKEW = timedelta(hours=1)
AHEAD, BEHIND = SKEW, -SKEW
LEASE_S = 120

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lease(settings):
    settings.OCRREVIEW_TRAINING_LEASE_SECONDS = LEASE_S


def skew(clock, offset: timedelta) -> None:
    clock.set(clock.real() + offset)


@pytest.fixture
def export(letters, alice):
    return DatasetExport.objects.create(collection=letters, created_by=alice)


@pytest.fixture
def run(tiny_version, export):
    """A run a worker holds, before its first heartbeat."""
    return TrainingRun.objects.create(
        base_model=tiny_version,
        dataset=export,
        params={},
        status=TrainingRun.Status.RUNNING,
        claim=uuid.uuid4(),
        worker="training@skewed",
    )


def beat(run: TrainingRun) -> None:
    """The worker's heartbeat, as its beating thread sends it."""
    assert actions._heartbeat(TrainingRun.objects.filter(pk=run.pk, claim=run.claim))() == 1


def silent_for(model, pk: int, seconds: int) -> None:
    """The last heartbeat came `seconds` ago, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET heartbeat_at = statement_timestamp() "
            "- make_interval(secs => %s) WHERE id = %s",
            [seconds, pk],
        )


def test_a_worker_whose_clock_is_behind_beats_a_heartbeat_the_sweep_finds_alive(clock, run):
    skew(clock, BEHIND)
    beat(run)
    clock.set(None)
    assert abs(TrainingRun.objects.get(pk=run.pk).heartbeat_at - database_now()) < timedelta(
        minutes=1
    )
    assert actions.do_requeue_abandoned_runs() == 0
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.RUNNING


def test_a_sweep_whose_clock_is_ahead_leaves_a_live_run_to_its_worker(clock, run):
    beat(run)
    skew(clock, AHEAD)
    assert not TrainingRun.objects.abandoned().exists()
    assert actions.do_requeue_abandoned_runs() == 0
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.RUNNING


def test_a_sweep_whose_clock_is_behind_queues_again_a_run_whose_worker_died(
    clock, run, django_capture_on_commit_callbacks
):
    beat(run)
    silent_for(TrainingRun, run.pk, LEASE_S + 1)
    skew(clock, BEHIND)
    with django_capture_on_commit_callbacks() as queued:
        assert actions.do_requeue_abandoned_runs() == 1
    assert len(queued) == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and run.claim is None
    # The lost-message clock starts at the database's now, not an hour before it.
    assert abs(run.heartbeat_at - database_now()) < timedelta(minutes=1)


@pytest.mark.parametrize("offset", [AHEAD, BEHIND], ids=["ahead", "behind"])
def test_the_export_sweep_reads_heartbeats_by_the_database_s_clock(
    clock, export, offset, django_capture_on_commit_callbacks
):
    """Live: beaten a second ago. Dead: silent a second past EXPORT_SILENCE_SECONDS."""
    DatasetExport.objects.filter(pk=export.pk).update(status=DatasetExport.Status.RUNNING)
    silent_for(DatasetExport, export.pk, 1)
    skew(clock, offset)
    with django_capture_on_commit_callbacks():
        assert actions.do_requeue_abandoned_exports() == 0
    silent_for(DatasetExport, export.pk, EXPORT_SILENCE_SECONDS + 1)
    with django_capture_on_commit_callbacks() as queued:
        assert actions.do_requeue_abandoned_exports() == 1
    assert len(queued) == 1
    assert DatasetExport.objects.get(pk=export.pk).status == DatasetExport.Status.QUEUED

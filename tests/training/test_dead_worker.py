"""A training run whose worker was killed with SIGKILL is queued again by the next training
worker's sweep once its heartbeat stops, and resumes from its last checkpoint, saying so; a
run another live worker holds is left to it, and a run begun on another host resumes from the
checkpoint kept in S3 storage. Real PostgreSQL, Redis, S3 server and worker processes."""

import os
import re
import signal
import threading
import time
from dataclasses import asdict
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.utils import timezone

from ocrreview.training import actions
from ocrreview.training.actions import TrainingParams
from ocrreview.training.models import DatasetExport, TrainingRun
from tests.training.conftest import worker_settings
from tests.training.test_exports import export_now
from tests.workers import celery_worker

LEASE_S = 12
SWEEP_S = 1
# From the run given up for dead to the successor's claim: its sweep, and the message's trip.
TAKE_OVER_S = SWEEP_S + 5
# Enough that the run is still going once the successor has started beside it.
STEPS = 120


def steps_done(run_id: int) -> int:
    history = TrainingRun.objects.get(pk=run_id).history
    return max((e["step"] for e in history if e.get("event") == "step"), default=0)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_and_take_over(
    collection, user, base, doomed_env: dict[str, str], successor_env: dict[str, str]
) -> TrainingRun:
    """Start a run on a training worker, kill -9 it past two checkpoints, and let the other
    worker, started beforehand, take the run over and finish it. Asserts what the log says of
    the kill and that each step is in the history once; returns the finished run."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    export = export_now(collection, user)
    assert export.status == DatasetExport.Status.DONE, export.error
    timing = {
        "OCRREVIEW_TRAINING_LEASE_SECONDS": str(LEASE_S),
        "OCRREVIEW_SWEEP_SECONDS": str(SWEEP_S),
    }
    params = TrainingParams(
        max_steps=STEPS,
        batch_size=2,
        learning_rate=1e-3,
        warmup_steps=0,
        eval_every=50,
        checkpoint_every=10,
        patience=None,
    )
    with celery_worker("training", name="doomed-trainer", **doomed_env, **timing) as doomed:
        run = actions.do_start_training(base, export, params, user=user)
        wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, worker=doomed.hostname).exists(),
            120,
            "the first worker to take the run",
        )
        # Up and idle before the kill, however long a worker takes to start on a busy
        # machine: what brings the run back is then its periodic sweep.
        with celery_worker("training", name="successor", **successor_env, **timing) as successor:
            wait_for(lambda: steps_done(run.pk) >= 25, 120, "training past two checkpoints")
            os.killpg(doomed.process.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            doomed.process.wait()
            run.refresh_from_db()
            assert run.status == TrainingRun.Status.RUNNING and run.worker == doomed.hostname
            stopped_at = steps_done(run.pk)
            assert stopped_at < STEPS, "the run finished before its worker was killed"
            wait_for(
                lambda: TrainingRun.objects.filter(pk=run.pk, worker=successor.hostname).exists(),
                LEASE_S + TAKE_OVER_S,
                "the successor to take the run over",
            )
            taken_after = time.monotonic() - killed_at
            wait_for(
                lambda: TrainingRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(),
                300,
                "the resumed run to finish",
            )
    print(f"run taken over {taken_after:.1f} s after the kill")
    run.refresh_from_db()
    print(run.log)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert f"stopped answering at step {stopped_at}" in run.log
    resumed = re.findall(r"resumed from step (\d+)", run.log)
    assert len(resumed) == 1
    checkpoint = int(resumed[0])
    assert checkpoint % 10 == 0 and 20 <= checkpoint <= stopped_at
    # Each step once in the history: the dead worker's steps after its checkpoint are replaced.
    steps = [e["step"] for e in run.history if e["event"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS
    assert run.result_model.metrics["steps"] == STEPS
    return run


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_was_killed_resumes_from_its_checkpoint_on_the_next_worker(
    letters, alice, tiny_version, reviewed_letters
):
    kill_and_take_over(letters, alice, tiny_version, worker_settings(), worker_settings())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_resumes_on_another_host_from_the_checkpoint_kept_in_storage(
    s3_storage, tmp_path, letters, alice, tiny_version, reviewed_letters
):
    """Two training hosts that share no disk, only the S3 bucket."""

    def host(name: str) -> dict[str, str]:
        for folder in ("media", "models", "var"):
            (tmp_path / name / folder).mkdir(parents=True)
        return {
            **worker_settings(),
            "MEDIA_ROOT": str(tmp_path / name / "media"),
            "OCRREVIEW_MODELS_DIR": str(tmp_path / name / "models"),
            "OCRREVIEW_VAR_DIR": str(tmp_path / name / "var"),
        }

    run = kill_and_take_over(letters, alice, tiny_version, host("a"), host("b"))
    assert re.search(r"the checkpoint of step \d+ fetched from storage", run.log)
    bucket = s3_storage.client().list_objects_v2(Bucket=settings.OCRREVIEW_S3_BUCKET)
    kept = [o["Key"] for o in bucket.get("Contents", [])]
    assert not [key for key in kept if key.startswith("training-runs/")]  # deleted at the end


@pytest.mark.django_db
def test_the_sweep_queues_only_runs_whose_heartbeat_stopped(
    letters, alice, tiny_version, reviewed_letters, django_capture_on_commit_callbacks
):
    export = export_now(letters, alice)
    params = asdict(TrainingParams(max_steps=1))
    now = timezone.now()
    lease = timedelta(seconds=settings.OCRREVIEW_TRAINING_LEASE_SECONDS)

    def running(heartbeat_at, history=()) -> TrainingRun:
        return TrainingRun.objects.create(
            base_model=tiny_version,
            dataset=export,
            params=params,
            status=TrainingRun.Status.RUNNING,
            claim="00000000-0000-0000-0000-000000000001",
            worker="training@gone",
            heartbeat_at=heartbeat_at,
            history=list(history),
        )

    dead = running(now - lease - timedelta(seconds=1), [{"event": "step", "step": 600}])
    alive = running(now - lease + timedelta(seconds=5))

    with django_capture_on_commit_callbacks() as queued:
        assert actions.do_requeue_abandoned_runs() == 1
    assert len(queued) == 1  # its message to the training queue

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == TrainingRun.Status.QUEUED and dead.claim is None
    assert "training@gone stopped answering at step 600" in dead.log
    assert alive.status == TrainingRun.Status.RUNNING and alive.log == ""
    # A message for the live run (one redelivered long after) leaves it to its worker.
    assert actions.run_training(alive.pk).worker == "training@gone"
    alive.refresh_from_db()
    assert alive.status == TrainingRun.Status.RUNNING and alive.log == ""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_given_up_for_dead_stops_without_touching_the_run(
    letters, alice, tiny_version, reviewed_letters
):
    """Its heartbeat late (a stalled machine, not a dead one), the worker finds the run
    queued again by a sweep: it stops training, and neither finishes the run nor deletes
    the checkpoint its successor resumes from."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    export = export_now(letters, alice)
    params = TrainingParams(
        max_steps=2000, batch_size=2, eval_every=1000, checkpoint_every=5, patience=None
    )
    run = actions.do_start_training(tiny_version, export, params, user=alice, queue=False)
    outcome: list[TrainingRun] = []

    def stalled_worker() -> None:
        try:
            outcome.append(actions.run_training(run.pk))
        finally:
            connections.close_all()

    stalled = threading.Thread(target=stalled_worker)
    stalled.start()
    try:
        wait_for(lambda: steps_done(run.pk) >= 10, 120, "the first checkpoints")
        lease = timedelta(seconds=settings.OCRREVIEW_TRAINING_LEASE_SECONDS)
        TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - 2 * lease)
        assert actions.do_requeue_abandoned_runs() == 1
    finally:
        stalled.join(60)
    assert not stalled.is_alive(), "the stalled worker kept training"
    assert outcome[0].status == TrainingRun.Status.QUEUED
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and run.finished_at is None
    assert run.log.endswith("queued again, to resume from its last checkpoint\n")
    assert steps_done(run.pk) < 2000
    checkpoint = settings.OCRREVIEW_MODELS_DIR / ".runs" / f"run-{run.pk}" / "out" / "checkpoint"
    assert (checkpoint / "trainer_state.pt").exists()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.mark.django_db
def test_a_run_whose_workers_die_at_the_same_step_fails_and_one_that_gains_steps_goes_on(
    letters, alice, tiny_version, reviewed_letters, django_capture_on_commit_callbacks
):
    """A worker killed for memory at the same step each time: the run was resumed into the
    same death every lease, and held the training worker from every other run."""
    export = export_now(letters, alice)
    params = asdict(TrainingParams(max_steps=1000))
    stuck, progressing = (
        TrainingRun.objects.create(base_model=tiny_version, dataset=export, params=params)
        for _ in range(2)
    )
    long_ago = timezone.now() - timedelta(seconds=settings.OCRREVIEW_TRAINING_LEASE_SECONDS + 1)
    for death in range(3):
        TrainingRun.objects.filter(pk=stuck.pk).update(
            status=TrainingRun.Status.RUNNING,
            heartbeat_at=long_ago,
            history=[{"event": "step", "step": 40}],
        )
        TrainingRun.objects.filter(pk=progressing.pk).update(
            status=TrainingRun.Status.RUNNING,
            heartbeat_at=long_ago,
            history=[{"event": "step", "step": 40 * (death + 1)}],
        )
        with django_capture_on_commit_callbacks():
            actions.do_requeue_abandoned_runs()
    stuck.refresh_from_db()
    progressing.refresh_from_db()
    assert stuck.status == TrainingRun.Status.FAILED and stuck.finished_at is not None
    assert stuck.error.startswith("its worker died 3 times at step 40")
    assert stuck.log.count("queued again") == 2
    assert progressing.status == TrainingRun.Status.QUEUED

"""One worker at a time builds an export: a message given twice builds nothing more, a worker
silent past EXPORT_SILENCE_SECONDS is given up for dead by the sweep, and a worker given up
that comes back stores nothing: not the finished zip's name, nor a failure."""

import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from ocrreview.training import actions, exports
from ocrreview.training.exports import ExportError, ExportOptions
from ocrreview.training.models import EXPORT_SILENCE_SECONDS, DatasetExport
from tests.training.conftest import EXPORT_FORM, export_zip

pytestmark = pytest.mark.django_db
S = DatasetExport.Status


def queued(collection, user) -> DatasetExport:
    return DatasetExport.objects.create(
        collection=collection, created_by=user, formats=ExportOptions().formats
    )


def stored_exports() -> list[str]:
    return (
        sorted(default_storage.listdir("exports")[1]) if default_storage.exists("exports") else []
    )


def test_a_message_for_an_export_another_worker_builds_builds_nothing(letters, alice):
    export = queued(letters, alice)
    claim = "00000000-0000-0000-0000-000000000001"
    DatasetExport.objects.filter(pk=export.pk).update(
        status=S.RUNNING, claim=claim, heartbeat_at=timezone.now()
    )
    assert actions.run_export(export.pk).path == ""
    export.refresh_from_db()
    assert (export.status, str(export.claim), export.path) == (S.RUNNING, claim, "")


def test_the_sweep_queues_again_exports_whose_worker_went_silent_or_message_was_lost(
    letters, alice, django_capture_on_commit_callbacks
):
    silent, alive, done, lost, waiting = (queued(letters, alice) for _ in range(5))
    long_ago = timezone.now() - timedelta(seconds=EXPORT_SILENCE_SECONDS + 1)
    DatasetExport.objects.filter(pk=silent.pk).update(status=S.RUNNING, heartbeat_at=long_ago)
    DatasetExport.objects.filter(pk=alive.pk).update(status=S.RUNNING, heartbeat_at=timezone.now())
    DatasetExport.objects.filter(pk=done.pk).update(status=S.DONE, heartbeat_at=long_ago)
    # Queued that long ago, and no worker took it: its message was lost.
    DatasetExport.objects.filter(pk=lost.pk).update(heartbeat_at=long_ago)
    DatasetExport.objects.filter(pk=waiting.pk).update(heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks() as queued_messages:
        assert actions.do_requeue_abandoned_exports() == 2
    assert len(queued_messages) == 2
    statuses = dict(DatasetExport.objects.values_list("pk", "status"))
    assert statuses == {
        silent.pk: S.QUEUED,
        alive.pk: S.RUNNING,
        done.pk: S.DONE,
        lost.pk: S.QUEUED,
        waiting.pk: S.QUEUED,
    }
    with django_capture_on_commit_callbacks():
        assert actions.do_requeue_abandoned_exports() == 0  # each is queued anew, not again


def test_an_export_started_while_the_broker_is_down_stands(
    client, letters, alice, reviewed_letters, broker_down, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        response = client.post(reverse("training_start_export", args=[letters.pk]), EXPORT_FORM)
    assert response.status_code in (200, 302), response.content
    assert len(sent) == 1
    export = DatasetExport.objects.get()
    assert export.status == S.QUEUED and export.heartbeat_at is not None


@pytest.mark.parametrize("moment", ["before its first progress", "after storing its zip"])
def test_a_worker_given_up_for_dead_stores_nothing_over_its_successors_export(
    letters, alice, reviewed_letters, monkeypatch, moment
):
    export = queued(letters, alice)
    build = exports.build_export
    successor: list[DatasetExport] = []

    def given_up_and_built_meanwhile() -> None:
        stale = timezone.now() - timedelta(seconds=EXPORT_SILENCE_SECONDS + 1)
        DatasetExport.objects.filter(pk=export.pk).update(heartbeat_at=stale)
        assert actions.do_requeue_abandoned_exports() == 1
        monkeypatch.setattr(exports, "build_export", build)
        successor.append(actions.run_export(export.pk))

    def slow_build(export, on_progress):
        if moment == "before its first progress":
            given_up_and_built_meanwhile()
            return build(export, on_progress)
        counts = build(export, on_progress)
        given_up_and_built_meanwhile()
        return counts

    monkeypatch.setattr(exports, "build_export", slow_build)
    actions.run_export(export.pk)

    (built,) = successor
    export.refresh_from_db()
    assert (export.status, export.path, export.claim) == (S.DONE, built.path, built.claim)
    assert stored_exports() == [built.path.removeprefix("exports/")]
    with export_zip(export) as archive:
        assert "export.json" in archive.namelist()


def test_a_worker_given_up_for_dead_cannot_fail_the_finished_export(
    letters, alice, reviewed_letters, monkeypatch
):
    export = queued(letters, alice)
    build = exports.build_export

    def built_meanwhile_then_failing(export, on_progress):
        DatasetExport.objects.filter(pk=export.pk).update(
            heartbeat_at=timezone.now() - timedelta(seconds=EXPORT_SILENCE_SECONDS + 1)
        )
        actions.do_requeue_abandoned_exports()
        monkeypatch.setattr(exports, "build_export", build)
        actions.run_export(export.pk)
        raise ExportError("the disk filled up")

    monkeypatch.setattr(exports, "build_export", built_meanwhile_then_failing)
    actions.run_export(export.pk)
    export.refresh_from_db()
    assert (export.status, export.error) == (S.DONE, "")


@pytest.mark.django_db(transaction=True)
def test_an_export_slow_to_zip_and_store_keeps_its_claim(
    letters, alice, reviewed_letters, monkeypatch
):
    """Writing the zip's large files, its checksum and its upload report no progress; the
    worker is alive all along, and a sweep must not give its export to another."""
    monkeypatch.setattr(actions, "EXPORT_BEAT_SECONDS", 0.1)
    export = queued(letters, alice)
    build = exports.build_export
    given_up_meanwhile = []

    def slow_to_store(export, on_progress):
        counts = build(export, on_progress)
        silence = timedelta(seconds=EXPORT_SILENCE_SECONDS + 1)
        DatasetExport.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - silence)
        time.sleep(1)  # ten beats
        given_up_meanwhile.append(DatasetExport.objects.abandoned().exists())
        return counts

    monkeypatch.setattr(exports, "build_export", slow_to_store)
    export = actions.run_export(export.pk)
    assert given_up_meanwhile == [False]
    assert export.status == S.DONE


def test_an_export_whose_workers_keep_dying_fails_with_the_likely_reason(
    letters, alice, django_capture_on_commit_callbacks
):
    """Killed for memory at the same place every time, it was rebuilt every sweep for ever."""
    export = queued(letters, alice)
    long_ago = timezone.now() - timedelta(seconds=EXPORT_SILENCE_SECONDS + 1)
    for requeued in (1, 1, 0):
        DatasetExport.objects.filter(pk=export.pk).update(status=S.RUNNING, heartbeat_at=long_ago)
        with django_capture_on_commit_callbacks():
            assert actions.do_requeue_abandoned_exports() == requeued
    export.refresh_from_db()
    assert export.status == S.FAILED
    assert export.error.startswith("its worker died 3 times while building it")

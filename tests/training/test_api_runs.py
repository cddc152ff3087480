"""POST/GET /api/collections/<id>/training/runs/, GET /api/training/runs/<id>/ and its
cancel: admins fine-tune on a finished export and follow the loss and CER curves."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ocrreview.corpus.models import ModelVersion
from ocrreview.training.models import DatasetExport, TrainingRun
from ocrreview.transcription.services import default_model_version
from tests.factories import post_json
from tests.factories import token_headers as auth


def start(client, collection, user, body):
    return post_json(client, reverse("api_training_runs", args=[collection.pk]), user, body)


@pytest.fixture
def active_model(letters, tiny_version):
    letters.model_version = tiny_version
    letters.save()
    return tiny_version


@pytest.mark.django_db
def test_an_admin_starts_a_run_from_the_collections_model_on_the_latest_export(
    client, alice, letters, active_model, done_export, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = start(client, letters, alice, {"max_steps": 40, "learning_rate": 1e-4})
    assert response.status_code == 202
    body = response.json()
    assert (body["base_model"], body["dataset"], body["status"]) == (
        active_model.pk,
        done_export.pk,
        "queued",
    )
    assert body["params"]["max_steps"] == 40 and body["params"]["epochs"] == 10
    assert len(queued) == 1


@pytest.mark.django_db
def test_a_collection_that_chose_no_model_trains_from_the_default_it_reads_with(
    client, alice, letters, done_export, tiny_model
):
    assert letters.model_version is None
    response = start(client, letters, alice, {"max_steps": 40})
    assert response.status_code == 202, response.json()
    base = ModelVersion.objects.get(pk=response.json()["base_model"])
    assert base == default_model_version()


@pytest.mark.django_db
def test_a_run_reports_its_curves_and_a_finished_run_cannot_be_cancelled(
    client, alice, letters, finished_run
):
    headers = auth(alice)
    body = client.get(reverse("api_training_run", args=[finished_run.pk]), headers=headers).json()
    assert body["collection"] == letters.pk and body["status"] == "succeeded"
    assert {"event": "eval", "step": 20, "cer": 0.7} in body["history"]
    listed = client.get(reverse("api_training_runs", args=[letters.pk]), headers=headers).json()
    assert [r["id"] for r in listed["results"]] == [finished_run.pk]
    response = client.post(reverse("api_training_cancel", args=[finished_run.pk]), headers=headers)
    assert response.status_code == 409 and "succeeded" in response.json()["error"]


@pytest.mark.django_db
def test_a_running_run_names_its_worker_and_its_last_beat(client, alice, finished_run):
    """So that a script watching a run can tell a slow step from a dead worker."""
    beat = timezone.now() - timedelta(minutes=7)
    running = TrainingRun.objects.create(
        base_model=finished_run.base_model,
        dataset=finished_run.dataset,
        created_by=alice,
        status=TrainingRun.Status.RUNNING,
        worker="trainer@gpu-1",
        heartbeat_at=beat,
    )
    body = client.get(reverse("api_training_run", args=[running.pk]), headers=auth(alice)).json()
    assert body["worker"] == "trainer@gpu-1"
    assert parse_datetime(body["heartbeat_at"]) == beat


@pytest.mark.django_db
def test_a_queued_run_is_cancelled(client, alice, finished_run):
    queued = TrainingRun.objects.create(
        base_model=finished_run.base_model, dataset=finished_run.dataset, created_by=alice
    )
    response = client.post(reverse("api_training_cancel", args=[queued.pk]), headers=auth(alice))
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    assert response.json()["status"] == "cancelled"  # no worker has to take it first


@pytest.mark.django_db
@pytest.mark.parametrize("who, code", [("bob", 403), ("charlie", 404)])
def test_runs_are_closed_to_reviewers_and_outsiders(
    client, bob, charlie, letters, finished_run, who, code
):
    headers = auth({"bob": bob, "charlie": charlie}[who])
    assert (
        client.get(reverse("api_training_run", args=[finished_run.pk]), headers=headers).status_code
        == code
    )
    cancel = reverse("api_training_cancel", args=[finished_run.pk])
    assert client.post(cancel, headers=headers).status_code == code
    assert not TrainingRun.objects.filter(cancel_requested=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"train_part": "head"}, "train_part"),
        ({"epochs": "many"}, "epochs"),
        ({"batch_size": [8]}, "batch_size"),
        ({"base": 999999}, "base"),
    ],
)
def test_a_bad_run_request_is_a_400_naming_the_field(
    client, alice, letters, active_model, done_export, body, field
):
    response = start(client, letters, alice, body)
    assert response.status_code == 400 and field in response.json()["fields"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_without_a_finished_export_there_is_nothing_to_train_on(
    client, alice, letters, active_model
):
    DatasetExport.objects.create(collection=letters, created_by=alice)  # still queued
    response = start(client, letters, alice, {})
    assert response.status_code == 400 and "dataset" in response.json()["fields"]

"""The admin pages: who sees what, live status fragments, download, override and
re-recognition, and bad form data (the worker-backed flow is in test_browser)."""

import hashlib
from datetime import timedelta

import lxml.html
import pytest
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.models import Line, ModelVersion, ModelVersionQuerySet
from ocrreview.training import actions
from ocrreview.training.charts import history_chart
from ocrreview.training.exports import ExportOptions
from ocrreview.training.models import (
    EXPORT_SILENCE_SECONDS,
    DatasetExport,
    EvaluationSplit,
    PromotionEvent,
    TrainingRun,
)
from ocrreview.transcription.models import RecognitionRequest
from ocrreview.transcription.services import default_model_name
from tests import factories
from tests.factories import post_json
from tests.training.conftest import EXPORT_FORM, succeeded_run

HX = {"HTTP_HX_REQUEST": "true"}
CALIBRATED = {"method": "platt-logit", "a": 1.2, "b": -0.3}


@pytest.mark.parametrize(
    "who, status", [("alice", 200), ("staff", 200), ("bob", 403), ("charlie", 404)]
)
def test_only_collection_admins_see_the_training_page(
    client, letters, alice, bob, charlie, staff, who, status
):
    client.force_login({"alice": alice, "bob": bob, "charlie": charlie, "staff": staff}[who])
    assert client.get(reverse("training_home", args=[letters.pk])).status_code == status


def test_anonymous_users_are_sent_to_log_in(client, letters):
    response = client.get(reverse("training_home", args=[letters.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("who, status", [("bob", 403), ("charlie", 404)])
def test_exports_and_runs_are_closed_to_non_admins(
    client, bob, charlie, done_export, finished_run, who, status
):
    client.force_login({"bob": bob, "charlie": charlie}[who])
    for name, pk in [
        ("training_export", done_export.pk),
        ("training_export_download", done_export.pk),
        ("training_run", finished_run.pk),
    ]:
        assert client.get(reverse(name, args=[pk])).status_code == status
    for name in ("training_cancel", "training_override", "training_rerecognize"):
        response = client.post(reverse(name, args=[finished_run.pk]), {"reason": "x"})
        assert response.status_code == status
    finished_run.refresh_from_db()
    assert not finished_run.promoted


def test_the_download_is_the_checksummed_zip(client, alice, done_export):
    client.force_login(alice)
    response = client.get(reverse("training_export_download", args=[done_export.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == done_export.checksum
    page = client.get(reverse("training_export", args=[done_export.pk]))
    assert done_export.checksum in page.content.decode()


def test_an_unfinished_export_cannot_be_downloaded(client, letters, alice):
    export = DatasetExport.objects.create(collection=letters, created_by=alice)
    client.force_login(alice)
    response = client.get(reverse("training_export_download", args=[export.pk]))
    assert response.status_code == 404
    # While it is queued, the status fragment keeps polling.
    fragment = client.get(reverse("training_export", args=[export.pk]), **HX).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "<html" not in fragment


def test_a_running_export_whose_worker_stopped_reporting_says_so(client, letters, alice):
    """The worker building it was killed and no default worker is left whose sweep would
    queue it again: the page showed "Running" at its last progress for good."""
    silence = timedelta(seconds=EXPORT_SILENCE_SECONDS)
    export = DatasetExport.objects.create(
        collection=letters,
        created_by=alice,
        status=DatasetExport.Status.RUNNING,
        progress=0.4,
        heartbeat_at=timezone.now() - silence + timedelta(seconds=60),
    )
    client.force_login(alice)
    url = reverse("training_export", args=[export.pk])
    assert 'id="export-waiting"' not in client.get(url, **HX).content.decode()  # reporting still

    DatasetExport.objects.filter(pk=export.pk).update(
        heartbeat_at=timezone.now() - silence - timedelta(seconds=60)
    )
    page = lxml.html.fromstring(client.get(url, **HX).content)
    waiting = page.get_element_by_id("export-waiting").text_content()
    assert waiting.startswith("Its worker has not answered since ")
    assert "A default worker's sweep queues the export again" in waiting
    assert f"fails it once {actions.MAX_LOST_WORKERS} workers have died" in waiting
    assert "No worker is listening on the `default` queue" in waiting


@pytest.mark.parametrize(
    "data, message",
    [
        ({"formats": []}, "This field is required"),
        ({"formats": ["docx"]}, "Select a valid choice"),
        ({"min_confidence": "high"}, "Enter a number"),
        ({"test_fraction": "2"}, "less than or equal to 0.9"),
        ({"seed": "3000000000"}, "less than or equal to 2147483647"),
    ],
)
def test_bad_export_forms_are_refused_with_a_message(client, letters, alice, data, message):
    client.force_login(alice)
    response = client.post(
        reverse("training_start_export", args=[letters.pk]), {**EXPORT_FORM, **data}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not DatasetExport.objects.exists()


def test_a_document_of_another_collection_cannot_be_exported(client, letters, ledgers, alice):
    other = factories.make_document(ledgers, "Not yours")
    client.force_login(alice)
    response = client.post(
        reverse("training_start_export", args=[letters.pk]),
        {
            "documents": [other.pk],
            **EXPORT_FORM,
        },
    )
    assert response.status_code == 400 and not DatasetExport.objects.exists()


def test_with_no_reviewed_lines_the_export_button_is_disabled_and_a_post_refused(
    client, letters, alice, bob, django_capture_on_commit_callbacks
):
    """A newcomer's first export failed on its worker: say why before, and refuse it anyway."""
    document = factories.make_document(letters)
    page = factories.make_page(document)
    read = factories.make_line(page, 0, status=Line.Status.NEEDS_REVIEW, text="ab")
    # Not ground truth either: reviewed but unclear.
    factories.make_line(page, 1, status=Line.Status.REVIEWED, text="cd", unclear=True)
    client.force_login(alice)
    url = reverse("training_home", args=[letters.pk])
    page_html = lxml.html.fromstring(client.get(url).content)
    (button,) = page_html.xpath("//form[contains(@action, '/exports/')]//button")
    assert button.get("disabled") is not None
    assert "There are no reviewed lines yet" in page_html.get_element_by_id("export-refusal").text
    with django_capture_on_commit_callbacks() as queued:
        refused = client.post(reverse("training_start_export", args=[letters.pk]), EXPORT_FORM)
    assert refused.status_code == 400 and "no reviewed lines yet" in refused.content.decode()
    assert not DatasetExport.objects.exists() and not queued
    api = client.post(
        reverse("api_exports", args=[letters.pk]),
        {"formats": ["text"]},
        content_type="application/json",
        headers=factories.token_headers(alice),
    )
    assert api.status_code == 400 and "no reviewed lines yet" in api.json()["error"]
    # Once a person reviewed a line, the button is offered again.
    Line.objects.filter(pk=read.pk).update(status=Line.Status.REVIEWED)
    page_html = lxml.html.fromstring(client.get(url).content)
    (button,) = page_html.xpath("//form[contains(@action, '/exports/')]//button")
    assert button.get("disabled") is None and not page_html.xpath("//*[@id='export-refusal']")


def test_bad_training_forms_are_refused_with_a_message(
    client, letters, alice, tiny_version, done_export
):
    client.force_login(alice)
    form = {
        "base": tiny_version.pk,
        "dataset": done_export.pk,
        "train_part": "decoder",
        "epochs": "1",
        "learning_rate": "fast",
        "batch_size": "8",
        "grad_accum": "1",
        "eval_every": "10",
    }
    response = client.post(reverse("training_start_run", args=[letters.pk]), form)
    assert response.status_code == 400 and "Enter a number" in response.content.decode()
    failed = DatasetExport.objects.create(collection=letters, status="failed")
    form.update(learning_rate="0.001", dataset=failed.pk)
    response = client.post(reverse("training_start_run", args=[letters.pk]), form)
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_training_form_offers_shared_and_own_models_only(
    client, letters, ledgers, alice, tiny_version, finished_run
):
    theirs = factories.make_model_version(name="ledgers-secret", parent=tiny_version)
    ledger_export = DatasetExport.objects.create(collection=ledgers, status="done")
    TrainingRun.objects.create(base_model=tiny_version, dataset=ledger_export, result_model=theirs)
    client.force_login(alice)
    response = client.get(reverse("training_home", args=[letters.pk]))
    offered = {v.name for v in response.context["training_form"].fields["base"].queryset}
    # The shared default model too: the collection, which chose none, reads with it.
    assert offered == {"tiny", "tiny-run", default_model_name()}
    assert "ledgers-secret" not in response.content.decode()


def test_the_training_form_offers_only_exports_made_under_the_current_split(client, letters, alice):
    split = EvaluationSplit.objects.create(collection=letters, unit="document", seed=0)
    current = DatasetExport.objects.create(
        collection=letters, status="done", evaluation_split=split
    )
    DatasetExport.objects.create(collection=letters, status="done")  # made before splits were kept
    client.force_login(alice)
    response = client.get(reverse("training_home", args=[letters.pk]))
    assert list(response.context["training_form"].fields["dataset"].queryset) == [current]


def test_settings_and_rereading_offer_no_other_collections_models_nor_unpromoted_ones(
    client, letters, ledgers, alice, tiny_version, finished_run
):
    theirs = factories.make_model_version(name="ledgers-secret", parent=tiny_version)
    ledger_export = DatasetExport.objects.create(collection=ledgers, status="done")
    TrainingRun.objects.create(base_model=tiny_version, dataset=ledger_export, result_model=theirs)
    rejected = finished_run.result_model  # the gate kept it inactive: worse than its parent
    client.force_login(alice)
    settings_url = reverse("collection_settings", args=[letters.pk])

    page = client.get(settings_url)
    assert {v.name for v in page.context["form"].fields["model_version"].queryset} == {"tiny"}
    assert "ledgers-secret" not in page.content.decode()
    policy = {"confidence_threshold": "0.9", "nbest_size": "5"}
    for version in (theirs, rejected):
        response = client.post(settings_url, {**policy, "model_version": version.pk})
        assert "Select a valid choice" in response.content.decode()
    letters.refresh_from_db()
    assert letters.model_version is None

    progress = client.get(reverse("recognition_progress", args=[letters.pk]))
    offered = {v.name for v in progress.context["form"].fields["model_version"].queryset}
    assert offered == {"tiny"}
    for version in (theirs, rejected):
        client.post(reverse("rerecognize", args=[letters.pk]), {"model_version": version.pk})
        assert not RecognitionRequest.objects.filter(model_version=version).exists()

    # The audited override is the way in; once active, it stays choosable.
    actions.do_override_promotion(finished_run, actor=alice, reason="reads our hands better")
    page = client.get(settings_url)
    assert {v.name for v in page.context["form"].fields["model_version"].queryset} == {
        "tiny",
        "tiny-run",
    }
    client.post(
        settings_url, {**policy, "model_version": tiny_version.pk, "confirm_uncalibrated": "on"}
    )
    rejected.refresh_from_db(), tiny_version.refresh_from_db()
    assert (rejected.status, tiny_version.status) == ("ready", "active")
    # Chosen away from, it is still offered: the override let it through.
    page = client.get(settings_url)
    assert {v.name for v in page.context["form"].fields["model_version"].queryset} == {
        "tiny",
        "tiny-run",
    }


def test_the_versions_let_through_are_those_the_gate_and_the_override_promote():
    """Corpus, below training, names these kinds by their values."""
    assert set(ModelVersionQuerySet.LET_THROUGH) == {
        PromotionEvent.Kind.PROMOTED,
        PromotionEvent.Kind.OVERRIDDEN,
    }


def test_a_refused_form_comes_back_beside_the_runs_and_exports_there_are(
    client, letters, alice, finished_run
):
    client.force_login(alice)
    response = client.post(reverse("training_start_run", args=[letters.pk]), {"epochs": "x"})
    page = response.content.decode()
    assert response.status_code == 400 and "Enter a whole number" in page
    assert "No training runs yet" not in page and "No exports yet" not in page
    assert reverse("training_run", args=[finished_run.pk]) in page


def test_the_run_page_shows_both_numbers_and_the_gate(client, alice, finished_run):
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[finished_run.pk])).content.decode()
    metrics = finished_run.result_model.metrics
    assert f"{metrics['cer']:.4f}" in page and f"{metrics['parent']['cer']:.4f}" in page
    assert "Promote anyway" in page and "<svg" in page
    assert "hx-trigger" not in page  # finished: no more polling
    # Trained without validation lines: no "best validation CER at step 0" to trust.
    assert "No validation lines: the model of the last of" in page
    assert "Best validation CER" not in page


def test_a_rejection_by_a_few_edits_never_looks_like_a_tie(
    client, letters, alice, tiny_version, done_export
):
    """0.12344 against 0.12341 showed as 0.123 → 0.123: rejected, apparently for nothing."""
    child = factories.make_model_version(
        name="tiny-run",
        source="/models/tiny-run",
        parent=tiny_version,
        metrics={
            "cer": 0.12344,
            "edits": 12344,
            "characters": 100000,
            "wer": 0.3,
            "lines": 2500,
            "parent": {"name": "tiny", "cer": 0.12341, "edits": 12341, "wer": 0.3},
        },
    )
    run = succeeded_run(child, done_export, alice)
    letters.model_version = tiny_version
    letters.save()
    assert actions.do_apply_gate(run).kind == PromotionEvent.Kind.REJECTED
    client.force_login(alice)

    said = "0.1234 → 0.1234 (12341 → 12344 edits in 100000 characters)"
    home = client.get(reverse("training_home", args=[letters.pk])).content.decode()
    assert home.count(said) == 2  # the runs and the promotion log
    page = client.get(reverse("training_run", args=[run.pk])).content.decode()
    assert "0.1234 (12341 edits in 100000 characters)" in page
    assert "0.1234 (12344 edits in 100000 characters)" in page
    assert said in page  # its promotion log


def test_promoting_a_model_whose_confidences_are_not_calibrated_asks_for_it(
    client, letters, alice, finished_run
):
    """As choosing it in the collection's settings does: lines would be accepted unseen on
    raw confidences. On the page, in the API, and never by the gate for a collection whose
    model is calibrated."""
    child = finished_run.result_model
    ModelVersion.objects.filter(pk=child.pk).update(calibration=None)
    letters.model_version = child.parent
    letters.save()
    ModelVersion.objects.filter(pk=child.parent_id).update(calibration=CALIBRATED)
    # A child that reads worse is kept inactive for that, not invited to be promoted anyway.
    finished_run.result_model = ModelVersion.objects.get(pk=child.pk)
    assert "calibrated" not in actions.do_apply_gate(finished_run).reason
    ModelVersion.objects.filter(pk=child.pk).update(
        metrics={**child.metrics, "cer": 0.1, "lines": 400}
    )
    finished_run.result_model = child = ModelVersion.objects.get(pk=child.pk)
    event = actions.do_apply_gate(finished_run)
    assert event.kind == "rejected"
    assert "its confidences are not calibrated" in event.reason

    client.force_login(alice)
    run_page = reverse("training_run", args=[finished_run.pk])
    assert 'name="confirm_uncalibrated"' in client.get(run_page).content.decode()
    url = reverse("training_override", args=[finished_run.pk])
    page = client.post(url, {"reason": "reads our hands"}, follow=True).content.decode()
    assert "are not calibrated: at a threshold of 0.90" in page
    api = reverse("api_model_promote", args=[child.pk])
    refused = post_json(client, api, alice, {"reason": "reads our hands"})
    assert refused.status_code == 409 and "are not calibrated" in refused.json()["error"]
    letters.refresh_from_db()
    assert letters.model_version == child.parent
    client.post(url, {"reason": "reads our hands", "confirm_uncalibrated": "on"})
    letters.refresh_from_db()
    assert letters.model_version == child


def test_overriding_the_gate_from_the_page(client, letters, alice, finished_run):
    client.force_login(alice)
    run_page = client.get(reverse("training_run", args=[finished_run.pk])).content.decode()
    assert "Promote anyway" in run_page and 'name="confirm_uncalibrated"' not in run_page
    url = reverse("training_override", args=[finished_run.pk])
    client.post(url, {"reason": ""})
    assert not PromotionEvent.objects.filter(kind="overridden").exists()
    client.post(url, {"reason": "needed for the ſ letters"})
    event = PromotionEvent.objects.get(kind="overridden")
    assert event.actor == alice and event.reason == "needed for the ſ letters"
    letters.refresh_from_db()
    assert letters.model_version == finished_run.result_model
    page = client.get(reverse("training_home", args=[letters.pk])).content.decode()
    assert "needed for the ſ letters" in page

    response = client.post(reverse("training_rerecognize", args=[finished_run.pk]), follow=True)
    assert "unreviewed lines queued" in response.content.decode()
    # Every line of the fixture is reviewed: nothing to re-read, and no text was touched.
    assert not RecognitionRequest.objects.filter(model_version=finished_run.result_model).exists()
    assert not Line.objects.exclude(status=Line.Status.REVIEWED).exists()


def test_the_run_page_says_what_the_collection_reads_with_now(client, letters, alice, finished_run):
    client.force_login(alice)
    url = reverse("training_run", args=[finished_run.pk])
    page = client.get(url).content.decode()
    # The gate's own reason: the collection chose no model, and tiny is not the default one.
    assert "The gate kept this model inactive: the collection reads with " in page
    actions.do_override_promotion(finished_run, actor=alice, reason="reads the dates")
    page = client.get(url).content.decode()
    assert "(active)" in page and "Re-recognise the lines" in page
    letters.model_version = factories.make_model_version(name="since", source="/models/since")
    letters.save()
    page = client.get(url).content.decode()
    assert "(active)" not in page and "Re-recognise the lines" not in page
    assert "It was promoted; the collection reads with since now." in page


def test_cancelling_a_queued_run_from_its_page_says_it_is_over(
    client, alice, tiny_version, done_export
):
    run = actions.do_start_training(
        tiny_version, done_export, actions.TrainingParams(), user=alice, queue=False
    )
    client.force_login(alice)
    response = client.post(reverse("training_cancel", args=[run.pk]), follow=True)
    assert "Cancelled while it was queued." in response.content.decode()
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED


def test_a_running_run_whose_worker_stopped_beating_says_so(
    client, alice, tiny_version, done_export, settings
):
    """The training worker was killed and none is left whose sweep would queue the run again:
    the page showed "Running" at its last step for good."""
    run = actions.do_start_training(
        tiny_version, done_export, actions.TrainingParams(), user=alice, queue=False
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING,
        worker="trainer@gpu-1",
        history=[{"event": "step", "step": 340, "total_steps": 1000, "loss": 1.5}],
        heartbeat_at=timezone.now() - timedelta(seconds=60),
    )
    client.force_login(alice)
    url = reverse("training_run", args=[run.pk])
    settings.OCRREVIEW_TRAINING_LEASE_SECONDS = 120
    assert 'id="run-waiting"' not in client.get(url, **HX).content.decode()  # beating still

    settings.OCRREVIEW_TRAINING_LEASE_SECONDS = 30
    page = lxml.html.fromstring(client.get(url, **HX).content)
    waiting = page.get_element_by_id("run-waiting").text_content()
    assert waiting.startswith("trainer@gpu-1 has not answered since ")
    assert "A training worker's sweep queues the run again" in waiting
    assert f"fails it once {actions.MAX_STALLS} workers have died at one step" in waiting
    assert "No worker is listening on the `training` queue" in waiting


def test_the_run_shows_its_last_step_of_the_total_after_an_evaluation(client, alice, finished_run):
    """The history ends with an evaluation, which names no total."""
    client.force_login(alice)
    page = client.get(reverse("training_run", args=[finished_run.pk])).content.decode()
    assert "· step 10 of 20" in page


def test_the_chart_spans_the_steps_reported_so_far():
    chart = history_chart(
        [
            {"event": "step", "step": 10, "total_steps": 100000, "loss": 2.0},
            {"event": "step", "step": 20, "total_steps": 100000, "loss": 1.0},
            {"event": "eval", "step": 20, "cer": 3.5},
        ]
    )
    assert chart.steps == 20 and chart.max_loss == 2.0 and chart.max_cer == 1.0
    assert chart.loss == "300.0,6.0 594.0,90.0"
    # A CER above 1 is drawn at the top, not off the chart; a lone point twice, as a dot.
    assert chart.cer == "594.0,6.0 594.0,6.0"
    assert history_chart([]) is None


def test_a_window_whose_every_batch_overflowed_in_fp16_is_left_out_of_the_loss_curve():
    chart = history_chart(
        [
            {"event": "step", "step": 10, "loss": 2.0},
            {"event": "step", "step": 20, "loss": None},
            {"event": "step", "step": 30, "loss": 1.0},
        ]
    )
    assert chart.loss == "202.0,6.0 594.0,90.0"  # steps 10 and 30 of 30


@pytest.mark.django_db
def test_the_django_admin_offers_a_collection_only_the_models_its_settings_page_offers(
    client, letters, tiny_version, finished_run
):
    staff = factories.make_user("staff", staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    url = reverse("admin:corpus_collection_change", args=[letters.pk])
    form = lxml.html.fromstring(client.get(url).content).forms[-1]
    offered = {o.text for o in form.inputs["model_version"].getchildren() if o.get("value")}
    assert offered == {"tiny"}
    rejected = finished_run.result_model
    response = client.post(url, {**dict(form.form_values()), "model_version": rejected.pk})
    assert "Select a valid choice" in response.content.decode()
    letters.refresh_from_db()
    rejected.refresh_from_db()
    assert letters.model_version is None and rejected.status != rejected.Status.ACTIVE
    assert not PromotionEvent.objects.filter(kind=PromotionEvent.Kind.OVERRIDDEN).exists()


def test_the_export_page_says_its_filters_in_sentences(client, letters, alice):
    """Not 'documents []', 'include_auto_accepted False', 'min_confidence 0.95'."""
    letter = factories.make_document(letters, "Letter to Ada")
    gone = factories.make_document(letters, "Gone")
    every = ExportOptions(formats=["page", "text"])
    chosen = ExportOptions(
        documents=[letter.pk, gone.pk], include_auto_accepted=True, min_confidence=0.955
    )
    exports = [
        DatasetExport.objects.create(
            collection=letters, created_by=alice, filters=o.filters(), formats=o.formats
        )
        for o in (every, chosen)
    ]
    gone.delete()
    client.force_login(alice)

    def sentences(export):
        html = client.get(reverse("training_export", args=[export.pk])).content.decode()
        return [
            li.text_content()
            for li in lxml.html.fromstring(html).xpath('//ul[@class="export-filters"]/li')
        ]

    assert sentences(exports[0]) == [
        "All documents",
        "Auto-accepted lines left out: only lines a person reviewed",
        "Split by document: 80 % training, 10 % validation, 10 % test (seed 0)",
        "Formats: PAGE XML per page, Plain text per document",
    ]
    assert sentences(exports[1])[:2] == [
        "Only these documents: Letter to Ada, and 1 deleted since",
        "Auto-accepted lines taken in when read at 95.5 % confidence or more",
    ]

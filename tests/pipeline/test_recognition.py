"""Recognition in-process on the real database: n-best storage, routing, idempotence,
re-recognition, failures and crashed workers' claims."""

import errno
import json
import os
import threading
import time
import tracemalloc
from datetime import timedelta

import pytest
import torch
from django.core.files.storage import FileSystemStorage
from django.db import connection, transaction
from django.utils import timezone

from ocrreview import storage
from ocrreview.corpus import workflow
from ocrreview.corpus.models import Document, Line, ModelVersion
from ocrreview.review import actions
from ocrreview.review.api import HypothesisSerializer
from ocrreview.transcription import services
from ocrreview.transcription.models import Hypothesis, RecognitionRequest
from recognition import cutting, inference
from recognition.calibration import apply_calibration
from recognition.loading import STARTER_MODEL_DIR, ModelLoadError
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock
from tests.s3 import moto_server, use_a_bucket_of
from tests.tiny_model import build_tiny_model

R = RecognitionRequest.Status


@pytest.fixture
def document(letters):
    document = factories.make_document(letters, status=Document.Status.RECOGNIZING)
    page = factories.make_page(document)
    for order in range(3):
        factories.make_line(page, order)
    return document


@pytest.fixture
def starter_model(settings):
    """The shipped starter as the site's model, where a test needs readings that end: the
    tiny random model's are all cut off by the token limit."""
    settings.OCRREVIEW_MODEL = str(STARTER_MODEL_DIR)
    settings.OCRREVIEW_MAX_NEW_TOKENS = 96
    return STARTER_MODEL_DIR


def drain() -> int:
    total = 0
    while claimed := services.do_recognize_pending("test-worker"):
        total += claimed
    return total


@pytest.mark.django_db
def test_lines_get_their_nbest_list_and_are_routed_by_the_threshold(starter_model, document):
    collection = document.collection
    collection.nbest_size = 3
    collection.confidence_threshold = 1.0
    collection.save()
    assert services.do_queue_recognition(document.lines.all()) == 3
    assert drain() == 3
    for line in document.lines.all():
        ranks = list(line.hypotheses.values_list("rank", flat=True))
        assert ranks == list(range(len(ranks))) and 1 <= len(ranks) <= 3
        best = line.hypotheses.get(rank=0)
        assert line.text == best.text
        assert line.confidence == pytest.approx(best.calibrated_confidence)
        assert line.status == Line.Status.NEEDS_REVIEW  # nothing reaches a threshold of 1
        assert line.model_version.source == str(starter_model)
        assert line.version == 2
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert not RecognitionRequest.objects.exclude(status=R.DONE).exists()


@pytest.mark.django_db
def test_the_model_reads_the_next_batch_while_the_one_before_is_written(
    tiny_model, document, settings, monkeypatch
):
    """Each write waits until the model has started on the following batch: a pipeline that
    wrote before reading on would find it never starts."""
    settings.OCRREVIEW_BATCH_SIZE = 1
    started = [threading.Event() for _ in range(3)]
    read = inference.recognize_prepared

    def recognize_prepared(*args, **kwargs):
        next(event for event in started if not event.is_set()).set()
        return read(*args, **kwargs)

    store = services.do_store_results
    overlapped = []

    def do_store_results(token, version, batch, *args):
        following = len(overlapped) + 1
        overlapped.append(following == len(started) or started[following].wait(timeout=30))
        return store(token, version, batch, *args)

    monkeypatch.setattr(inference, "recognize_prepared", recognize_prepared)
    monkeypatch.setattr(services, "do_store_results", do_store_results)
    services.do_queue_recognition(document.lines.all())
    assert drain() == 3
    assert overlapped == [True, True, True]
    assert set(document.lines.values_list("status", flat=True)) <= {
        Line.Status.NEEDS_REVIEW,
        Line.Status.AUTO_ACCEPTED,
    }


@pytest.mark.django_db
def test_a_zero_threshold_accepts_every_line(starter_model, document):
    document.collection.confidence_threshold = 0.0
    document.collection.save()
    services.do_queue_recognition(document.lines.all())
    drain()
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.AUTO_ACCEPTED}


@pytest.mark.django_db
def test_a_reading_cut_off_by_the_token_limit_goes_to_a_human_at_any_threshold(
    tiny_model, document, settings
):
    """Its end is missing, and its confidence, a product without the end-of-line token's
    probability, says nothing of that: now, and when an admin applies a threshold later."""
    settings.OCRREVIEW_MAX_NEW_TOKENS = 2
    document.collection.confidence_threshold = 0.001
    document.collection.save()
    services.do_queue_recognition(document.lines.all())
    drain()
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.NEEDS_REVIEW}
    assert set(document.lines.values_list("confidence", flat=True)) == {0.0}
    assert Hypothesis.objects.filter(rank=0, calibrated_confidence__gt=0).count() == 3
    actions.do_apply_threshold(document.collection, 0.001, actor=None)
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.NEEDS_REVIEW}


@pytest.mark.django_db
def test_a_token_probability_that_is_not_a_number_fails_neither_its_line_nor_the_batch(
    tiny_model, document, monkeypatch
):
    """fp16 inference on a GPU without bf16 can overflow into NaN, which jsonb cannot hold,
    nor the JSON the line's API answers with."""
    read = inference.recognize_prepared

    def recognize_prepared(*args, **kwargs):
        results = read(*args, **kwargs)
        results[0].hypotheses[0].tokens[0].prob = float("nan")
        results[1].hypotheses[0].raw_confidence = float("nan")
        return results

    monkeypatch.setattr(inference, "recognize_prepared", recognize_prepared)
    services.do_queue_recognition(document.lines.all())
    drain()
    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.DONE}
    probs = [t["prob"] for h in Hypothesis.objects.filter(rank=0) for t in h.tokens]
    assert 0.0 in probs and all(0.0 <= p <= 1.0 for p in probs)
    scores = list(Hypothesis.objects.filter(rank=0).values_list("confidence", flat=True))
    assert 0.0 in scores and all(0.0 <= s <= 1.0 for s in scores)
    shown = HypothesisSerializer(Hypothesis.objects.all(), many=True).data
    json.dumps(shown, allow_nan=False)


@pytest.mark.django_db
def test_queueing_and_running_twice_reads_each_line_once(tiny_model, document):
    services.do_queue_recognition(document.lines.all())
    services.do_queue_recognition(document.lines.all())
    drain()
    before = Hypothesis.objects.count()
    assert services.do_queue_recognition(document.lines.all()) == 0
    assert drain() == 0
    assert Hypothesis.objects.count() == before
    assert RecognitionRequest.objects.count() == 3


@pytest.mark.django_db
def test_rerecognition_keeps_old_hypotheses_and_reviewed_text(tiny_model, document):
    services.do_queue_recognition(document.lines.all())
    drain()
    reviewed = document.lines.first()
    Line.objects.filter(pk=reviewed.pk).update(status=Line.Status.REVIEWED, text="Dear Sir")
    first_version = reviewed.model_version if reviewed.model_version else None
    old = Hypothesis.objects.count()
    other = ModelVersion.objects.create(name="other", source=str(tiny_model) + "/")
    queued = services.do_rerecognize(Document.objects.filter(pk=document.pk), other)
    assert queued == 3
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING
    drain()
    assert Hypothesis.objects.filter(model_version=other).count() == old
    assert Hypothesis.objects.count() == 2 * old
    reviewed.refresh_from_db()
    assert (reviewed.status, reviewed.text) == (Line.Status.REVIEWED, "Dear Sir")
    assert reviewed.model_version == first_version
    assert set(document.lines.exclude(pk=reviewed.pk).values_list("model_version", flat=True)) == {
        other.pk
    }


@pytest.mark.django_db
def test_pages_uploaded_during_a_re_read_are_read_before_it(tiny_model, document, ledgers):
    """An admin re-reads Letters with a new model; Ledgers' new page waits for no re-read."""
    services.do_queue_recognition(document.lines.all())
    drain()
    newer = ModelVersion.objects.create(name="newer", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), newer)
    uploaded = factories.make_document(ledgers, status=Document.Status.RECOGNIZING)
    page = factories.make_page(uploaded)
    new_lines = [factories.make_line(page, order).pk for order in range(2)]
    services.do_queue_recognition(uploaded.lines.all())

    first = services.do_claim(2, "worker")
    assert sorted(r.line_id for r in first.requests) == sorted(new_lines)
    rest = services.do_claim(10, "worker")
    assert {r.line_id for r in rest.requests} == set(document.lines.values_list("pk", flat=True))
    assert {r.model_version_id for r in rest.requests} == {newer.pk}


@pytest.mark.django_db
def test_a_claim_stored_after_a_newer_model_read_the_lines_does_not_take_them_back(
    tiny_model, document
):
    """A CPU worker still holds the old model's claim when a GPU worker reads the re-read."""
    old = services.model_version_for(document.collection)
    services.do_queue_recognition(document.lines.all())
    slow = services.do_claim(10, "slow")
    newer = ModelVersion.objects.create(name="newer", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), newer)
    drain()
    assert set(document.lines.values_list("model_version", flat=True)) == {newer.pk}
    shown = dict(document.lines.values_list("pk", "version"))
    services._recognize_group(slow.token, services.load_engine(old), slow.requests, nbest=1)
    assert set(document.lines.values_list("model_version", flat=True)) == {newer.pk}
    assert dict(document.lines.values_list("pk", "version")) == shown
    assert Hypothesis.objects.filter(model_version=old).count() == 3  # kept beside
    document.refresh_from_db()
    assert document.status == Document.Status.READY


@pytest.mark.django_db
def test_the_model_asked_for_last_is_the_one_a_line_shows(tiny_model, document):
    """A failed reading asked for again after another model's is queued again under its old
    request: being older by id, its reading was stored but never shown."""
    first = services.model_version_for(document.collection)
    services.do_queue_recognition(document.lines.all())
    RecognitionRequest.objects.update(status=R.FAILED, error="the store was down")
    other = ModelVersion.objects.create(name="other", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), other)
    drain()
    assert set(document.lines.values_list("model_version", flat=True)) == {other.pk}
    assert services.do_rerecognize(Document.objects.filter(pk=document.pk), first) == 3
    drain()
    assert set(document.lines.values_list("model_version", flat=True)) == {first.pk}


@pytest.mark.django_db
def test_re_reading_a_large_collection_holds_none_of_its_lines_in_memory(tiny_model, document):
    """From a web request: a model instance per line took gigabytes for a million lines."""
    page = document.pages.get()
    Line.objects.bulk_create(
        Line(
            page=page,
            document=document,
            collection=document.collection,
            order=order,
            bbox=[10, 10, 500, 40],
        )
        for order in range(3, 20_003)
    )
    tracemalloc.start()
    try:
        queued = services.do_queue_recognition(document.collection.lines.all())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert queued == 20_003 == RecognitionRequest.objects.filter(status=R.QUEUED).count()
    assert peak < 1024 * 1024


@pytest.mark.django_db
def test_a_re_read_does_not_accept_a_line_holding_someone_s_unsaved_fix(tiny_model, document, bob):
    """bob typed a fix and skipped the line; the new model is sure of it, and accepting its
    reading would take his fix out of every queue."""
    document.collection.confidence_threshold = 0.0  # every reading would be accepted
    document.collection.save()
    drafted = document.lines.order_by("order").first()
    Line.objects.filter(pk=drafted.pk).update(status=Line.Status.NEEDS_REVIEW)
    actions.do_save_draft(drafted, bob, "Dear Sir,", base_version=drafted.version)
    services.do_queue_recognition(document.lines.all())
    drain()
    statuses = dict(document.lines.values_list("pk", "status"))
    assert statuses.pop(drafted.pk) == Line.Status.NEEDS_REVIEW
    assert set(statuses.values()) == {Line.Status.AUTO_ACCEPTED}


@pytest.mark.django_db
def test_a_line_open_in_an_editor_takes_the_reading_and_stays_with_its_reviewer(
    tiny_model, document, alice, bob
):
    """An added line (no reading yet) a reviewer opened before the worker reached it, or any
    line open when a new model re-reads the collection: the reading shows, the reviewer
    keeps the line, and their save meets the new version as a conflict keeping their text."""
    held, lapsed, _ = document.lines.order_by("order")
    document.lines.update(status=Line.Status.NEEDS_REVIEW)  # as a line added by a reviewer is
    assert actions.do_claim_line(held, bob) and actions.do_claim_line(lapsed, alice)
    Line.objects.filter(pk=lapsed.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    services.do_queue_recognition(document.lines.all())
    drain()

    held.refresh_from_db()
    best = held.hypotheses.get(rank=0)
    assert (held.text, held.model_version) == (best.text, best.model_version)
    assert (held.status, held.claimed_by, held.version) == (Line.Status.IN_REVIEW, bob, 2)
    with pytest.raises(actions.VersionConflict):
        actions.do_save_line(held, bob, "Dear Sir", expected_version=1)
    actions.do_save_line(held, bob, "Dear Sir", expected_version=2)

    lapsed.refresh_from_db()
    assert lapsed.status in (Line.Status.NEEDS_REVIEW, Line.Status.AUTO_ACCEPTED)
    assert (lapsed.claimed_by, lapsed.claimed_until) == (None, None)
    assert lapsed.text == lapsed.hypotheses.get(rank=0).text


@pytest.mark.django_db
def test_a_conflict_with_a_reading_names_the_model_not_the_last_reviewer(
    tiny_model, document, alice, bob, client
):
    """Alice skipped the line before bob opened it; the version bob's save meets is the
    model's, so the conflict must not say alice saved it."""
    from django.urls import reverse

    line = document.lines.order_by("order").first()
    Line.objects.filter(pk=line.pk).update(status=Line.Status.NEEDS_REVIEW)
    actions.do_skip_line(line.pk, alice)
    assert actions.do_claim_line(line, bob)
    services.do_queue_recognition(document.lines.all())
    drain()

    client.force_login(bob)
    response = client.post(
        reverse("review_save", args=[document.collection_id, line.pk]),
        {"text": "Dear Sir", "expected_version": 1},
        HTTP_X_REQUESTED_WITH="fetch",
    )
    assert response.status_code == 409
    page = response.content.decode()
    version = line.hypotheses.get(rank=0).model_version
    assert f"The model {version} read it again at" in page
    assert "A new reading of this line arrived" in page and "alice" not in page


@pytest.mark.django_db
def test_rereading_the_unreviewed_lines_takes_in_the_lines_open_in_an_editor(
    tiny_model, document, bob
):
    from ocrreview.training.actions import do_rerecognize_unreviewed

    services.do_queue_recognition(document.lines.all())
    drain()
    held, reviewed, _ = document.lines.order_by("order")
    assert actions.do_claim_line(held, bob)
    Line.objects.filter(pk=reviewed.pk).update(status=Line.Status.REVIEWED)
    other = ModelVersion.objects.create(name="other", source=str(tiny_model) + "/")
    collection = document.collection
    collection.model_version = other
    collection.save()
    assert do_rerecognize_unreviewed(collection, other, actor=None) == 2
    drain()
    held.refresh_from_db()
    assert (held.model_version, held.status) == (other, Line.Status.IN_REVIEW)


def _storing_in_a_thread(claimed: services.Claimed, outcome: dict) -> tuple[threading.Thread, dict]:
    """A worker storing `outcome` for its claim on its own connection, started by the test
    while it holds a lock; `stored` says whether the store ended without an error."""
    stored: dict = {}

    def store():
        try:
            version = claimed.requests[0].model_version
            services.do_store_results(claimed.token, version, claimed.requests, outcome, 0.0)
            stored["done"] = True
        finally:
            connection.close()

    return threading.Thread(target=store), stored


def _reread_by_a_promoted_model(document, tiny_model) -> services.Claimed:
    """The collection's lines read, a new model made its model, the lines no human has
    reviewed queued for it (training's re-read), and a worker's claim on them."""
    from ocrreview.training.actions import do_rerecognize_unreviewed

    services.do_queue_recognition(document.lines.all())
    drain()
    promoted = ModelVersion.objects.create(name="promoted", source=str(tiny_model) + "/")
    collection = document.collection
    collection.model_version = promoted
    collection.save()
    assert do_rerecognize_unreviewed(collection, promoted, actor=None) == 3
    claimed = services.do_claim(10, "re-reader")
    assert len(claimed.requests) == 3
    return claimed


@pytest.mark.django_db
def test_a_correction_saved_while_the_re_read_reads_its_line_is_kept(tiny_model, document, bob):
    """The re-read claimed the line before the reviewer saved it: the worker's reading, stored
    after the save, is one of the line's alternatives and changes neither its text nor its
    status."""
    claimed = _reread_by_a_promoted_model(document, tiny_model)
    corrected = document.lines.order_by("order").first()
    actions.do_save_line(corrected, bob, "Dear Sir,", expected_version=corrected.version)
    corrected.refresh_from_db()
    saved = (corrected.text, corrected.status, corrected.version, corrected.model_version_id)
    assert saved[:2] == ("Dear Sir,", Line.Status.REVIEWED)

    engine = services.load_engine(claimed.requests[0].model_version)
    services._recognize_group(claimed.token, engine, claimed.requests, nbest=1)

    corrected.refresh_from_db()
    assert (
        corrected.text,
        corrected.status,
        corrected.version,
        corrected.model_version_id,
    ) == saved
    promoted = claimed.requests[0].model_version
    assert corrected.hypotheses.filter(model_version=promoted).exists()
    others = document.lines.exclude(pk=corrected.pk)
    assert set(others.values_list("model_version", flat=True)) == {promoted.pk}
    assert set(
        RecognitionRequest.objects.filter(model_version=promoted).values_list("status", flat=True)
    ) == {R.DONE}


@pytest.mark.django_db(transaction=True)
def test_a_correction_committing_while_the_re_read_stores_its_line_is_kept(
    tiny_model, document, bob
):
    """The reviewer's save holds the line when the worker comes to store its reading: the
    worker waits for it, and then finds the line reviewed."""
    claimed = _reread_by_a_promoted_model(document, tiny_model)
    corrected = document.lines.order_by("order").first()
    reading = inference.Hypothesis(
        rank=1,
        text="read",
        logprob=-0.1,
        confidence=0.99,
        share=1.0,
        tokens=[],
        raw_confidence=0.99,
    )
    outcome = {r.id: inference.LineResult([reading]) for r in claimed.requests}
    worker, stored = _storing_in_a_thread(claimed, outcome)
    with transaction.atomic():
        actions.do_save_line(corrected, bob, "Dear Sir,", expected_version=corrected.version)
        worker.start()
        wait_until_another_session_waits_for_a_lock()  # the store, for the line
    worker.join()
    assert stored == {"done": True}
    corrected.refresh_from_db()
    assert (corrected.text, corrected.status) == ("Dear Sir,", Line.Status.REVIEWED)
    others = document.lines.exclude(pk=corrected.pk)
    assert set(others.values_list("text", flat=True)) == {"read"}


@pytest.mark.django_db
def test_lines_cut_or_joined_from_reviewed_text_keep_it_when_a_model_reads_them(
    tiny_model, document, bob
):
    services.do_queue_recognition(document.lines.all())
    drain()
    first, second, _ = document.lines.order_by("order")
    second_reading = second.text
    actions.do_save_line(first, bob, "letter of the third instant", expected_version=2)
    first.refresh_from_db()

    right = actions.do_split_line(first, bob, at_x=300, expected_version=first.version)
    # Nothing to read: the person's words stand, and a model reading would replace them.
    assert not RecognitionRequest.objects.filter(line=right).exists()
    merged = actions.do_merge_lines(right, bob, expected_version=right.version)
    other = ModelVersion.objects.create(name="other", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), other)
    drain()

    lines = list(document.lines.order_by("order"))
    assert [line.text for line in lines[:2]] == [
        "letter of the",
        f"third instant {second_reading}",
    ]
    assert lines[1].pk == merged.pk
    for line in lines[:2]:
        assert line.human_text and line.status == Line.Status.NEEDS_REVIEW
        assert line.hypotheses.filter(model_version=other).exists()  # readings, as alternatives
    assert not lines[2].human_text and lines[2].model_version == other


@pytest.mark.django_db
def test_a_failed_reading_leaves_a_line_of_a_persons_text_in_the_queue(tiny_model, document, bob):
    services.do_queue_recognition(document.lines.all())
    drain()
    first = document.lines.order_by("order").first()
    actions.do_save_line(first, bob, "letter of the third instant", expected_version=2)
    first.refresh_from_db()
    right = actions.do_split_line(first, bob, at_x=300, expected_version=first.version)
    Line.objects.filter(pk=right.pk).update(bbox=[5000, 5000, 5100, 5100])  # unreadable
    other = ModelVersion.objects.create(name="other", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), other)
    drain()

    assert RecognitionRequest.objects.get(line=right, model_version=other).status == R.FAILED
    right.refresh_from_db()
    assert (right.status, right.text) == (Line.Status.NEEDS_REVIEW, "third instant")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bbox, error",
    [
        ([5000, 5000, 5100, 5100], "outside"),
        ([10, 20, 30], "not enough values to unpack"),  # stored past the model's validation
    ],
)
def test_a_line_that_cannot_be_read_fails_and_the_rest_go_on(tiny_model, document, bbox, error):
    broken = document.lines.last()
    Line.objects.filter(pk=broken.pk).update(bbox=bbox, polygon=[])
    services.do_queue_recognition(document.lines.all())
    drain()
    broken.refresh_from_db()
    assert broken.status == Line.Status.FAILED
    assert error in broken.error
    request = RecognitionRequest.objects.get(line=broken)
    assert request.status == R.FAILED and error in request.error
    assert document.lines.filter(status=Line.Status.FAILED).count() == 1
    assert Hypothesis.objects.exclude(line=broken).values("line").distinct().count() == 2
    document.refresh_from_db()
    assert document.status == Document.Status.READY


@pytest.mark.django_db
@pytest.mark.parametrize("damage", ["corrupt", "missing", "decoder bug"])
def test_lines_of_a_page_whose_image_cannot_be_read_fail_with_the_reason(
    tiny_model, document, damage, monkeypatch
):
    page = document.pages.get()
    if damage == "decoder bug":
        # Pillow failing otherwise than as a bad file (a plugin's own bug): no file here does.
        def failing(data):
            raise ValueError()

        monkeypatch.setattr(cutting, "open_image", failing)
    elif damage == "corrupt":
        with page.image.open("wb") as stream:
            stream.write(b"\x89PNG\r\n\x1a\n this is not the rest of a PNG")
    else:
        page.image.storage.delete(page.image.name)
    services.do_queue_recognition(document.lines.all())
    drain()
    errors = set(document.lines.values_list("status", "error"))
    assert len(errors) == 1
    ((status, error),) = errors
    assert status == Line.Status.FAILED
    assert error.startswith("the page image cannot be read: ")
    assert not RecognitionRequest.objects.exclude(status=R.FAILED).exists()
    document.refresh_from_db()
    assert document.status == Document.Status.READY  # nothing left to read


@pytest.mark.django_db
def test_a_page_the_store_refuses_to_give_fails_its_own_lines_only(
    tiny_model, letters, s3_storage, settings
):
    """A lifecycle rule moved one scan to Glacier: S3 refuses to read it (403, a botocore
    error, not an OSError), which failed every line of the claim, other documents' too."""
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 2
    archived, kept = (factories.make_document(letters, title=t) for t in ("archived", "kept"))
    for document in (archived, kept):
        page = factories.make_page(document)
        for order in range(2):
            factories.make_line(page, order)
    key = archived.pages.get().image.name
    bucket = settings.STORAGES["default"]["OPTIONS"]["bucket_name"]
    s3_storage.client().copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key},
        StorageClass="GLACIER",
        MetadataDirective="COPY",
    )
    services.do_queue_recognition(Line.objects.all())
    assert drain() == 4 + 2  # the archived page's lines were tried twice
    assert set(kept.lines.values_list("status", flat=True)) <= {
        Line.Status.AUTO_ACCEPTED,
        Line.Status.NEEDS_REVIEW,
    }
    ((status, error),) = set(archived.lines.values_list("status", "error"))
    assert status == Line.Status.FAILED
    assert error.startswith("the page image cannot be fetched from storage (")
    assert "InvalidObjectState" in error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hangs", [False, True])
def test_lines_are_kept_while_the_model_loads_unless_the_load_hangs(
    tiny_model, document, settings, monkeypatch, hangs
):
    """A cold worker downloading the model for longer than the lease: another worker's
    claim found the lines lapsed and took them, and the first one's readings were lost. A
    load that hangs must not hold them for good either."""
    settings.OCRREVIEW_RECOGNITION_LEASE_SECONDS = 2
    if hangs:
        monkeypatch.setattr(services, "MODEL_LOAD_SECONDS", 0.5)
    load = services.load_engine
    taken = []

    def slow_download(version, worker):
        time.sleep(3.5)  # the hub's download, which cannot be made here
        taken.extend(services.do_claim(10, "another worker").requests)
        return load(version, worker)

    monkeypatch.setattr(services, "load_engine", slow_download)
    services.do_queue_recognition(document.lines.all())
    services.do_recognize_pending("cold worker")
    assert len(taken) == (3 if hangs else 0)
    if not hangs:
        assert set(RecognitionRequest.objects.values_list("status", "worker")) == {
            (R.DONE, "cold worker")
        }


@pytest.mark.django_db
def test_a_claim_holds_the_page_files_of_one_batch_at_a_time(tiny_model, letters):
    """A re-read of scattered lines, one per page, held all of a chunk's scans at once."""
    for number in range(4):
        document = factories.make_document(letters, title=f"letter {number}")
        factories.make_line(factories.make_page(document, width=800, height=600), 0)
    services.do_queue_recognition(Line.objects.all())
    claimed = services.do_claim(10, "test-worker")
    files = services._PageFiles()
    held = []
    for start in range(0, 4, 2):
        batch = claimed.requests[start : start + 2]
        assert set(files.of(batch)) == {r.line.page_id for r in batch}
        held.append(len(files._files))
    assert held == [2, 2]


@pytest.mark.django_db
def test_a_store_that_is_down_fails_no_line_and_the_task_backs_off(tiny_model, letters, settings):
    """A MinIO restart: every page fails alike, and charging each claim's lines would fail
    the whole queue within seconds, as fast as the worker claims."""
    with moto_server() as store:
        use_a_bucket_of(store, settings)
        document = factories.make_document(letters)
        page = factories.make_page(document)
        for order in range(2):
            factories.make_line(page, order)
    # The store is down from here on.
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 1
    services.do_queue_recognition(document.lines.all())
    with pytest.raises(services.StorageUnavailable, match="the storage cannot be reached"):
        services.do_recognize_pending("test-worker")
    requests = RecognitionRequest.objects.filter(document=document)
    assert set(requests.values_list("status", "attempts")) == {(R.QUEUED, 0)}
    assert "the storage cannot be reached" in requests.first().error
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.PENDING}


class ShareGivingErrno(FileSystemStorage):
    """The page images on a shared disk (NFS, SMB) that answers every read with the errno
    the test sets: a share whose server went away cannot be mounted here."""

    errno = errno.ESTALE

    def _open(self, name, mode="rb"):
        raise OSError(self.errno, os.strerror(self.errno), self.path(name))


@pytest.fixture
def share(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.ShareGivingErrno"},
    }
    yield ShareGivingErrno
    ShareGivingErrno.errno = errno.ESTALE


@pytest.mark.django_db
@pytest.mark.parametrize("number", [errno.ESTALE, errno.ENOTCONN, errno.EHOSTDOWN])
def test_a_shared_disk_whose_server_is_gone_fails_no_line_and_the_task_backs_off(
    tiny_model, document, settings, share, number
):
    """A stale NFS handle failed every line of the queue, claim after claim, as a missing
    file does."""
    share.errno = number
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 1
    services.do_queue_recognition(document.lines.all())
    with pytest.raises(services.StorageUnavailable, match=os.strerror(number)):
        services.do_recognize_pending("test-worker")
    requests = RecognitionRequest.objects.filter(document=document)
    assert set(requests.values_list("status", "attempts")) == {(R.QUEUED, 0)}
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.PENDING}


@pytest.mark.django_db
def test_a_page_image_the_disk_refuses_fails_its_lines(tiny_model, document, settings, share):
    """Permissions are the file's, not an outage: waiting would hold the queue for good."""
    share.errno = errno.EACCES
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 1
    services.do_queue_recognition(document.lines.all())
    services.do_recognize_pending("test-worker")
    ((status, error),) = set(document.lines.values_list("status", "error"))
    assert status == Line.Status.FAILED
    assert "Permission denied" in error


@pytest.mark.django_db
def test_a_store_that_is_down_fails_no_line_of_a_collection_that_reads_with_a_stored_model(
    tiny_model, letters, settings, tmp_path
):
    """A trained version is fetched from the store, its checksums at least, before it reads:
    the outage was charged to the lines, which failed after their attempts, and lines read
    before kept the old model's text under a document said to be ready."""
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    with moto_server() as store:
        use_a_bucket_of(store, settings)
        stored = storage.put_directory("models/tiny-run1-0123abcd", tiny_model)
        trained = factories.make_model_version(
            name="tiny-run1", source=storage.model_source(stored)
        )
        letters.model_version = trained
        letters.save()
        document = factories.make_document(letters)
        page = factories.make_page(document)
        for order in range(2):
            factories.make_line(page, order)
    # The store is down from here on.
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 1
    assert services.do_queue_recognition(document.lines.all()) == 2
    with pytest.raises(
        services.StorageUnavailable, match="the storage cannot be reached to load tiny-run1"
    ):
        services.do_recognize_pending("test-worker")
    requests = RecognitionRequest.objects.filter(document=document)
    assert set(requests.values_list("status", "attempts", "model_version")) == {
        (R.QUEUED, 0, trained.pk)
    }
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.PENDING}


@pytest.mark.django_db
def test_two_claims_never_share_a_line(tiny_model, document, settings):
    services.do_queue_recognition(document.lines.all())
    first = services.do_claim(2, "a")
    second = services.do_claim(2, "b")
    assert len(first.requests) == 2 and len(second.requests) == 1
    assert not {r.id for r in first.requests} & {r.id for r in second.requests}
    assert services.do_claim(2, "c").requests == []


@pytest.mark.django_db
def test_a_dead_workers_claim_is_taken_over_and_its_late_results_are_dropped(tiny_model, document):
    services.do_queue_recognition(document.lines.all())
    dead = services.do_claim(10, "dead")
    RecognitionRequest.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert drain() == 3
    hypotheses = Hypothesis.objects.count()
    # The dead worker wakes up and tries to write what it had: nothing lands.
    engine = services.load_engine(dead.requests[0].model_version)
    services._recognize_group(dead.token, engine, dead.requests, nbest=1)
    assert Hypothesis.objects.count() == hypotheses
    assert set(RecognitionRequest.objects.values_list("attempts", flat=True)) == {2}


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["split", "move"])
def test_a_line_reshaped_while_it_was_read_is_read_again_as_it_now_is(
    tiny_model, document, bob, change
):
    services.do_queue_recognition(document.lines.all())
    claimed = services.do_claim(10, "slow")
    line = document.lines.order_by("order").first()
    if change == "split":
        actions.do_split_line(line, bob, at_x=300, expected_version=1)
    else:
        actions.do_move_line(line, bob, [10, 12, 400, 42], expected_version=1)
    engine = services.load_engine(claimed.requests[0].model_version)
    services._recognize_group(claimed.token, engine, claimed.requests, nbest=1)

    request = RecognitionRequest.objects.get(line=line)
    assert (request.status, request.claim, request.attempts) == (R.QUEUED, None, 0)
    line.refresh_from_db()
    assert not line.hypotheses.exists() and line.model_version is None
    others = RecognitionRequest.objects.exclude(line=line).filter(attempts=1)
    assert set(others.values_list("status", flat=True)) == {R.DONE}

    assert drain() >= 1
    request.refresh_from_db()
    assert (request.status, request.attempts) == (R.DONE, 1)
    line.refresh_from_db()
    assert line.hypotheses.get(rank=0).text == line.text and line.model_version is not None
    document.refresh_from_db()
    assert document.status == Document.Status.READY


@pytest.mark.django_db
def test_a_line_whose_worker_keeps_dying_is_failed(tiny_model, document, settings):
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 2
    services.do_queue_recognition(document.lines.all())
    for _ in range(2):
        services.do_claim(10, "dies")
        RecognitionRequest.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.do_claim(10, "next").requests == []
    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.FAILED}
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.FAILED}
    assert "2 attempts" in document.lines.first().error
    document.refresh_from_db()
    assert document.status == Document.Status.READY


@pytest.mark.django_db
def test_a_model_that_cannot_load_is_retried_then_fails_with_its_error(document, settings):
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 2
    broken = ModelVersion.objects.create(name="broken", source="/nonexistent/model")
    document.collection.model_version = broken
    document.collection.save()
    services.do_queue_recognition(document.lines.all())
    for _ in range(2):
        with pytest.raises(Exception, match="nonexistent"):
            services.do_recognize_pending("w")
    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.FAILED}
    line = document.lines.first()
    assert line.status == Line.Status.FAILED and "nonexistent" in line.error


@pytest.mark.django_db
def test_lines_wait_while_the_device_has_no_memory_for_even_one_of_them(
    tiny_model, document, settings, monkeypatch
):
    """Training on the same GPU holds its memory: the lines are not at fault, so they are
    neither failed nor charged an attempt, and are read once memory is free."""
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 2

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    services.do_queue_recognition(document.lines.all())
    with monkeypatch.context() as busy:
        busy.setattr(inference, "_recognize_batch", out_of_memory)
        for _ in range(3):
            with pytest.raises(inference.OutOfMemory):
                services.do_recognize_pending("w")
    waiting = RecognitionRequest.objects.all()
    assert {(r.status, r.attempts) for r in waiting} == {(R.QUEUED, 0)}
    assert all(r.error.startswith("waiting for device memory") for r in waiting)
    assert not document.lines.filter(status=Line.Status.FAILED).exists()
    assert drain() == 3
    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.DONE}


@pytest.mark.django_db
def test_a_worker_that_is_stopping_stores_the_batch_in_the_model_and_gives_back_the_rest(
    tiny_model, document, settings
):
    settings.OCRREVIEW_BATCH_SIZE = 1
    asked = []

    def should_stop():  # asked before the claim's group, then before each batch
        asked.append(True)
        return len(asked) > 2

    services.do_queue_recognition(document.lines.all())
    assert services.do_recognize_pending("w", should_stop=should_stop) == 3
    requests = RecognitionRequest.objects.order_by("line__order")
    assert [(r.status, r.attempts) for r in requests] == [
        (R.DONE, 1),
        (R.QUEUED, 0),
        (R.QUEUED, 0),
    ]
    assert requests[1].error == services.STOPPED
    assert drain() == 2


@pytest.mark.django_db
def test_a_collection_whose_model_cannot_load_does_not_fail_the_others_in_the_claim(
    tiny_model, document, ledgers, settings
):
    settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = 1
    broken = ModelVersion.objects.create(name="broken", source="/nonexistent/model")
    document.collection.model_version = broken
    document.collection.save()
    other = factories.make_document(ledgers, status=Document.Status.RECOGNIZING)
    factories.make_line(factories.make_page(other))
    services.do_queue_recognition(Line.objects.all())
    with pytest.raises(Exception, match="nonexistent"):
        services.do_recognize_pending("w")  # one claim holds both collections' lines

    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.FAILED}
    read = other.lines.get()
    assert read.status in (Line.Status.AUTO_ACCEPTED, Line.Status.NEEDS_REVIEW)
    assert RecognitionRequest.objects.get(line=read).status == R.DONE


@pytest.mark.parametrize("cuda, device, quantize", [(False, "cpu", True), (True, "cuda", False)])
def test_quantisation_is_asked_for_on_a_cpu_only(settings, monkeypatch, cuda, device, quantize):
    import torch

    settings.OCRREVIEW_QUANTIZE, settings.OCRREVIEW_DEVICE = True, "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)  # no GPU here
    assert services.load_options() == {"device": device, "quantize": quantize}


@pytest.mark.django_db
def test_progress_counts_lines_queued_for_two_models_once(tiny_model, document):
    services.do_queue_recognition(document.lines.all())
    other = ModelVersion.objects.create(name="other", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), other)
    progress = services.document_progress(Document.objects.filter(pk=document.pk))[document.pk]
    assert (progress["lines_done"], progress["lines_total"], progress["percent"]) == (0, 3, 0)
    drain()
    progress = services.document_progress(Document.objects.filter(pk=document.pk))[document.pk]
    assert (progress["lines_done"], progress["percent"]) == (3, 100)
    assert progress["models"] == ["other"]  # named once, not once a line


@pytest.mark.django_db
def test_the_default_model_falls_back_to_the_starter_and_says_so(document, settings):
    # The shipped starter model stands in for an unreachable hub model.
    settings.OCRREVIEW_MODEL = "/nonexistent/default-model"
    settings.OCRREVIEW_MAX_NEW_TOKENS = 8
    services.do_queue_recognition(document.lines.all())
    drain()
    assert RecognitionRequest.objects.get(line=document.lines.first()).model_version.name == (
        "/nonexistent/default-model"
    )
    versions = set(document.lines.values_list("model_version__name", flat=True))
    assert versions == {services.STARTER_MODEL_NAME}
    assert set(document.lines.values_list("status", flat=True)) <= {
        Line.Status.AUTO_ACCEPTED,
        Line.Status.NEEDS_REVIEW,
    }


@pytest.mark.django_db
def test_without_the_fallback_an_unreachable_default_model_fails_its_lines_with_the_reason(
    document, settings
):
    settings.OCRREVIEW_MODEL = "/nonexistent/default-model"
    settings.OCRREVIEW_MODEL_FALLBACK = False
    services.do_queue_recognition(document.lines.all())
    with pytest.raises(ModelLoadError):
        services.do_recognize_pending("test-worker")
    request = RecognitionRequest.objects.get(line=document.lines.first())
    assert "/nonexistent/default-model" in request.error
    assert not document.lines.exclude(model_version=None).exists()


@pytest.mark.django_db
def test_lines_the_starter_read_for_an_unreachable_default_model_are_read_by_it_when_it_is_back(
    document, settings, tmp_path, monkeypatch
):
    hub = tmp_path / "default-model"  # unreachable at first
    settings.OCRREVIEW_MODEL = str(hub)
    settings.OCRREVIEW_MAX_NEW_TOKENS = 8
    services.do_queue_recognition(document.lines.all())
    drain()
    assert set(document.lines.values_list("model_version__name", flat=True)) == {
        services.STARTER_MODEL_NAME
    }
    build_tiny_model(hub)  # the hub answers again
    monkeypatch.setattr(services, "FALLBACK_RETRY_SECONDS", 0)
    assert services.do_queue_recognition(document.lines.all()) == 3
    drain()
    assert set(document.lines.values_list("model_version__name", flat=True)) == {str(hub)}
    assert (
        Hypothesis.objects.filter(model_version__name=str(hub)).values("line").distinct().count()
        == 3
    )


@pytest.mark.django_db(transaction=True)
def test_a_line_deleted_while_its_batch_is_stored_deadlocks_neither(document, bob):
    """The reviewer holds the line, then deletes it and its request with it; the worker's
    store took the requests first and then waited for the line: each waited for the other."""
    services.do_queue_recognition(document.lines.all())
    claimed = services.do_claim(10, "w")
    doomed = document.lines.get(order=2)
    worker, stored = _storing_in_a_thread(claimed, {r.id: "unreadable" for r in claimed.requests})
    with transaction.atomic():
        Line.objects.select_for_update().get(pk=doomed.pk)  # the reviewer's merge or delete
        worker.start()
        wait_until_another_session_waits_for_a_lock()  # the store, for the line
        actions.do_delete_line(doomed.pk, bob, expected_version=doomed.version)
    worker.join()
    assert stored == {"done": True}
    assert not Line.objects.filter(pk=doomed.pk).exists()
    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.FAILED}


@pytest.mark.django_db(transaction=True)
def test_a_threshold_raised_while_a_batch_is_stored_routes_the_batch_by_the_new_one(
    document, alice
):
    """The worker read the threshold with its lines; the admin's higher one committed before
    the worker routed: lines the preview promised to reviewers were accepted unseen."""
    services.do_queue_recognition(document.lines.all())
    claimed = services.do_claim(10, "w")
    reading = inference.Hypothesis(
        rank=1, text="read", logprob=-0.4, confidence=0.7, share=1.0, tokens=[], raw_confidence=0.7
    )
    outcome = {r.id: inference.LineResult([reading]) for r in claimed.requests}
    document.collection.confidence_threshold = 0.5
    document.collection.save()
    worker, stored = _storing_in_a_thread(claimed, outcome)
    with transaction.atomic():
        actions.do_apply_threshold(document.collection, 0.9, actor=None)
        worker.start()
        wait_until_another_session_waits_for_a_lock()  # the store, for the collection
    worker.join()
    assert stored == {"done": True}
    assert set(document.lines.values_list("status", flat=True)) == {Line.Status.NEEDS_REVIEW}


def test_a_reading_of_a_document_made_final_since_it_was_queued_changes_no_line(document, alice):
    """A final document was published as it is: the reading is kept as an alternative, and
    its lines keep their text and status."""
    services.do_queue_recognition(document.lines.all())
    claimed = services.do_claim(10, "w")
    version = claimed.requests[0].model_version
    reading = inference.Hypothesis(
        rank=1, text="read", logprob=-0.4, confidence=0.7, share=1.0, tokens=[], raw_confidence=0.7
    )
    outcome = {r.id: inference.LineResult([reading]) for r in claimed.requests}
    workflow.do_set_review_state(document, Document.ReviewState.FINAL, actor=alice)
    before = list(document.lines.order_by("id").values_list("text", "status", "version"))
    services.do_store_results(claimed.token, version, claimed.requests, outcome, 0.0)
    assert list(document.lines.order_by("id").values_list("text", "status", "version")) == before
    assert Hypothesis.objects.filter(line__document=document, text="read").count() == 3
    assert set(RecognitionRequest.objects.values_list("status", flat=True)) == {R.DONE}


@pytest.mark.django_db(transaction=True)
def test_a_re_read_asked_while_a_worker_stores_the_lines_deadlocks_neither(document, letters):
    """The re-read's requests locked their lines only at commit, by the foreign key's check,
    after it had locked the document; the worker held the lines and wanted the document."""
    version = factories.make_model_version("other")
    outcome = {}

    def worker():
        try:
            with transaction.atomic():
                list(Line.objects.select_for_update().filter(document=document).order_by("id"))
                outcome["lines"] = True
                wait_until_another_session_waits_for_a_lock()  # the re-read, for the lines
                Document.objects.select_for_update().get(pk=document.pk)  # finish_documents
            outcome["worker"] = "stored"
        except Exception as exc:
            outcome["worker"] = repr(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    while "lines" not in outcome and thread.is_alive():
        time.sleep(0.01)
    queued = services.do_rerecognize(Document.objects.filter(pk=document.pk), version)
    thread.join()
    assert (queued, outcome["worker"]) == (3, "stored")


@pytest.mark.django_db
@pytest.mark.parametrize("removal", ["delete", "merge"])
def test_a_document_whose_last_unread_line_goes_is_ready(starter_model, document, bob, removal):
    services.do_queue_recognition(document.lines.all())
    drain()
    drawn = actions.do_add_line(document.pages.get(), bob, [10, 300, 500, 330])
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING
    if removal == "delete":
        actions.do_delete_line(drawn, bob, expected_version=drawn.version)
    else:
        above = document.lines.get(order=drawn.order - 1)
        actions.do_merge_lines(above, bob, expected_version=above.version)
    document.refresh_from_db()
    assert document.status == Document.Status.READY


@pytest.mark.django_db
def test_a_calibration_stored_while_a_worker_holds_its_model_applies_to_its_next_readings(
    starter_model, document, letters
):
    services.do_queue_recognition(document.lines.all())
    drain()  # the worker now holds the model and its version
    version = document.lines.first().model_version
    fit = {"method": "platt-logit", "a": 0.5, "b": -1.0}
    ModelVersion.objects.filter(pk=version.pk).update(calibration=fit)
    later = factories.make_document(letters, "Later", status=Document.Status.RECOGNIZING)
    page = factories.make_page(later)
    factories.make_line(page, 0)
    services.do_queue_recognition(later.lines.all())
    drain()
    best = later.lines.get().hypotheses.get(rank=0)
    assert best.calibrated_confidence == pytest.approx(apply_calibration(fit, best.confidence))

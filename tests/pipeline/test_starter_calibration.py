"""The starter model reads with the calibration shipped beside its weights: its raw confidences
overstate how often it is right, and a new collection's threshold would accept its wrong
readings unseen."""

import pytest

from ocrreview.corpus.calibration_guard import uncalibrated_auto_accept
from ocrreview.corpus.models import ModelVersion
from ocrreview.transcription import services
from recognition.loading import starter_calibration
from tests.pipeline.test_model_fallback import document, drain, garbage_model  # noqa: F401

REVIEWERS_FIT = {
    "method": "platt-logit",
    "a": 0.5,
    "b": -1.0,
    "n": 400,
    "fitted_on": ModelVersion.FITTED_ON_REVIEWS,
    "fitted_at": "2026-11-30T10:00:00+00:00",
}
# What an earlier stage of the starter shipped, stored when the site ran that stage.
EARLIER_STAGES_FIT = {"method": "platt-logit", "a": 0.9, "b": 0.4, "n": 940}


def starter_version() -> ModelVersion:
    return ModelVersion.objects.get(name=services.STARTER_MODEL_NAME)


@pytest.mark.django_db
def test_the_starter_standing_in_reads_with_its_shipped_calibration(garbage_model, document):  # noqa: F811
    services.do_queue_recognition(document.lines.all())
    drain()
    version = starter_version()
    assert version.calibration == starter_calibration() is not None
    assert set(document.lines.values_list("model_version", flat=True)) == {version.pk}
    # A collection reading with it sets a threshold without being asked to confirm.
    assert uncalibrated_auto_accept(0.9, version) is None


@pytest.mark.django_db
def test_a_starter_version_made_before_it_shipped_a_calibration_gets_it(garbage_model, document):  # noqa: F811
    ModelVersion.objects.create(name=services.STARTER_MODEL_NAME, source="recognition/x")
    services.do_queue_recognition(document.lines.all())
    drain()
    assert starter_version().calibration == starter_calibration()


@pytest.mark.django_db
def test_a_fit_on_the_collections_reviews_is_kept(garbage_model, document):  # noqa: F811
    ModelVersion.objects.create(
        name=services.STARTER_MODEL_NAME, source="recognition/x", calibration=REVIEWERS_FIT
    )
    services.do_queue_recognition(document.lines.all())
    drain()
    assert starter_version().calibration == REVIEWERS_FIT


@pytest.mark.django_db
def test_a_site_upgraded_to_a_new_stage_takes_its_fit_for_the_earlier_stages(
    garbage_model,  # noqa: F811
    document,  # noqa: F811
):
    ModelVersion.objects.create(
        name=services.STARTER_MODEL_NAME, source="recognition/x", calibration=EARLIER_STAGES_FIT
    )
    services.do_queue_recognition(document.lines.all())
    drain()
    assert starter_version().calibration == starter_calibration() != EARLIER_STAGES_FIT

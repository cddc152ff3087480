"""A model version calibrated on what reviewers did with its readings: the pairs are the
first answers to its best readings, and every stored confidence of its readings follows."""

import pytest
from django.core.management import CommandError, call_command

from ocrreview.corpus.models import Line, ModelVersion
from ocrreview.review import actions
from ocrreview.training import recalibration
from ocrreview.transcription.models import Hypothesis
from recognition.calibration import apply_calibration
from tests import factories

pytestmark = pytest.mark.django_db

S = Line.Status


@pytest.fixture
def page(letters):
    return factories.make_page(factories.make_document(letters, "Register"), 0)


def read(page, order, text, raw, version, status=S.NEEDS_REVIEW):
    return factories.make_read_line(page, order, [(text, raw)], version, status=status)


def answered(line, user, text):
    return actions.do_save_line(line, user, text, expected_version=line.version)


def reviewed_readings(page, version, user, right=60, wrong=60):
    """Over-confident readings: at 0.95 each, half of them are wrong."""
    for n in range(right):
        answered(read(page, n, f"line {n}", 0.95, version), user, f"line {n}")
    for n in range(right, right + wrong):
        answered(read(page, n, f"lime {n}", 0.95, version), user, f"line {n}")


def test_pairs_are_first_answers_to_the_versions_best_reading(page, bob, model_version):
    kept = read(page, 0, "Dear Sir", 0.9, model_version)
    answered(kept, bob, " Dear Sir ")
    # A second thought about the reviewer's own text says nothing about the reading.
    kept.refresh_from_db()
    answered(kept, bob, "Dear Sirs")
    changed = read(page, 1, "I recieved", 0.4, model_version)
    answered(changed, bob, "I received")
    read(page, 2, "unanswered", 0.7, model_version)
    other = factories.make_model_version("other", "/models/other")
    answered(read(page, 3, "of the 3d", 0.8, other), bob, "of the 3d")
    # Split before it was answered: the answer is about half the reading, not the reading.
    split = read(page, 4, "hasten to reply", 0.6, model_version)
    actions.do_split_line(split, bob, at_x=50, expected_version=split.version)
    split.refresh_from_db()
    answered(split, bob, split.text)

    assert sorted(recalibration.review_pairs(model_version)) == [(0.4, False), (0.9, True)]


def test_calibration_from_reviews_lowers_over_confident_readings_everywhere(
    page, bob, model_version
):
    reviewed_readings(page, model_version, bob)
    waiting = read(page, 30, "hasten to reply", 0.95, model_version, status=S.AUTO_ACCEPTED)
    cut_off = read(page, 31, "a reading cut", 0.95, model_version)
    Line.objects.filter(pk=cut_off.pk).update(confidence=0.0)
    human = read(page, 32, "split by a person", 0.95, model_version)
    Line.objects.filter(pk=human.pk).update(human_text=True)

    fit = recalibration.do_calibrate_from_reviews(model_version)

    assert fit["n"] == 120 and fit["accepted_rate"] == 0.5 and fit["fitted_on"] == "reviews"
    expected = apply_calibration(fit, 0.95)
    assert expected < 0.8
    assert ModelVersion.objects.get(pk=model_version.pk).calibration == fit
    waiting.refresh_from_db()
    assert waiting.confidence == pytest.approx(expected)
    assert waiting.status == S.AUTO_ACCEPTED  # applying the threshold is the admin's decision
    hypotheses = Hypothesis.objects.filter(model_version=model_version)
    assert {round(h.calibrated_confidence, 9) for h in hypotheses} == {round(expected, 9)}
    assert Line.objects.get(pk=cut_off.pk).confidence == 0.0
    assert Line.objects.get(pk=human.pk).confidence == 0.95


def test_readings_are_recalibrated_as_the_engine_calibrates_them(page, bob, model_version):
    reviewed_readings(page, model_version, bob)
    extremes = [0.0, 1e-320, 1.0]
    lines = [read(page, 200 + n, "x", raw, model_version) for n, raw in enumerate(extremes)]
    lines.append(read(page, 210, "x", 0.5, model_version))
    Hypothesis.objects.filter(line=lines[3]).update(confidence=float("nan"))  # fp16 overflow
    with_alternative = factories.make_read_line(
        page, 300, [("Dear Sir", 0.6), ("Dear Sr", 0.3)], model_version
    )
    fit = recalibration.do_calibrate_from_reviews(model_version)

    for line, raw in zip(lines, extremes, strict=False):
        assert Hypothesis.objects.get(line=line).calibrated_confidence == apply_calibration(
            fit, raw
        )
    assert Hypothesis.objects.get(line=lines[3]).calibrated_confidence == 0.0  # not a number
    best, alternative = with_alternative.hypotheses.order_by("rank")
    # The alternative's share of what the best leaves, as recognition.inference makes it.
    assert best.calibrated_confidence == apply_calibration(fit, 0.6)
    assert alternative.calibrated_confidence == pytest.approx(
        (1 - best.calibrated_confidence) * 0.3 / 0.4
    )


def test_too_few_answers_change_nothing(page, bob, model_version):
    reviewed_readings(page, model_version, bob, right=50, wrong=49)
    with pytest.raises(recalibration.CalibrationError, match="at least 100 reviewed lines"):
        recalibration.do_calibrate_from_reviews(model_version)
    assert ModelVersion.objects.get(pk=model_version.pk).calibration is None


def test_the_command_names_the_fit_and_refuses_too_few(page, bob, model_version, capsys):
    with pytest.raises(CommandError, match="at least 100 reviewed lines"):
        call_command("calibrate_model", str(model_version.pk))
    reviewed_readings(page, model_version, bob)
    call_command("calibrate_model", model_version.name)
    out = capsys.readouterr().out
    assert "calibrated on 120 reviewed readings (50% kept unchanged)" in out


def test_the_command_finds_the_model_version_by_its_name_as_stored(model_version):
    with pytest.raises(CommandError, match="at least 100 reviewed lines"):
        call_command("calibrate_model", "ti\u202eny\t")

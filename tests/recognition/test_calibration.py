import json
import math
import random

import pytest

from recognition.calibration import apply_calibration, fit_calibration


def _overconfident_reviews(n: int, seed: int = 0) -> list[tuple[float, bool]]:
    """Lines whose true chance of being right is much lower than the raw score."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        raw = rng.uniform(0.5, 1.0)
        logit = math.log(raw / (1 - raw))
        true_p = 1 / (1 + math.exp(-(0.6 * logit - 1.0)))
        pairs.append((raw, rng.random() < true_p))
    return pairs


def test_identity_without_a_fit() -> None:
    assert apply_calibration(None, 0.73) == 0.73


def test_calibrated_confidence_matches_acceptance_rate() -> None:
    train = _overconfident_reviews(3000, seed=1)
    fit = fit_calibration(train)
    held_out = _overconfident_reviews(3000, seed=2)
    high = [(apply_calibration(fit, raw), ok) for raw, ok in held_out if raw > 0.95]
    mean_confidence = sum(c for c, _ in high) / len(high)
    accepted = sum(ok for _, ok in high) / len(high)
    raw_mean = sum(raw for raw, _ in held_out if raw > 0.95) / len(high)
    assert abs(mean_confidence - accepted) < 0.05
    assert abs(raw_mean - accepted) > 0.1  # the raw score was well off
    assert fit["log_loss_after"] < fit["log_loss_before"]


def test_fit_is_json_serialisable_and_monotone() -> None:
    fit = json.loads(json.dumps(fit_calibration(_overconfident_reviews(200))))
    values = [apply_calibration(fit, c / 100) for c in range(1, 100)]
    assert values == sorted(values)
    assert all(0.0 < v < 1.0 for v in values)


def _weak_model_reviews(n: int, seed: int) -> list[tuple[float, bool]]:
    """A weak model's raw scores spread over many orders of magnitude (long lines, a product
    of token probabilities), with an acceptance rate that barely depends on them."""
    rng = random.Random(seed)
    return [(rng.random() ** 8, rng.random() < 0.7) for _ in range(n)]


@pytest.mark.parametrize("n, seed", [(2000, 0), (50, 3), (300, 7)])
def test_a_fit_on_widely_spread_scores_converges_and_beats_the_identity(n, seed) -> None:
    # Undamped Newton steps swung between two fits here and returned a = 4038, which mapped
    # every raw score to 0 or 1.
    pairs = _weak_model_reviews(n, seed)
    fit = fit_calibration(pairs)
    assert fit["log_loss_after"] < fit["log_loss_before"]
    assert 0.0 <= fit["a"] < 1.0
    accepted = sum(ok for _, ok in pairs) / n
    assert apply_calibration(fit, 0.5) == pytest.approx(accepted, abs=0.15)


def test_extreme_raw_values_stay_finite() -> None:
    fit = fit_calibration(_overconfident_reviews(200))
    assert 0.0 < apply_calibration(fit, 0.0) < apply_calibration(fit, 1.0) < 1.0


def test_the_least_sure_lines_keep_their_order_once_calibrated() -> None:
    """Below 1e-6 every raw score calibrated to one value: the review queue's least sure lines
    came in no order."""
    fit = fit_calibration(_overconfident_reviews(400))
    raws = [1e-7, 1e-12, 1e-30, 1e-100]
    calibrated = [apply_calibration(fit, raw) for raw in raws]
    assert calibrated == sorted(calibrated, reverse=True)
    assert len(set(calibrated)) == len(raws)


def test_backwards_confidence_falls_back_to_the_base_rate() -> None:
    pairs = [(0.99, False)] * 30 + [(0.1, True)] * 30
    fit = fit_calibration(pairs)
    assert fit["a"] == 0.0
    assert apply_calibration(fit, 0.2) == pytest.approx(0.5)


def test_too_few_reviews_or_unknown_method_are_errors() -> None:
    with pytest.raises(ValueError, match="at least"):
        fit_calibration([(0.9, True)] * 3)
    with pytest.raises(ValueError, match="unknown calibration"):
        apply_calibration({"method": "magic"}, 0.5)


def test_scores_that_are_not_numbers_are_left_out_of_the_fit() -> None:
    """One NaN score made the fit NaN, refused only when a run stored it, after training."""
    fit = fit_calibration([(0.9, True), (0.2, False)] * 6 + [(float("nan"), True)])
    assert math.isfinite(fit["a"]) and math.isfinite(fit["b"]) and fit["n"] == 12

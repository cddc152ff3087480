"""Calibrating line confidences against human review.

Method: Platt scaling on the logit of the raw line confidence,
``calibrated = sigmoid(a * logit(raw) + b)``, fitted by maximum likelihood on
``(raw_confidence, top_hypothesis_was_right)`` pairs from reviewed lines.

Why not plain temperature scaling: it needs the token logits and can only
sharpen or soften, while a line-level score is also shifted (a product of
token probabilities drifts with line length and with the model's habitual
over-confidence), which the bias ``b`` absorbs. Why not isotonic regression: it
needs thousands of reviewed lines before its steps stop overfitting, and its
flat steps tie many lines at one value, which blurs the review order; the
two-parameter fit is usable from a few hundred lines and, constrained to
``a >= 0``, never reorders lines. A weak prior pulls the fit towards the
identity map, so a handful of reviews cannot produce an extreme mapping.

The fit is a small JSON-serialisable dict, stored with the model version it was
fitted for; the routing threshold is compared with the calibrated value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

METHOD = "platt-logit"
# Keeps logit() finite: a product of token probabilities can round to exactly 1.0 or
# underflow to 0.0. The low end is near the smallest double: at 1e-6, every line whose
# tokens multiply to less (a long one, or one with two unlikely tokens) calibrated alike,
# and the least-sure-first queue served them in no order.
LOGIT_FLOOR = 1e-300
LOGIT_CEILING = 1 - 1e-15
# Keeps the log loss finite.
EPSILON = 1e-6
# Strength of the pull towards the identity map (a=1, b=0), in units of the
# log-likelihood of roughly one observation.
PRIOR_STRENGTH = 1.0
MIN_PAIRS = 10


def fit_calibration(pairs: Iterable[tuple[float, bool]]) -> dict[str, Any]:
    """Fit a calibration map from reviewed lines.

    ``pairs`` holds ``(raw_confidence, was_correct)`` where ``was_correct``
    means a human accepted the top hypothesis unchanged.
    """
    # A NaN score (fp16 overflow) would make the whole fit NaN, found only when it is stored.
    data = [(float(c), bool(ok)) for c, ok in pairs if math.isfinite(float(c))]
    if len(data) < MIN_PAIRS:
        raise ValueError(f"need at least {MIN_PAIRS} reviewed lines to calibrate, got {len(data)}")
    x = np.array([_logit(c) for c, _ in data])
    y = np.array([1.0 if ok else 0.0 for _, ok in data])
    a, b = _fit_logistic(x, y)
    return {
        "method": METHOD,
        "a": a,
        "b": b,
        "n": len(data),
        "accepted_rate": float(y.mean()),
        "log_loss_before": _log_loss(x, y, 1.0, 0.0),
        "log_loss_after": _log_loss(x, y, a, b),
    }


def check_calibration(fit: Mapping[str, Any] | None) -> None:
    """Raise ValueError for a fit this code cannot apply (another method, missing numbers)."""
    if fit is None:
        return
    if fit.get("method") != METHOD:
        raise ValueError(f"unknown calibration method {fit.get('method')!r}")
    for key in ("a", "b"):
        if not isinstance(fit.get(key), int | float) or not math.isfinite(fit[key]):
            raise ValueError(f"the calibration fit lacks a finite {key!r}")


def apply_calibration(fit: Mapping[str, Any] | None, confidence: float) -> float:
    """Map a raw confidence through ``fit``; the identity when ``fit`` is None."""
    if fit is None:
        return confidence
    check_calibration(fit)
    return _sigmoid(float(fit["a"]) * _logit(confidence) + float(fit["b"]))


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Newton's method on the penalised log-likelihood, each step halved until the objective
    goes down: full steps from the identity overshoot and oscillate when the logits are spread
    wide (long lines, a weak model), and would return wherever the swing stopped."""
    params = np.array([1.0, 0.0])
    prior = np.array([1.0, 0.0])
    design = np.stack([x, np.ones_like(x)], axis=1)

    def objective(theta: np.ndarray) -> float:
        z = design @ theta
        penalty = 0.5 * PRIOR_STRENGTH * float(np.sum((theta - prior) ** 2))
        return float(np.sum(np.logaddexp(0.0, z) - y * z)) + penalty

    current = objective(params)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ params)))
        gradient = design.T @ (p - y) + PRIOR_STRENGTH * (params - prior)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + PRIOR_STRENGTH * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        while objective(params - step) > current and np.abs(step).max() > 1e-12:
            step = step / 2
        params = params - step
        current = objective(params)
        if np.abs(step).max() < 1e-10:
            break
    a, b = float(params[0]), float(params[1])
    if a < 0:
        # A confidence that ranks lines backwards carries no usable signal;
        # fall back to the (penalised) base rate for every line.
        a = 0.0
        b = float(np.log((y.sum() + 0.5) / (len(y) - y.sum() + 0.5)))
    return a, b


def _log_loss(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    p = np.clip(1.0 / (1.0 + np.exp(-(a * x + b))), EPSILON, 1 - EPSILON)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _logit(p: float) -> float:
    p = min(max(p, LOGIT_FLOOR), LOGIT_CEILING)
    return math.log(p) - math.log1p(-p)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)

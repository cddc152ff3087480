"""The training chart: loss and validation CER against step, as SVG polyline points."""

from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, PAD = 600, 180, 6


@dataclass
class Chart:
    loss: str
    cer: str
    steps: int
    max_loss: float
    max_cer: float
    width: int = WIDTH
    height: int = HEIGHT


def _points(pairs: list[tuple[int, float]], steps: int, top: float) -> str:
    def x(step: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * step / max(steps, 1)

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * min(value, top) / (top or 1.0)

    points = [f"{x(step):.1f},{y(value):.1f}" for step, value in pairs]
    # A polyline of one point draws nothing; one of a point twice, with round caps, a dot (a
    # run whose only validation is at its end).
    return " ".join(points * 2 if len(points) == 1 else points)


def history_chart(history: list[dict[str, Any]]) -> Chart | None:
    losses = [
        (e["step"], e["loss"])
        for e in history
        if e.get("event") == "step" and e.get("loss") is not None
    ]
    cers = [(e["step"], e["cer"]) for e in history if e.get("event") == "eval"]
    if not losses and not cers:
        return None
    # The axis ends at the last step reported, not the planned total: a run capped at many
    # steps that stops early would otherwise draw in a sliver at the left.
    steps = max([s for s, _ in losses] + [s for s, _ in cers])
    max_loss = max((v for _, v in losses), default=1.0)
    # CER above 1 (a model that rambles) is clipped so the interesting range stays visible.
    max_cer = min(max((v for _, v in cers), default=1.0), 1.0)
    return Chart(
        loss=_points(losses, steps, max_loss),
        cer=_points(cers, steps, max_cer),
        steps=steps,
        max_loss=max_loss,
        max_cer=max_cer,
    )


def last_step(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last training step reported, with the planned total: the history ends with an
    evaluation (no total) or starts with a warning (no step) as often as with a step."""
    return next((e for e in reversed(history) if e.get("event") == "step"), None)

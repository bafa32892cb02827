"""Warmup that composes with any schedule (PyTorch LinearLR's convention for ``linear``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrexp.schedules.base import Schedule, require

WARMUP_SHAPES = ("linear", "cosine", "exponential")


def check_warmup(steps: int, start_factor: float, shape: str) -> None:
    """Validate warmup parameters; ``steps`` is already resolved to optimizer steps."""
    require(isinstance(steps, int) and steps >= 0, "warmup.steps", f"must be >= 0, got {steps!r}")
    require(
        isinstance(start_factor, int | float) and 0 < start_factor <= 1,
        "warmup.start_factor",
        f"must be in (0, 1], got {start_factor!r}",
    )
    require(
        shape in WARMUP_SHAPES,
        "warmup.shape",
        f"must be one of {', '.join(WARMUP_SHAPES)}, got {shape!r}",
    )


def warmup_factor(step: int, steps: int, start_factor: float, shape: str) -> float:
    """Multiplier at ``step`` < ``steps``: rises from ``start_factor`` towards 1.

    linear: start + (1 - start) * t/W (LinearLR); cosine: half-cosine ramp between the same
    ends; exponential: start * (1/start)^(t/W), a geometric ramp.
    """
    progress = step / steps
    if shape == "linear":
        return start_factor + (1.0 - start_factor) * progress
    if shape == "cosine":
        return start_factor + (1.0 - start_factor) * (1.0 - math.cos(math.pi * progress)) / 2.0
    return float(start_factor * (1.0 / start_factor) ** progress)


class Warmup(Schedule):
    """Warmup for ``steps`` steps, then ``inner`` on its local step t - steps.

    A momentum-cycling ``inner`` keeps its step-0 momentum (``max_momentum`` for onecycle and
    cyclic) during the warmup, so momentum is continuous where the inner schedule starts.
    """

    def __init__(self, inner: Schedule, steps: int, start_factor: float, shape: str) -> None:
        check_warmup(steps, start_factor, shape)
        self.inner = inner
        self.steps = steps
        self.start_factor = start_factor
        self.shape = shape
        self.metric_driven = inner.metric_driven

    @property
    def length(self) -> int | None:
        inner = self.inner.length
        return None if inner is None else inner + self.steps

    def lr_at(self, step: int) -> float:
        if step < self.steps:
            return warmup_factor(step, self.steps, self.start_factor, self.shape)
        return self.inner.lr_at(step - self.steps)

    @property
    def cycles_momentum(self) -> bool:
        return self.inner.cycles_momentum

    def momentum_at(self, step: int) -> float | None:
        return self.inner.momentum_at(max(step - self.steps, 0))

    def observe(self, metrics: Mapping[str, float], step: int) -> None:
        self.inner.observe(metrics, max(step - self.steps, 0))

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)

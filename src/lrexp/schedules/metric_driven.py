"""Schedules whose value reacts to validation metrics (state is saved in checkpoints)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lrexp.schedules.base import (
    Schedule,
    register,
    require,
    require_positive,
    require_step_count,
)

MONITORABLE = ("val/loss", "val/acc", "train/loss", "train/acc")


def check_monitor(monitor: str) -> None:
    """``schedule.monitor`` must be a metric every run logs (else it would never step)."""
    require(
        monitor in MONITORABLE,
        "monitor",
        f"must be a metric lrexp logs ({', '.join(MONITORABLE)}), got {monitor!r}",
    )


def _check_monitor(monitor: str, mode: str) -> None:
    check_monitor(monitor)
    require(mode in ("min", "max"), "mode", f"must be one of min, max, got {mode!r}")


@dataclass
class _MetricState:
    """Mutable state shared by metric-driven families; plain numbers, checkpoint-safe."""

    factor: float = 1.0
    best: float | None = None
    last: float | None = None
    bad_epochs: int = 0
    cooldown_left: int = 0
    anchor_step: int = 0
    period: int = 0


class _MetricDriven(Schedule):
    """Holds the current multiplier in ``self.state``."""

    metric_driven = True
    monitor: str
    state: _MetricState

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = _MetricState(**state)

    def value(self, metrics: Mapping[str, float]) -> float | None:
        """The monitored value, or None when this validation did not produce it."""
        value = metrics.get(self.monitor)
        return None if value is None else float(value)


@register("plateau")
@dataclass
class Plateau(_MetricDriven):
    """PyTorch ReduceLROnPlateau semantics in multiplier space (``min_lr`` is absolute)."""

    monitor: str = "val/loss"
    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float = 0.0
    eps: float = 1e-8
    base_lr: float = 1.0
    state: _MetricState = field(default_factory=_MetricState)

    def __post_init__(self) -> None:
        _check_monitor(self.monitor, self.mode)
        require(
            isinstance(self.factor, int | float) and 0 < self.factor < 1,
            "factor",
            f"must be in (0, 1), got {self.factor!r}",
        )
        require_step_count(self.patience, "patience", minimum=0)
        require_step_count(self.cooldown, "cooldown", minimum=0)
        require(
            self.threshold_mode in ("rel", "abs"),
            "threshold_mode",
            f"must be one of rel, abs, got {self.threshold_mode!r}",
        )
        require(self.min_lr >= 0, "min_lr", f"must be >= 0, got {self.min_lr!r}")

    def is_better(self, current: float, best: float | None) -> bool:
        """ReduceLROnPlateau's comparison, literally (best None = the initial +-inf)."""
        if best is None:
            return True
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return current < best * (1.0 - self.threshold)
            return current < best - self.threshold
        if self.threshold_mode == "rel":
            return current > best * (self.threshold + 1.0)
        return current > best + self.threshold

    def observe(self, metrics: Mapping[str, float], step: int) -> None:
        current = self.value(metrics)
        if current is None:
            return
        state = self.state
        if self.is_better(current, state.best):
            state.best, state.bad_epochs = current, 0
        else:
            state.bad_epochs += 1
        if state.cooldown_left > 0:
            state.cooldown_left -= 1
            state.bad_epochs = 0
        if state.bad_epochs > self.patience:
            old_lr = state.factor * self.base_lr
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                state.factor = new_lr / self.base_lr
            state.cooldown_left, state.bad_epochs = self.cooldown, 0

    def lr_at(self, step: int) -> float:
        return self.state.factor


@register("bold_driver")
@dataclass
class BoldDriver(_MetricDriven):
    """Multiply by ``increase`` after a validation that improves ``monitor`` over the previous
    one, by ``decrease`` after one that worsens it; clamp the LR to [min_lr, max_lr]."""

    monitor: str = "val/loss"
    mode: str = "min"
    increase: float = 1.05
    decrease: float = 0.5
    min_lr: float = 0.0
    max_lr: float = math.inf
    base_lr: float = 1.0
    state: _MetricState = field(default_factory=_MetricState)

    def __post_init__(self) -> None:
        _check_monitor(self.monitor, self.mode)
        require(self.increase >= 1, "increase", f"must be >= 1, got {self.increase!r}")
        require(
            isinstance(self.decrease, int | float) and 0 < self.decrease <= 1,
            "decrease",
            f"must be in (0, 1], got {self.decrease!r}",
        )
        require(self.min_lr >= 0, "min_lr", f"must be >= 0, got {self.min_lr!r}")
        require(self.max_lr > self.min_lr, "max_lr", "must be greater than min_lr")

    def observe(self, metrics: Mapping[str, float], step: int) -> None:
        current = self.value(metrics)
        if current is None:
            return
        previous, self.state.last = self.state.last, current
        if previous is None or current == previous:
            return
        improved = current < previous if self.mode == "min" else current > previous
        lr = self.state.factor * self.base_lr * (self.increase if improved else self.decrease)
        self.state.factor = min(max(lr, self.min_lr), self.max_lr) / self.base_lr

    def lr_at(self, step: int) -> float:
        return self.state.factor


@register("adaptive_step")
@dataclass
class AdaptiveStep(_MetricDriven):
    """Step decay by ``gamma`` every ``period`` steps, where the period shrinks by ``shrink``
    after a validation that worsens ``monitor`` and grows by ``grow`` after one that improves
    it (the seeds' "dynamic period" rule), kept within [min_period, max_period]."""

    step_size: int = 200
    gamma: float = 0.5
    shrink: float = 0.5
    grow: float = 1.5
    min_period: int = 10
    max_period: int = 100_000
    monitor: str = "val/loss"
    mode: str = "min"
    state: _MetricState = field(default_factory=_MetricState)
    durations = ("step_size", "min_period", "max_period")

    def __post_init__(self) -> None:
        _check_monitor(self.monitor, self.mode)
        require_step_count(self.step_size, "step_size")
        require_step_count(self.min_period, "min_period")
        require_step_count(self.max_period, "max_period")
        require(self.min_period <= self.max_period, "min_period", "must be <= max_period")
        require_positive(self.gamma, "gamma")
        require(0 < self.shrink <= 1, "shrink", f"must be in (0, 1], got {self.shrink!r}")
        require(self.grow >= 1, "grow", f"must be >= 1, got {self.grow!r}")
        if self.state.period == 0:
            self.state.period = self.step_size

    def decays_since_anchor(self, step: int) -> int:
        return max(step - self.state.anchor_step, 0) // self.state.period

    def lr_at(self, step: int) -> float:
        return float(self.state.factor * self.gamma ** self.decays_since_anchor(step))

    def observe(self, metrics: Mapping[str, float], step: int) -> None:
        current = self.value(metrics)
        if current is None:
            return
        previous, self.state.last = self.state.last, current
        if previous is None or current == previous:
            return
        improved = current < previous if self.mode == "min" else current > previous
        scale = self.grow if improved else self.shrink
        new_period = min(max(round(self.state.period * scale), self.min_period), self.max_period)
        if new_period == self.state.period:
            return
        decays = self.decays_since_anchor(step)
        self.state.factor *= self.gamma**decays
        self.state.anchor_step += decays * self.state.period
        self.state.period = new_period

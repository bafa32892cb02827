"""Closed-form schedule families: pure functions of the optimizer step.

Conventions (shared by every family): ``t`` counts updates already taken, from 0; ``T`` is
the family's total; past ``T`` a family holds its final value. References are noted per
family; ``tests/test_schedules.py`` checks each against its PyTorch counterpart.

Over 300 lines on purpose: the families are small classes that share these
conventions and are meant to be read and compared side by side; split apart, each file would
be a few dozen lines restating them.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import ClassVar

from lrexp.schedules.base import (
    Schedule,
    register,
    require,
    require_factor,
    require_list,
    require_positive,
    require_step_count,
)


@dataclass
class _Finite(Schedule):
    """Base for families that run over ``total`` steps and then hold their final value."""

    total: int | None = None
    needs_total = True
    durations: ClassVar[tuple[str, ...]] = ("total",)

    def __post_init__(self) -> None:
        if self.total is not None:
            require_step_count(self.total, "total")

    @property
    def length(self) -> int | None:
        return self.total

    def progress(self, step: int) -> float:
        """Fraction of the schedule completed at ``step``, clamped to [0, 1]."""
        if self.total is None:
            raise RuntimeError("schedule total is unbound; build it with build_schedule()")
        return min(step, self.total) / self.total


@register("constant")
@dataclass
class Constant(Schedule):
    """Multiplier 1 at every step."""

    def lr_at(self, step: int) -> float:
        return 1.0


@register("step")
@dataclass
class Step(Schedule):
    """gamma^floor(t / step_size); PyTorch StepLR."""

    step_size: int = 30
    gamma: float = 0.1
    durations = ("step_size",)

    def __post_init__(self) -> None:
        require_step_count(self.step_size, "step_size")
        require_positive(self.gamma, "gamma")

    def lr_at(self, step: int) -> float:
        return float(self.gamma ** (step // self.step_size))


@register("multistep")
@dataclass
class MultiStep(Schedule):
    """gamma^(number of milestones <= t); PyTorch MultiStepLR."""

    milestones: list[int] = field(default_factory=lambda: [30, 60])
    gamma: float = 0.1
    durations = ("milestones",)

    def __post_init__(self) -> None:
        self.milestones = require_list(self.milestones, "milestones")
        for i, milestone in enumerate(self.milestones):
            require_step_count(milestone, f"milestones[{i}]")
        require(
            all(a < b for a, b in zip(self.milestones, self.milestones[1:], strict=False)),
            "milestones",
            f"must be strictly increasing, got {self.milestones}",
        )
        require_positive(self.gamma, "gamma")

    def lr_at(self, step: int) -> float:
        return float(self.gamma ** bisect_right(self.milestones, step))


@register("piecewise_constant")
@dataclass
class PiecewiseConstant(Schedule):
    """values[number of boundaries <= t]; optax convention (Keras switches one step later)."""

    boundaries: list[int] = field(default_factory=lambda: [100, 200])
    values: list[float] = field(default_factory=lambda: [1.0, 0.1, 0.01])
    durations = ("boundaries",)

    def __post_init__(self) -> None:
        self.boundaries = require_list(self.boundaries, "boundaries")
        values = require_list(self.values, "values")
        for i, value in enumerate(values):
            require_positive(value, f"values[{i}]")
        self.values = [float(v) for v in values]
        for i, boundary in enumerate(self.boundaries):
            require_step_count(boundary, f"boundaries[{i}]")
        require(
            all(a < b for a, b in zip(self.boundaries, self.boundaries[1:], strict=False)),
            "boundaries",
            f"must be strictly increasing, got {self.boundaries}",
        )
        require(
            len(self.values) == len(self.boundaries) + 1,
            "values",
            f"needs len(boundaries)+1 = {len(self.boundaries) + 1} entries, got {len(self.values)}",
        )

    def lr_at(self, step: int) -> float:
        return self.values[bisect_right(self.boundaries, step)]


@register("exponential")
@dataclass
class Exponential(Schedule):
    """gamma^(t / decay_steps), floored with staircase; PyTorch ExponentialLR, Keras
    ExponentialDecay."""

    gamma: float = 0.99
    decay_steps: int = 1
    staircase: bool = False
    durations = ("decay_steps",)

    def __post_init__(self) -> None:
        require_positive(self.gamma, "gamma")
        require_step_count(self.decay_steps, "decay_steps")

    def lr_at(self, step: int) -> float:
        exponent = step // self.decay_steps if self.staircase else step / self.decay_steps
        return float(self.gamma**exponent)


@register("inverse_time")
@dataclass
class InverseTime(Schedule):
    """1 / (1 + decay_rate * t / decay_steps); Keras InverseTimeDecay.

    The seeds' "inverse decay" lr * (1 + t/T)^-1 is decay_rate=1, decay_steps=T.
    """

    decay_rate: float = 1.0
    decay_steps: int = 1
    staircase: bool = False
    durations = ("decay_steps",)

    def __post_init__(self) -> None:
        require(
            isinstance(self.decay_rate, int | float) and self.decay_rate >= 0,
            "decay_rate",
            f"must be >= 0, got {self.decay_rate!r}",
        )
        require_step_count(self.decay_steps, "decay_steps")

    def lr_at(self, step: int) -> float:
        ratio = step // self.decay_steps if self.staircase else step / self.decay_steps
        return 1.0 / (1.0 + self.decay_rate * ratio)


@register("linear")
@dataclass
class Linear(_Finite):
    """1 + (end_factor - 1) * min(t, T) / T; PyTorch LinearLR(start_factor=1)."""

    end_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_factor(self.end_factor, "end_factor")

    def lr_at(self, step: int) -> float:
        return 1.0 + (self.end_factor - 1.0) * self.progress(step)


@register("polynomial")
@dataclass
class Polynomial(_Finite):
    """(1 - end_factor) * (1 - min(t, T)/T)^power + end_factor; PyTorch PolynomialLR."""

    power: float = 2.0
    end_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self.power, "power")
        require_factor(self.end_factor, "end_factor")

    def lr_at(self, step: int) -> float:
        remaining = 1.0 - self.progress(step)
        return (1.0 - self.end_factor) * remaining**self.power + self.end_factor


def _half_cosine(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, following half a cosine period."""
    return (1.0 + math.cos(math.pi * progress)) / 2.0


@register("cosine")
@dataclass
class Cosine(_Finite):
    """min + (1 - min)(1 + cos(pi min(t,T)/T))/2; PyTorch CosineAnnealingLR, held after T."""

    min_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_factor(self.min_factor, "min_factor")

    def lr_at(self, step: int) -> float:
        return self.min_factor + (1.0 - self.min_factor) * _half_cosine(self.progress(step))


@register("cosine_restarts")
@dataclass
class CosineRestarts(Schedule):
    """SGDR: cosine cycles of length period * period_mult^i, peak cycle_decay^i.

    Integer ``period_mult`` and ``cycle_decay=1`` equal PyTorch CosineAnnealingWarmRestarts;
    ``cycle_decay`` follows timm's CosineLRScheduler. Restarts continue indefinitely.
    """

    period: int = 100
    period_mult: float = 1.0
    min_factor: float = 0.0
    cycle_decay: float = 1.0
    durations = ("period",)

    def __post_init__(self) -> None:
        require_step_count(self.period, "period")
        require(
            isinstance(self.period_mult, int | float) and self.period_mult >= 1,
            "period_mult",
            f"must be >= 1, got {self.period_mult!r}",
        )
        require_factor(self.min_factor, "min_factor")
        require(
            isinstance(self.cycle_decay, int | float) and 0 < self.cycle_decay <= 1,
            "cycle_decay",
            f"must be in (0, 1], got {self.cycle_decay!r}",
        )

    def cycle_at(self, step: int) -> tuple[int, float, float]:
        """Return (cycle index, steps into the cycle, cycle length) for ``step``."""
        if self.period_mult == 1:
            return step // self.period, float(step % self.period), float(self.period)
        mult, period = float(self.period_mult), float(self.period)
        # closed form (as timm), then exact correction of the float log at cycle boundaries
        index = int(math.log(step / period * (mult - 1) + 1, mult))
        start = period * (mult**index - 1) / (mult - 1)
        while index > 0 and step < start:
            index -= 1
            start = period * (mult**index - 1) / (mult - 1)
        while step >= start + period * mult**index:
            start += period * mult**index
            index += 1
        return index, step - start, period * mult**index

    def lr_at(self, step: int) -> float:
        index, position, length = self.cycle_at(step)
        peak = self.cycle_decay**index
        weight = _half_cosine(position / length)  # 1 at the restart, 0 at the cycle end
        if peak >= self.min_factor:  # CosineAnnealingWarmRestarts' arithmetic
            return self.min_factor + (peak - self.min_factor) * weight
        # timm: a decayed peak below min_factor climbs towards it; blend without cancellation
        return self.min_factor * (1.0 - weight) + peak * weight


def _check_momentum(cycle: object, base: object, peak: object) -> None:
    """Validate the momentum-cycling keys shared by ``cyclic`` and ``onecycle``."""
    require(isinstance(cycle, bool), "cycle_momentum", f"must be true or false, got {cycle!r}")
    for key, value in (("base_momentum", base), ("max_momentum", peak)):
        require(
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1,
            key,
            f"must be in [0, 1), got {value!r}",
        )
    require(
        base <= peak,  # type: ignore[operator]
        "base_momentum",
        f"must be <= max_momentum ({peak!r}), got {base!r}",
    )


@register("cyclic")
@dataclass
class Cyclic(Schedule):
    """PyTorch CyclicLR with base_lr = min_factor * lr and max_lr = lr.

    With ``cycle_momentum`` the momentum (beta1 for Adam-type optimizers) cycles inversely,
    from ``max_momentum`` at the cycle start to ``base_momentum`` at the peak, as CyclicLR.
    """

    mode: str = "triangular"
    min_factor: float = 0.1
    step_size_up: int = 200
    step_size_down: int | None = None
    gamma: float = 1.0
    cycle_momentum: bool = True
    base_momentum: float = 0.8
    max_momentum: float = 0.9
    durations = ("step_size_up", "step_size_down")

    def __post_init__(self) -> None:
        modes = ("triangular", "triangular2", "exp_range")
        require(self.mode in modes, "mode", f"must be one of {', '.join(modes)}, got {self.mode!r}")
        require_factor(self.min_factor, "min_factor")
        require_step_count(self.step_size_up, "step_size_up")
        if self.step_size_down is not None:
            require_step_count(self.step_size_down, "step_size_down")
        require_positive(self.gamma, "gamma")
        _check_momentum(self.cycle_momentum, self.base_momentum, self.max_momentum)

    @property
    def cycle_length(self) -> int:
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        return self.step_size_up + down

    def position(self, step: int) -> tuple[float, float]:
        """Return (height in [0, 1] within the cycle, amplitude scale) as CyclicLR does."""
        total = float(self.cycle_length)
        up_ratio = self.step_size_up / total
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        height = x / up_ratio if x <= up_ratio else (x - 1) / (up_ratio - 1)
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 1 / (2.0 ** (cycle - 1))
        else:
            scale = self.gamma**step
        return height, scale

    def lr_at(self, step: int) -> float:
        height, scale = self.position(step)
        return self.min_factor + (1.0 - self.min_factor) * height * scale

    @property
    def cycles_momentum(self) -> bool:
        return self.cycle_momentum

    def momentum_at(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        height, scale = self.position(step)
        return self.max_momentum - (self.max_momentum - self.base_momentum) * height * scale


def _anneal(start: float, end: float, pct: float, shape: str) -> float:
    """OneCycleLR's cosine or linear interpolation from ``start`` to ``end``."""
    if shape == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


@register("onecycle")
@dataclass
class OneCycle(_Finite):
    """PyTorch OneCycleLR with max_lr = lr and total_steps = T; holds its value at T-1 after.

    Multipliers: start 1/div_factor, peak 1, end 1/(div_factor*final_div_factor). With
    ``cycle_momentum`` the momentum (beta1 for Adam-type optimizers) goes max -> base -> max
    (three_phase: max -> base -> max -> max), as OneCycleLR.
    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            isinstance(self.pct_start, int | float) and 0 < self.pct_start < 1,
            "pct_start",
            f"must be in (0, 1), got {self.pct_start!r}",
        )
        require_positive(self.div_factor, "div_factor")
        require_positive(self.final_div_factor, "final_div_factor")
        require(
            self.anneal in ("cos", "linear"),
            "anneal",
            f"must be one of cos, linear, got {self.anneal!r}",
        )
        require(
            isinstance(self.three_phase, bool),
            "three_phase",
            f"must be true or false, got {self.three_phase!r}",
        )
        require(
            not self.three_phase or self.pct_start <= 0.5,
            "pct_start",
            f"must be <= 0.5 with three_phase (two phases of pct_start), got {self.pct_start}",
        )
        _check_momentum(self.cycle_momentum, self.base_momentum, self.max_momentum)
        if self.total is not None:
            require(
                self.pct_start * self.total > 1,
                "pct_start",
                f"pct_start * total must exceed 1 step, got {self.pct_start} * {self.total}",
            )

    def phases(self) -> list[tuple[float, float, float, float, float]]:
        """(end step, start/end multiplier, start/end momentum) per phase, as OneCycleLR."""
        if self.total is None:
            raise RuntimeError("schedule total is unbound; build it with build_schedule()")
        initial = 1.0 / self.div_factor
        final = initial / self.final_div_factor
        total, pct = self.total, self.pct_start
        low, high = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [
                (pct * total - 1, initial, 1.0, high, low),
                (2 * pct * total - 2, 1.0, initial, low, high),
                (total - 1, initial, final, high, high),
            ]
        return [(pct * total - 1, initial, 1.0, high, low), (total - 1, 1.0, final, low, high)]

    def locate(self, step: int) -> tuple[tuple[float, float, float, float, float], float]:
        """The phase of ``min(step, T - 1)`` and the fraction of it done (OneCycleLR's pct)."""
        phases = self.phases()
        step_f = float(min(step, phases[-1][0]))
        start_step = 0.0
        for i, phase in enumerate(phases):
            end_step = phase[0]
            if step_f <= end_step or i == len(phases) - 1:
                return phase, (step_f - start_step) / (end_step - start_step)
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")

    def lr_at(self, step: int) -> float:
        (_, start, end, _, _), pct = self.locate(step)
        return _anneal(start, end, pct, self.anneal)

    @property
    def cycles_momentum(self) -> bool:
        return self.cycle_momentum

    def momentum_at(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        (_, _, _, start, end), pct = self.locate(step)
        return _anneal(start, end, pct, self.anneal)


#: Shapes of a decay to ``min_factor`` (WSD's last phase, a fork's cooldown).
DECAY_SHAPES = ("linear", "cosine", "sqrt", "exp")


def check_decay(shape: object, min_factor: object, shape_key: str) -> None:
    """Validate a decay's shape and floor; ``exp`` needs a floor above 0."""
    require(
        shape in DECAY_SHAPES,
        shape_key,
        f"must be one of {', '.join(DECAY_SHAPES)}, got {shape!r}",
    )
    require_factor(min_factor, "min_factor")
    require(
        shape != "exp" or min_factor > 0,  # type: ignore[operator]
        "min_factor",
        "must be > 0 for an exp decay (min_factor ** progress never reaches 0)",
    )


def decay_factor(done: float, shape: str, min_factor: float) -> float:
    """Multiplier after a fraction ``done`` of a decay from 1 to ``min_factor``.

    linear: 1 - (1 - m) * done; cosine: half a cosine between 1 and m; sqrt: 1 - (1 - m) *
    sqrt(done) (the "1 - sqrt" cooldown of the WSD literature); exp: m ** done.
    """
    if shape == "exp":
        return float(min_factor**done)
    if shape == "linear":
        fall = done
    elif shape == "cosine":
        fall = 1.0 - _half_cosine(done)
    else:
        fall = math.sqrt(done)
    return 1.0 - (1.0 - min_factor) * fall


@register("wsd")
@dataclass
class WarmupStableDecay(_Finite):
    """1 until the last D = round(decay_frac * T) steps, then down to min_factor over them.

    The warmup part comes from ``schedule.warmup``; ``decay_shape`` is one of
    :data:`DECAY_SHAPES` (see :func:`decay_factor`).
    """

    decay_frac: float = 0.2
    decay_shape: str = "linear"
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            isinstance(self.decay_frac, int | float) and 0 <= self.decay_frac <= 1,
            "decay_frac",
            f"must be in [0, 1], got {self.decay_frac!r}",
        )
        check_decay(self.decay_shape, self.min_factor, "decay_shape")

    def lr_at(self, step: int) -> float:
        self.progress(step)
        assert self.total is not None
        decay = round(self.decay_frac * self.total)
        decay_start = self.total - decay
        if step < decay_start or decay == 0:
            return 1.0
        done = min(step - decay_start, decay) / decay
        return decay_factor(done, self.decay_shape, self.min_factor)


@register("inverse_sqrt")
@dataclass
class InverseSqrt(Schedule):
    """sqrt(timescale / (t + timescale)) = 1/sqrt(1 + t/timescale): inverse square-root decay
    with a timescale (no torch counterpart; tested against this formula)."""

    timescale: int = 100
    durations = ("timescale",)

    def __post_init__(self) -> None:
        require_step_count(self.timescale, "timescale")

    def lr_at(self, step: int) -> float:
        return math.sqrt(self.timescale / (step + self.timescale))

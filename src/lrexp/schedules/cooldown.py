"""``cooldown``: any closed-form schedule (the trunk) joined at step ``at`` to a decay.

Before ``at`` the multiplier is the trunk's; from ``at`` on it falls from the trunk's value
at ``at`` to ``min_factor`` times that value over ``length`` steps (:func:`decay_factor`),
then holds. This is optax's ``join_schedules`` with the second part starting where the first
left off: a constant trunk with a linear cooldown is WSD, and a cooldown fork
(:mod:`lrexp.run.fork`) is this family with the trunk run's own schedule as ``trunk``, so a fork
is planned, logged, checkpointed and resumed like any other run.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lrexp.errors import ConfigError
from lrexp.schedules.base import Schedule, register, require, require_step_count
from lrexp.schedules.closed_form import _Finite, check_decay, decay_factor


def build_trunk(
    node: Mapping[str, Any], total: int | None, steps_per_epoch: int | None
) -> Schedule:
    """The trunk schedule; its errors name ``schedule.trunk.<key>``."""
    from lrexp.schedules.factory import build_schedule

    try:
        with warnings.catch_warnings():  # a trunk may be longer or shorter than its run
            warnings.simplefilter("ignore")
            trunk = build_schedule(node, total, 1.0, steps_per_epoch)
    except ConfigError as err:
        key = "schedule.trunk." + err.key.removeprefix("schedule.")
        raise ConfigError(key, str(err).removeprefix(f"{err.key}: ")) from None
    require(not trunk.metric_driven, "trunk.name", "must be a closed-form family (no metrics)")
    require(
        node.get("interval", "step") == "step" and node.get("frequency", 1) == 1,
        "trunk.interval",
        "a trunk must update every step (interval=step, frequency=1)",
    )
    return trunk


@register("cooldown")
@dataclass
class Cooldown(_Finite):
    """``trunk`` until step ``at``, then a ``shape`` decay to ``min_factor`` over ``cooldown``
    steps.

    Unset, ``at`` and ``cooldown`` are derived from the run's total: ``at`` = total -
    cooldown, ``cooldown`` = round(frac * at), and with neither set the run ends with a
    cooldown of ``frac`` times the trunk's steps. ``trunk_total`` is the length the trunk is
    built for (default: the run's); ``trunk_steps_per_epoch`` converts its epoch durations.
    """

    trunk: dict[str, Any] = field(default_factory=lambda: {"name": "constant"})
    at: int | None = None
    cooldown: int | None = None
    frac: float = 0.2
    shape: str = "linear"
    min_factor: float = 0.0
    trunk_total: int | None = None
    trunk_steps_per_epoch: int | None = None
    durations = ("total", "at", "cooldown", "trunk_total")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.trunk, Mapping), "trunk", "must be a schedule mapping")
        self.trunk = dict(self.trunk)
        if self.at is not None:
            require_step_count(self.at, "at", 0)
        for key in ("cooldown", "trunk_total"):
            if getattr(self, key) is not None:
                require_step_count(getattr(self, key), key)
        require(
            isinstance(self.frac, int | float)
            and not isinstance(self.frac, bool)
            and self.frac > 0,
            "frac",
            f"must be > 0, got {self.frac!r}",
        )
        check_decay(self.shape, self.min_factor, "shape")
        self.at, self.cooldown = self.boundaries()
        trunk_total = self.trunk_total or self.total
        self.inner = build_trunk(self.trunk, trunk_total, self.trunk_steps_per_epoch)
        self.start = self.inner.lr_at(self.at) if self.at is not None and trunk_total else 1.0

    def boundaries(self) -> tuple[int | None, int | None]:
        """(at, cooldown), derived from the run's total where unset."""
        at, cooldown = self.at, self.cooldown
        if at is not None and cooldown is None:
            cooldown = max(1, round(self.frac * at))
        if self.total is None or at is not None:
            return at, cooldown
        if cooldown is None:
            at = min(round(self.total / (1 + self.frac)), self.total - 1)
            return at, self.total - at
        require(cooldown < self.total, "cooldown", f"must be < the run's {self.total} steps")
        return self.total - cooldown, cooldown

    @property
    def length(self) -> int | None:
        if self.at is None or self.cooldown is None:
            return self.total
        return self.at + self.cooldown

    def lr_at(self, step: int) -> float:
        if self.at is None or self.cooldown is None:
            raise RuntimeError("cooldown start is unbound; build it with build_schedule()")
        if step < self.at:
            return self.inner.lr_at(step)
        done = min(step - self.at, self.cooldown) / self.cooldown
        return self.start * decay_factor(done, self.shape, self.min_factor)

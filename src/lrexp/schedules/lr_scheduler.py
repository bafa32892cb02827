"""Adapter that drives a torch optimizer's LR (and momentum) from a :class:`Schedule`.

The LR is a function of the optimizer step count (counted by a post-step hook on the optimizer),
not of how often the scheduler is stepped: ``interval=epoch`` then yields the schedule's value
at each epoch start, held for the epoch. Momentum, for families that cycle it, is set at the
same moments from ``schedule.momentum_at`` of the same step count.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrexp.errors import ConfigError
from lrexp.schedules.base import Schedule

_TRANSIENT = ("optimizer", "schedule", "_count_hook")


def momentum_key(options: Collection[str]) -> str:
    """``betas`` (beta1 is cycled) or ``momentum``, the way CyclicLR/OneCycleLR choose.

    ``options`` are the optimizer's option names (``optimizer.defaults``, or the parameters of
    its constructor). Like torch, SGD qualifies even with ``momentum=0``: cycling turns it on.
    """
    if "betas" in options:
        return "betas"
    if "momentum" in options:
        return "momentum"
    raise ConfigError(
        "schedule.cycle_momentum",
        "the optimizer has neither momentum nor betas to cycle; "
        "set schedule.cycle_momentum=false or pick another optimizer",
    )


class ScheduledLR(LRScheduler):
    """Sets every param group's LR to ``initial_lr * schedule.lr_at(optimizer_steps)``.

    When ``schedule.cycles_momentum``, also sets each group's ``momentum`` (or beta1 of
    ``betas``) to ``schedule.momentum_at(optimizer_steps)``.
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule) -> None:
        self.schedule = schedule
        self.optimizer_steps = 0
        self.momentum_key: str | None = (
            momentum_key(optimizer.defaults) if schedule.cycles_momentum else None
        )
        self._count_hook = optimizer.register_step_post_hook(self._count_step)
        super().__init__(optimizer)

    def _count_step(self, *_: Any) -> None:
        self.optimizer_steps += 1

    def get_lr(self) -> list[float]:  # type: ignore[override]
        multiplier = self.schedule.lr_at(self.optimizer_steps)
        return [float(base) * multiplier for base in self.base_lrs]

    def step(self, epoch: int | None = None) -> None:
        super().step(epoch)
        if self.momentum_key is not None:
            self.apply_momentum()

    def apply_momentum(self) -> None:
        """Write ``schedule.momentum_at(optimizer_steps)`` into every param group."""
        momentum = self.schedule.momentum_at(self.optimizer_steps)
        if momentum is None:
            return
        for group in self.optimizer.param_groups:
            if self.momentum_key == "betas":
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum

    def observe(self, metrics: Mapping[str, float]) -> None:
        """Feed validation metrics to a metric-driven schedule and apply its new value now."""
        if self.schedule.metric_driven:
            self.schedule.observe(metrics, self.optimizer_steps)
            for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
                group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in _TRANSIENT}
        state["schedule_state"] = self.schedule.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        self.schedule.load_state_dict(state.pop("schedule_state", {}))
        self.__dict__.update(state)

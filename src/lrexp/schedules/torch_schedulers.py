"""The scheduler a user already has: any ``torch.optim.lr_scheduler`` class, or a factory that
takes the optimizer first (``_partial_: true``, e.g. a ``transformers``
``get_*_schedule_with_warmup``), held to lrexp's guarantees.

A step-driven scheduler is stepped once, before training, on a probe optimizer that carries
the run's base LR (so absolute values such as ``eta_min`` stay absolute), and its LR is
tabulated for every scheduler update of the run: :class:`SteppedTable` is then a pure function
of the step like lrexp's own families, so the preview, ``planned_lr.csv``, the ``lr`` trace,
forks and resume work unchanged. Past the table it holds its last value. A scheduler whose
``step()`` raises before the run's end (a miscounted ``OneCycleLR``) ends the table there, and
the length check warns (or, with ``schedule.strict``, refuses).

``ReduceLROnPlateau`` is driven by the run's metric instead (:class:`PlateauAdapter`):
``schedule.monitor`` (default ``val/loss``) is handed to its ``step()`` after every validation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lrexp.errors import ConfigError
from lrexp.schedules.base import Schedule
from lrexp.schedules.metric_driven import check_monitor

#: length arguments of torch's and transformers' schedulers that lrexp fills when left null:
#: the run's scheduler updates after warmup (as ``total: null`` does for lrexp's families)
LENGTH_ARGUMENTS = ("T_max", "total_iters", "total_steps", "num_training_steps")
#: arguments counted in scheduler updates, converted from epochs under ``schedule.unit=epoch``
DURATION_ARGUMENTS = (
    *LENGTH_ARGUMENTS,
    "step_size",
    "milestones",
    "T_0",
    "step_size_up",
    "step_size_down",
    "num_warmup_steps",
)
#: the metric a ReduceLROnPlateau follows unless ``schedule.monitor`` names another
DEFAULT_MONITOR = "val/loss"


def takes_optimizer(target: Any, partial: bool) -> bool:
    """Whether ``target`` builds a torch scheduler from an optimizer: a subclass of torch's
    ``LRScheduler`` or ``ReduceLROnPlateau``, or any callable marked ``_partial_: true``."""
    if inspect.isclass(target):
        return issubclass(target, LRScheduler | ReduceLROnPlateau)
    return partial and callable(target)


def fill_lengths(target: Callable[..., Any], params: dict[str, Any], updates: int) -> None:
    """Set each of :data:`LENGTH_ARGUMENTS` that is given as null, or that ``target`` needs
    but was not given, to ``updates`` (the run's scheduler updates after warmup)."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    for name in LENGTH_ARGUMENTS:
        parameter = signature.parameters.get(name)
        if parameter is None:
            continue
        required = parameter.default is inspect.Parameter.empty
        if (name in params and params[name] is None) or (name not in params and required):
            params[name] = updates


def probe_optimizer(base_lr: float) -> torch.optim.Optimizer:
    """An optimizer of one parameter at ``base_lr``, with momentum so that schedulers that
    cycle it (``OneCycleLR``, ``CyclicLR``) can be built; only its LR is read."""
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr, momentum=0.9)


def build_torch_scheduler(
    target: Callable[..., Any], params: dict[str, Any], base_lr: float, label: str
) -> tuple[torch.optim.Optimizer, Any]:
    """``target(probe, **params)`` on a fresh probe optimizer; a ConfigError naming the class
    and its message when it refuses the arguments."""
    probe = probe_optimizer(base_lr)
    try:
        return probe, target(probe, **params)
    except (TypeError, ValueError, ArithmeticError, KeyError) as err:
        raise ConfigError("schedule._target_", f"{label}: {type(err).__name__}: {err}") from None


class SteppedTable(Schedule):
    """A step-driven torch scheduler's multipliers after 0..``length`` updates; held after."""

    def __init__(self, multipliers: list[float]) -> None:
        self.multipliers = multipliers

    @property
    def length(self) -> int:
        return len(self.multipliers) - 1

    def lr_at(self, step: int) -> float:
        return self.multipliers[min(step, len(self.multipliers) - 1)]


def tabulate(
    target: Callable[..., Any], params: dict[str, Any], base_lr: float, updates: int, label: str
) -> SteppedTable:
    """Step the scheduler ``updates`` times on a probe, reading the LR before and after each
    step: entry k is the LR of the update that follows k earlier updates, and the last entry
    (after the run's last update) is the value held from then on."""
    probe, scheduler = build_torch_scheduler(target, params, base_lr, label)
    multipliers = [probe.param_groups[0]["lr"] / base_lr]
    for _ in range(updates):
        probe.step()
        try:
            scheduler.step()
        except (ValueError, ArithmeticError):
            break  # stepped past its own length: the table ends, check_length says so
        multipliers.append(probe.param_groups[0]["lr"] / base_lr)
    return SteppedTable(multipliers)


class PlateauAdapter(Schedule):
    """A user's ``ReduceLROnPlateau``, stepped with ``monitor`` after every validation; its
    state (and the probe's LR) goes into checkpoints, so a resume continues it."""

    metric_driven = True

    def __init__(
        self, target: Callable[..., Any], params: dict[str, Any], base_lr: float, label: str
    ) -> None:
        self.monitor = str(params.pop("monitor", DEFAULT_MONITOR))
        check_monitor(self.monitor)
        self.base_lr = base_lr
        self.probe, self.scheduler = build_torch_scheduler(target, params, base_lr, label)

    def observe(self, metrics: Mapping[str, float], step: int) -> None:
        value = metrics.get(self.monitor)
        if value is not None:
            self.scheduler.step(float(value))

    def lr_at(self, step: int) -> float:
        return float(self.probe.param_groups[0]["lr"]) / self.base_lr

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "lr": self.probe.param_groups[0]["lr"]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(dict(state["scheduler"]))
        self.probe.param_groups[0]["lr"] = float(state["lr"])


def torch_schedule(
    target: Callable[..., Any],
    params: dict[str, Any],
    base_lr: float,
    updates: int,
    label: str,
) -> Schedule:
    """The lrexp schedule of a torch scheduler (class or optimizer-first factory)."""
    if inspect.isclass(target) and issubclass(target, ReduceLROnPlateau):
        return PlateauAdapter(target, params, base_lr, label)
    if "monitor" in params:
        raise ConfigError(
            "schedule.monitor", f"{label} is stepped by the optimizer step, not by a metric"
        )
    return tabulate(target, params, base_lr, updates, label)

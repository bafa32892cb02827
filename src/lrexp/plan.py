"""The step planner: how many optimizer steps a run takes and where each LR update lands.

A building block of plain values: batches per epoch, the trainer's settings as a mapping and
the schedule's settings in, a :class:`StepPlan` and the LR of every update out. The config
layer (:mod:`lrexp.config.planning`) reads a composed config, counts the data module's batches and
calls it; validation, ``configure_optimizers``, the previews and the planned-LR artifact all
use these numbers, which mirror Lightning's own count (``tests/test_plot_schedules.py`` and
``tests/test_scale.py`` check them against real Trainers, DDP included):

* batches per epoch, after ``trainer.limit_train_batches``;
* optimizer steps per epoch = ceil(batches / ``trainer.accumulate_grad_batches``);
* total = steps per epoch x ``max_epochs``, capped by ``max_steps``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lrexp.errors import ConfigError
from lrexp.schedules import Schedule, build_schedule

#: Lightning's ``max_epochs`` when neither ``max_epochs`` nor ``max_steps`` is set.
LIGHTNING_DEFAULT_EPOCHS = 1000


# --------------------------------------------------------------------------- step counts


def _int_setting(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _limit_batches(batches: int, limit: Any) -> int:
    """Lightning's ``limit_train_batches``: an int caps the count, a float is a fraction."""
    if limit is None:
        return batches
    if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
        raise ConfigError("trainer.limit_train_batches", f"must be >= 0, got {limit!r}")
    limited = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    if limited < 1:
        raise ConfigError("trainer.limit_train_batches", f"leaves no training batch ({limit!r})")
    return limited


def check_devices(devices: Any) -> None:
    """Lightning's forms: a count >= 1, -1 or "auto" for all, a list of indices, "0,1"."""
    if devices == -1 or devices == "auto":
        return
    if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        return
    if isinstance(devices, str) and re.fullmatch(r"\d+(,\d+)*,?", devices.strip()):
        return
    if (
        isinstance(devices, list)
        and devices
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices)
    ):
        return
    raise ConfigError(
        "trainer.devices",
        f'must be a count >= 1, -1 or "auto", or a list of device indices, got {devices!r}',
    )


def world_size(trainer: Mapping[str, Any]) -> int:
    """Processes a data-parallel run starts: devices (-1: every GPU) times nodes."""
    devices = trainer.get("devices")
    check_devices(devices)
    if devices == -1 or devices == "auto":
        on_gpu = trainer.get("accelerator") in ("gpu", "cuda")
        devices = torch.cuda.device_count() if on_gpu else 1
    if isinstance(devices, str):  # Lightning also takes "2" or "0,1"
        devices = int(devices) if devices.isdigit() else len(devices.strip(",").split(","))
    per_node = devices if isinstance(devices, int) else len(devices or [0])
    return max(1, per_node) * int(trainer.get("num_nodes") or 1)


@dataclass(frozen=True)
class StepPlan:
    """How a run's training batches turn into optimizer steps."""

    total: int  #: optimizer steps in the run
    steps_per_epoch: int  #: ceil(batches_per_epoch / accumulate)
    batches_per_epoch: int  #: ceil(train_size / batch_size), after ``limit_train_batches``
    accumulate: int  #: ``trainer.accumulate_grad_batches``


def plan_steps(batches: int, trainer: Mapping[str, Any]) -> StepPlan:
    """The step counts Lightning will use for ``batches`` training batches per epoch (on each
    process) and the ``trainer`` settings."""
    accumulate = _int_setting(
        trainer.get("accumulate_grad_batches", 1), "trainer.accumulate_grad_batches", 1
    )
    batches = _limit_batches(batches, trainer.get("limit_train_batches"))
    steps_per_epoch = math.ceil(batches / accumulate)

    max_steps = trainer.get("max_steps", -1)
    if (
        isinstance(max_steps, bool)
        or not isinstance(max_steps, int)
        or not (max_steps == -1 or max_steps >= 1)
    ):
        raise ConfigError("trainer.max_steps", f"must be -1 or an integer >= 1, got {max_steps!r}")
    max_epochs = trainer.get("max_epochs")
    if max_epochs is None:  # Lightning's default: 1000 epochs unless max_steps/max_time limit
        unlimited = max_steps == -1 and trainer.get("max_time") is None
        max_epochs = LIGHTNING_DEFAULT_EPOCHS if unlimited else -1
    max_epochs = _int_setting(max_epochs, "trainer.max_epochs", -1)
    if max_epochs == 0:
        raise ConfigError("trainer.max_epochs", "must be -1 or an integer >= 1, got 0")
    if max_epochs == -1:
        if max_steps == -1:
            raise ConfigError(
                "trainer.max_epochs",
                "a run without max_epochs or max_steps (endless, or limited only by "
                "max_time) has no planned curve",
            )
        total = max_steps
    else:
        total = steps_per_epoch * max_epochs
        if max_steps != -1:
            total = min(total, max_steps)
    return StepPlan(total, steps_per_epoch, batches, accumulate)


# --------------------------------------------------------------------------- planned curves


def check_base_lr(lr: Any) -> float:
    """``optimizer.lr`` as a positive float."""
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ConfigError("optimizer.lr", f"must be a number > 0, got {lr!r}")
    return float(lr)


def scheduler_positions(plan: StepPlan, interval: str = "step", frequency: int = 1) -> list[int]:
    """For each optimizer update k, the update count at which the LR it uses was last set.

    Mirrors Lightning: the LR is set once at the start, then the scheduler is stepped after an
    optimizer step whose (per-epoch, 1-based) batch index is a multiple of ``frequency``
    (``interval=step``), or at the end of every ``frequency``-th epoch (``interval=epoch``). An
    optimizer step happens every ``accumulate`` batches and on the last batch of an epoch.
    """
    if interval == "step" and frequency == 1:
        return list(range(plan.total))
    positions: list[int] = []
    current = 0
    epoch = 0
    n, k = plan.batches_per_epoch, plan.accumulate
    while len(positions) < plan.total:
        for batch in range(1, n + 1):
            if batch % k and batch != n:
                continue  # accumulating gradients: no optimizer step, no scheduler step
            positions.append(current)
            if len(positions) == plan.total:
                return positions
            if interval == "step" and batch % frequency == 0:
                current = len(positions)
        epoch += 1
        if interval == "epoch" and epoch % frequency == 0:
            current = len(positions)
    return positions


def positions_for(settings: Mapping[str, Any], plan: StepPlan) -> list[int]:
    frequency = _int_setting(settings.get("frequency", 1), "schedule.frequency", 1)
    interval = settings.get("interval", "step")
    if interval not in ("step", "epoch"):
        raise ConfigError("schedule.interval", f"must be one of step, epoch, got {interval!r}")
    return scheduler_positions(plan, interval, frequency)


@dataclass
class BoundSchedule:
    """A config's schedule bound to its run, with what is needed to step through it."""

    schedule: Schedule
    base_lr: float
    plan: StepPlan
    positions: list[int]  #: per update, the update count its LR was set at
    warnings: list[str]  #: build_schedule's warnings (e.g. schedule length != run length)


def bind_schedule(settings: Mapping[str, Any], lr: float, plan: StepPlan) -> BoundSchedule:
    """Build the schedule ``settings`` describe as training does (same total, steps per epoch
    and base LR).

    Warnings from ``build_schedule`` are collected, not shown: training's own build warns.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedule = build_schedule(settings, plan.total, lr, plan.steps_per_epoch)
    positions = positions_for(settings, plan)
    return BoundSchedule(schedule, lr, plan, positions, [str(w.message) for w in caught])


def lr_curve(bound: BoundSchedule) -> list[float]:
    """The absolute LR of every optimizer update 0..total-1.

    With the default ``interval=step, frequency=1`` this is ``lr * lr_at(k)``;
    ``interval=epoch`` (or a frequency > 1) holds values the way Lightning steps the scheduler.
    Metric-driven schedules give their curve without any validation feedback.
    """
    return [bound.base_lr * bound.schedule.lr_at(t) for t in bound.positions]


def flat_schedule_warning(bound: BoundSchedule, name: str) -> str | None:
    """A warning when a schedule other than ``constant`` never changes the LR over the run
    (e.g. ``schedule=step`` with ``step_size`` 5 epochs in a 2-epoch run); None otherwise, and
    for a metric-driven schedule, whose changes depend on the run's metrics."""
    if name == "constant" or bound.schedule.metric_driven or not bound.positions:
        return None
    curve = lr_curve(bound)
    if min(curve) != max(curve):
        return None
    return (
        f"schedule={name} keeps the LR at {curve[0]:.6g} for all {len(curve)} optimizer steps "
        "of this run: its first change lies beyond the run's end (compare its step_size, "
        "milestones or boundaries with the run's length)"
    )


def momentum_curve(schedule: Schedule, positions: Sequence[int]) -> list[float] | None:
    # momentum cycling is optional in the schedule API: use it only where it exists
    momentum_at = getattr(schedule, "momentum_at", None)
    if not getattr(schedule, "cycles_momentum", False) or momentum_at is None:
        return None
    values = [momentum_at(t) for t in positions]
    if any(v is None for v in values):
        return None
    return [float(v) for v in values]

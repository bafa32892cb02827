"""The step planner: how many optimizer steps a run takes and where each LR update lands.

One source for every user of these numbers: config validation, ``configure_optimizers`` (the
schedule's length), the schedule previews and the planned-LR artifact. Everything here is
computed from the composed config alone, without loading data or starting a Trainer, and
mirrors Lightning's own count (``tests/test_plot_schedules.py`` and ``tests/test_scale.py``
check it against real Trainers, DDP included):

* batches per epoch = ceil(train examples / ``dataset.batch_size``), after
  ``trainer.limit_train_batches``. Under data-parallel training every rank takes a strided
  shard of each *global* batch (see :mod:`lrexp.data.batching`), so the count does not depend
  on the world size;
* optimizer steps per epoch = ceil(batches / ``trainer.accumulate_grad_batches``);
* total = steps per epoch x ``max_epochs``, capped by ``max_steps``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lrexp.errors import ConfigError
from lrexp.schedules import Schedule, build_schedule

SOURCE_SIZES: dict[str, int] = {
    "digits": 1797,
    "mnist1d": 4000,
    "mnist": 60000,
    "fashion_mnist": 60000,
    "cifar10": 50000,
}
#: Input shape (C, ...) and number of classes of each source, known without loading it.
SOURCE_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "digits": ((1, 8, 8), 10),
    "mnist1d": ((1, 40), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
}
#: Sources whose ``test_size`` examples are taken out of ``SOURCE_SIZES`` (the others ignore it).
CARVES_TEST: frozenset[str] = frozenset({"digits"})
#: Lightning's ``max_epochs`` when neither ``max_epochs`` nor ``max_steps`` is set.
LIGHTNING_DEFAULT_EPOCHS = 1000


# --------------------------------------------------------------------------- step counts


def _int_setting(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def train_size(dataset: Mapping[str, Any]) -> int:
    """Training examples of a ``dataset`` config node, without loading the data."""
    name = dataset.get("name")
    if not isinstance(name, str) or name not in SOURCE_SIZES:
        raise ConfigError("dataset.name", f"must be one of {', '.join(SOURCE_SIZES)}")
    available = SOURCE_SIZES[name]
    val_size = _int_setting(dataset.get("val_size", 0), "dataset.val_size", 0)
    test_size = 0
    if name in CARVES_TEST:
        test_size = _int_setting(dataset.get("test_size", 0), "dataset.test_size", 0)
    size = available - test_size - val_size
    if size < 1:
        raise ConfigError(
            "dataset.val_size",
            f"{name} has {available} examples; val_size {val_size}"
            + (f" + test_size {test_size}" if name in CARVES_TEST else "")
            + " leaves none to train on",
        )
    return size


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


@dataclass(frozen=True)
class StepPlan:
    """How a run's training batches turn into optimizer steps."""

    total: int  #: optimizer steps in the run
    steps_per_epoch: int  #: ceil(batches_per_epoch / accumulate)
    batches_per_epoch: int  #: ceil(train_size / batch_size), after ``limit_train_batches``
    accumulate: int  #: ``trainer.accumulate_grad_batches``


def step_plan(cfg: DictConfig) -> StepPlan:
    """The step counts Lightning will use for ``cfg`` (see :func:`planned_steps`)."""
    dataset, trainer = cfg.dataset, cfg.trainer
    batch_size = _int_setting(dataset.get("batch_size"), "dataset.batch_size", 1)
    accumulate = _int_setting(
        trainer.get("accumulate_grad_batches", 1), "trainer.accumulate_grad_batches", 1
    )
    batches = math.ceil(train_size(dataset) / batch_size)
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


def planned_steps(cfg: DictConfig) -> tuple[int, int]:
    """``(total optimizer steps, optimizer steps per epoch)`` of the run ``cfg`` describes.

    steps_per_epoch = ceil(ceil(train_size / batch_size) / accumulate_grad_batches); total =
    steps_per_epoch * max_epochs, capped by ``max_steps`` unless -1.
    """
    plan = step_plan(cfg)
    return plan.total, plan.steps_per_epoch


# --------------------------------------------------------------------------- planned curves


def base_lr(cfg: DictConfig) -> float:
    """``optimizer.lr`` as a positive float."""
    lr = cfg.optimizer.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ConfigError("optimizer.lr", f"must be a number > 0, got {lr!r}")
    return float(lr)


def schedule_settings(cfg: DictConfig) -> dict[str, Any]:
    """The resolved ``schedule`` node as a plain dict."""
    container = OmegaConf.to_container(cfg.schedule, resolve=True)
    if not isinstance(container, dict):
        raise ConfigError("schedule", "must be a mapping")
    return {str(k): v for k, v in container.items()}


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


def bind(cfg: DictConfig) -> BoundSchedule:
    """Build ``cfg``'s schedule as training does (same total, steps per epoch and base LR).

    Warnings from ``build_schedule`` are collected, not shown: training's own build warns.
    """
    plan = step_plan(cfg)
    lr = base_lr(cfg)
    settings = schedule_settings(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedule = build_schedule(settings, plan.total, lr, plan.steps_per_epoch)
    positions = positions_for(settings, plan)
    return BoundSchedule(schedule, lr, plan, positions, [str(w.message) for w in caught])


def planned_curve(cfg: DictConfig) -> list[float]:
    """The absolute LR of every optimizer update 0..total-1 that the run ``cfg`` will take.

    With the default ``interval=step, frequency=1`` this is ``optimizer.lr * lr_at(k)``;
    ``interval=epoch`` (or a frequency > 1) holds values the way Lightning steps the scheduler.
    Metric-driven schedules give their curve without any validation feedback.
    """
    bound = bind(cfg)
    return [bound.base_lr * bound.schedule.lr_at(t) for t in bound.positions]


def planned_momentum(cfg: DictConfig) -> list[float] | None:
    """Momentum (or Adam's beta1) per update when the schedule cycles it, else None."""
    bound = bind(cfg)
    return momentum_curve(bound.schedule, bound.positions)


def momentum_curve(schedule: Schedule, positions: Sequence[int]) -> list[float] | None:
    # momentum cycling is optional in the schedule API: use it only where it exists
    momentum_at = getattr(schedule, "momentum_at", None)
    if not getattr(schedule, "cycles_momentum", False) or momentum_at is None:
        return None
    values = [momentum_at(t) for t in positions]
    if any(v is None for v in values):
        return None
    return [float(v) for v in values]

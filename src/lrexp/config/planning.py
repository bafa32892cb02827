"""The step planner read from a composed config: the config layer's side of :mod:`lrexp.plan`.

It counts the data module's training batches (:func:`lrexp.config.parts.data_info`: lrexp's tensor
data module plans them without loading, ceil(train examples / ``dataset.batch_size``) on any
number of processes; any other data module is set up and its training loader counted, per
process under DDP) and hands plain values to the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lrexp.config.parts import data_info
from lrexp.errors import ConfigError
from lrexp.plan import (
    BoundSchedule,
    StepPlan,
    bind_schedule,
    check_base_lr,
    lr_curve,
    momentum_curve,
    plan_steps,
    world_size,
)


def step_plan(cfg: DictConfig) -> StepPlan:
    """The step counts Lightning will use for ``cfg`` (see :func:`planned_steps`)."""
    trainer: dict[str, Any] = OmegaConf.to_container(cfg.trainer, resolve=True)  # type: ignore[assignment]
    batches = data_info(cfg.dataset, world_size(trainer)).train_batches
    return plan_steps(batches, trainer)


def planned_steps(cfg: DictConfig) -> tuple[int, int]:
    """``(total optimizer steps, optimizer steps per epoch)`` of the run ``cfg`` describes.

    steps_per_epoch = ceil(ceil(train_size / batch_size) / accumulate_grad_batches); total =
    steps_per_epoch * max_epochs, capped by ``max_steps`` unless -1.
    """
    plan = step_plan(cfg)
    return plan.total, plan.steps_per_epoch


def base_lr(cfg: DictConfig) -> float:
    """``optimizer.lr`` as a positive float."""
    return check_base_lr(cfg.optimizer.get("lr"))


def schedule_settings(cfg: DictConfig) -> dict[str, Any]:
    """The resolved ``schedule`` node as a plain dict."""
    container = OmegaConf.to_container(cfg.schedule, resolve=True)
    if not isinstance(container, dict):
        raise ConfigError("schedule", "must be a mapping")
    return {str(k): v for k, v in container.items()}


def bind(cfg: DictConfig) -> BoundSchedule:
    """``cfg``'s schedule bound to its run (:func:`lrexp.plan.bind_schedule`)."""
    return bind_schedule(schedule_settings(cfg), base_lr(cfg), step_plan(cfg))


def planned_curve(cfg: DictConfig) -> list[float]:
    """The absolute LR of every optimizer update 0..total-1 that the run ``cfg`` will take."""
    return lr_curve(bind(cfg))


def planned_momentum(cfg: DictConfig) -> list[float] | None:
    """Momentum (or Adam's beta1) per update when the schedule cycles it, else None."""
    bound = bind(cfg)
    return momentum_curve(bound.schedule, bound.positions)


@dataclass(frozen=True)
class PlannedRun:
    """What a preview shows of a config: its bound schedule, the schedule's settings and the
    labels of its data and optimizer."""

    bound: BoundSchedule
    schedule: dict[str, Any]
    dataset: str
    optimizer: str


def planned_run(cfg: DictConfig) -> PlannedRun:
    """``cfg``'s schedule as the run will follow it (:func:`bind`), for a preview."""
    return PlannedRun(
        bind(cfg), schedule_settings(cfg), str(cfg.dataset.name), str(cfg.optimizer.name)
    )

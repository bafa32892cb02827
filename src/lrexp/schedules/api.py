"""lrexp's schedules in any training loop: build a family from keyword arguments, get a
``torch.optim.lr_scheduler.LRScheduler`` for any optimizer.

    from lrexp.schedules import make_schedule, make_scheduler

    schedule = make_schedule("cosine", total=1000, warmup=100, min_factor=0.1)
    schedule.lr_at(500)                       # the multiplier at step 500, for plotting
    scheduler = make_scheduler(optimizer, "wsd", total=1000, decay_frac=0.2)
    for batch in loader:                      # a plain PyTorch loop
        ...; optimizer.step(); scheduler.step()

In a LightningModule, return ``{"optimizer": opt, "lr_scheduler": {"scheduler": scheduler,
"interval": "step"}}`` from ``configure_optimizers``. The arguments are the keys of
``conf/schedule/<family>.yaml`` and the shared ones: ``total`` (the run's optimizer steps, or
epochs with ``unit="epoch"``), ``warmup`` (steps or epochs; ``warmup_frac`` instead for a
fraction of the run), ``warmup_start_factor``, ``warmup_shape``, ``unit`` with
``steps_per_epoch``. The schedule is the one an lrexp run of the same config follows, step by
step (``tests/test_schedule_api.py``).
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer

from lrexp.errors import ConfigError
from lrexp.schedules.base import Schedule
from lrexp.schedules.factory import build_schedule
from lrexp.schedules.lr_scheduler import ScheduledLR


def make_schedule(
    family: str,
    *,
    total: int,
    warmup: float = 0,
    warmup_frac: float | None = None,
    warmup_start_factor: float = 0.1,
    warmup_shape: str = "linear",
    unit: str = "step",
    steps_per_epoch: int | None = None,
    base_lr: float = 1.0,
    **params: Any,
) -> Schedule:
    """The schedule ``family`` (a name in ``conf/schedule/``, or a dotted class path) bound to
    a run of ``total`` optimizer steps (``unit="epoch"``: ``total`` epochs of
    ``steps_per_epoch`` steps). ``params`` are the family's own keys; a family's ``total``
    defaults, as in a run, to the steps left after warmup."""
    if unit == "epoch":
        if steps_per_epoch is None:
            raise ConfigError("steps_per_epoch", "unit='epoch' needs the steps per epoch")
        run_steps = round(total * steps_per_epoch)
    else:
        run_steps = total
    node: dict[str, Any] = {
        "unit": unit,
        "warmup": {
            "steps": warmup,
            "frac": warmup_frac,
            "start_factor": warmup_start_factor,
            "shape": warmup_shape,
        },
        **params,
    }
    node["_target_" if "." in family else "name"] = family
    return build_schedule(node, run_steps, base_lr, steps_per_epoch)


def make_scheduler(optimizer: Optimizer, schedule: str | Schedule, **kwargs: Any) -> ScheduledLR:
    """An ``LRScheduler`` that sets every param group's LR to its initial LR times the
    schedule's multiplier at the optimizer steps taken so far (counted by a hook on
    ``optimizer``). ``schedule`` is a built :class:`Schedule`, or a family for
    :func:`make_schedule` with ``kwargs``."""
    if isinstance(schedule, str):
        base_lr = float(
            optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
        )
        schedule = make_schedule(schedule, base_lr=base_lr, **kwargs)
    elif kwargs:
        raise TypeError("keyword arguments build a schedule from a family name, not a Schedule")
    return ScheduledLR(optimizer, schedule)

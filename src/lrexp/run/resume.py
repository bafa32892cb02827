"""What a checkpoint records beyond Lightning's own state, read safely.

A checkpoint records the MLflow run that wrote it and the plan its schedule was built for
(:class:`RecordedPlan`), as plain values. Whether a run may resume from it with other settings
is the config layer's decision (:mod:`lrexp.config.resuming`); this module reads the
checkpoint, holds a recorded schedule past its end, and refuses a mid-epoch resume that a data
module cannot continue exactly.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lrexp.errors import ConfigError
from lrexp.plan import StepPlan, positions_for
from lrexp.schedules import build_schedule

#: The part of torch's weights_only refusal that says what was refused.
UNSUPPORTED_PICKLE = re.compile(r"Unsupported (global: GLOBAL [\w.]+|operand \d+)")


@dataclass(frozen=True)
class RecordedPlan:
    """The plan a run's schedule was built for, as a checkpoint records it (plain values)."""

    total: int  #: the schedule's optimizer steps
    steps_per_epoch: int
    base_lr: float
    schedule: dict[str, Any]  #: the resolved ``schedule`` node
    inputs: dict[
        str, str
    ]  #: :data:`lrexp.config.resuming.PLAN_KEYS` and ``schedule.*`` -> value, to name changes
    #: model, data and optimizer settings (:func:`lrexp.config.resuming.setup_of`): a fork
    #: must match them
    setup: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def held_curve(recorded: RecordedPlan, plan: StepPlan) -> list[float]:
    """The LR ``recorded``'s schedule gives each of ``plan``'s steps; past the schedule's own
    end it holds its final value, as every family does."""
    with warnings.catch_warnings():  # its length was checked when it was first built
        warnings.simplefilter("ignore")
        schedule = build_schedule(
            recorded.schedule, recorded.total, recorded.base_lr, recorded.steps_per_epoch
        )
    positions = positions_for(recorded.schedule, plan)
    return [recorded.base_lr * schedule.lr_at(t) for t in positions]


@dataclass(frozen=True)
class CheckpointInfo:
    """What lrexp stored in a checkpoint beyond Lightning's own state."""

    run_id: str | None  #: the MLflow run that wrote it
    plan: RecordedPlan | None  #: None for checkpoints written before plans were recorded
    step: int = 0  #: optimizer steps taken when it was written
    #: training batches done in the epoch it was written in (0 at an epoch's start)
    batches_in_epoch: int = 0


def read_checkpoint(path: Path) -> CheckpointInfo:
    """The run id, plan and step of a checkpoint, loaded with ``weights_only=True``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code in it, a truncated or foreign file
        unsupported = UNSUPPORTED_PICKLE.search(str(err))
        lines = str(err).strip().splitlines()
        reason = unsupported[0] if unsupported else (lines[0] if lines else type(err).__name__)
        raise ConfigError(
            "ckpt_path", f"{path} is not a checkpoint lrexp loads safely (weights_only): {reason}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise ConfigError("ckpt_path", f"{path} is not a Lightning checkpoint")
    run_id = checkpoint.get("lrexp_run_id")
    plan = checkpoint.get("lrexp_plan")
    return CheckpointInfo(
        str(run_id) if run_id else None,
        RecordedPlan(**plan) if isinstance(plan, dict) else None,
        int(checkpoint.get("global_step", 0)),
        batches_done(checkpoint),
    )


def batches_done(checkpoint: dict[str, Any]) -> int:
    """Training batches completed in the checkpoint's epoch, from Lightning's loop state."""
    loops = checkpoint.get("loops") or {}
    progress = (loops.get("fit_loop") or {}).get("epoch_loop.batch_progress") or {}
    return int((progress.get("current") or {}).get("completed", 0))


def check_mid_epoch(info: CheckpointInfo, plan: StepPlan, data: Any, path: Path) -> None:
    """Refuse a resume from a checkpoint written mid-epoch when the data module cannot
    continue that epoch exactly (:func:`lrexp.data.describe.can_resume_mid_epoch`)."""
    from lrexp.data.describe import can_resume_mid_epoch, class_name

    if 0 < info.batches_in_epoch < plan.batches_per_epoch and not can_resume_mid_epoch(data):
        raise ConfigError(
            "ckpt_path",
            f"{path} was written mid-epoch (batch {info.batches_in_epoch} of "
            f"{plan.batches_per_epoch}) and {class_name(data)} cannot restore its position in "
            "an epoch (no state_dict/load_state_dict, no stateful loader), so the run would "
            "not continue exactly; resume from a checkpoint written at an epoch's end, or mix "
            "lrexp.data.TrainPosition into the data module",
        )

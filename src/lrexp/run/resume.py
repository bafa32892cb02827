"""Resuming a run from a checkpoint: which checkpoint, what it records, and whether the run's
plan may change across the resume.

A checkpoint records the MLflow run that wrote it and the plan its schedule was built for
(:class:`RecordedPlan`). Resuming with settings that change the LR of any step,
already taken or still to come (a cosine stretched from 80 to 160 steps, say), would leave a
run whose ``lr`` trace no schedule produces; it is refused in one line naming the changed keys.
``resume_mode=extend`` keeps the recorded schedule instead: the run gets its new length, and a
finished schedule holds its final value for the added steps (a constant or WSD trunk stays
constant). Changes that touch no LR (more validation, another progress bar) are accepted.
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from lrexp.config.compose import flatten
from lrexp.config.planning import base_lr, planned_curve, schedule_settings, step_plan
from lrexp.errors import ConfigError
from lrexp.plan import StepPlan, positions_for
from lrexp.schedules import build_schedule

#: The part of torch's weights_only refusal that says what was refused.
UNSUPPORTED_PICKLE = re.compile(r"Unsupported (global: GLOBAL [\w.]+|operand \d+)")


#: Config keys besides ``schedule.*`` whose values decide a run's LR at each step.
PLAN_KEYS = (
    "optimizer.lr",
    "dataset.batch_size",
    "dataset.val_size",
    "dataset.test_size",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.accumulate_grad_batches",
    "trainer.limit_train_batches",
)


@dataclass(frozen=True)
class RecordedPlan:
    """The plan a run's schedule was built for, as a checkpoint records it (plain values)."""

    total: int  #: the schedule's optimizer steps
    steps_per_epoch: int
    base_lr: float
    schedule: dict[str, Any]  #: the resolved ``schedule`` node
    inputs: dict[str, str]  #: :data:`PLAN_KEYS` and ``schedule.*`` -> value, to name changes
    #: model, data and optimizer settings (:func:`setup_of`): a fork must match them
    setup: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Settings that decide what a run trains, besides its schedule and length.
SETUP_GROUPS = ("model", "dataset", "optimizer")
SETUP_KEYS = ("trainer.accumulate_grad_batches", "trainer.limit_train_batches")
#: ... that change where files are read or how evaluation is batched, not the training.
NOT_SETUP = ("dataset.data_dir", "dataset.download", "dataset.verify", "dataset.eval_batch_size")


def setup_of(cfg: DictConfig) -> dict[str, str]:
    """``cfg``'s model, data and optimizer settings as flat strings (what a fork must share
    with its trunk)."""
    setup = {key: str(OmegaConf.select(cfg, key)) for key in SETUP_KEYS}
    for group in SETUP_GROUPS:
        node = OmegaConf.to_container(cfg[group], resolve=True)
        if isinstance(node, dict):
            setup.update(flatten({str(k): v for k, v in node.items()}, f"{group}."))
    return {k: v for k, v in setup.items() if k not in NOT_SETUP}


def record_plan(cfg: DictConfig) -> RecordedPlan:
    """``cfg``'s plan as a checkpoint records it."""
    plan = step_plan(cfg)
    settings = schedule_settings(cfg)
    inputs = {key: str(OmegaConf.select(cfg, key)) for key in PLAN_KEYS}
    inputs.update(flatten(settings, "schedule."))
    return RecordedPlan(
        plan.total, plan.steps_per_epoch, base_lr(cfg), settings, inputs, setup_of(cfg)
    )


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


def first_changed_step(recorded: RecordedPlan, cfg: DictConfig) -> int | None:
    """The first optimizer step whose LR under ``cfg`` differs from the one ``recorded``
    gives it (held past its end), or None when no LR of the run changes."""
    planned = planned_curve(cfg)
    held = held_curve(recorded, step_plan(cfg))
    return next((t for t, (a, b) in enumerate(zip(planned, held, strict=True)) if a != b), None)


def resume_from(cfg: DictConfig, output_dir: Path) -> Path | None:
    """The checkpoint to resume: ``ckpt_path``, or with ``resume=auto`` this output dir's
    ``checkpoints/last.ckpt`` when it exists."""
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise ConfigError("ckpt_path", f"no checkpoint file at {path}")
        return path
    if cfg.get("resume") == "auto":
        last = output_dir / "checkpoints" / "last.ckpt"
        return last if last.is_file() else None
    return None


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


@dataclass(frozen=True)
class ResumePlan:
    """How a resumed run builds its schedule."""

    cfg: DictConfig  #: the run's config (with the recorded schedule when extended)
    schedule: RecordedPlan  #: the plan the schedule is built for (and checkpoints record)
    extended_from: int | None = None  #: the recorded total, when ``resume_mode=extend``


def plan_resume(cfg: DictConfig, recorded: RecordedPlan | None) -> ResumePlan:
    """Check ``cfg`` against the ``recorded`` plan of the checkpoint it resumes (None: a new
    run, or an old checkpoint) and say how the schedule is built."""
    current = record_plan(cfg)
    if recorded is None:
        return ResumePlan(cfg, current)
    changed_at = first_changed_step(recorded, cfg)
    if changed_at is None:
        return ResumePlan(cfg, current)  # no LR changes: go on under the new plan
    if cfg.get("resume_mode") == "extend":
        return ResumePlan(with_schedule(cfg, recorded), recorded, recorded.total)
    changed = [
        k
        for k in sorted(set(recorded.inputs) | set(current.inputs))
        if recorded.inputs.get(k) != current.inputs.get(k)
    ]
    keys = (
        ", ".join(
            f"{k} {recorded.inputs.get(k, '(unset)')} -> {current.inputs.get(k, '(unset)')}"
            for k in changed
        )
        or "the schedule's settings"
    )
    raise ConfigError(
        changed[0] if changed else "resume",
        f"resuming with {keys} changes the LR from step {changed_at} on (the checkpoint's "
        f"schedule has {recorded.total} optimizer steps, this run {current.total}); "
        "resume_mode=extend keeps the checkpoint's schedule for the new length (a finished "
        "schedule holds its final value), or fork=cooldown starts a new run that decays from a "
        "kept checkpoint",
    )


def with_schedule(cfg: DictConfig, recorded: RecordedPlan) -> DictConfig:
    """``cfg`` with the recorded schedule and base LR (``resume_mode=extend``)."""
    extended = copy.deepcopy(cfg)
    with open_dict(extended):
        extended.schedule = recorded.schedule
        extended.optimizer.lr = recorded.base_lr
    return extended

"""Whether a run may resume from a checkpoint with the settings it has now.

Resuming with settings that change the LR of any step, already taken or still to come (a
cosine stretched from 80 to 160 steps, say), would leave a run whose ``lr`` trace no schedule
produces; it is refused in one line naming the changed keys. ``resume_mode=extend`` keeps the
recorded schedule instead: the run gets its new length, and a finished schedule holds its
final value for the added steps (a constant or WSD trunk stays constant). Changes that touch
no LR (more validation, another progress bar) are accepted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from lrexp.config.compose import flatten
from lrexp.config.planning import base_lr, planned_curve, schedule_settings, step_plan
from lrexp.errors import ConfigError
from lrexp.run.resume import RecordedPlan, held_curve

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


#: Settings that decide what a run trains, besides its schedule and length.
SETUP_GROUPS = ("model", "dataset", "optimizer")
SETUP_KEYS = ("trainer.accumulate_grad_batches", "trainer.limit_train_batches")
#: ... that change where files are read or how evaluation is batched, not the training.
NOT_SETUP = ("dataset.data_dir", "dataset.download", "dataset.verify", "dataset.eval_batch_size")
#: the weight averaging's settings: a cooldown fork continues its trunk's averager
AVERAGING = "averaging"


def setup_of(cfg: DictConfig) -> dict[str, str]:
    """``cfg``'s model, data and optimizer settings as flat strings (what a fork must share
    with its trunk)."""
    setup = {key: str(OmegaConf.select(cfg, key)) for key in SETUP_KEYS}
    for group in SETUP_GROUPS:
        node = OmegaConf.to_container(cfg[group], resolve=True)
        if isinstance(node, dict):
            setup.update(flatten({str(k): v for k, v in node.items()}, f"{group}."))
    averaging = OmegaConf.select(cfg, "averaging", default=None)
    setup[AVERAGING] = str(OmegaConf.to_container(averaging, resolve=True)) if averaging else "none"
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

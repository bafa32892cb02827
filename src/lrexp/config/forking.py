"""A cooldown fork read from ``fork.*``: the trunk it starts from, checked before data loads
or a run exists (:mod:`lrexp.run.fork` has the mechanism).

An unknown run, a step the trunk did not keep, or a trunk trained with other model, data or
optimizer settings is one line naming the ``fork.*`` key.
"""

from __future__ import annotations

import copy
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from lrexp.config.resuming import AVERAGING, setup_of
from lrexp.errors import ConfigError
from lrexp.optim import scaled_lr
from lrexp.run.fork import Fork, find_checkpoint, merged_checkpoints
from lrexp.run.resume import RecordedPlan, read_checkpoint
from lrexp.schedules.closed_form import check_decay

FORK_KEYS = ("from", "at", "length", "frac", "shape", "min_factor", "merge")


def fork_settings(cfg: DictConfig) -> dict[str, Any] | None:
    """The ``fork`` node as a plain dict (None: not a fork); unknown keys are refused."""
    node = cfg.get("fork")
    if node is None:
        return None
    container = OmegaConf.to_container(node, resolve=True)
    if not isinstance(container, dict):
        raise ConfigError("fork", "must be a mapping; pick fork=cooldown")
    settings = {str(k): v for k, v in container.items()}
    for key in settings:
        if key not in FORK_KEYS:
            raise ConfigError(f"fork.{key}", f"unknown key; allowed: {', '.join(FORK_KEYS)}")
    return settings


def resolve_fork(cfg: DictConfig) -> Fork | None:
    """The fork ``cfg`` asks for, checked against its trunk (None when ``cfg`` is no fork)."""
    settings = fork_settings(cfg)
    if settings is None:
        return None
    source, at = settings.get("from"), settings.get("at")
    if not isinstance(source, str) or not source:
        raise ConfigError("fork.from", "set the trunk's MLflow run id or a kept checkpoint path")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 1):
        raise ConfigError("fork.at", f"must be a kept step >= 1, got {at!r}")
    path, run_id = find_checkpoint(source, at, str(cfg.logger.tracking_uri))
    stored = read_checkpoint(path)
    if at is not None and stored.step != at:
        raise ConfigError("fork.at", f"{path} was written at step {stored.step}, not {at}")
    if stored.plan is None:
        raise ConfigError("fork.from", f"{path} records no plan (written by an older lrexp)")
    check_same_setup(cfg, stored.plan)
    merge = settings.get("merge")
    if merge is not None:
        if isinstance(merge, bool) or not isinstance(merge, int) or merge < 1:
            raise ConfigError("fork.merge", f"must be a number of checkpoints >= 1, got {merge!r}")
        tracking_uri = str(cfg.logger.tracking_uri)
        merged = merged_checkpoints(source, stored.step, merge, tracking_uri)
        trunk_run = run_id or stored.run_id
        return Fork(path, trunk_run, stored.plan, stored.step, 0, "merge", 0.0, merged)
    check_same_averaging(cfg, stored.plan)
    length = cooldown_length(settings, stored.step)
    shape, min_factor = settings.get("shape", "linear"), settings.get("min_factor", 0.0)
    try:
        check_decay(shape, min_factor, "shape")
    except ConfigError as err:
        message = str(err).split(": ", 1)[1]
        raise ConfigError("fork." + err.key.removeprefix("schedule."), message) from None
    return Fork(
        path, run_id or stored.run_id, stored.plan, stored.step, length, shape, float(min_factor)
    )


def cooldown_length(settings: dict[str, Any], at: int) -> int:
    """``fork.length`` in steps when set, else ``fork.frac`` of ``at``, rounded."""
    length, frac = settings.get("length"), settings.get("frac")
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ConfigError("fork.length", f"must be an integer >= 1, got {length!r}")
        return length
    if isinstance(frac, bool) or not isinstance(frac, int | float) or frac <= 0:
        raise ConfigError("fork.frac", f"must be a fraction of fork.at > 0, got {frac!r}")
    return max(1, round(frac * at))


def check_same_setup(cfg: DictConfig, trunk: RecordedPlan) -> None:
    """Refuse a fork whose model, data or optimizer settings differ from its trunk's."""
    mine = setup_of(cfg)
    ignored = {"optimizer.lr", "optimizer.scale_lr", "optimizer.reference_batch_size", AVERAGING}
    changed = [
        key
        for key in sorted(set(mine) | set(trunk.setup))
        if key not in ignored and mine.get(key) != trunk.setup.get(key)
    ]
    if changed:
        listed = ", ".join(
            f"{k} {trunk.setup.get(k, '(unset)')} -> {mine.get(k, '(unset)')}" for k in changed[:4]
        )
        raise ConfigError("fork.from", f"the trunk was trained with other settings: {listed}")
    optimizer, dataset = cfg.optimizer, cfg.dataset
    global_batch = int(dataset.batch_size) * int(cfg.trainer.accumulate_grad_batches)
    lr = scaled_lr(
        float(optimizer.lr),
        str(optimizer.get("scale_lr", "none")),
        global_batch,
        optimizer.get("reference_batch_size"),
    )
    if lr != trunk.base_lr:
        raise ConfigError(
            "fork.from", f"the trunk was trained at optimizer.lr {trunk.base_lr}, this fork at {lr}"
        )


def check_same_averaging(cfg: DictConfig, trunk: RecordedPlan) -> None:
    """Refuse a cooldown fork whose weight averaging differs from its trunk's: the fork goes on
    with the trunk's averager (a merge reads the weights only). A trunk recorded before lrexp
    kept its averaging is not checked."""
    recorded = trunk.setup.get(AVERAGING)
    mine = setup_of(cfg)[AVERAGING]
    if recorded is not None and recorded != mine:
        raise ConfigError(
            "averaging",
            f"a cooldown fork keeps its trunk's weight averaging: the trunk had {recorded}, this "
            f"fork {mine} (set the trunk's averaging)",
        )


def forked(cfg: DictConfig, fork: Fork) -> DictConfig:
    """``cfg`` as ``fork`` trains it: the joined schedule, ``at + length`` steps, and the
    trunk's base LR (already checked equal); a merge: the trunk's schedule, ``at`` steps."""
    copied = copy.deepcopy(cfg)
    with open_dict(copied):
        # a merge trains no step: it keeps the trunk's schedule, for the record
        copied.schedule = fork.trunk.schedule if fork.merged else fork.schedule()
        copied.trainer.max_steps = fork.at + fork.length
        copied.trainer.max_epochs = -1
        copied.optimizer.lr = fork.trunk.base_lr
        copied.optimizer.scale_lr = "none"
    return copied

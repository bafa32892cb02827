"""Cooldown forks: a new run that starts from a trunk's kept checkpoint and decays from there.

A trunk keeps checkpoints at chosen steps (``callbacks.checkpoint.keep_steps``), recorded on
its MLflow run as the tags ``kept_steps`` and ``kept_checkpoints``. ``fork=cooldown`` names
the trunk (``fork.from``: its run id or a kept checkpoint) and a kept step (``fork.at``); the
fork restores that checkpoint (weights, optimizer, RNG, data position) and trains
``fork.length`` (or ``fork.frac`` x ``at``) more steps under the trunk's own schedule joined
to a cooldown (:class:`lrexp.schedules.cooldown.Cooldown`). Its steps continue the trunk's step
axis, and its run is tagged ``fork_of``, ``fork_at``, ``fork_shape`` and ``fork_length``.

Everything here is checked before data loads or a run exists: an unknown run, a step the
trunk did not keep, or a trunk trained with other model, data or optimizer settings is one
line naming the ``fork.*`` key.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from lrexp.errors import ConfigError
from lrexp.optim import scaled_lr
from lrexp.run.resume import RecordedPlan, read_checkpoint, setup_of
from lrexp.schedules.closed_form import check_decay
from lrexp.tracking.uri import redact, sqlite_database

FORK_KEYS = ("from", "at", "length", "frac", "shape", "min_factor")
RUN_ID = re.compile(r"[0-9a-f]{32}")
#: Tags on a trunk's MLflow run: its kept steps (comma-separated) and their folder.
KEPT_STEPS_TAG = "kept_steps"
KEPT_DIR_TAG = "kept_checkpoints"


def kept_checkpoint(folder: Path, step: int) -> Path:
    """Where a trunk keeps its checkpoint of ``step``."""
    return folder / f"step-{step}.ckpt"


@dataclass(frozen=True)
class Fork:
    """A resolved fork: the trunk checkpoint it starts from and the cooldown after it."""

    checkpoint: Path
    trunk_run_id: str | None
    trunk: RecordedPlan
    at: int
    length: int
    shape: str
    min_factor: float

    def schedule(self) -> dict[str, Any]:
        """The fork's ``schedule`` node: the trunk's schedule joined to the cooldown."""
        return {
            "name": "cooldown",
            "trunk": self.trunk.schedule,
            "trunk_total": self.trunk.total,
            "trunk_steps_per_epoch": self.trunk.steps_per_epoch,
            "at": self.at,
            "cooldown": self.length,
            "shape": self.shape,
            "min_factor": self.min_factor,
            "frac": 0.2,
            "total": None,
            "interval": "step",
            "frequency": 1,
            "unit": "step",
            "strict": False,
            "warmup": {"steps": 0, "frac": None, "start_factor": 0.1, "shape": "linear"},
        }

    def tags(self) -> dict[str, str]:
        tags = {
            "fork_at": str(self.at),
            "fork_shape": self.shape,
            "fork_length": str(self.length),
            "fork_checkpoint": str(self.checkpoint),
        }
        if self.trunk_run_id:
            tags["fork_of"] = self.trunk_run_id
        return tags

    def apply(self, cfg: DictConfig) -> DictConfig:
        """``cfg`` as the fork trains it: the joined schedule, ``at + length`` steps, and the
        trunk's base LR (already checked equal)."""
        forked = copy.deepcopy(cfg)
        with open_dict(forked):
            forked.schedule = self.schedule()
            forked.trainer.max_steps = self.at + self.length
            forked.trainer.max_epochs = -1
            forked.optimizer.lr = self.trunk.base_lr
            forked.optimizer.scale_lr = "none"
        return forked

    def start(self, output_dir: Path) -> Path:
        """A copy of the trunk checkpoint for the fork to resume: the trunk's best-checkpoint
        bookkeeping and run id are left out, so the fork keeps and tests its own best."""
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        callbacks = state.get("callbacks", {})
        state["callbacks"] = {k: v for k, v in callbacks.items() if "ModelCheckpoint" not in k}
        state["lrexp_run_id"] = None
        path = output_dir / "checkpoints" / f"fork-start-step{self.at}.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path


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


def find_checkpoint(source: str, at: int | None, tracking_uri: str) -> tuple[Path, str | None]:
    """The checkpoint ``fork.from`` names (a file, a trunk's checkpoint folder with ``fork.at``,
    or a trunk run id with ``fork.at``), and the trunk's run id when it names a run."""
    path = Path(source).expanduser()
    if path.is_file():
        return path, None
    if path.is_dir():
        kept = sorted(int(p.stem.removeprefix("step-")) for p in path.glob("step-*.ckpt"))
        return kept_step(str(path), path, kept, at), None
    if not RUN_ID.fullmatch(source):
        raise ConfigError(
            "fork.from", f"{source!r} is no checkpoint file, checkpoint folder or run id"
        )
    tags = trunk_tags(source, tracking_uri)
    kept = [int(step) for step in tags.get(KEPT_STEPS_TAG, "").split(",") if step]
    if not kept:
        raise ConfigError(
            "fork.from",
            f"run {source} kept no checkpoints (train the trunk with "
            "callbacks.checkpoint.keep_steps=[...] or keep_every_n_steps=N)",
        )
    return kept_step(f"run {source}", Path(tags[KEPT_DIR_TAG]), kept, at), source


def kept_step(trunk: str, folder: Path, kept: list[int], at: int | None) -> Path:
    """The kept checkpoint of step ``at`` in ``folder``; ``trunk`` names it in errors."""
    listed = ", ".join(map(str, kept)) or "none"
    if at is None:
        raise ConfigError("fork.at", f"pick one of the steps {trunk} kept: {listed}")
    if at not in kept:
        raise ConfigError("fork.at", f"{trunk} kept no checkpoint at step {at} (kept: {listed})")
    path = kept_checkpoint(folder, at)
    if not path.is_file():
        raise ConfigError("fork.from", f"{trunk}'s checkpoint {path} is missing")
    return path


def trunk_tags(run_id: str, tracking_uri: str) -> dict[str, str]:
    """The tags of the trunk run ``run_id``; an unknown run or store is one line."""
    database = sqlite_database(tracking_uri)
    where = redact(tracking_uri)
    if database is not None and not database.is_file():
        raise ConfigError("fork.from", f"no run {run_id}: no MLflow store at {where}")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return dict(MlflowClient(tracking_uri).get_run(run_id).data.tags)
    except MlflowException:
        raise ConfigError("fork.from", f"no run {run_id} in {where}") from None


def check_same_setup(cfg: DictConfig, trunk: RecordedPlan) -> None:
    """Refuse a fork whose model, data or optimizer settings differ from its trunk's."""
    mine = setup_of(cfg)
    ignored = {"optimizer.lr", "optimizer.scale_lr", "optimizer.reference_batch_size"}
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

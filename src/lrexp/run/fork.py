"""Cooldown forks: a new run that starts from a trunk's kept checkpoint and decays from there.

A trunk keeps checkpoints at chosen steps (``callbacks.checkpoint.keep_steps``), recorded on
its MLflow run as the tags ``kept_steps`` and ``kept_checkpoints``. ``fork=cooldown`` names
the trunk (``fork.from``: its run id or a kept checkpoint) and a kept step (``fork.at``); the
fork restores that checkpoint (weights, optimizer, RNG, data position) and trains
``fork.length`` (or ``fork.frac`` x ``at``) more steps under the trunk's own schedule joined
to a cooldown (:class:`lrexp.schedules.cooldown.Cooldown`). Its steps continue the trunk's step
axis, and its run is tagged ``fork_of``, ``fork_at``, ``fork_shape`` and ``fork_length``.

The ``fork.*`` settings are read and checked by :mod:`lrexp.config.forking`; this module
finds the trunk's checkpoint and copies it for the fork to resume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lrexp.errors import ConfigError
from lrexp.run.resume import RecordedPlan
from lrexp.tracking.uri import redact, sqlite_database

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
    #: a merge (``fork=merge``): the kept checkpoints whose weights it averages, by step
    merged: tuple[tuple[int, Path], ...] = ()

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
        if self.merged:
            tags["merged_steps"] = ",".join(str(step) for step, _ in self.merged)
        return tags

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


def find_checkpoint(source: str, at: int | None, tracking_uri: str) -> tuple[Path, str | None]:
    """The checkpoint ``fork.from`` names (a file, a trunk's checkpoint folder with ``fork.at``,
    or a trunk run id with ``fork.at``), and the trunk's run id when it names a run."""
    path = Path(source).expanduser()
    if path.is_file():
        return path, None
    trunk, folder, kept, run_id = trunk_kept(source, tracking_uri)
    return kept_step(trunk, folder, kept, at), run_id


def trunk_kept(source: str, tracking_uri: str) -> tuple[str, Path, list[int], str | None]:
    """(the trunk in words, its checkpoint folder, the steps it kept, its run id) of a trunk
    named by its checkpoint folder, a kept checkpoint or its run id."""
    path = Path(source).expanduser()
    if path.is_file():
        path = path.parent
    if path.is_dir():
        kept = sorted(int(p.stem.removeprefix("step-")) for p in path.glob("step-*.ckpt"))
        return str(path), path, kept, None
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
    return f"run {source}", Path(tags[KEPT_DIR_TAG]), sorted(kept), source


def merged_checkpoints(
    source: str, at: int, count: int, tracking_uri: str
) -> tuple[tuple[int, Path], ...]:
    """The last ``count`` checkpoints the trunk kept up to step ``at`` (``at`` among them)."""
    trunk, folder, kept, _ = trunk_kept(source, tracking_uri)
    up_to = [step for step in kept if step <= at]
    if len(up_to) < count:
        listed = ", ".join(map(str, up_to)) or "none"
        raise ConfigError(
            "fork.merge",
            f"averages {count} checkpoints, but {trunk} kept {len(up_to)} up to step {at} "
            f"({listed})",
        )
    return tuple((step, kept_step(trunk, folder, kept, step)) for step in up_to[-count:])


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

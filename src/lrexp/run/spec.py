"""The typed specification of a run: everything a run does, settled before it starts.

The config layer builds these objects once from the composed config
(:func:`lrexp.config.training.train_spec`); the run (:mod:`lrexp.run.train`), the LR finder
and the benchmarks read them and never the config. A fork or a resume is a different
specification, not a patched config, so what a run records as its params is what it ran.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch import nn

from lrexp.data.describe import DataInfo
from lrexp.plan import StepPlan
from lrexp.run.fork import Fork
from lrexp.run.module import StepOptions
from lrexp.run.resume import CheckpointInfo, RecordedPlan
from lrexp.tasks import Task


@dataclass(frozen=True)
class TrackingSpec:
    """``logger.*`` of a tracked run: where the run goes and how it is logged."""

    tracking_uri: str
    experiment_name: str
    artifact_location: str | None
    fallback_to_local: bool
    local_store: str  #: the SQLite store a fallback logs to (``<mlruns_dir>/mlflow.db``)
    retry_seconds: float
    system_metrics_interval: float | None  #: None: no system metrics


@dataclass(frozen=True)
class RunSpec:
    """A run's identity and records: name, labels, params, resolved config, tracking."""

    name: str
    labels: dict[str, str]  #: dataset, model, optimizer, schedule, seed, study_arm (tags)
    root_dir: Path
    params: dict[str, str] = field(repr=False)
    resolved_yaml: str = field(repr=False)
    tracking: TrackingSpec | None = None  #: None: ``logger.enabled`` is false


@dataclass(frozen=True)
class Parts:
    """The factories of a run's parts, each bound to its ``_target_`` node."""

    data: Callable[[], pl.LightningDataModule]
    #: the model for the data's shapes, the data's description completed with the model's
    #: output width when the data module gives no number of classes, and the task
    #: (:func:`lrexp.parts.build_parts`)
    build: Callable[[DataInfo, pl.LightningDataModule], tuple[nn.Module, DataInfo, Task]]


#: The callbacks a search's job reports its objective through: (run tags, objective) -> them.
Pruning = Callable[[MutableMapping[str, str], str], list[pl.Callback]]


@dataclass(frozen=True)
class CheckpointSpec:
    """``callbacks.checkpoint``: Lightning's ``ModelCheckpoint`` options and the kept steps."""

    options: dict[str, Any]  #: monitor and mode default to the task's objective when unset
    keep_steps: tuple[int, ...] = ()
    keep_every: int | None = None


@dataclass(frozen=True)
class TrainSpec:
    """One training run, as the config layer settled it.

    ``optimizer`` and ``schedule`` are the settings the run trains with: a fork's joined
    schedule and its trunk's LR, a resume's recorded schedule (``resume_mode=extend``), the
    LR after ``optimizer.scale_lr``.
    """

    run: RunSpec
    parts: Parts
    seed: int
    threads: int | None
    output_dir: Path
    dataset_label: str
    dataset_source: str  #: how the data is described on MLflow's dataset input
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    plan: StepPlan
    recorded: RecordedPlan  #: the plan the schedule is built for (what checkpoints record)
    trainer: dict[str, Any]  #: ``pl.Trainer`` keyword arguments, less the step options
    steps: StepOptions
    world_size: int
    checkpoint: CheckpointSpec
    progress_refresh: int | None  #: None: no progress bar
    train_loss_every: int | None  #: None: no train-loss trace
    compile: bool = False
    averaging: dict[str, Any] | None = None  #: ``averaging.*`` (:mod:`lrexp.averaging`)
    resume: Path | None = None  #: the checkpoint a resumed run continues from
    stored: CheckpointInfo = field(default_factory=lambda: CheckpointInfo(None, None))
    fork: Fork | None = None
    extended_from: int | None = None  #: the recorded total, when ``resume_mode=extend``
    #: a fresh run's warning that its schedule keeps the LR constant
    flat_warning: str | None = None
    pruning: Pruning = field(default=lambda tags, objective: [], repr=False)

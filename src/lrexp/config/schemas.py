"""Structured configs: the types of lrexp's own fixed keys, checked by Hydra as it composes.

The run's top-level settings, the MLflow logger and the checkpoint callbacks have fixed keys
and fixed types, so they are dataclasses in Hydra's ConfigStore and ``conf/`` names them in
its defaults lists (``config.yaml`` -> ``run_schema``, ``logger/mlflow.yaml`` ->
``mlflow_schema``, ``callbacks/default.yaml`` -> ``callbacks_schema``). A value of the wrong
type (``seed=abc``, ``compile=maybe``, ``logger.retry_seconds=soon``) then fails while the
config is composed, and :mod:`lrexp.config.preflight` turns OmegaConf's message into one line naming
the key. Ranges (``seed >= 0``) and anything that depends on other keys stay in
:mod:`lrexp.config.validate`.

The groups a user may fill with their own parts (model, dataset, optimizer, schedule, task,
trainer) are left open (``Any``): their keys are the constructor's, checked against it.

Anything that composes ``conf/`` (the CLI, the preview, the bench, a notebook calling
Hydra's compose API) calls :func:`register` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class RunSettings:
    """The top level of a run's config; group nodes are typed by their own schemas or open."""

    seed: int = 0
    ckpt_path: str | None = None
    resume: str | None = None
    resume_mode: str | None = None
    threads: int | None = None
    compile: bool = False
    task: Any = None
    dataset: Any = None
    model: Any = None
    optimizer: Any = None
    schedule: Any = None
    trainer: Any = None
    logger: Any = None
    callbacks: Any = None
    paths: Any = None
    tune: Any = None
    fork: Any = None
    averaging: Any = None


@dataclass
class MlflowLoggerSettings:
    """``logger=mlflow``: where and how a run is tracked."""

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: str | None = None
    experiment_name: str = "lrexp"
    train_loss_every: int | None = 10
    fallback_to_local: bool = False
    retry_seconds: float = 60.0
    system_metrics: bool = True
    system_metrics_interval: float = 10.0


@dataclass
class CheckpointSettings:
    """Which checkpoints a run writes and keeps."""

    monitor: str | None = None
    mode: str | None = None
    save_top_k: int = 1
    save_last: bool = True
    keep_steps: list[int] = field(default_factory=list)
    keep_every_n_steps: int | None = None


@dataclass
class ProgressBarSettings:
    """How often the console's progress bar is redrawn."""

    refresh_rate: int = 10


@dataclass
class CallbackSettings:
    """``callbacks=default``: checkpoints and the progress bar."""

    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    progress_bar: ProgressBarSettings = field(default_factory=ProgressBarSettings)


def register() -> None:
    """Put the schemas in Hydra's ConfigStore under the names ``conf/`` uses (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunSettings)
    store.store(group="logger", name="mlflow_schema", node=MlflowLoggerSettings)
    store.store(group="callbacks", name="callbacks_schema", node=CallbackSettings)

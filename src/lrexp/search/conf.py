"""The sweeper's config node, ``hydra/sweeper=lrexp_optuna`` (its defaults and their meaning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from lrexp.search.pruning import PrunerConf
from lrexp.targets import locate


@dataclass
class LrexpOptunaSweeperConf:
    """``hydra/sweeper=lrexp_optuna`` (registered by ``hydra_plugins.lrexp_optuna``)."""

    _target_: str = "hydra_plugins.lrexp_optuna.lrexp_optuna_sweeper.LrexpOptunaSweeper"
    #: null: ``lr-<schedule>-<optimizer>-<model>-<dataset>``
    study_name: str | None = None
    #: Optuna storage URL; null: ``sqlite:///<paths.mlruns_dir>/optuna.db``
    storage: str | None = None
    #: maximize | minimize; null: the task's objective decides (val/acc max, val/mse min)
    direction: str | None = None
    #: total finished trials the study should hold
    n_trials: int = 20
    #: trials per batch (run in parallel by a parallel launcher)
    n_jobs: int = 1
    #: an Optuna sampler, instantiated with ``_partial_``; a ``seed`` is mixed with the number
    #: of trials already in the study, so a resumed search does not replay its first draws
    sampler: Any = field(
        default_factory=lambda: {
            "_target_": "optuna.samplers.TPESampler",
            "_partial_": True,
            "seed": 0,
        }
    )
    #: search space: key -> override-grammar value (``interval``, ``tag(log, ...)``, ...)
    params: dict[str, str] | None = None
    #: schedule family -> more of the space, added for the run's ``schedule.name``
    schedule_params: dict[str, dict[str, str]] | None = None
    #: seconds between a running trial's heartbeats (SQL storages); null: no heartbeats, one
    #: sweeper process per study
    heartbeat_interval: int | None = 10
    #: a trial with no heartbeat for this long is failed and run again (null: 2 intervals)
    grace_period: int | None = None
    #: times a trial whose worker died is run again (then its FAIL counts); null: no limit
    max_retry: int | None = 3
    #: Optuna's pruner and lrexp's guards against its bias (:mod:`lrexp.search.pruning`)
    pruner: PrunerConf = field(default_factory=PrunerConf)
    #: seconds a worker retries a storage that is away (a restart) before it stops
    storage_retry_seconds: float = 120


def task_direction(config: DictConfig) -> Literal["maximize", "minimize"]:
    """Which way the run's task's objective is better (its class's ``mode``): a regression
    search minimizes ``val/mse`` as a classification one maximizes ``val/acc``."""
    task = locate(OmegaConf.select(config, "task._target_"), "task._target_")
    return "minimize" if getattr(task, "mode", "max") == "min" else "maximize"

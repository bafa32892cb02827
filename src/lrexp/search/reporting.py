"""A search job's side of pruning: report the objective to its own trial after every
validation, and stop when Optuna's pruner says so.

The job finds its trial through the environment the sweeper sets (``LREXP_OPTUNA_STUDY``,
``LREXP_OPTUNA_TRIAL``; :func:`lrexp.search.workers.job_env`) and the study's storage and
pruner through its own Hydra config (``hydra.sweeper``). It reports the objective (the
metric it returns to the sweeper, ``val/acc`` by default) at step = optimizer steps so far.
From the guard step on (warmup over and ``min_fraction`` of the run
done; :mod:`lrexp.search.pruning`) it asks ``should_prune``; when pruned it records the step
on the trial (user attr ``pruned_step``: the sweeper then tells the trial PRUNED), tags its
MLflow run ``optuna_pruned=true`` / ``optuna_pruned_step`` and stops training. The run ends
FINISHED: it did what was asked of it, up to that step.

The storage is best effort here: a report that fails (the database away) is retried for up
to :data:`RETRY_SECONDS`, then skipped with one warning; training goes on unpruned.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from lrexp.search.outage import StorageUnavailable, retry_storage
from lrexp.search.pruning import PRUNED_STEP, PrunerSettings, guard_step, read_settings
from lrexp.search.workers import ENV_STUDY, ENV_TRIAL, SQL_SCHEMES, engine_options

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("lrexp.search")
#: the objective reported by default (the job's return value, :func:`lrexp.cli.run_task`)
OBJECTIVE = "val/acc"
#: how long one report to the storage is retried before it is skipped
RETRY_SECONDS = 30.0
T = TypeVar("T")


def trial_pruning(
    cfg: DictConfig, total: int, tags: MutableMapping[str, str], objective: str = OBJECTIVE
) -> list[pl.Callback]:
    """The pruning callback of a search job whose sweeper has a pruner; else none.
    ``objective``: the metric the job returns to the sweeper, reported to its trial."""
    if ENV_STUDY not in os.environ or ENV_TRIAL not in os.environ:
        return []
    from hydra.core.hydra_config import HydraConfig

    try:
        sweeper = HydraConfig.get().sweeper
    except ValueError:
        return []
    node = OmegaConf.select(sweeper, "pruner", default=None)
    settings = read_settings(OmegaConf.to_container(node) if node is not None else None)  # type: ignore[arg-type]
    if settings is None:
        return []
    from lrexp.search.study import default_storage

    url = str(OmegaConf.select(sweeper, "storage", default=None) or default_storage(cfg))
    return [TrialPruning(url, settings, total, tags, objective)]


def retried(call: Callable[[], T], what: str) -> tuple[bool, T | None]:
    """``(True, call())``, tried again for :data:`RETRY_SECONDS` while the storage is away;
    ``(False, None)`` (and one warning) if it stays away: the job goes on unpruned."""
    try:
        return True, retry_storage(call, RETRY_SECONDS, what)
    except StorageUnavailable as err:
        log.warning("%s; skipped", err)
        return False, None


class TrialPruning(pl.Callback):
    """Reports the objective to the job's trial; stops training when the trial is pruned."""

    def __init__(
        self,
        url: str,
        settings: PrunerSettings,
        total: int,
        tags: MutableMapping[str, str],
        objective: str = OBJECTIVE,
    ) -> None:
        self.url = url
        self.objective = objective
        self.settings = settings
        self.total = total
        self.tags = tags
        self.guard = guard_step(total, 0, settings.min_fraction)
        self.trial: optuna.Trial | None = None
        self.pruned_step: int | None = None
        self.reported: set[int] = set()
        self.storage: Any = url

    def open_trial(self) -> optuna.Trial | None:
        import optuna
        from optuna.storages import RDBStorage

        if self.url.startswith(SQL_SCHEMES):
            self.storage = RDBStorage(self.url, engine_kwargs=engine_options(self.url))
        study = optuna.load_study(
            study_name=os.environ[ENV_STUDY],
            storage=self.storage,
            sampler=optuna.samplers.RandomSampler(),  # the job samples nothing
            pruner=self.settings.make(),
        )
        number = int(os.environ[ENV_TRIAL])
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        return optuna.Trial(study, trial_id)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from lrexp.schedules.warmup import Warmup

        scheduler = getattr(pl_module, "scheduler", None)
        schedule = getattr(scheduler, "schedule", None)
        warmup = schedule.steps if isinstance(schedule, Warmup) else 0
        self.guard = guard_step(self.total, warmup, self.settings.min_fraction)
        self.trial = retried(self.open_trial, "opening the trial (no pruning)")[1]

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Close the job's connections (jobs of the basic launcher share the sweeper's
        process, one storage engine each)."""
        engine = getattr(self.storage, "engine", None)
        if engine is not None:
            engine.dispose()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.trial is None or self.pruned_step is not None:
            return
        value = trainer.callback_metrics.get(self.objective)
        step = trainer.global_step
        if value is None or not math.isfinite(float(value)) or step in self.reported:
            return
        trial = self.trial
        if not retried(lambda: trial.report(float(value), step), f"report at step {step}")[0]:
            return
        self.reported.add(step)
        if step < self.guard or step >= self.total:
            return  # too early to compare trials fairly; or the run is done anyway
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, prune = retried(trial.should_prune, f"pruning check at step {step}")
        if not prune:
            return
        if not retried(lambda: trial.set_user_attr(PRUNED_STEP, step), "pruning")[0]:
            return  # not recorded on the trial: the job goes on, and the trial completes
        self.pruned_step = step
        self.tags.update(optuna_pruned="true", optuna_pruned_step=str(step))
        log.info("trial %s pruned at step %d of %d", os.environ[ENV_TRIAL], step, self.total)
        trainer.should_stop = True

"""The Hydra sweeper: its config node (``LrexpOptunaSweeperConf``) and ``OptunaSweeper``, which
asks Optuna for each batch of trials, launches them and tells the results back."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from lrexp.search.runs import TAG_STUDY, TrialRuns
from lrexp.search.space import params_lines, parse_space, trial_overrides
from lrexp.search.study import (
    ERROR,
    OUTPUT_DIR,
    OVERRIDES,
    RUN_ID,
    abandon,
    count_done,
    default_storage,
    default_study_name,
    exclude,
    job_output_dir,
    objective_value,
    prepare_storage,
    recover_interrupted,
    resume_seed,
)
from lrexp.tracking.storelock import store_lock

if TYPE_CHECKING:
    import optuna

#: the package's name, as before the split: log lines keep their ``[lrexp.search]`` prefix
log = logging.getLogger("lrexp.search")


@dataclass
class LrexpOptunaSweeperConf:
    """``hydra/sweeper=lrexp_optuna`` (registered by ``hydra_plugins.lrexp_optuna``)."""

    _target_: str = "hydra_plugins.lrexp_optuna.lrexp_optuna_sweeper.LrexpOptunaSweeper"
    #: null: ``lr-<schedule>-<optimizer>-<model>-<dataset>``
    study_name: str | None = None
    #: Optuna storage URL; null: ``sqlite:///<paths.mlruns_dir>/optuna.db``
    storage: str | None = None
    direction: str = "maximize"
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


class OptunaSweeper(Sweeper):
    """Ask-and-tell Optuna search launching every trial through Hydra's launcher.

    Hydra only instantiates plugins defined under ``hydra_plugins``; the registered class is
    ``hydra_plugins.lrexp_optuna.lrexp_optuna_sweeper.LrexpOptunaSweeper``.
    """

    def __init__(
        self,
        study_name: str | None = None,
        storage: str | None = None,
        direction: str = "maximize",
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: Any = None,
        params: Mapping[str, Any] | None = None,
        schedule_params: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> None:
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"hydra.sweeper.direction: maximize or minimize, got {direction!r}")
        if n_trials < 0 or n_jobs < 1:
            raise ValueError("hydra.sweeper: n_trials must be >= 0 and n_jobs >= 1")
        self.study_name = study_name
        self.storage = storage
        self.direction: Literal["maximize", "minimize"] = (
            "maximize" if direction == "maximize" else "minimize"
        )
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.sampler_factory = sampler
        self.params = dict(params or {})
        self.schedule_params = dict(schedule_params or {})
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None
        self.job_idx = 0

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def make_sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        import optuna

        factory = self.sampler_factory
        if factory is None:
            return optuna.samplers.TPESampler(seed=offset)
        if isinstance(factory, functools.partial):
            seed = factory.keywords.get("seed")
            if seed is not None:
                return factory(seed=resume_seed(int(seed), offset))
            return factory()
        return factory  # an instance: used as given

    def family_params(self) -> Mapping[str, Any] | None:
        """The ``schedule_params`` entry of the run's schedule family."""
        if not self.schedule_params:
            return None
        assert self.config is not None
        family = OmegaConf.select(self.config, "schedule.name")
        if family not in self.schedule_params:
            log.warning(
                "hydra.sweeper.schedule_params has no entry for schedule %r: not searched", family
            )
            return None
        return self.schedule_params[family]

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        import optuna
        from optuna.trial import TrialState

        from lrexp.tracking.store import redact

        assert self.config is not None and self.launcher is not None
        config = self.config
        HydraConfig.instance().set_config(config)  # ${hydra:...} in paths resolve here
        space, fixed = parse_space(
            [*params_lines(self.params), *params_lines(self.family_params()), *arguments]
        )
        if not space:
            raise ValueError("hydra.sweeper.params: the search space is empty")
        study_name = self.study_name or default_study_name(config)
        storage = self.storage or default_storage(config)
        prepare_storage(storage)

        with store_lock(storage):  # a new store's tables are created by one process
            study = optuna.create_study(
                study_name=study_name,
                storage=storage,
                direction=self.direction,
                load_if_exists=True,
                sampler=optuna.samplers.RandomSampler(),  # replaced below, once counted
            )
        fixed_lines = sorted(fixed.values())
        started_with = study.user_attrs.get(OVERRIDES)
        if started_with is None:
            study.set_user_attr(OVERRIDES, fixed_lines)
        elif list(started_with) != fixed_lines:
            log.warning(
                "study %s was started with overrides %s, now %s: its trials mix both",
                study_name,
                " ".join(started_with) or "(none)",
                " ".join(fixed_lines) or "(none)",
            )
        interrupted = recover_interrupted(study)
        if interrupted:
            log.info("trials %s were left running by a stopped search: run again", interrupted)
        study.sampler = self.make_sampler(offset=len(study.trials))
        done = count_done(study)
        log.info(
            "Optuna study %s in %s: %d/%d trials done, space %s",
            study_name,
            redact(storage),
            done,
            self.n_trials,
            ", ".join(f"{k}: {d}" for k, d in space.items()),
        )

        runs = TrialRuns(config, study_name)
        returns: list[Sequence[JobReturn]] = []
        while (remaining := self.n_trials - count_done(study)) > 0:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, remaining))]
            batch = [trial_overrides(fixed, t.params) for t in trials]
            pending = {t.number: t for t in trials}
            try:
                try:
                    self.validate_batch_is_legal(batch)
                except Exception:
                    for trial in trials:
                        study.tell(trial, state=TrialState.FAIL)
                    exclude(study, pending)
                    pending.clear()
                    raise
                self.job_idx = max(self.job_idx, trials[0].number)
                results = self.launcher.launch(batch, initial_job_idx=self.job_idx)
                self.job_idx += len(results)
                returns.append(results)
                HydraConfig.instance().set_config(config)
                for trial, ret in zip(trials, results, strict=True):
                    self.tell(study, trial, ret, runs)
                    del pending[trial.number]
            finally:
                abandon(study, list(pending.values()))
        self.finish(study, runs, storage)
        return returns

    def tell(
        self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn, runs: TrialRuns
    ) -> None:
        from optuna.trial import TrialState

        value, error = objective_value(ret)
        output_dir = job_output_dir(ret)
        if output_dir:
            trial.set_user_attr(OUTPUT_DIR, output_dir)
        try:  # tracking is best effort: a store problem must not lose the trial's result
            run_id = runs.find(output_dir)
            if run_id:
                trial.set_user_attr(RUN_ID, run_id)
                runs.tag_trial(run_id, trial.number)
        except Exception as err:
            log.warning("trial %d: MLflow run not tagged: %s", trial.number, err)
        if error is not None:
            trial.set_user_attr(ERROR, error)
            log.warning("trial %d has no objective: %s", trial.number, error)
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)

    def finish(self, study: optuna.Study, runs: TrialRuns, storage: str) -> None:
        """Tag the best trial's run and write ``optimization_results.yaml`` to the sweep dir."""
        from lrexp.tracking.store import redact

        assert self.config is not None
        results: dict[str, Any] = {
            "name": "lrexp_optuna",
            "study_name": study.study_name,
            "storage": redact(storage),
            "direction": self.direction,
            "trials_done": count_done(study),
        }
        try:
            best = study.best_trial
        except ValueError:
            log.warning("study %s has no completed trial yet", study.study_name)
            best = None
        if best is not None:
            run_id = best.user_attrs.get(RUN_ID)
            try:
                runs.tag_best(run_id)
                runs.tag_parent(
                    {
                        TAG_STUDY: study.study_name,
                        "optuna_best_trial": str(best.number),
                        "optuna_best_value": repr(best.value),
                        "optuna_best_run_id": str(run_id),
                    }
                )
            except Exception as err:
                log.warning("best trial's MLflow run not tagged: %s", err)
            results.update(
                best_trial=best.number,
                best_value=best.value,
                best_params=dict(best.params),
                best_mlflow_run_id=run_id,
            )
            log.info(
                "best trial %d: value %s, params %s, MLflow run %s",
                best.number,
                best.value,
                best.params,
                run_id,
            )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")

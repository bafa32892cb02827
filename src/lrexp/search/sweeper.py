"""The Hydra sweeper ``OptunaSweeper`` (its config node: :mod:`lrexp.search.conf`), which
asks Optuna for each batch of trials, launches them and tells the results back."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from lrexp.errors import ConfigError
from lrexp.search.conf import task_direction
from lrexp.search.outage import StorageUnavailable, heartbeats, retry_storage, storage_errors
from lrexp.search.pruning import check_space, read_settings
from lrexp.search.results import finish, tell
from lrexp.search.runs import TrialRuns
from lrexp.search.space import params_lines, parse_space, trial_overrides
from lrexp.search.study import (
    OVERRIDES,
    abandon,
    count_done,
    default_storage,
    default_study_name,
    exclude,
    make_sampler,
    prepare_storage,
    recover_interrupted,
)
from lrexp.search.workers import CLAIM_LOCK, claim, consecutive, job_env, make_storage
from lrexp.tracking.storelock import store_lock
from lrexp.tracking.uri import redact

if TYPE_CHECKING:
    import optuna

#: the package's name, as before the split: log lines keep their ``[lrexp.search]`` prefix
log = logging.getLogger("lrexp.search")
T = TypeVar("T")


class OptunaSweeper(Sweeper):
    """Ask-and-tell Optuna search launching every trial through Hydra's launcher.

    Hydra only instantiates plugins defined under ``hydra_plugins``; the registered class is
    ``hydra_plugins.lrexp_optuna.lrexp_optuna_sweeper.LrexpOptunaSweeper``.
    """

    def __init__(
        self,
        study_name: str | None = None,
        storage: str | None = None,
        direction: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: Any = None,
        params: Mapping[str, Any] | None = None,
        schedule_params: Mapping[str, Mapping[str, Any] | None] | None = None,
        heartbeat_interval: int | None = 10,
        grace_period: int | None = None,
        max_retry: int | None = 3,
        pruner: Mapping[str, Any] | None = None,
        storage_retry_seconds: float = 120,
    ) -> None:
        if direction not in (None, "maximize", "minimize"):
            raise ValueError(f"hydra.sweeper.direction: maximize or minimize, got {direction!r}")
        if n_trials < 0 or n_jobs < 1:
            raise ValueError("hydra.sweeper: n_trials must be >= 0 and n_jobs >= 1")
        self.study_name = study_name
        self.storage = storage
        #: None until :meth:`setup` reads the task's objective
        self.chosen_direction = direction
        self.direction: Literal["maximize", "minimize"] = (
            "minimize" if direction == "minimize" else "maximize"
        )
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.sampler_factory = sampler
        self.params = dict(params or {})
        self.schedule_params = dict(schedule_params or {})
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retry = max_retry
        node = OmegaConf.to_container(pruner) if isinstance(pruner, DictConfig) else pruner
        self.pruner_node: Any = node
        self.storage_retry_seconds = float(storage_retry_seconds)
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        if self.chosen_direction is None:
            self.direction = task_direction(config)
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

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
        assert self.config is not None and self.launcher is not None
        HydraConfig.instance().set_config(self.config)  # ${hydra:...} in paths resolve here
        space, fixed = parse_space(
            [*params_lines(self.params), *params_lines(self.family_params()), *arguments]
        )
        if not space:
            raise ValueError("hydra.sweeper.params: the search space is empty")
        try:  # before any trial runs: one line, exit 2
            pruner = read_settings(self.pruner_node)
            if pruner is not None:
                check_space(pruner, space)
        except ConfigError as err:
            print(f"lrexp: error: {err}", file=sys.stderr)
            sys.exit(2)
        try:
            return self.search(space, fixed)
        except StorageUnavailable as err:
            print(
                f"lrexp: error: hydra.sweeper.storage: {err}; this worker stops, and the trials "
                "it was running are run again (by another worker, or by this command again)",
                file=sys.stderr,
            )
            sys.exit(2)

    def retried(self, call: Callable[[], T], what: str) -> T:
        """``call()``, tried again while the storage is away (:mod:`lrexp.search.outage`)."""
        return retry_storage(call, self.storage_retry_seconds, what)

    def search(self, space: Mapping[str, Any], fixed: Mapping[str, str]) -> list[Any]:
        assert self.config is not None
        study_name = self.study_name or default_study_name(self.config)
        url = self.storage or default_storage(self.config)
        runs = TrialRuns(self.config, study_name)
        lines = sorted(fixed.values())
        study = self.retried(
            lambda: self.open_study(study_name, url, lines, runs), "opening the study"
        )
        log.info(
            "Optuna study %s in %s: %d/%d trials done, space %s",
            study_name,
            redact(url),
            self.retried(lambda: count_done(study), "counting trials"),
            self.n_trials,
            ", ".join(f"{k}: {d}" for k, d in space.items()),
        )
        returns = self.run_trials(study, url, space, fixed, runs)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))

        def end() -> None:
            with store_lock(url, CLAIM_LOCK):  # one worker at a time tags the best run
                finish(study, runs, url, sweep_dir, self.n_trials)

        self.retried(end, "ending the search")
        return returns

    def open_study(
        self, name: str, url: str, fixed_lines: list[str], runs: TrialRuns
    ) -> optuna.Study:
        """Create or load the study (one process at a time on a new store) and its MLflow
        parent run; with heartbeats off, fail the trials a stopped search left RUNNING."""
        import optuna

        prepare_storage(url)
        with store_lock(url):  # a new store's tables are created by one process
            storage = make_storage(
                url,
                self.heartbeat_interval,
                self.grace_period,
                self.max_retry,
                lambda trial: log.warning(
                    "trial %d: its worker stopped; run again; MLflow runs %s ended KILLED",
                    trial.number,
                    runs.mark_killed(trial.number),
                ),
            )
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                direction=self.direction,
                load_if_exists=True,
                sampler=optuna.samplers.RandomSampler(),  # replaced below, once counted
            )
        with store_lock(url, CLAIM_LOCK):
            started_with = study.user_attrs.get(OVERRIDES)
            if started_with is None:
                study.set_user_attr(OVERRIDES, fixed_lines)
            elif list(started_with) != fixed_lines:
                log.warning(
                    "study %s was started with overrides %s, now %s: its trials mix both",
                    name,
                    " ".join(started_with) or "(none)",
                    " ".join(fixed_lines) or "(none)",
                )
            if isinstance(storage, str):  # no heartbeats: one sweeper process per study
                interrupted = recover_interrupted(study)
                if interrupted:
                    log.info("trials %s were left running by a stopped search", interrupted)
            runs.attach_parent(study, self.parent_params(url))
        study.sampler = make_sampler(self.sampler_factory, offset=len(study.trials))
        return study

    def parent_params(self, url: str) -> dict[str, str]:
        return {
            "storage": redact(url),
            "direction": self.direction,
            "n_trials": str(self.n_trials),
        }

    def run_trials(
        self,
        study: optuna.Study,
        url: str,
        space: Mapping[str, Any],
        fixed: Mapping[str, str],
        runs: TrialRuns,
    ) -> list[Sequence[JobReturn]]:
        """Claim, launch and tell trials until the study holds ``n_trials`` counted ones; with
        none left to claim while others run, wait for them (or for them to go stale)."""
        assert self.config is not None
        returns: list[Sequence[JobReturn]] = []
        while True:
            trials, done = self.retried(
                lambda: claim(study, url, space, self.n_trials, self.n_jobs), "claiming trials"
            )
            if not trials:
                if done >= self.n_trials or self.heartbeat_interval is None:
                    return returns
                time.sleep(self.heartbeat_interval)
                continue
            for group in consecutive(trials):
                returns.append(self.launch(study, url, group, fixed, runs))

    def launch(
        self,
        study: optuna.Study,
        url: str,
        trials: Sequence[optuna.Trial],
        fixed: Mapping[str, str],
        runs: TrialRuns,
    ) -> Sequence[JobReturn]:
        """Run one batch of trials (job numbers = trial numbers) and tell their results; a
        batch that cannot run is failed, not counted, and its parameters re-queued."""
        from optuna.trial import TrialState

        assert self.config is not None
        name = study.study_name
        batch = [[*trial_overrides(fixed, t.params), *job_env(name, t.number)] for t in trials]
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
            with heartbeats(trials):
                results = self.launcher.launch(batch, initial_job_idx=trials[0].number)
            HydraConfig.instance().set_config(self.config)
            for trial, ret in zip(trials, results, strict=True):
                self.retried(functools.partial(tell, study, trial, ret, runs), "telling a result")
                del pending[trial.number]
        finally:
            try:
                if pending:
                    with store_lock(url, CLAIM_LOCK):
                        abandon(study, list(pending.values()))
            except storage_errors():  # they stay RUNNING, go stale, and are run again
                log.warning("trials %s not abandoned: the storage is away", sorted(pending))
        return results

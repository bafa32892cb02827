"""Optuna search as a Hydra sweeper: a persisted, resumable study on a current Optuna.

Why not hydra-optuna-sweeper: 1.3.0 (the last release) pins ``optuna<3``, and optuna 2.10's
SQL storage fails on SQLAlchemy 2. A pin set with SQLAlchemy 1.4 resolves, but it holds the
whole environment (MLflow's own store included) on an end-of-life SQLAlchemy and alembic<1.20,
and that plugin still counts ``n_trials`` per invocation (a resumed search runs them all
again), leaves the trials of a killed search RUNNING for ever, and stops the whole search at
the first trial whose job returns None. This sweeper keeps Optuna current instead.

How it works (``conf/hparams_search/optuna_lr.yaml`` selects it):

* The search space is ``hydra.sweeper.params``, the entry of ``hydra.sweeper.schedule_params``
  for the run's schedule family, and any sweep given on the command line, in Hydra's override
  grammar: ``interval(a, b)`` (float), ``tag(log, interval(a, b))``, ``tag(int, interval(a,
  b))``, ``range(start, stop[, step])`` (stop excluded, as Python), ``choice(a, b)`` / ``a,b``
  (categorical). A plain value on the command line fixes that key and removes it from the
  space.
* The study lives in ``storage`` (default ``sqlite:///<paths.mlruns_dir>/optuna.db``, a file of
  its own next to MLflow's ``mlflow.db``) under ``study_name``; it is created or loaded
  (``load_if_exists``), so running the same command again continues it.
* ``n_trials`` is the study's total: an invocation runs only the trials still missing.
  Finished trials count, failed ones included (a diverged LR is a result). Trials that a
  killed search left RUNNING are marked FAIL, do not count, and their parameters are enqueued,
  so the same point is trained again first.
* Each batch of ``n_jobs`` trials is asked from Optuna (ask-and-tell) and launched through
  Hydra's configured launcher (basic, joblib, ...); a job's return value (``val/acc``) is the
  objective; a failed job or a None / non-finite value makes a FAIL trial, never a crash.
* Every trial's MLflow run (found by its ``output_dir`` tag under the sweep's parent run) is
  tagged ``optuna_study`` / ``optuna_trial``; at the end the study's best trial's run is
  tagged ``optuna_best=true`` (and the tag is removed from a previous best).

One sweeper process per study at a time: a second process on the same study would take the
first one's running trials for interrupted ones.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

#: study user attr: numbers of finished trials that do not count toward ``n_trials``
NOT_COUNTED = "lrexp_not_counted"
#: study user attr: the fixed (non-search) overrides the study was started with
OVERRIDES = "lrexp_overrides"
#: trial user attrs
RUN_ID = "mlflow_run_id"
OUTPUT_DIR = "output_dir"
ERROR = "error"
#: MLflow tags
TAG_STUDY, TAG_TRIAL, TAG_BEST = "optuna_study", "optuna_trial", "optuna_best"


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


# --------------------------------------------------------------------------- search space


def distribution_of(override: Override) -> BaseDistribution | None:
    """The Optuna distribution a sweep override describes; None for a plain (fixed) value."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if not override.is_sweep_override():
        return None
    value = override.value()
    key = override.get_key_element()
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        log_scale = "log" in value.tags
        if "int" in value.tags:
            low, high = math.ceil(value.start), math.floor(value.end)
            return IntDistribution(low, high, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{key}: empty range")
        first, last, step = values[0], values[-1], value.step
        if isinstance(first, int) and isinstance(last, int) and isinstance(step, int):
            return IntDistribution(first, last, step=step)
        if isinstance(first, int | float) and isinstance(last, int | float) and step:
            return FloatDistribution(float(first), float(last), step=float(step))
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(override.sweep_string_iterator()))
    raise ValueError(f"{key}: unsupported sweep {override.input_line!r}")


def parse_space(
    lines: Iterable[str],
) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split ``key=value`` override lines into a search space and fixed overrides.

    Later lines win; a fixed value removes the key from the space (command line over YAML).
    Fixed overrides map the key (with any ``+``/``~`` prefix) to the full override line.
    """
    lines = list(lines)
    parsed = OverridesParser.create().parse_overrides(lines)
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for line, override in zip(lines, parsed, strict=True):
        key = override.get_key_element()
        distribution = distribution_of(override)
        if distribution is None:
            space.pop(key, None)
            fixed[key] = override.input_line or line
        else:
            fixed.pop(key, None)
            space[key] = distribution
    return space, fixed


def params_lines(params: Mapping[str, Any] | None) -> list[str]:
    """``hydra.sweeper.params`` as override lines (``key=value``)."""
    return [f"{key}={value}" for key, value in (params or {}).items()]


def format_value(value: Any) -> str:
    """A sampled value as an override value (floats with ``repr``: exact round trip)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_overrides(fixed: Mapping[str, str], params: Mapping[str, Any]) -> list[str]:
    return [*fixed.values(), *(f"{k}={format_value(v)}" for k, v in params.items())]


# --------------------------------------------------------------------------- study state


def not_counted(study: optuna.Study) -> set[int]:
    return set(study.user_attrs.get(NOT_COUNTED, []))


def exclude(study: optuna.Study, numbers: Iterable[int]) -> None:
    """Record finished trials that must not count toward ``n_trials``."""
    merged = not_counted(study) | set(numbers)
    study.set_user_attr(NOT_COUNTED, sorted(merged))


def count_done(study: optuna.Study) -> int:
    """Finished trials that count toward ``n_trials`` (COMPLETE, PRUNED, FAIL from a job)."""
    from optuna.trial import TrialState

    skip = not_counted(study)
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if t.number not in skip)


def abandon(study: optuna.Study, trials: Sequence[FrozenTrial | optuna.Trial]) -> None:
    """Mark unfinished trials FAIL, not counted, and enqueue their parameters to run again."""
    from optuna.trial import TrialState

    if not trials:
        return
    for trial in trials:
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    exclude(study, [t.number for t in trials])
    for trial in trials:
        if trial.params:
            study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Trials a killed search left RUNNING: FAIL, not counted, parameters enqueued again."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    abandon(study, stale)
    return [t.number for t in stale]


def objective_value(ret: JobReturn) -> tuple[float | None, str | None]:
    """The job's objective, or (None, why) when the trial must be marked FAIL."""
    if ret.status != JobStatus.COMPLETED:
        return None, f"job failed: {ret._return_value!r}"
    value = ret.return_value
    if value is None:
        return None, "job returned None (failed or diverged run)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"job returned {value!r}, not a number"
    if not math.isfinite(number):
        return None, f"job returned {number}"
    return number, None


def job_output_dir(ret: JobReturn) -> str | None:
    hydra_cfg = getattr(ret, "hydra_cfg", None)
    if hydra_cfg is None:
        return None
    value = OmegaConf.select(hydra_cfg, "hydra.runtime.output_dir", default=None)
    return str(value) if value else None


def resume_seed(seed: int, offset: int) -> int:
    """The sampler seed for a study that already holds ``offset`` trials.

    ``seed`` itself for a new study; otherwise a well-mixed derived seed (nearby integer seeds
    give nearly equal first draws in NumPy's legacy generator, so ``seed + offset`` would
    replay points close to the first invocation's).
    """
    if offset == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, offset]).generate_state(1)[0])


def default_study_name(config: DictConfig) -> str:
    parts = [OmegaConf.select(config, f"{group}.name") for group in GROUPS]
    return "lr-" + "-".join(str(p) for p in parts)


GROUPS = ("schedule", "optimizer", "model", "dataset")


def default_storage(config: DictConfig) -> str:
    return f"sqlite:///{Path(str(config.paths.mlruns_dir)).resolve()}/optuna.db"


def prepare_storage(url: str) -> None:
    """Create the folder of a SQLite storage file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------- MLflow


class TrialRuns:
    """Tags the MLflow runs of a study's trials (a no-op with the logger disabled)."""

    def __init__(self, config: DictConfig, study_name: str) -> None:
        self.study_name = study_name
        self.enabled = bool(OmegaConf.select(config, "logger.enabled", default=False))
        self.client: Any = None
        if not self.enabled:
            return
        from mlflow.tracking import MlflowClient

        from lrexp.sweep import PARENT_FILE

        self.client = MlflowClient(str(config.logger.tracking_uri))
        self.experiment_name = str(config.logger.experiment_name)
        marker = Path(str(config.hydra.sweep.dir)) / PARENT_FILE
        self.parent = marker.read_text().strip() if marker.is_file() else None

    def _call(self, call: Any) -> Any:
        from lrexp.tracking.store import retry_locked

        return retry_locked(call)

    def find(self, output_dir: str | None) -> str | None:
        """The run a trial's job created: its ``output_dir`` tag, newest first."""
        if not self.enabled or output_dir is None:
            return None
        experiment = self._call(lambda: self.client.get_experiment_by_name(self.experiment_name))
        if experiment is None:
            return None
        query = f"tags.`mlflow.parentRunId` = '{self.parent}'" if self.parent else ""
        runs = self._call(
            lambda: self.client.search_runs(
                [experiment.experiment_id],
                filter_string=query,
                order_by=["attributes.start_time DESC"],
                max_results=1000,
            )
        )
        for run in runs:
            if run.data.tags.get("output_dir") == output_dir:
                return str(run.info.run_id)
        return None

    def tag_trial(self, run_id: str, number: int) -> None:
        tags = {TAG_STUDY: self.study_name, TAG_TRIAL: str(number)}
        for key, value in tags.items():
            self._call(lambda key=key, value=value: self.client.set_tag(run_id, key, value))

    def tag_best(self, run_id: str | None) -> None:
        """``optuna_best=true`` on ``run_id`` only, among the study's runs."""
        if not self.enabled:
            return
        experiment = self._call(lambda: self.client.get_experiment_by_name(self.experiment_name))
        if experiment is not None:
            previous = self._call(
                lambda: self.client.search_runs(
                    [experiment.experiment_id],
                    filter_string=f"tags.{TAG_BEST} = 'true'",
                    max_results=1000,
                )
            )
            for run in previous:
                same_study = run.data.tags.get(TAG_STUDY) == self.study_name
                if same_study and run.info.run_id != run_id:
                    self._call(lambda run=run: self.client.delete_tag(run.info.run_id, TAG_BEST))
        if run_id is not None:
            self._call(lambda: self.client.set_tag(run_id, TAG_BEST, "true"))

    def tag_parent(self, tags: Mapping[str, str]) -> None:
        if not self.enabled or self.parent is None:
            return
        for key, value in tags.items():
            self._call(lambda key=key, value=value: self.client.set_tag(self.parent, key, value))


# --------------------------------------------------------------------------- the sweeper


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
            log.warning("trial %d failed: %s", trial.number, error)
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

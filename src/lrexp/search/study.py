"""Study bookkeeping: which finished trials count toward ``n_trials``, recovery of trials a
killed search left RUNNING, default study name and storage, the resumed sampler seed, and a
job's return value read as a trial's objective (``objective_value``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

#: study user attr: numbers of finished trials that do not count toward ``n_trials``
NOT_COUNTED = "lrexp_not_counted"
#: study user attr: the fixed (non-search) overrides the study was started with
OVERRIDES = "lrexp_overrides"
#: trial user attrs
RUN_ID = "mlflow_run_id"
OUTPUT_DIR = "output_dir"
ERROR = "error"


def not_counted(study: optuna.Study) -> set[int]:
    return set(study.user_attrs.get(NOT_COUNTED, []))


def exclude(study: optuna.Study, numbers: Iterable[int]) -> None:
    """Record finished trials that must not count toward ``n_trials``."""
    merged = not_counted(study) | set(numbers)
    study.set_user_attr(NOT_COUNTED, sorted(merged))


def retried(trials: Iterable[FrozenTrial]) -> set[int]:
    """Trials failed by the heartbeat and re-queued by Optuna's retry callback (their retries
    carry the chain in ``retry_history``)."""
    import warnings

    from optuna.storages import RetryHeartbeatStaleTrialCallback

    numbers: set[int] = set()
    with warnings.catch_warnings():  # the accessor is marked experimental
        warnings.simplefilter("ignore")
        for trial in trials:
            numbers.update(RetryHeartbeatStaleTrialCallback.retry_history(trial))
    return numbers


def count_done(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> int:
    """Finished trials (of ``trials``, default the study's) that count toward ``n_trials``
    (COMPLETE, PRUNED, FAIL from a job); not those run again (a retried stale trial, an
    abandoned one)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False) if trials is None else trials
    skip = not_counted(study) | retried(trials)
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in trials if t.state in states and t.number not in skip)


def count_running(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


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
        # lrexp's task returns None for a run that failed or diverged, and for one that ended
        # without any val/acc (validation switched off): which one, its MLflow run says
        return None, "job returned no val/acc (see the trial's MLflow run for its status)"
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


def make_sampler(factory: Any, offset: int) -> optuna.samplers.BaseSampler:
    """The sampler of a study already holding ``offset`` trials: ``hydra.sweeper.sampler``
    (a partial: its ``seed`` mixed with ``offset``; an instance: used as given)."""
    import functools

    import optuna

    if factory is None:
        return optuna.samplers.TPESampler(seed=offset)
    if isinstance(factory, functools.partial):
        seed = factory.keywords.get("seed")
        if seed is not None:
            return factory(seed=resume_seed(int(seed), offset))
        return factory()
    return factory  # an instance: used as given


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

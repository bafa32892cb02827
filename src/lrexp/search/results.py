"""A trial's result told to the study (COMPLETE, PRUNED or FAIL) and the end of a worker's
search: the best trial's run tagged, the study's parent ended when the study is complete,
and ``optimization_results.yaml`` in the sweep directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from lrexp.search.pruning import pruned_step
from lrexp.search.runs import TAG_STUDY, TrialRuns
from lrexp.search.study import (
    ERROR,
    OUTPUT_DIR,
    RUN_ID,
    count_done,
    count_running,
    job_output_dir,
    objective_value,
)
from lrexp.tracking.uri import redact

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("lrexp.search")


def tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn, runs: TrialRuns) -> None:
    """Record the job's run on its trial and tell the study the result: PRUNED when the job
    was pruned (it wrote the step on its trial), FAIL without an objective, else COMPLETE."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        _tell(study, trial, ret, runs)
    except UpdateFinishedTrialError:  # its heartbeat lapsed and another worker failed it, or
        # a retry after a lost reply: the study already holds what it needs
        log.warning("trial %d was already finished; this job's result is dropped", trial.number)


def _tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn, runs: TrialRuns) -> None:
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
    step = pruned_step(study, trial)
    if step is not None:  # its last reported value becomes its value (Optuna's rule)
        log.info("trial %d pruned at step %d", trial.number, step)
        study.tell(trial, state=TrialState.PRUNED)
    elif error is not None:
        trial.set_user_attr(ERROR, error)
        log.warning("trial %d has no objective: %s", trial.number, error)
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)


def finish(
    study: optuna.Study, runs: TrialRuns, storage: str, sweep_dir: Path, n_trials: int
) -> None:
    """Tag the best trial's run, end the study's parent run once the study is complete (no
    trial left running anywhere), and write ``optimization_results.yaml`` to ``sweep_dir``."""
    done = count_done(study)
    results: dict[str, Any] = {
        "name": "lrexp_optuna",
        "study_name": study.study_name,
        "storage": redact(storage),
        "direction": study.direction.name.lower(),
        "trials_done": done,
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
    if done >= n_trials and count_running(study) == 0:
        runs.end_parent()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")

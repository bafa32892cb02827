"""Optuna search (``hparams_search=optuna_lr``): space parsing, resume bookkeeping, and real
``python train.py`` searches persisted in SQLite and tracked in MLflow."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from conftest import CONF, run_cli
from lrexp import search
from lrexp.config.validate import validate

SEARCH_CONF = CONF / "hparams_search" / "optuna_lr.yaml"
FAMILIES = sorted(p.stem for p in (CONF / "schedule").glob("*.yaml"))

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_plugin_is_discovered() -> None:
    names = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)}
    assert search.LrexpOptunaSweeperConf._target_ in names


def test_space_grammar() -> None:
    space, fixed = search.parse_space(
        [
            "optimizer.lr=tag(log, interval(1e-4, 1.0))",
            "schedule.min_factor=interval(0.0, 0.5)",
            "schedule.timescale=tag(int, log, interval(10, 2000))",
            "schedule.period=range(1, 11)",
            "schedule.power=range(0.5, 2.0, 0.5)",
            "optimizer=sgd,adam",
            "seed=choice(0, 1)",
            "trainer.max_epochs=1",
            "+extra=3",
            "schedule.min_factor=0.1",  # a fixed value later on the line wins over the range
        ]
    )
    assert space == {
        "optimizer.lr": FloatDistribution(1e-4, 1.0, log=True),
        "schedule.timescale": IntDistribution(10, 2000, log=True),
        "schedule.period": IntDistribution(1, 10),
        "schedule.power": FloatDistribution(0.5, 1.5, step=0.5),
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
        "seed": CategoricalDistribution(["0", "1"]),
    }
    assert fixed == {
        "trainer.max_epochs": "trainer.max_epochs=1",
        "+extra": "+extra=3",
        "schedule.min_factor": "schedule.min_factor=0.1",
    }
    overrides = search.trial_overrides(fixed, {"optimizer.lr": 0.1 + 0.2, "optimizer": "adam"})
    assert overrides[-2:] == ["optimizer.lr=0.30000000000000004", "optimizer=adam"]


def search_conf() -> DictConfig:
    cfg = OmegaConf.load(SEARCH_CONF)
    assert isinstance(cfg, DictConfig)
    return cfg.hydra.sweeper


def test_search_config_shape() -> None:
    sweeper = search_conf()
    assert sweeper.direction is None  # the task's objective decides (val/acc: maximize)
    space, fixed = search.parse_space(search.params_lines(sweeper.params))
    assert space == {"optimizer.lr": FloatDistribution(1e-4, 1.0, log=True)} and not fixed
    assert sorted(sweeper.schedule_params) == FAMILIES  # one entry per schedule family


def bounds(distribution: object) -> list[object]:
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    assert isinstance(distribution, FloatDistribution | IntDistribution)
    return [distribution.low, distribution.high]


@pytest.mark.parametrize("family", FAMILIES)
def test_schedule_space_bounds_validate(make_cfg: Callable[..., DictConfig], family: str) -> None:
    """Every family's searched parameter exists in its config and both ends are valid."""
    lines = search.params_lines(search_conf().schedule_params[family])
    space, fixed = search.parse_space(lines)
    assert not fixed
    for key, distribution in space.items():
        for value in bounds(distribution):
            cfg = make_cfg(f"schedule={family}", f"{key}={search.format_value(value)}")
            assert OmegaConf.select(cfg, key) == value
            validate(cfg)


def sqlite_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        study_name="s", storage=f"sqlite:///{tmp_path}/o.db", direction="maximize"
    )


def test_interrupted_trials_are_failed_not_counted_and_rerun(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path)
    space: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}
    done = study.ask(space)
    study.tell(done, 0.5)
    failed = study.ask(space)
    study.tell(failed, state=TrialState.FAIL)  # a job that failed: a result, it counts
    stale = study.ask(space)  # left RUNNING, as by a killed search
    x = stale.params["x"]

    resumed = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/o.db")
    assert search.recover_interrupted(resumed) == [stale.number]
    assert resumed.trials[stale.number].state == TrialState.FAIL
    assert search.count_done(resumed) == 2
    retry = resumed.ask(space)  # the enqueued parameters come first
    assert retry.params == {"x": x}
    assert retry.user_attrs["retry_of"] == stale.number
    assert search.recover_interrupted(resumed) == [retry.number]  # idempotent bookkeeping
    assert search.count_done(resumed) == 2


def job(status: JobStatus, value: object) -> JobReturn:
    ret = JobReturn()
    ret.status = status
    ret._return_value = value
    return ret


def test_objective_value() -> None:
    assert search.objective_value(job(JobStatus.COMPLETED, 0.75)) == (0.75, None)
    for bad in (
        job(JobStatus.COMPLETED, None),
        job(JobStatus.COMPLETED, math.nan),
        job(JobStatus.COMPLETED, "x"),
        job(JobStatus.FAILED, RuntimeError("boom")),
    ):
        value, error = search.objective_value(bad)
        assert value is None and error


def test_resume_seed() -> None:
    assert search.resume_seed(7, 0) == 7
    seeds = {search.resume_seed(7, n) for n in range(1, 20)}
    assert len(seeds) == 19 and 7 not in seeds


def trial_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("lrexp")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def check_study(tmp_path: Path, n_trials: int) -> None:
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    assert optuna.get_all_study_names(storage) == ["lr-cosine-sgd-mlp-digits"]
    study = optuna.load_study(study_name="lr-cosine-sgd-mlp-digits", storage=storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(study.trials) == len(trials) == n_trials
    assert [t.number for t in trials] == list(range(n_trials))

    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = {r.info.run_id: r for r in trial_runs(client)}
    assert len(runs) == n_trials
    for trial in trials:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna_study"] == study.study_name
        assert run.data.tags["optuna_trial"] == str(trial.number)
        assert run.data.metrics["val/acc"] == pytest.approx(trial.value)
        for key, value in trial.params.items():  # the sampled values reached the job
            assert run.data.params[key] == repr(value)
    best = [r for r in runs.values() if r.data.tags.get("optuna_best") == "true"]
    assert [r.info.run_id for r in best] == [study.best_trial.user_attrs["mlflow_run_id"]]
    assert best[0].data.metrics["val/acc"] == max(r.data.metrics["val/acc"] for r in runs.values())


@pytest.mark.slow
def test_search_finishes_and_a_second_invocation_continues(tmp_path: Path) -> None:
    args = [
        "hparams_search=optuna_lr",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    first = run_cli([*args, "hydra.sweeper.n_trials=3"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    check_study(tmp_path, 3)
    (results,) = tmp_path.glob("multirun/*/*/optimization_results.yaml")
    assert OmegaConf.load(results).trials_done == 3

    second = run_cli([*args, "hydra.sweeper.n_trials=5"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "3/5 trials done" in second.stdout + second.stderr
    check_study(tmp_path, 5)  # the same study, 5 trials in all (not 8, not a fresh one)


@pytest.mark.slow
def test_trials_that_end_mid_epoch_still_report_their_objective(tmp_path: Path) -> None:
    """20 steps of a 40-batch epoch: each trial is validated at its end, so the search gets
    every objective (it used to call such finished runs failed)."""
    args = [
        "hparams_search=optuna_lr",
        "trainer.max_steps=20",
        "hydra.sweeper.n_trials=2",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    done = run_cli(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "no objective" not in output and "no completed trial" not in output
    (results,) = tmp_path.glob("multirun/*/*/optimization_results.yaml")
    summary = OmegaConf.load(results)
    assert summary.trials_done == 2
    assert 0.1 < float(summary.best_value) <= 1.0

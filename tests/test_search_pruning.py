"""Pruning (``hydra.sweeper.pruner``): the settings, the refusal of a shape-varying space, and
real ``python train.py`` searches with deliberately bad LRs under Optuna's median pruner
(study in the real PostgreSQL or SQLite, runs in MLflow SQLite)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from optuna.trial import TrialState

from conftest import CONF, DATABASES, experiment_id, run_cli
from lrexp import search
from lrexp.errors import ConfigError
from lrexp.search.pruning import check_space, guard_step, read_settings, shape_keys
from lrexp.tracking.localserver import Postgres

STUDY = "pruned"
#: 40 optimizer steps per epoch (1257 digits, batch 32), validated at each epoch's end
EPOCH, EPOCHS = 40, 4


def test_settings() -> None:
    assert read_settings({"name": None}) is None
    settings = read_settings({"name": "median", "n_startup_trials": 2, "min_fraction": 0.6})
    assert settings is not None
    pruner = settings.make()
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_startup_trials == 2 and settings.min_fraction == 0.6
    for name, cls in [
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
    ]:
        made = read_settings({"name": name, "reduction_factor": 2})
        assert made is not None and isinstance(made.make(), cls)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": "patient"}, "hydra.sweeper.pruner.name"),
        ({"name": "median", "min_resource": 3}, "hydra.sweeper.pruner.min_resource"),
        ({"name": "median", "min_fraction": 1.0}, "hydra.sweeper.pruner.min_fraction"),
        ({"name": "median", "n_startup_trials": -1}, "hydra.sweeper.pruner"),
    ]
    for node, key in bad:
        with pytest.raises(ConfigError) as err:
            read_settings(node)
        assert err.value.key == key


def test_guard_is_the_later_of_warmup_and_min_fraction() -> None:
    assert guard_step(160, 0, 0.5) == 80
    assert guard_step(160, 0, 0.6) == 96
    assert guard_step(160, 100, 0.5) == 100
    assert guard_step(161, 0, 0.5) == 81


def test_shape_keys_of_each_family_main_parameter() -> None:
    """The default space's main parameter of each family: a level (a floor, a multiplier) is
    accepted; a timing (a fraction of the run, a period, a duration) is refused."""
    sweeper = OmegaConf.load(CONF / "hparams_search" / "optuna_lr.yaml").hydra.sweeper
    refused = {
        family
        for family, params in sweeper.schedule_params.items()
        if shape_keys(search.parse_space(search.params_lines(params))[0])
    }
    assert refused == {"cooldown", "cosine_restarts", "inverse_sqrt", "onecycle", "wsd"}
    keys = ["schedule", "schedule.warmup.steps", "+schedule.total", "trainer.max_epochs"]
    assert shape_keys([*keys, "optimizer.lr", "schedule.min_factor"]) == [
        "schedule",
        "schedule.warmup.steps",
        "schedule.total",
        "trainer.max_epochs",
    ]
    settings = read_settings({"name": "median"})
    assert settings is not None
    check_space(settings, ["optimizer.lr", "schedule.min_factor"])  # cosine's search: fine
    with pytest.raises(ConfigError, match="favours schedules that decay early"):
        check_space(settings, ["optimizer.lr", "schedule.decay_frac"])
    allowed = read_settings({"name": "median", "allow_shape_search": True})
    assert allowed is not None
    check_space(allowed, ["optimizer.lr", "schedule.decay_frac"])


def search_args(*extra: str) -> list[str]:
    """A cosine search of 4 epochs on digits where half the LRs cannot learn."""
    return [
        "hparams_search=optuna_lr",
        f"trainer.max_epochs={EPOCHS}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger.system_metrics=false",
        "schedule.min_factor=0.0",
        "optimizer.lr=choice(0.3, 0.000001)",
        "hydra.sweeper.n_trials=5",
        f"hydra.sweeper.study_name={STUDY}",
        "hydra.sweeper.pruner.name=median",
        "hydra.sweeper.pruner.n_startup_trials=2",
        *extra,
    ]


def check_pruned_search(storage: str, tracking: str, pruned_at: int) -> None:
    """5 finished trials, the bad LRs after the first two PRUNED at ``pruned_at`` (their runs
    stopped there and tagged), the good ones COMPLETE after the whole run."""
    total = EPOCH * EPOCHS
    study = optuna.load_study(study_name=STUDY, storage=storage)
    states = Counter(t.state for t in study.trials)
    assert states == {TrialState.COMPLETE: 3, TrialState.PRUNED: 2}  # exactly n_trials
    client = MlflowClient(tracking)
    runs = {r.info.run_id: r for r in client.search_runs([experiment_id(client, "lrexp")])}
    for trial in study.trials:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
        lr_points = len(client.get_metric_history(run.info.run_id, "lr"))
        if trial.state == TrialState.PRUNED:
            assert trial.number >= 2 and trial.params["optimizer.lr"] == "1e-06"
            assert trial.user_attrs["pruned_step"] == pruned_at
            assert run.data.tags["optuna_pruned"] == "true"
            assert run.data.tags["optuna_pruned_step"] == str(pruned_at)
            assert lr_points == pruned_at < total  # stopped at once
            # reported after every validation, before the guard too; pruned at the first
            # validation at or after the guard
            assert sorted(trial.intermediate_values) == list(range(EPOCH, pruned_at + 1, EPOCH))
            assert trial.value == trial.intermediate_values[pruned_at]
        else:
            assert "optuna_pruned" not in run.data.tags
            assert lr_points == total
            assert sorted(trial.intermediate_values) == list(range(EPOCH, total + 1, EPOCH))
    best = study.best_trial
    assert best.params["optimizer.lr"] == "0.3" and (best.value or 0.0) > 0.9


@pytest.mark.slow
def test_bad_lrs_pruned_after_min_fraction_postgres(postgres: Postgres, tmp_path: Path) -> None:
    """min_fraction 0.6 of 160 steps: the guard is step 96, so the bad trials are pruned at
    the validation of step 120, not at 40 or 80 where they are already far behind."""
    name = f"optuna_{os.getpid()}_{next(DATABASES)}"
    postgres.execute(f"CREATE DATABASE {name}")
    storage = postgres.uri(name)
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    args = search_args(
        f"hydra.sweeper.storage='{storage}'",
        "hydra.sweeper.pruner.min_fraction=0.6",
        f"logger.tracking_uri={tracking}",
    )
    done = run_cli(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    check_pruned_search(storage, tracking, pruned_at=3 * EPOCH)


@pytest.mark.slow
def test_no_pruning_in_warmup_sqlite(tmp_path: Path) -> None:
    """min_fraction 0, but a warmup of 50 steps: the first prunable validation is step 80."""
    done = run_cli(
        search_args("hydra.sweeper.pruner.min_fraction=0.0", "schedule.warmup.steps=50"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    check_pruned_search(storage, f"sqlite:///{tmp_path}/mlruns/mlflow.db", pruned_at=2 * EPOCH)


@pytest.mark.slow
def test_successive_halving_prunes_bad_lrs_at_the_guard_sqlite(tmp_path: Path) -> None:
    """Optuna's successive halving (rungs at 40, 80, 160 steps) in place of the median: the
    job side is the same, so the two 1e-6 trials after the first two are pruned at step 80,
    the guard of min_fraction 0.5, though they trail at the rung of step 40 already."""
    args = [a for a in search_args() if "pruner" not in a]
    done = run_cli(
        [
            *args,
            "hydra.sweeper.pruner.name=successive_halving",
            "hydra.sweeper.pruner.min_resource=40",
            "hydra.sweeper.pruner.reduction_factor=2",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    check_pruned_search(storage, f"sqlite:///{tmp_path}/mlruns/mlflow.db", pruned_at=2 * EPOCH)


def test_shape_varying_space_refused_before_any_trial(tmp_path: Path) -> None:
    args = [
        "hparams_search=optuna_lr",
        "schedule=wsd",  # its searched parameter: decay_frac
        "hydra.sweeper.pruner.name=median",
        "schedule.warmup.steps=range(0, 100, 50)",
    ]
    refused = run_cli(args, cwd=tmp_path)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert lines[-1] == (
        "lrexp: error: hydra.sweeper.pruner: the search varies the schedule's shape "
        "(schedule.decay_frac, schedule.warmup.steps); pruning compares trials at equal "
        "steps, which favours schedules that decay early over those that decay late but may "
        "end better; search without a pruner, or pass "
        "hydra.sweeper.pruner.allow_shape_search=true to accept the bias"
    )
    assert "Traceback" not in refused.stderr and "Launching" not in refused.stdout
    assert not (tmp_path / "mlruns" / "optuna.db").exists()  # no study, no trial


@pytest.mark.slow
def test_shape_search_runs_with_the_override(tmp_path: Path) -> None:
    args = [
        "hparams_search=optuna_lr",
        "schedule=wsd",
        "trainer.max_steps=10",
        "trainer.enable_progress_bar=false",
        "logger.system_metrics=false",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.pruner.name=median",
        "hydra.sweeper.pruner.allow_shape_search=true",
    ]
    done = run_cli(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(
        study_name="lr-wsd-sgd-mlp-digits", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db"
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert set(study.trials[0].params) == {"optimizer.lr", "schedule.decay_frac"}

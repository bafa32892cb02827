"""Processes started together on a new SQLite store: one creates (migrates) it, all run.

Without the store lock two of three ``python train.py`` started at once died in MLflow's
schema migration (``duplicate column name``, ``table ... already exists``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import ROOT

PROCESSES = 3


def start_together(args: list[list[str]], cwd: Path) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return [
        subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *a],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for a in args
    ]


@pytest.mark.slow
def test_runs_started_together_on_a_new_store_all_finish(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/new/m.db"
    common = [
        "trainer.max_steps=5",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger.system_metrics=false",
        f"logger.tracking_uri={uri}",
    ]
    processes = start_together(
        [[*common, f"seed={i}", f"hydra.run.dir=out{i}"] for i in range(PROCESSES)], tmp_path
    )
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "lrexp"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2"]
    assert [r.info.status for r in runs] == ["FINISHED"] * PROCESSES


@pytest.mark.slow
def test_search_workers_started_together_on_a_new_store_share_one_study(tmp_path: Path) -> None:
    """Three workers of one search on new SQLite stores (MLflow's and Optuna's): all finish,
    the study holds ``n_trials`` trials in all, each one MLflow run under one parent."""
    n_trials = 4
    common = [
        "hparams_search=optuna_lr",
        "trainer.max_steps=10",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger.system_metrics=false",
        f"hydra.sweeper.n_trials={n_trials}",
        "hydra.sweeper.heartbeat_interval=1",
    ]
    processes = start_together(
        [[*common, f"hydra.sweep.dir=multirun/w{i}"] for i in range(PROCESSES)], tmp_path
    )
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * n_trials
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "lrexp"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == n_trials + 1
    assert sorted(r.data.tags["optuna_trial"] for r in children) == ["0", "1", "2", "3"]
    assert {r.info.status for r in runs} == {"FINISHED"}

"""Many search workers on one Optuna study in the real PostgreSQL (tracking in a PostgreSQL
MLflow store of its own): ``n_trials`` is the study's total, a SIGKILLed worker's trial is
failed by its heartbeat, run again by another worker, and its MLflow run ended KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import DATABASES, ROOT, experiment_id
from lrexp.tracking.localserver import Postgres

SECRET = "pw-secret-4711"
STUDY = "cluster"


def optuna_database(postgres: Postgres) -> str:
    """A new PostgreSQL database for Optuna, reached as a role with a password (trust auth
    accepts any; the point is that the password never shows)."""
    name = f"optuna_{os.getpid()}_{next(DATABASES)}"
    postgres.execute(f"CREATE DATABASE {name}")
    postgres.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'worker') THEN "
        f"CREATE ROLE worker LOGIN SUPERUSER PASSWORD '{SECRET}'; END IF; END $$"
    )
    return f"postgresql://worker:{SECRET}@127.0.0.1:{postgres.port}/{name}"


def worker(args: list[str], cwd: Path, index: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, f"hydra.sweep.dir=multirun/w{index}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_running_run(client: MlflowClient, pid: int, timeout: float = 240) -> str:
    """The id of a RUNNING run opened by process ``pid`` (a trial's job in mid-training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("lrexp")
        if experiment is not None:
            for run in client.search_runs(
                [experiment.experiment_id], "attributes.status = 'RUNNING'"
            ):
                if run.data.tags.get("pid") == str(pid) and "optuna_trial" in run.data.tags:
                    return str(run.info.run_id)
        time.sleep(0.2)
    raise AssertionError(f"no run of process {pid} started in {timeout} s")


@pytest.mark.slow
def test_three_workers_one_killed_exactly_n_trials(postgres: Postgres, tmp_path: Path) -> None:
    n_trials = 6
    storage = optuna_database(postgres)
    tracking = postgres.new_database(f"mlflow_{os.getpid()}_{next(DATABASES)}")
    args = [
        "hparams_search=optuna_lr",
        "trainer.max_steps=120",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger.system_metrics=false",
        f"logger.tracking_uri={tracking}",
        f"logger.artifact_location={tmp_path}/artifacts",
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweeper.study_name={STUDY}",
        f"hydra.sweeper.storage='{storage}'",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=6",  # a live worker under load may beat late: not 4
        "optimizer.lr=tag(log, interval(0.01, 0.3))",
    ]
    workers = [worker(args, tmp_path, i) for i in range(3)]
    client = MlflowClient(tracking)
    try:
        killed_run = wait_for_running_run(client, workers[0].pid)
        workers[0].send_signal(signal.SIGKILL)
        outputs = [w.communicate(timeout=600) for w in workers[1:]]
    finally:
        for w in workers:
            w.kill()
    for w, (out, err) in zip(workers[1:], outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
        assert "Traceback" not in err and SECRET not in out + err

    study = optuna.load_study(study_name=STUDY, storage=storage)
    states = Counter(t.state for t in study.trials)
    assert states == {TrialState.COMPLETE: n_trials, TrialState.FAIL: 1}
    (failed,) = study.get_trials(states=(TrialState.FAIL,))
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params

    runs = client.search_runs([experiment_id(client, "lrexp")])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    assert parent.info.status == "FINISHED" and parent.data.tags["optuna_study"] == STUDY
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == n_trials + 1
    by_id = {r.info.run_id: r for r in children}
    assert by_id[killed_run].info.status == "KILLED"
    assert by_id[killed_run].data.tags["optuna_trial"] == str(failed.number)
    finished = {r.info.run_id for r in children if r.info.status == "FINISHED"}
    complete = {
        t.user_attrs["mlflow_run_id"] for t in study.get_trials(states=(TrialState.COMPLETE,))
    }
    assert finished == complete and len(finished) == n_trials  # runs and trials one to one
    assert sum(r.data.tags.get("optuna_best") == "true" for r in runs) == 1
    for run in runs:
        assert SECRET not in str(run.data.params) + str(run.data.tags)

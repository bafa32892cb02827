"""A search worker that loses its PostgreSQL storage for 20 s (the real server stopped with
``pg_ctl`` mid-trial, then started again on the same port) goes on, and the study ends
consistent: exactly ``n_trials`` finished trials, none left RUNNING.

Without a pruner the job trains through the outage and ends inside it: the sweeper's tell and
next claim meet it. With one the job meets it first, at its next report."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import DATABASES, ROOT, run_cli
from lrexp.tracking.localserver import Postgres

STUDY = "outage"
AWAY_SECONDS = 20


def running(storage: str, reported: bool) -> bool:
    """A trial is running (and, if ``reported``, its job has reported to it)."""
    try:
        study = optuna.load_study(study_name=STUDY, storage=storage)
    except KeyError:  # the worker has not created the study yet
        return False
    trials = study.get_trials(states=(TrialState.RUNNING,))
    return any(t.intermediate_values or not reported for t in trials)


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["off", "median"])
def test_worker_survives_20s_without_its_database(
    postgres: Postgres, tmp_path: Path, pruner: str
) -> None:
    name = f"optuna_{os.getpid()}_{next(DATABASES)}"
    postgres.execute(f"CREATE DATABASE {name}")
    storage = postgres.uri(name)
    n_trials = 2
    args = [
        "hparams_search=optuna_lr",
        "trainer.max_epochs=4",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger.system_metrics=false",
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweeper.study_name={STUDY}",
        f"hydra.sweeper.storage='{storage}'",
        "hydra.sweeper.heartbeat_interval=2",
        "hydra.sweeper.storage_retry_seconds=60",
    ]
    if pruner == "median":  # the jobs report to their trials; nothing is pruned
        args += ["hydra.sweeper.pruner.name=median", "hydra.sweeper.pruner.n_startup_trials=100"]
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not running(storage, reported=pruner == "median"):
            assert worker.poll() is None and time.monotonic() < deadline, "no trial ran"
            time.sleep(0.3)
        postgres.stop()
        time.sleep(AWAY_SECONDS)
        postgres.start()
        out, err = worker.communicate(timeout=240)
    finally:
        worker.kill()
    assert worker.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert "Optuna storage away" in out + err  # it noticed, and retried
    study = optuna.load_study(study_name=STUDY, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * n_trials
    reported = [sorted(t.intermediate_values) for t in study.trials]
    if pruner == "median":  # every validation of every job reached its trial
        assert reported == [[40 * e for e in range(1, 5)]] * n_trials
    else:
        assert reported == [[]] * n_trials


def test_worker_stops_with_one_line_past_the_bound(tmp_path: Path) -> None:
    """No database at all (nothing listens on the port): retried for 2 s, then one line."""
    args = [
        "hparams_search=optuna_lr",
        "hydra.sweeper.storage='postgresql://postgres@127.0.0.1:1/optuna'",
        "hydra.sweeper.storage_retry_seconds=2",
        "logger.enabled=false",
    ]
    stopped = run_cli(args, cwd=tmp_path)
    assert stopped.returncode == 2
    assert "Traceback" not in stopped.stderr and "Launching" not in stopped.stdout
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("lrexp: error: hydra.sweeper.storage: opening the study: ")
    assert "unreachable for 2 s (" in last and "Connection refused" in last
    assert last.endswith(
        "the trials it was running are run again (by another worker, or by this command again)"
    )

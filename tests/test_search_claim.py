"""The claim of trials on a real Optuna SQLite storage with heartbeats: a trial whose worker
died inside the claim, after asking it and before its first heartbeat, is run again."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from lrexp.search.workers import claim, make_storage

SPACE = {"optimizer.lr": FloatDistribution(1e-3, 1.0, log=True)}


def test_a_trial_orphaned_inside_the_claim_goes_stale_and_runs_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/optuna.db"
    stale: list[FrozenTrial] = []
    storage = make_storage(url, 1, 1, 3, stale.append)  # heartbeat every 1 s, grace 1 s
    study = optuna.create_study(storage=storage, study_name="orphan")
    orphan = study.ask(dict(SPACE))  # the worker died here: RUNNING, no heartbeat row
    lr = orphan.params["optimizer.lr"]

    trials, done = claim(study, url, SPACE, n_trials=2, most=2)
    assert done == 0 and len(trials) == 1  # the orphan still holds one of the two places
    study.tell(trials[0], 1.0)
    time.sleep(2.5)  # longer than the grace period: the orphan's one heartbeat is stale

    trials, done = claim(study, url, SPACE, n_trials=2, most=2)
    assert [t.number for t in stale] == [orphan.number]
    assert done == 1 and len(trials) == 1
    (again,) = trials
    assert again.params["optimizer.lr"] == lr  # run again with the orphan's parameters
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[orphan.number] == TrialState.FAIL
    assert states[again.number] == TrialState.RUNNING


def test_a_claim_leaves_a_live_trial_alone(tmp_path: Path) -> None:
    """A trial asked by a claim has its heartbeat; a second claim within the grace period
    neither fails it nor counts its place as free."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    stale: list[FrozenTrial] = []
    study = optuna.create_study(storage=make_storage(url, 5, 10, 3, stale.append))
    first, _ = claim(study, url, SPACE, n_trials=1, most=1)
    second, done = claim(study, url, SPACE, n_trials=1, most=1)
    assert len(first) == 1 and second == [] and done == 0 and stale == []

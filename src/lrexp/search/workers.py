"""Many workers on one study: the storage with heartbeats, the atomic claim of trials, and
the link from a trial to its job.

Any number of sweeper processes (on one machine with SQLite, on many with PostgreSQL) run the
same study. A worker *claims* trials under the store's lock (:func:`store_lock`): stale
trials are failed first (Optuna's ``fail_stale_trials``, which re-queues their parameters
through ``RetryHeartbeatStaleTrialCallback``), then trials are asked only while finished plus
running trials stay below ``n_trials``. So the study never holds more than ``n_trials``
counted trials, whatever the interleaving. Each claimed trial gets its first heartbeat inside
the claim, so a worker killed at any point leaves a trial that goes stale after
``grace_period`` and is run again by another worker (one killed inside the claim leaves a trial
without a heartbeat, which the next claim gives one: :func:`give_orphans_a_heartbeat`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lrexp.search.study import count_done
from lrexp.tracking.storelock import store_lock

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

#: storage URL schemes Optuna keeps in a relational database (heartbeats need one)
SQL_SCHEMES = ("sqlite:", "postgresql", "mysql")
#: what a job's process is told about its trial (``hydra.job.env_set``)
ENV_STUDY, ENV_TRIAL = "LREXP_OPTUNA_STUDY", "LREXP_OPTUNA_TRIAL"
CLAIM_LOCK = "lrexp-optuna-claim"


def make_storage(
    url: str,
    heartbeat_interval: int | None,
    grace_period: int | None,
    max_retry: int | None,
    on_stale: Callable[[FrozenTrial], None],
) -> str | BaseStorage:
    """An ``RDBStorage`` with heartbeats for a SQL URL (``url`` itself otherwise, or with
    ``heartbeat_interval`` null). A stale trial is re-queued with its parameters (at most
    ``max_retry`` times; then its FAIL counts as a result) and handed to ``on_stale``. Call it
    under :func:`store_lock`: the first call creates the tables."""
    if heartbeat_interval is None or not url.startswith(SQL_SCHEMES):
        return url
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # heartbeats are marked experimental
        warnings.simplefilter("ignore")
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

        def stale(study: optuna.Study, trial: FrozenTrial) -> None:
            retry(study, trial)
            on_stale(trial)

        return RDBStorage(
            url,
            engine_kwargs=engine_options(url),
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=stale,
        )


def engine_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options of a storage: SQLite writers wait for each other instead of
    failing after 5 s; pooled PostgreSQL connections are checked before use, so a database
    that was restarted costs a reconnect, not an error."""
    if url.startswith("sqlite:"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def claim(
    study: optuna.Study,
    url: str,
    space: Mapping[str, BaseDistribution],
    n_trials: int,
    most: int,
) -> tuple[list[optuna.Trial], int]:
    """Up to ``most`` new trials (re-queued ones first), never more than ``n_trials`` counted
    plus running in the study; and the number of counted trials."""
    from optuna.storages import fail_stale_trials
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    with store_lock(url, CLAIM_LOCK):
        heartbeat = is_heartbeat_enabled(study._storage)
        with warnings.catch_warnings():  # heartbeats: experimental, and meant for optimize()
            warnings.simplefilter("ignore")
            if heartbeat:
                fail_stale_trials(study)
                give_orphans_a_heartbeat(study)
            # straight from the database: the study's cached view can miss a trial another
            # worker has just claimed (measured: 31 trials for n_trials=30 with 4 workers)
            storage = getattr(study._storage, "_backend", study._storage)
            trials_now = storage.get_all_trials(study._study_id, deepcopy=False)
            done = count_done(study, trials_now)
            free = n_trials - done - sum(t.state == TrialState.RUNNING for t in trials_now)
            trials = [study.ask(dict(space)) for _ in range(max(0, min(most, free)))]
        if heartbeat:
            for trial in trials:
                trial.storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    return trials, done


def give_orphans_a_heartbeat(study: optuna.Study) -> None:
    """Record a first heartbeat for every RUNNING trial that has none.

    Call it under the claim lock. A claim records the heartbeat of each trial it asks before it
    releases the lock, so a RUNNING trial without one was asked by a worker that died inside
    the claim. Optuna's stale-trial check skips trials without a heartbeat, so such an orphan
    would count as running forever and the study would never reach ``n_trials``. With this
    heartbeat, which nobody renews, it goes stale after the grace period and is re-queued like
    any trial of a dead worker.
    """
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    storage: Any = getattr(study._storage, "_backend", study._storage)  # the RDBStorage
    trial = models.TrialModel
    beats = models.TrialHeartbeatModel
    query = (
        sqlalchemy.select(trial.trial_id)
        .outerjoin(beats, beats.trial_id == trial.trial_id)
        .where(trial.study_id == study._study_id)
        .where(trial.state == TrialState.RUNNING)
        .where(beats.trial_heartbeat_id.is_(None))
    )
    session = storage.scoped_session()
    try:
        orphans = [int(row[0]) for row in session.execute(query)]
    finally:
        session.close()
    for trial_id in orphans:
        storage.record_heartbeat(trial_id)


def consecutive(trials: Sequence[optuna.Trial]) -> Iterator[list[optuna.Trial]]:
    """Runs of consecutive trial numbers: a batch launches with job numbers = trial numbers,
    so jobs of one study never share an output directory (a re-queued trial keeps its old,
    lower number)."""
    group: list[optuna.Trial] = []
    for trial in trials:
        if group and trial.number != group[-1].number + 1:
            yield group
            group = []
        group.append(trial)
    if group:
        yield group


def job_env(study_name: str, number: int) -> list[str]:
    """Overrides that tell a trial's job its study and trial (environment variables only:
    neither the task config nor the run's params change)."""
    quoted = study_name.replace("\\", "\\\\").replace("'", "\\'")
    return [
        f"++hydra.job.env_set.{ENV_STUDY}='{quoted}'",
        f"++hydra.job.env_set.{ENV_TRIAL}={number}",
    ]


def trial_tags(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``optuna_study``/``optuna_trial`` tags of a run started by a trial's job."""
    if ENV_STUDY not in environ or ENV_TRIAL not in environ:
        return {}
    return {"optuna_study": environ[ENV_STUDY], "optuna_trial": environ[ENV_TRIAL]}

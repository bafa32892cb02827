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
* ``n_trials`` is the study's total over every invocation and every worker: any number of
  processes running the same command (on one machine with SQLite, on many with
  ``storage=postgresql://...``) share the study, each claiming trials atomically under the
  store's lock (:mod:`lrexp.search.workers`), so it ends with exactly ``n_trials`` counted
  trials. Finished trials count, failed ones included (a diverged LR is a result).
* With an SQL storage each running trial has a heartbeat (``heartbeat_interval``); a trial
  whose worker died is failed after ``grace_period``, does not count, is run again with the
  same parameters by a live worker (Optuna's ``RetryHeartbeatStaleTrialCallback``), and its
  MLflow run is ended KILLED. With ``heartbeat_interval: null`` one process per study: the
  trials a killed search left RUNNING are failed and re-queued when it starts again.
* Each batch of ``n_jobs`` trials is launched through Hydra's configured launcher (basic,
  joblib, submitit, ...) with job numbers = trial numbers; a job's return value
  (``val/acc``) is the objective; a failed job or a None / non-finite value makes a FAIL
  trial, never a crash.
* ``pruner``: Optuna's median, successive-halving or hyperband pruner. Each job reports
  ``val/acc`` to its own trial after every validation and stops when pruned (its trial
  PRUNED, its run tagged ``optuna_pruned``); never in its warmup nor before
  ``min_fraction`` of its steps, and a space that varies the schedule's shape is refused.
* A storage that is away is retried for ``storage_retry_seconds``, then the worker stops
  with one line; trials it was running are run again.
* The study has one MLflow parent run, created by whichever worker comes first (its id is a
  study user attribute); every trial's run is its child, tagged ``optuna_study`` /
  ``optuna_trial`` when it opens; as each worker ends, the best trial's run is tagged
  ``optuna_best=true`` (under the lock; the tag moves); the parent ends FINISHED once
  the study is complete.

Modules:

* :mod:`lrexp.search.space`: override lines -> Optuna distributions and fixed overrides,
  sampled values -> override lines.
* :mod:`lrexp.search.study`: study bookkeeping (counted trials, interrupted trials, default
  name and storage, resumed seed) and a job's return value as the objective.
* :mod:`lrexp.search.runs`: ``TrialRuns``, the MLflow tags of the trials' runs.
* :mod:`lrexp.search.workers`: the heartbeat storage, the atomic claim, the job's link to
  its trial.
* :mod:`lrexp.search.results`: a trial's result told, the best run's tags, the parent's end,
  the results file.
* :mod:`lrexp.search.pruning` / :mod:`lrexp.search.reporting`: the pruner and its guards;
  the job's reports and its stop.
* :mod:`lrexp.search.outage`: retries and heartbeats through a lost storage.
* :mod:`lrexp.search.conf` / :mod:`lrexp.search.sweeper`: ``LrexpOptunaSweeperConf`` and
  ``OptunaSweeper`` (subclassed and registered as ``hydra/sweeper=lrexp_optuna`` by
  ``hydra_plugins.lrexp_optuna``).
"""

from lrexp.search.conf import LrexpOptunaSweeperConf
from lrexp.search.space import format_value, params_lines, parse_space, trial_overrides
from lrexp.search.study import count_done, objective_value, recover_interrupted, resume_seed
from lrexp.search.sweeper import OptunaSweeper

__all__ = [
    "LrexpOptunaSweeperConf",
    "OptunaSweeper",
    "count_done",
    "format_value",
    "objective_value",
    "params_lines",
    "parse_space",
    "recover_interrupted",
    "resume_seed",
    "trial_overrides",
]

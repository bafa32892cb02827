"""The LR range test as a step before training: ``tune=lr_find`` and ``optimizer.lr=auto``.

This module sits above :mod:`lrexp.run.train`: it searches, then hands training a config whose
``optimizer.lr`` is a number."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from lrexp.config.spec import run_name, run_spec
from lrexp.config.training import finder_spec, train_config
from lrexp.config.tune import AUTO, finder_run_name, with_found_lr
from lrexp.lr_find.report import log_lr_find
from lrexp.lr_find.search import LRFindResult, find_lr
from lrexp.run.lifecycle import RunLifecycle
from lrexp.run.train import RunResult

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun


def train_at_auto_lr(cfg: DictConfig) -> RunResult:
    """``optimizer.lr=auto``: search (``cfg.tune``'s settings, else the defaults), then train
    at the suggestion; the search's figure, CSV and suggestion are logged into the run."""
    result = find_lr(*finder_spec(cfg))
    print(f"lr_find: training at optimizer.lr={result.suggestion:.6g}, {found(result)}", flush=True)
    cfg = with_found_lr(cfg, result.suggestion)
    output_dir = Path(cfg.paths.output_dir)

    def log_search(run: TrackedRun) -> None:
        log_lr_find(run, result, output_dir / "lr_find", run_name(cfg))

    return train_config(cfg, on_open=[log_search])


def found(result: LRFindResult) -> str:
    """Where a suggestion comes from, for the console."""
    options = result.settings
    return (
        f"where the smoothed loss fell fastest before its minimum in a {result.steps}-step "
        f"search from {options.min_lr:g} to {options.max_lr:g} ({options.mode})"
    )


def train_or_tune(cfg: DictConfig) -> RunResult:
    """What ``python train.py`` does with a composed config (every part labelled first)."""
    from lrexp.config.parts import with_labels

    cfg = with_labels(cfg)
    if cfg.get("tune") is not None:
        return tune(cfg)
    if cfg.optimizer.get("lr") == AUTO:
        return train_at_auto_lr(cfg)
    return train_config(cfg)


def tune(cfg: DictConfig) -> RunResult:
    """``tune=lr_find``: search, log a ``lr_find-...`` MLflow run, print the suggestion; with
    ``tune.train_after=true`` then train with ``optimizer.lr`` = the suggestion (a second run).

    Returns the training run's result, or (search only) one with ``lr_find/suggestion`` as its
    metric and the finder run's id.
    """
    spec, options = finder_spec(cfg)
    output_dir = Path(cfg.paths.output_dir)
    name = finder_run_name(cfg)
    lifecycle = RunLifecycle(run_spec(cfg, name), output_dir, extra_tags={"task": "lr_find"})
    with lifecycle:
        result = find_lr(spec, options)
        if lifecycle.run is not None:
            log_lr_find(lifecycle.run, result, output_dir / "lr_find", name)
    print(f"lr_find: suggested optimizer.lr={result.suggestion:.6g}, {found(result)}", flush=True)
    if options.train_after:
        return train_config(with_found_lr(cfg, result.suggestion))
    metrics = {"lr_find/suggestion": result.suggestion}
    headline = (
        f"LR search only (no model trained); train at its suggestion with "
        f"optimizer.lr={result.suggestion:.6g} or optimizer.lr=auto"
    )
    return RunResult(metrics, lifecycle.run_id, output_dir, result.steps, headline=headline)

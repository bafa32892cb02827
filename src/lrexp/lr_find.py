"""LR range test with Lightning's tuner: ``python train.py tune=lr_find`` / ``lrexp-lr-find``.

From a fresh model built exactly as :func:`lrexp.train.train` builds it (same seed, data,
model and optimizer settings), Lightning trains for up to ``tune.num_training`` optimizer steps
while the LR grows from ``tune.min_lr`` to ``tune.max_lr``, records the smoothed training loss
at each step, and suggests the LR where that loss falls fastest.

* The search runs on its own Trainer (no logger, no lrexp callbacks) and its own model, so no
  point of it reaches a training run's ``lr`` trace or metrics. Lightning replaces the
  scheduler returned by ``configure_optimizers`` with its own for the search; lrexp's schedule
  is therefore replaced by ``constant`` for it (a schedule whose length or ``strict`` check
  depends on the run length must not fail a search of another length), and validation is
  skipped (a metric-driven schedule would otherwise set the LR in the middle of the search).
* A non-finite loss ends the search (the point is recorded as NaN) instead of failing it.
* ``optimizer.lr=auto`` (:func:`resolve_auto_lr`) runs the same search and trains at the
  suggestion. lrexp schedules are multipliers of ``optimizer.lr``, and for ``onecycle`` and
  ``cyclic`` ``optimizer.lr`` *is* the max LR of the cycle, so the suggestion becomes their
  max LR without any schedule-specific handling.

Only light imports at module level: :mod:`lrexp.validate` may import :data:`AUTO` and
:func:`settings` from here.
"""

from __future__ import annotations

import copy
import csv
import math
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

from lrexp.errors import ConfigError

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from lrexp.module import Classifier
    from lrexp.tracking.store import TrackedRun
    from lrexp.train import RunResult

#: ``optimizer.lr`` value that asks for the LR finder's suggestion.
AUTO = "auto"
MODES = ("exponential", "linear")
#: Trainer settings of the run that the search does not take over: it has its own length, no
#: validation, no checkpoints, no logger, and runs in one process (a data-parallel run shards
#: each global batch across ranks, so its steps are those of one process; this also keeps a
#: ``ddp`` launcher from re-executing the command for the search).
SEARCH_TRAINER_OVERRIDES: dict[str, Any] = {
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "max_epochs": -1,
    "num_sanity_val_steps": 0,
    "check_val_every_n_epoch": sys.maxsize,  # never: validation would run plateau-type hooks
    "enable_checkpointing": False,
}


@dataclass(frozen=True)
class LRFindSettings:
    """``conf/tune/lr_find.yaml``; the defaults apply to ``optimizer.lr=auto`` without it."""

    min_lr: float = 1e-6
    max_lr: float = 1.0
    num_training: int = 100
    mode: str = "exponential"
    early_stop_threshold: float | None = 4.0
    skip_begin: int = 10
    skip_end: int = 1
    train_after: bool = False


@dataclass(frozen=True)
class LRFindResult:
    """What one LR search found: the suggestion and the curve it was picked from."""

    suggestion: float
    lrs: list[float]  #: LR of each search step
    losses: list[float]  #: smoothed training loss of each step (NaN: no finite loss)
    settings: LRFindSettings

    @property
    def steps(self) -> int:
        """Optimizer steps the search took (fewer than ``num_training`` if it stopped early)."""
        return len(self.lrs)

    @property
    def suggestion_index(self) -> int:
        """The search step whose LR is the suggestion."""
        return min(range(len(self.lrs)), key=lambda i: abs(self.lrs[i] - self.suggestion))


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    return float(value)


def _count(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def settings(cfg: DictConfig) -> LRFindSettings:
    """The finder settings of ``cfg.tune`` (defaults when no tune option is picked).

    Raises :class:`ConfigError` naming the ``tune.<key>`` that is invalid.
    """
    node = cfg.get("tune")
    if node is None:
        return LRFindSettings()
    raw: dict[str, Any] = OmegaConf.to_container(node, resolve=True)  # type: ignore[assignment]
    name = raw.pop("name", "lr_find")
    if name != "lr_find":
        raise ConfigError("tune.name", f"must be lr_find, got {name!r}")
    known = {f.name for f in fields(LRFindSettings)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"tune.{key}", f"unknown key; allowed: {', '.join(sorted(known))}")
    found = LRFindSettings(**raw)
    min_lr = _number(found.min_lr, "tune.min_lr")
    max_lr = _number(found.max_lr, "tune.max_lr")
    if min_lr <= 0:
        raise ConfigError("tune.min_lr", f"must be > 0, got {min_lr!r}")
    if max_lr <= min_lr:
        raise ConfigError("tune.max_lr", f"must be greater than tune.min_lr ({min_lr:g})")
    if found.mode not in MODES:
        raise ConfigError("tune.mode", f"must be one of {', '.join(MODES)}, got {found.mode!r}")
    threshold = found.early_stop_threshold
    if threshold is not None and not _number(threshold, "tune.early_stop_threshold") > 1:
        raise ConfigError("tune.early_stop_threshold", f"must be > 1 or null, got {threshold!r}")
    skip_begin = _count(found.skip_begin, "tune.skip_begin", 0)
    skip_end = _count(found.skip_end, "tune.skip_end", 1)
    _count(found.num_training, "tune.num_training", skip_begin + skip_end + 2)
    if not isinstance(found.train_after, bool):
        raise ConfigError("tune.train_after", f"must be true or false, got {found.train_after!r}")
    return LRFindSettings(**{**raw, "min_lr": min_lr, "max_lr": max_lr})


def with_lr(cfg: DictConfig, lr: float) -> DictConfig:
    """A copy of ``cfg`` with ``optimizer.lr = lr`` (interpolations kept, ``cfg`` untouched)."""
    copied = copy.deepcopy(cfg)
    with open_dict(copied):
        copied.optimizer.lr = float(lr)
    return copied


def finder_run_name(cfg: DictConfig) -> str:
    """``lr_find-<optimizer>-<model>-<dataset>-s<seed>``."""
    parts = ("lr_find", cfg.optimizer.name, cfg.model.name, cfg.dataset.name)
    return "-".join(str(p) for p in parts) + f"-s{cfg.seed}"


# --------------------------------------------------------------------------- the search


def _search_classifier() -> type[Classifier]:
    import torch

    from lrexp.module import Classifier

    class SearchClassifier(Classifier):
        """The run's Classifier under Lightning's automatic optimization, whose LR finder then
        sees the accumulation window (one point per optimizer step); a non-finite loss stops
        the search instead of raising."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.automatic_optimization = True

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = self._step(batch, "train")
            if torch.isfinite(loss):
                return loss
            self.trainer.should_stop = True  # Lightning records NaN for this step
            return None

    return SearchClassifier


def search_trainer(cfg: DictConfig, options: LRFindSettings, root: Path) -> pl.Trainer:
    """The run's ``trainer`` settings (device, precision, accumulation, clipping) for a search
    of ``options.num_training`` optimizer steps, with no logger and no callbacks."""
    import pytorch_lightning as pl

    kwargs: dict[str, Any] = OmegaConf.to_container(cfg.trainer, resolve=True)  # type: ignore[assignment]
    kwargs.update(SEARCH_TRAINER_OVERRIDES, max_steps=options.num_training)
    return pl.Trainer(**kwargs, logger=False, callbacks=[], default_root_dir=str(root))


def find_lr(cfg: DictConfig) -> LRFindResult:
    """Run Lightning's LR finder on a fresh model for ``cfg``; deterministic for a seed.

    ``optimizer.lr`` is ignored (it may be ``auto``). Lightning's temporary checkpoint goes to
    ``<paths.output_dir>/lr_find/``. Raises :class:`ConfigError` for an invalid config, or when
    the search stopped too early to suggest an LR.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    from lrexp.data import DataSpec, TensorDataModule
    from lrexp.models import build_model
    from lrexp.validate import validate

    options = settings(cfg)
    validate(with_lr(cfg, options.min_lr))
    root = Path(cfg.paths.output_dir) / "lr_find"
    root.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(int(cfg.seed), verbose=False)

    data = TensorDataModule(DataSpec(**OmegaConf.to_container(cfg.dataset, resolve=True)))  # type: ignore[arg-type]
    data.setup("fit")
    net = build_model(cfg.model, data.input_shape, data.num_classes)
    optimizer: dict[str, Any] = OmegaConf.to_container(cfg.optimizer, resolve=True)  # type: ignore[assignment]
    optimizer["lr"] = options.min_lr  # Lightning sets every group's LR itself
    # accumulation and clipping: the Trainer's own, in automatic optimization
    module = _search_classifier()(net, data.num_classes, optimizer, {"name": "constant"})

    trainer = search_trainer(cfg, options, root)
    finder = Tuner(trainer).lr_find(
        module,
        datamodule=data,
        min_lr=options.min_lr,
        max_lr=options.max_lr,
        num_training=options.num_training,
        mode=options.mode,
        early_stop_threshold=options.early_stop_threshold,
        update_attr=False,
    )
    if finder is None:
        raise ConfigError("trainer.fast_dev_run", "the LR finder does not run with fast_dev_run")
    lrs = [float(v) for v in finder.results["lr"]]
    losses = [float(v) for v in finder.results["loss"]]
    suggestion = finder.suggestion(skip_begin=options.skip_begin, skip_end=options.skip_end)
    if suggestion is None or not math.isfinite(suggestion):
        raise ConfigError(
            "tune.num_training",
            f"the LR search stopped after {len(lrs)} steps, too few finite losses to suggest an "
            "LR; lower tune.max_lr, raise tune.early_stop_threshold or tune.num_training",
        )
    return LRFindResult(float(suggestion), lrs, losses, options)


def resolve_auto_lr(cfg: DictConfig) -> float:
    """The LR to train ``cfg`` with when ``optimizer.lr`` is ``auto``: the finder's suggestion.

    The search uses ``cfg.tune``'s settings when ``tune=lr_find`` is picked, else the defaults
    of :class:`LRFindSettings`. For every schedule the value is the base LR that the schedule
    multiplies, which for ``onecycle`` and ``cyclic`` is the peak (max) LR of the cycle.
    """
    return find_lr(cfg).suggestion


# --------------------------------------------------------------------------- outputs


def write_csv(result: LRFindResult, path: Path) -> Path:
    """``step,lr,loss`` rows of the search (loss is empty where it was not finite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "lr", "loss"])
        for step, (lr, loss) in enumerate(zip(result.lrs, result.losses, strict=True)):
            writer.writerow([step, repr(lr), repr(loss) if math.isfinite(loss) else ""])
    return path


def plot_lr_find(result: LRFindResult, path: Path, title: str) -> Path:
    """Smoothed loss against LR over the points the suggestion was picked from (the first
    ``skip_begin`` are dominated by the smoothing's start-up and are left out, as in fastai),
    with the suggestion marked. Log LR axis unless the LRs span under two decades. Drawn on an
    Agg canvas like :mod:`lrexp.plots`."""
    from lrexp.plots import new_figure, save, wants_log_scale

    options = result.settings
    end = max(len(result.lrs) - options.skip_end, options.skip_begin)
    window = range(options.skip_begin, end)
    points = [(result.lrs[i], result.losses[i]) for i in window if math.isfinite(result.losses[i])]
    fig = new_figure(8.0, 4.5)
    ax = fig.add_subplot()
    ax.plot([p[0] for p in points], [p[1] for p in points], color="tab:blue", linewidth=1.8)
    if wants_log_scale(result.lrs):
        ax.set_xscale("log")
    suggestion = result.suggestion
    if points:
        at = min(points, key=lambda p: abs(p[0] - suggestion))
        ax.plot(*at, "o", color="tab:red", markersize=8, label=f"suggestion {suggestion:.3g}")
        ax.axvline(suggestion, color="tab:red", linestyle=":", linewidth=1.2)
        ax.legend(loc="best")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(f"{title} ({result.steps} steps, first {options.skip_begin} not shown)")
    ax.grid(True, which="major", alpha=0.3)
    return save(fig, path)


def log_lr_find(run: TrackedRun, result: LRFindResult, output_dir: Path, label: str) -> None:
    """Log ``lr_find.png``, ``lr_find.csv``, the param and the metric ``lr_find/suggestion``
    (written to ``output_dir`` first) into ``run``: a finder run, or a run with ``lr=auto``."""
    from mlflow.entities import Metric

    run.log_artifact(write_csv(result, output_dir / "lr_find.csv"))
    title = f"LR finder: {label}"
    run.log_artifact(plot_lr_find(result, output_dir / "lr_find.png", title))
    run.log_params({"lr_find/suggestion": repr(result.suggestion)})
    now = int(time.time() * 1000)
    run.log_metrics(
        [
            Metric("lr_find/suggestion", result.suggestion, now, 0),
            Metric("lr_find/steps", float(result.steps), now, 0),
        ]
    )


def tune(cfg: DictConfig) -> RunResult:
    """``tune=lr_find``: search, log a ``lr_find-...`` MLflow run, print the suggestion; with
    ``tune.train_after=true`` then train with ``optimizer.lr`` = the suggestion (a second run).

    Returns the training run's result, or (search only) one with ``lr_find/suggestion`` as its
    metric and the finder run's id.
    """
    import torch
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from lrexp.train import RunResult, start_run, train

    options = settings(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run = (
        start_run(cfg, output_dir, name=finder_run_name(cfg), extra_tags={"task": "lr_find"})
        if cfg.logger.enabled
        else None
    )
    status = "FAILED"
    try:
        result = find_lr(cfg)
        if run is not None:
            log_lr_find(run, result, output_dir / "lr_find", finder_run_name(cfg))
        status = "FINISHED"
    except (KeyboardInterrupt, SystemExit, SIGTERMException):
        status = "KILLED"
        raise
    finally:
        if run is not None:
            run.end(status)
    print(
        f"lr_find: suggested optimizer.lr={result.suggestion:.6g} "
        f"(steepest loss descent over {result.steps} steps from {options.min_lr:g} "
        f"to {options.max_lr:g}, {options.mode})",
        flush=True,
    )
    if options.train_after:
        return train(with_lr(cfg, result.suggestion))
    metrics = {"lr_find/suggestion": result.suggestion}
    return RunResult(metrics, run.run_id if run else None, output_dir, result.steps)


def main() -> None:
    """``lrexp-lr-find``: ``python train.py tune=lr_find`` (unless a ``tune=`` is given)."""
    import hydra

    from lrexp.cli import config_dir, preflight, run_task

    args = sys.argv[1:]
    if not any(arg.split("=")[0].lstrip("+~") == "tune" for arg in args):
        args = ["tune=lr_find", *args]
        sys.argv[1:] = args
    preflight(args)
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(run_task)()

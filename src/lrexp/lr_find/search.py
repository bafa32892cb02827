"""The LR range test itself: Lightning's tuner on a fresh copy of the run's model and data.

The search runs on its own Trainer (no logger, no lrexp callbacks) and its own model, so no
point of it reaches a training run's ``lr`` trace or metrics. Lightning replaces the scheduler
returned by ``configure_optimizers`` with its own for the search; lrexp's schedule is therefore
replaced by ``constant`` (a schedule whose length or ``strict`` check depends on the run length
must not fail a search of another length), and validation is skipped (a metric-driven schedule
would otherwise set the LR in the middle of the search). A non-finite loss ends the search
(the point is recorded as NaN) instead of failing it.

Two things are lrexp's own rather than Lightning's (2.6), because Lightning's misled users:
- the smoothed loss (:func:`smooth`): Lightning's bias correction counts one step too many
  (it divides by ``1 - beta**(global_step + 1)`` after ``global_step`` has already moved), so
  its first points read about half the true loss and the curve seems to *rise* over the first
  ~50 steps; lrexp records each optimizer step's loss itself and smooths it with the
  correction that makes the first point the first loss;
- the suggestion (:func:`suggest`): Lightning takes the slope against the LR itself, so on an
  exponential search the tiny LR steps at the start turn noise into the "steepest" slope (on
  digits it suggested 1.9e-4 where the loss falls fastest near 0.1).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrexp.errors import ConfigError

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from lrexp.config.tune import LRFindSettings
    from lrexp.run.module import LRModule
    from lrexp.run.spec import TrainSpec

#: the smoothing of the recorded losses (an exponential moving average), Lightning's and
#: fastai's value
SMOOTHING = 0.98

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


def smooth(losses: Sequence[float], beta: float = SMOOTHING) -> list[float]:
    """The bias-corrected exponential moving average of ``losses``: point n (from 1) is
    ``avg_n / (1 - beta**n)``, so the first point is the first loss. A non-finite loss (the
    search's last) stays NaN."""
    average, out = 0.0, []
    for n, loss in enumerate(losses, start=1):
        if not math.isfinite(loss):
            out.append(math.nan)
            continue
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**n))
    return out


def suggest(lrs: Sequence[float], losses: Sequence[float], options: LRFindSettings) -> float:
    """The LR where the smoothed loss falls fastest *before its minimum*: the slope is taken
    against log(LR) for an exponential search (against the LR for a linear one), over the
    points after ``skip_begin`` and before ``skip_end``; past the minimum the loss is
    diverging, so no point there can be the suggestion. Raises :class:`ConfigError` when
    fewer than three finite points remain, or when the loss is lowest at the first of them
    (it never fell: nothing to suggest)."""
    import numpy as np

    end = len(lrs) - options.skip_end
    x = np.asarray(lrs[options.skip_begin : end], dtype=np.float64)
    y = np.asarray(losses[options.skip_begin : end], dtype=np.float64)
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(y) < 3:
        raise ConfigError(
            "tune.num_training",
            f"the LR search stopped after {len(lrs)} steps, too few finite losses to suggest an "
            "LR; lower tune.max_lr, raise tune.early_stop_threshold or tune.num_training",
        )
    coordinate = np.log(x) if options.mode == "exponential" else x
    before_minimum = int(np.argmin(y)) + 1
    if before_minimum < 3:
        raise ConfigError(
            "tune.min_lr",
            f"the smoothed loss never fell during the LR search (lowest at {x[0]:.3g}, the "
            "start); lower tune.min_lr or raise tune.num_training",
        )
    slope = np.gradient(y[:before_minimum], coordinate[:before_minimum])
    return float(x[int(np.argmin(slope))])


def _search_module() -> type[LRModule]:
    import torch

    from lrexp.run.module import LRModule

    class SearchModule(LRModule):
        """The run's module under Lightning's automatic optimization, whose LR finder then
        sees the accumulation window (one point per optimizer step); a non-finite loss stops
        the search instead of raising. ``step_losses`` holds each optimizer step's loss: the
        mean over its accumulation window, NaN for a non-finite one."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.automatic_optimization = True
            self.step_losses: list[float] = []
            self.window: list[float] = []

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = self._step(batch, "train")
            self.window.append(float(loss.detach()))
            if torch.isfinite(loss):
                return loss
            self.trainer.should_stop = True  # Lightning records NaN for this step
            return None

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            if (self.trainer.fit_loop.batch_idx + 1) % self.trainer.accumulate_grad_batches:
                return  # the same steps as Lightning's finder records
            self.step_losses.append(sum(self.window) / len(self.window))
            self.window.clear()

    return SearchModule


def search_trainer(spec: TrainSpec, options: LRFindSettings, root: Path) -> pl.Trainer:
    """The run's ``trainer`` settings (device, precision, accumulation, clipping) for a search
    of ``options.num_training`` optimizer steps, with no logger and no callbacks."""
    import pytorch_lightning as pl

    steps = spec.steps  # the Trainer's own accumulation and clipping, in automatic optimization
    kwargs = {
        **spec.trainer,
        "accumulate_grad_batches": steps.accumulate,
        "gradient_clip_val": steps.clip_val,
        "gradient_clip_algorithm": steps.clip_algorithm,
        **SEARCH_TRAINER_OVERRIDES,
        "max_steps": options.num_training,
    }
    return pl.Trainer(**kwargs, logger=False, callbacks=[], default_root_dir=str(root))


def find_lr(spec: TrainSpec, options: LRFindSettings) -> LRFindResult:
    """Run Lightning's LR finder on a fresh model for the finder's ``spec``
    (:func:`lrexp.config.training.finder_spec`); deterministic for a seed.

    Lightning's temporary checkpoint goes to ``<output_dir>/lr_find/``. Raises
    :class:`ConfigError` when the search stopped too early to suggest an LR.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    from lrexp.data import describe
    from lrexp.run.module import StepOptions

    root = spec.output_dir / "lr_find"
    root.mkdir(parents=True, exist_ok=True)
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    pl.seed_everything(spec.seed, verbose=False)

    data = spec.parts.data()
    net, _, task = spec.parts.build(describe(data, spec.world_size, load=True), data)
    optimizer = {**spec.optimizer, "lr": options.min_lr}  # Lightning sets every group's LR
    constant = {"name": "constant"}
    module: Any = _search_module()(net, task, optimizer, constant, StepOptions(), spec.plan)
    trainer = search_trainer(spec, options, root)
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
    losses = smooth(module.step_losses[: len(lrs)])
    return LRFindResult(suggest(lrs, losses, options), lrs, losses, options)

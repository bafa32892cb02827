"""Lightning callbacks owned by lrexp."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.profilers import PassThroughProfiler
from torch import Tensor
from torch.optim import Optimizer

from lrexp.optim import schedule_free_lr
from lrexp.schedules.lr_scheduler import ScheduledLR
from lrexp.tracking.history_file import TRAIN_LOSS_WINDOW_KEY

#: the callback hooks Lightning calls at every training batch
PER_STEP_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
)


def skip_unused_hooks(callbacks: Iterable[pl.Callback]) -> None:
    """Hide from each callback the per-step hooks it does not override.

    Lightning calls every hook of every callback at every batch, each inside a profiler
    context, the base class's no-op methods included: tens of calls per step, a measurable
    share of a small model's step. It skips an attribute that is not callable, so an
    instance attribute ``None`` over an inherited no-op removes the call and changes nothing
    else (:mod:`lrexp.bench` measures the difference).
    """
    for callback in callbacks:
        for hook in PER_STEP_HOOKS:
            if getattr(type(callback), hook, None) is getattr(pl.Callback, hook):
                setattr(callback, hook, None)


class QuietProfiler(PassThroughProfiler):
    """Lightning's default no-op profiler, without building a generator-based context
    manager around each of the dozens of hook calls per step: one shared no-op context."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.AbstractContextManager[Any]:  # type: ignore[override]
        return self._nothing


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn every ``refresh_rate`` batches but at most
    :attr:`per_second` times a second (tqdm's own pace) except at a bar's last batch: a small
    model's thousand steps a second would otherwise spend a share of each step drawing."""

    per_second = 10.0

    def __init__(self, refresh_rate: int) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.drawn_at = -float("inf")

    def _should_update(self, current: int, total: int) -> bool:
        if not super()._should_update(current, total):
            return False
        now = time.monotonic()
        if current != total and now - self.drawn_at < 1 / self.per_second:
            return False
        self.drawn_at = now
        return True


def lr_keys(optimizer: Optimizer) -> list[str]:
    """``lr`` when every param group has the same LR (one group, or groups that differ only
    in weight decay), ``lr/<group name>`` per group when their LRs differ."""
    groups = optimizer.param_groups
    if len({group["lr"] for group in groups}) == 1:
        return ["lr"]
    return [f"lr/{group.get('name', i)}" for i, group in enumerate(groups)]


def cycled_momentum_key(trainer: pl.Trainer, optimizer: Optimizer) -> str | None:
    """``momentum`` or ``betas`` when a :class:`ScheduledLR` cycles this optimizer's momentum."""
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if isinstance(scheduler, ScheduledLR) and scheduler.optimizer is optimizer:
            return scheduler.momentum_key
    return None


class LRTrace(pl.Callback):
    """Logs, at step k, the LR that the k-th optimizer update (k from 0) uses.

    It runs just before each real optimizer step, so gradient-accumulation micro-batches and
    skipped steps produce no point: a run with N updates has exactly the steps 0..N-1. When
    the schedule cycles momentum, the same point also holds ``momentum`` (SGD's momentum or
    Adam's beta1; every param group gets the same value).
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.momentum_key: str | None = None

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if trainer.logger is None or trainer.global_rank != 0:
            return
        if not self.keys:
            self.keys = lr_keys(optimizer)
            self.momentum_key = cycled_momentum_key(trainer, optimizer)
        groups = optimizer.param_groups
        values: dict[str, Any] = {
            key: group["lr"] for key, group in zip(self.keys, groups, strict=False)
        }
        if "k" in groups[0] and "warmup_steps" in groups[0]:  # a schedule-free optimizer
            values["sf_lr"] = schedule_free_lr(groups[0])
        if self.momentum_key == "betas":
            values["momentum"] = groups[0]["betas"][0]
        elif self.momentum_key == "momentum":
            values["momentum"] = groups[0]["momentum"]
        trainer.logger.log_metrics(values, step=trainer.global_step)


def batch_examples(batch: Any) -> int:
    """Examples in a training batch: the length of its last tensor (the targets of ``(x, y)``),
    else 1 (each batch then weighs the same)."""
    if isinstance(batch, tuple | list) and batch and isinstance(batch[-1], Tensor):
        return int(batch[-1].shape[0]) if batch[-1].ndim else 1
    return 1


class TrainLossTrace(pl.Callback):
    """Logs ``train/loss_window``: the mean training loss (weighted by examples, over every
    micro-batch) of each window of ``every`` optimizer steps, at step = optimizer steps so far.

    The epoch mean ``train/loss`` is too coarse to fit a loss-curve law on (a few points per
    run); this one has a point every ``every`` steps. Each batch's loss is added on the host
    (the module reads it at every step anyway, to stop a diverged run: no extra device sync);
    the window is summed over processes once per window, on every rank alike (so ``enabled``
    must be the same on all of them); rank zero logs. The last, shorter window is logged when
    training ends. The running window is kept in checkpoints, so a resumed run logs the same
    points.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self.total = 0.0  #: sum of loss x examples over the window
        self.examples = 0
        self.last_step = 0  #: global step of the last logged window

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor):
            return
        n = batch_examples(batch)
        # the value is on the host already (lrexp's module checks it is finite at each step)
        self.total += float(loss) * n
        self.examples += n
        step = trainer.global_step
        if step != self.last_step and step % self.every == 0:
            self.flush(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step != self.last_step:
            self.flush(trainer)

    def flush(self, trainer: pl.Trainer) -> None:
        """Log the window's mean (summed over processes) at the current step; start anew."""
        if not self.examples:
            return
        device = trainer.strategy.root_device
        sums = torch.tensor([self.total, float(self.examples)], device=device)
        sums = trainer.strategy.reduce(sums, reduce_op="sum")
        self.total, self.examples, self.last_step = 0.0, 0, trainer.global_step
        if trainer.logger is not None and trainer.global_rank == 0:
            mean = float(sums[0] / sums[1])
            trainer.logger.log_metrics({TRAIN_LOSS_WINDOW_KEY: mean}, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "examples": self.examples, "last_step": self.last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        total = state_dict.get("total")  # a tensor in checkpoints of earlier versions
        self.total = float(total) if total is not None else 0.0
        self.examples = int(state_dict.get("examples", 0))
        self.last_step = int(state_dict.get("last_step", 0))


class AtStep(pl.Callback):
    """Calls ``action(trainer)`` once, after the training batch at which the optimizer step
    count first reaches ``step``."""

    def __init__(self, step: int, action: Callable[[pl.Trainer], None]) -> None:
        self.step = step
        self.action = action
        self.done = False

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self.done and trainer.global_step >= self.step:
            self.done = True
            self.action(trainer)


def validate_now(trainer: pl.Trainer) -> None:
    """Make Lightning validate after this batch, wherever it falls: at a run's last step.

    Lightning validates at epoch ends (every ``check_val_every_n_epoch``) or every
    ``val_check_interval`` batches, so a run bounded by ``max_steps`` mid-epoch, or whose last
    epoch is not a validation epoch, would end with no validation of its final weights: no
    ``val/acc`` for the sweepers, no best checkpoint, and a test of whatever weights are last.
    Asking the Trainer to stop (it is due to stop anyway at the last step) makes Lightning
    validate; it never validates twice after one batch.
    """
    trainer.should_stop = True
    # the last epoch may not be one of every check_val_every_n_epoch; the run ends here
    trainer.check_val_every_n_epoch = 1


class KeepCheckpoints(pl.Callback):
    """Writes a permanent checkpoint at each of ``steps`` (and every ``every`` steps): the
    state after that many optimizer steps, which a cooldown fork (:mod:`lrexp.run.fork`) resumes.

    It is written before the next step's batch, where an interrupted run's checkpoint is, so
    a resume from it continues exactly; a run's last step is kept when training ends.
    ``on_keep(step, path)`` records each one (the run's ``kept_steps`` tag).
    """

    def __init__(
        self,
        steps: Collection[int],
        every: int | None,
        path_of: Callable[[int], Path],
        on_keep: Callable[[int, Path], None],
    ) -> None:
        self.steps = set(steps)
        self.every = every
        self.path_of = path_of
        self.on_keep = on_keep
        self.kept: set[int] = set()

    def wanted(self, step: int) -> bool:
        every = self.every is not None and step > 0 and step % self.every == 0
        return step not in self.kept and (step in self.steps or every)

    def keep(self, trainer: pl.Trainer) -> None:
        step = trainer.global_step
        if not self.wanted(step):
            return
        self.kept.add(step)
        path = self.path_of(step)
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            self.on_keep(step, path)

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.fit_loop.restarting:  # the batch a resumed run starts at: already kept
            self.kept.add(trainer.global_step)
            return
        self.keep(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.keep(trainer)


class ExcessLoss(pl.Callback):
    """``train/excess`` and ``test/excess``: L(θ) − L(θ*) on the whole training and test sets,
    at every validation, for a data module that knows its optimum (``optimal_loss()`` and
    ``full_split(split)``, :mod:`lrexp.data.regression`).

    At the test, which runs on the best checkpoint, only ``test/excess`` is logged: the
    ``train/excess`` history stays that of the weights training reached, so its last point is
    the final weights' (both values still reach the run's result).
    """

    def __init__(self, data: Any) -> None:
        self.data = data

    def excess(self, pl_module: pl.LightningModule) -> dict[str, float]:
        optimum = self.data.optimal_loss()
        values = {}
        with torch.no_grad():
            for split in ("train", "test"):
                x, y = (t.to(pl_module.device) for t in self.data.full_split(split))
                loss = pl_module.task.loss(pl_module.net(x), y)  # type: ignore[union-attr,operator]
                values[f"{split}/excess"] = float(loss) - optimum[split]
        return values

    def _log(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, keys: tuple[str, ...]
    ) -> dict[str, float]:
        values = self.excess(pl_module)
        if pl_module.logger is not None and trainer.is_global_zero:
            logged = {k: v for k, v in values.items() if k in keys}
            pl_module.logger.log_metrics(logged, step=trainer.global_step)
        return values

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._log(trainer, pl_module, ("train/excess", "test/excess"))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.log_dict(self._log(trainer, pl_module, ("test/excess",)), logger=False)

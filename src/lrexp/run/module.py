"""The LightningModule: a task's loss and metrics (:mod:`lrexp.tasks`) with a configured
optimizer and schedule."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lrexp.averaging import Averager
from lrexp.errors import DivergedError
from lrexp.optim import build_optimizer, is_schedule_free
from lrexp.plan import StepPlan, positions_for
from lrexp.run.resume import RecordedPlan
from lrexp.schedules import build_schedule
from lrexp.schedules.lr_scheduler import ScheduledLR
from lrexp.tasks import Task

#: the schedule keys that tell Classifier._step_schedulers when to step (the metric-driven
#: families' ``monitor`` is read by lrexp itself, in :meth:`Classifier.on_validation_epoch_end`)
SCHEDULER_KEYS = ("interval", "frequency")

#: the prefix of the final validation on the whole validation split (``val_full/loss``), for
#: data modules that validate on a fixed subset during training (their ``whole_val`` switch)
WHOLE_VAL = "val_full"

#: Lightning warnings that do not apply here: lrexp logs per epoch and per optimizer step itself
#: (not through ``log_every_n_steps``) and reduces its epoch metrics across ranks before logging.
QUIET_WARNINGS = (
    r"The number of training batches .* is smaller than the logging interval",
    r".*isinstance\(treespec, LeafSpec\)",
    r"It is recommended to use `self.log\(.*sync_dist=True",
)
for _message in QUIET_WARNINGS:  # at import, so spawned DDP workers are quiet too
    warnings.filterwarnings("ignore", message=_message)


def as_prefix(key: str, prefix: str) -> str:
    """``val/loss`` under ``prefix``: ``val_full/loss``; a key of no split is left as it is."""
    split, slash, name = key.partition("/")
    return f"{prefix}/{name}" if slash and split == "val" else key


@dataclass(frozen=True)
class StepOptions:
    """How micro-batches become optimizer steps. lrexp steps the optimizer itself (Lightning's
    manual optimization, which dispatches far fewer hooks per step than the automatic loop), so
    it owns these ``trainer`` settings instead of Lightning."""

    accumulate: int = 1  #: ``trainer.accumulate_grad_batches``
    clip_val: float | None = None  #: ``trainer.gradient_clip_val``
    clip_algorithm: str = "norm"  #: ``trainer.gradient_clip_algorithm``: norm | value


class LRModule(pl.LightningModule):
    """Trains ``net`` on ``task``'s loss; logs the task's metrics per split at epoch ends.

    Each training batch runs forward, backward and (at the end of an accumulation window, as
    Lightning's automatic optimization would) the optimizer and step-interval scheduler steps.
    """

    def __init__(
        self,
        net: nn.Module,
        task: Task,
        optimizer: Mapping[str, Any],
        schedule: Mapping[str, Any],
        steps: StepOptions,
        plan: StepPlan,
        recorded: RecordedPlan | None = None,
        averager: Averager | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.steps = steps
        #: the run's optimizer steps and where each scheduler update lands (:mod:`lrexp.plan`)
        self.plan = plan
        #: the plan the schedule is built for, recorded in checkpoints; None: ``plan``
        self.recorded = recorded
        self.net = net
        self.optimizer_cfg = dict(optimizer)
        self.schedule_cfg = dict(schedule)
        self.task = task
        #: averaged weights evaluated beside the network's (a submodule: in checkpoints)
        self.averager = averager
        self.loss_sums: dict[str, Tensor] = {}
        self.latest: dict[str, float] = {}
        self.scheduler: ScheduledLR | None = None
        self.run_id: str | None = None
        #: the LR planned for each optimizer step of the run; filled in place when the
        #: optimizer is built, so a holder of this list (the run's lifecycle) sees the plan
        self.planned_lr: list[float] = []
        self.metric_driven = False
        #: gradients of an unfinished accumulation window are waiting for more micro-batches
        self.mid_window = False
        #: the step metrics are logged at when it is not the trainer's (a merge: its trunk's)
        self.log_step: int | None = None
        #: the prefix validation metrics are logged under when it is not ``val`` (the final
        #: whole-split validation: :data:`WHOLE_VAL`)
        self.val_prefix = "val"

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name around every hook call (dozens per step); it is a
        # plain string, so skip nn.Module's parameter/buffer/submodule bookkeeping for it.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _step(self, batch: tuple[Tensor, Tensor], split: str) -> Tensor:
        x, y = batch
        outputs = self.net(x)
        loss = self.task.loss(outputs, y)
        with torch.no_grad():
            if split != "train":
                self.task.update(split, outputs, y)
            stats = self.task.step_sums(outputs, y, loss)  # summed on the device: no host sync
            self._add_sums(split, stats)
            averaged = None  # the averaged model is evaluated, never trained
            if split != "train" and self.averager is not None:
                averaged = self.averager.evaluated()
            if averaged is not None:
                average_outputs = averaged(x)
                average_loss = self.task.loss(average_outputs, y)
                sums = self.task.step_sums(average_outputs, y, average_loss)
                self._add_sums(f"{split}~average", sums)
        return loss

    def _add_sums(self, key: str, stats: Tensor) -> None:
        total = self.loss_sums.get(key)
        self.loss_sums[key] = stats if total is None else total.add_(stats)

    def _epoch_metrics(self, split: str) -> dict[str, float]:
        """The task's metrics over the epoch, summed across processes; then reset. A model with
        ``logged_values()`` (the seed's linear regression: its weights) adds those to
        validation's."""
        sums = self.loss_sums.pop(split, None)
        if sums is None:
            return {}
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        metrics = self.task.epoch_metrics(split, sums)
        averaged = self.loss_sums.pop(f"{split}~average", None)
        if averaged is not None and self.averager is not None:  # every task sums loss first
            averaged = self.trainer.strategy.reduce(averaged, reduce_op="sum")
            metrics[self.averager.metric(split)] = float(averaged[0] / averaged[-1])
        logged_values = getattr(self.net, "logged_values", None)
        if split == "val" and self.val_prefix != "val":  # weight values: regular ones log them
            metrics = {as_prefix(k, self.val_prefix): v for k, v in metrics.items()}
        elif split == "val" and callable(logged_values):
            metrics.update(logged_values())
        # callback_metrics (checkpoint monitor, progress bar) get them through Lightning; the
        # store gets them at step = optimizer updates so far, the same axis as the `lr` trace
        self.log_dict(metrics, rank_zero_only=True, logger=False)
        if self.logger is not None and self.trainer.is_global_zero:
            step = self.trainer.global_step if self.log_step is None else self.log_step
            self.logger.log_metrics(metrics, step=step)
        self.latest.update(metrics)
        return metrics

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        value = float(loss.detach())  # the divergence check: one host read per step
        if not math.isfinite(value):
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            raise DivergedError(self.trainer.global_step, lr, value)
        optimizer = self.optimizers(use_pl_optimizer=True)
        assert not isinstance(optimizer, list)  # configure_optimizers returns one optimizer
        window = self.steps.accumulate
        if batch_idx % window == 0:
            optimizer.zero_grad()
        # like Lightning's automatic accumulation: every micro-batch's loss is divided by the
        # window, and the last batch of an epoch closes a shorter window
        self.manual_backward(loss / window if window > 1 else loss)
        self.mid_window = (batch_idx + 1) % window != 0 and (
            batch_idx + 1 != self.trainer.num_training_batches
        )
        if not self.mid_window:
            optimizer.step()
            self._step_schedulers("step", batch_idx + 1)
            if self.averager is not None:
                self.averager.update(self.net, self.trainer.global_step)
        return loss

    def _step_schedulers(self, interval: str, count: int) -> None:
        """Step the schedulers of ``interval`` whose ``frequency`` divides ``count``: the
        epoch's 1-based batch index, or the epochs done. This is Lightning's rule in automatic
        optimization, which :func:`lrexp.plan.scheduler_positions` plans with."""
        for config in self.trainer.lr_scheduler_configs:
            if config.interval == interval and count % config.frequency == 0:
                config.scheduler.step()  # type: ignore[call-arg]

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """Clip here: after backward and (with fp16 AMP) after the gradients are unscaled."""
        if self.steps.clip_val:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.steps.clip_val,
                gradient_clip_algorithm=self.steps.clip_algorithm,
            )

    def on_validation_model_zero_grad(self) -> None:
        if not self.mid_window:  # a mid-epoch validation must not drop a window's gradients
            super().on_validation_model_zero_grad()

    def _schedule_free_mode(self, training: bool) -> None:
        """Schedule-free optimizers train on one sequence of weights and evaluate (and save
        checkpoints) on their average: switch between the two where Lightning changes phase."""
        for optimizer in self.trainer.optimizers if self._trainer is not None else []:
            if is_schedule_free(optimizer):
                optimizer.train() if training else optimizer.eval()  # type: ignore[attr-defined]

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._schedule_free_mode(True)

    def on_validation_start(self) -> None:
        self._schedule_free_mode(False)

    def on_test_start(self) -> None:
        self._schedule_free_mode(False)

    def on_train_epoch_end(self) -> None:
        self._epoch_metrics("train")
        self._schedule_free_mode(False)
        if not self.automatic_optimization:  # else Lightning steps them (the LR finder)
            self._step_schedulers("epoch", self.trainer.current_epoch + 1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what an exact resume needs beyond Lightning's own state: the MLflow run id
        (a resumed run continues it), the plan its schedule was built for (a resume must not
        change it silently, :mod:`lrexp.run.resume`), the RNG state and the running epoch sums."""
        checkpoint["lrexp_run_id"] = self.run_id
        if self.recorded is not None:
            checkpoint["lrexp_plan"] = self.recorded.as_dict()
        checkpoint["lrexp_rng"] = torch.get_rng_state()
        checkpoint["lrexp_loss_sums"] = {k: v.cpu() for k, v in self.loss_sums.items()}
        checkpoint["lrexp_latest"] = dict(self.latest)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "lrexp_rng" in checkpoint:
            torch.set_rng_state(checkpoint["lrexp_rng"])
        self.loss_sums = {
            k: v.to(self.device) for k, v in checkpoint.get("lrexp_loss_sums", {}).items()
        }
        self.latest = dict(checkpoint.get("lrexp_latest", {}))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        if len(batch[1]):  # under DDP a short last batch may leave a rank nothing to evaluate
            self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        if len(batch[1]):
            self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.loss_sums.pop("val", None)
            self.loss_sums.pop("val~average", None)
            self.task.reset("val")
            return
        self._epoch_metrics("val")
        if self.scheduler is not None and self.trainer.state.fn == "fit":
            self.scheduler.observe(self.latest)

    def on_test_epoch_end(self) -> None:
        self._epoch_metrics("test")

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.net, self.optimizer_cfg)
        base_lr = float(self.optimizer_cfg["lr"])
        length = self.recorded or self.plan  # a resume_mode=extend run keeps the old length
        schedule = build_schedule(self.schedule_cfg, length.total, base_lr, length.steps_per_epoch)
        self.scheduler = ScheduledLR(optimizer, schedule)
        positions = positions_for(self.schedule_cfg, self.plan)
        self.planned_lr[:] = [base_lr * schedule.lr_at(step) for step in positions]
        self.metric_driven = schedule.metric_driven
        config = {k: self.schedule_cfg[k] for k in SCHEDULER_KEYS if self.schedule_cfg.get(k)}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler, **config}}

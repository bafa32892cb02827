"""The LightningModule: cross-entropy classification with a configured optimizer and schedule."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lrexp.errors import DivergedError
from lrexp.optim import build_optimizer, is_schedule_free
from lrexp.schedules import build_schedule
from lrexp.schedules.lr_scheduler import ScheduledLR

SCHEDULER_KEYS = ("interval", "frequency", "monitor")

#: Lightning warnings that do not apply here: lrexp logs per epoch and per optimizer step itself
#: (not through ``log_every_n_steps``) and reduces its epoch metrics across ranks before logging.
QUIET_WARNINGS = (
    r"The number of training batches .* is smaller than the logging interval",
    r".*isinstance\(treespec, LeafSpec\)",
    r"It is recommended to use `self.log\(.*sync_dist=True",
)
for _message in QUIET_WARNINGS:  # at import, so spawned DDP workers are quiet too
    warnings.filterwarnings("ignore", message=_message)


class Classifier(pl.LightningModule):
    """Trains ``net`` with cross-entropy; logs loss and accuracy per split at epoch ends."""

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Mapping[str, Any],
        schedule: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_cfg = dict(optimizer)
        self.schedule_cfg = dict(schedule)
        self.accuracy = nn.ModuleDict(
            {
                f"{split}_acc": MulticlassAccuracy(
                    num_classes, average="micro", validate_args=False
                )
                for split in ("val", "test")
            }
        )
        for split in ("val", "test"):
            self.metric(split).persistent(True)  # a mid-epoch checkpoint keeps the running state
        self.loss_sums: dict[str, Tensor] = {}
        self.latest: dict[str, float] = {}
        self.scheduler: ScheduledLR | None = None
        self.run_id: str | None = None
        #: the LR planned for each optimizer step of the run (set with the optimizer)
        self.planned_lr: list[float] = []
        self.metric_driven = False

    def metric(self, split: str) -> MulticlassAccuracy:
        """The torchmetrics accuracy of ``val`` or ``test``."""
        return self.accuracy[f"{split}_acc"]  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _step(self, batch: tuple[Tensor, Tensor], split: str) -> Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            if split != "train":
                self.metric(split).update(logits, y)
            # loss sum, correct predictions and examples, summed on the device: no host sync
            correct = (logits.argmax(dim=-1) == y).sum()
            count = loss.new_tensor(float(len(y)))
            stats = torch.stack((loss.detach() * count, correct.to(loss.dtype), count))
            total = self.loss_sums.get(split)
            self.loss_sums[split] = stats if total is None else total.add_(stats)
        return loss

    def _epoch_metrics(self, split: str) -> dict[str, float]:
        """Mean loss and accuracy over the epoch, synced across processes; then reset.

        Validation and test accuracy come from torchmetrics; training accuracy is the same
        micro accuracy counted on the device in each step (cheaper than a metric update).
        """
        sums = self.loss_sums.pop(split, None)
        if sums is None:
            return {}
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        if split == "train":
            accuracy = sums[1] / sums[2]
        else:
            accuracy = self.metric(split).compute()
            self.metric(split).reset()
        metrics = {f"{split}/loss": float(sums[0] / sums[2]), f"{split}/acc": float(accuracy)}
        # callback_metrics (checkpoint monitor, progress bar) get them through Lightning; the
        # store gets them at step = optimizer updates so far, the same axis as the `lr` trace
        self.log_dict(metrics, rank_zero_only=True, logger=False)
        if self.logger is not None and self.trainer.is_global_zero:
            self.logger.log_metrics(metrics, step=self.trainer.global_step)
        self.latest.update(metrics)
        return metrics

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        if not torch.isfinite(loss):
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            raise DivergedError(self.trainer.global_step, lr, float(loss.detach()))
        return loss

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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what an exact resume needs beyond Lightning's own state: the MLflow run id
        (a resumed run continues it), the RNG state and the running epoch sums."""
        checkpoint["lrexp_run_id"] = self.run_id
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
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.loss_sums.pop("val", None)
            self.metric("val").reset()
            return
        self._epoch_metrics("val")
        if self.scheduler is not None and self.trainer.state.fn == "fit":
            self.scheduler.observe(self.latest)

    def on_test_epoch_end(self) -> None:
        self._epoch_metrics("test")

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.net, self.optimizer_cfg)
        trainer = self.trainer
        total = int(trainer.estimated_stepping_batches)
        batches = trainer.num_training_batches
        if math.isinf(batches):  # not set up yet when max_steps alone bounds the run
            batches = len(trainer.datamodule.train_dataloader())  # type: ignore[attr-defined]
        steps_per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
        schedule = build_schedule(
            self.schedule_cfg, total, float(self.optimizer_cfg["lr"]), steps_per_epoch
        )
        self.scheduler = ScheduledLR(optimizer, schedule)
        base_lr = float(self.optimizer_cfg["lr"])
        self.planned_lr = [base_lr * schedule.lr_at(step) for step in range(total)]
        self.metric_driven = schedule.metric_driven
        config = {k: self.schedule_cfg[k] for k in SCHEDULER_KEYS if self.schedule_cfg.get(k)}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler, **config}}

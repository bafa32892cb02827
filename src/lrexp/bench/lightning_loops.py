"""The Lightning loops lrexp's is timed against: the least one a Lightning-based tool can run
(manual optimization, nothing logged) and what a stock template does (automatic optimization,
``self.log`` at every step, MLFlowLogger, LearningRateMonitor, DataLoader, progress bar)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lrexp.bench.steps import Data, StepClock, fresh_model, token_loss, workload_schedule
from lrexp.optim import build_optimizer
from lrexp.run.spec import TrainSpec
from lrexp.schedules.lr_scheduler import ScheduledLR


class WorkloadModule(pl.LightningModule):
    """A workload's network, with its optimizer settings and schedule length."""

    def __init__(self, net: nn.Module, spec: TrainSpec, steps: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self.steps = steps
        self.steps_per_epoch = steps_per_epoch


class BareModule(WorkloadModule):
    """The least a Lightning loop does: forward, backward, optimizer and scheduler steps in
    manual optimization (as lrexp's module), nothing logged."""

    def __init__(self, net: nn.Module, spec: TrainSpec, steps: int, steps_per_epoch: int) -> None:
        super().__init__(net, spec, steps, steps_per_epoch)
        self.automatic_optimization = False

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = token_loss(self.net(x), y)
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.spec.steps.clip_val:  # by norm, as the plain loop
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.spec.steps.clip_val)
        optimizer.step()
        self.scheduler.step()
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.net, self.spec.optimizer)
        schedule = workload_schedule(self.spec, self.steps, self.steps_per_epoch)
        self.scheduler = ScheduledLR(optimizer, schedule)
        return optimizer


def workload_trainer(spec: TrainSpec, clock: StepClock, **options: Any) -> pl.Trainer:
    """A Trainer on the workload's device and precision, for its steps, timed by ``clock``."""
    return pl.Trainer(
        accelerator=str(spec.trainer.get("accelerator")),
        devices=1,
        precision=spec.trainer.get("precision"),
        max_steps=spec.plan.total,
        enable_checkpointing=False,
        **{"callbacks": [clock], **options},
    )


def bare_lightning(spec: TrainSpec, data: Data, warmup: int) -> float:
    """(d) The floor of any Lightning-based loop: :class:`BareModule` on the same batches, no
    logger, no callbacks but the clock, no progress bar."""
    steps = spec.plan.total
    clock = StepClock(warmup)
    trainer = workload_trainer(
        spec,
        clock,
        max_epochs=-1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(spec.output_dir / "bare"),
    )
    loader = data.train_dataloader()
    module = BareModule(fresh_model(spec, data), spec, steps, len(loader))
    trainer.fit(module, train_dataloaders=loader)
    return clock.ms_per_step(steps - warmup)


class StockModule(WorkloadModule):
    """What a Lightning template does: ``self.log`` of loss and accuracy at every step."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.net(x)
        loss = token_loss(logits, y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(-1) == y).float().mean())
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.net, self.spec.optimizer)
        lr_lambda = workload_schedule(self.spec, self.steps, self.steps_per_epoch).lr_at
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def stock_lightning(spec: TrainSpec, data: Data, warmup: int, tracking_uri: str) -> float:
    """(c) Lightning + MLFlowLogger + LearningRateMonitor + DataLoader + default progress bar."""
    from pytorch_lightning.callbacks import LearningRateMonitor
    from pytorch_lightning.loggers import MLFlowLogger
    from torch.utils.data import DataLoader, Sampler, TensorDataset

    x, y = data.splits["train"]
    orders = data.train_dataloader()

    class SameOrder(Sampler[int]):
        def __init__(self) -> None:
            self.epoch = 0

        def __len__(self) -> int:
            return len(y)

        def __iter__(self) -> Iterator[int]:
            order = orders.order(self.epoch).tolist()
            self.epoch += 1
            return iter(order)

    loader = DataLoader(
        TensorDataset(x.cpu(), y.cpu()),
        batch_size=orders.batch_size,
        sampler=SameOrder(),
    )
    steps = spec.plan.total
    clock = StepClock(warmup)
    trainer = workload_trainer(
        spec,
        clock,
        gradient_clip_val=spec.steps.clip_val,
        logger=MLFlowLogger(experiment_name="bench-stock", tracking_uri=tracking_uri),
        callbacks=[LearningRateMonitor(logging_interval="step"), clock],
        log_every_n_steps=1,
        default_root_dir=str(spec.output_dir / "stock"),
    )
    trainer.fit(
        StockModule(fresh_model(spec, data), spec, steps, len(loader)), train_dataloaders=loader
    )
    return clock.ms_per_step(steps - warmup)

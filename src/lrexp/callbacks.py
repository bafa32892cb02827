"""Lightning callbacks owned by lrexp."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch.optim import Optimizer


def lr_keys(optimizer: Optimizer) -> list[str]:
    """``lr`` for a single param group, ``lr/<group name>`` for several."""
    groups = optimizer.param_groups
    if len(groups) == 1:
        return ["lr"]
    return [f"lr/{group.get('name', i)}" for i, group in enumerate(groups)]


class LRTrace(pl.Callback):
    """Logs, at step k, the LR that the k-th optimizer update (k from 0) uses.

    It runs just before each real optimizer step, so gradient-accumulation micro-batches and
    skipped steps produce no point: a run with N updates has exactly the steps 0..N-1.
    """

    def __init__(self) -> None:
        self.keys: list[str] = []

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if trainer.logger is None or trainer.global_rank != 0:
            return
        if not self.keys:
            self.keys = lr_keys(optimizer)
        values: dict[str, Any] = {
            key: group["lr"] for key, group in zip(self.keys, optimizer.param_groups, strict=True)
        }
        trainer.logger.log_metrics(values, step=trainer.global_step)

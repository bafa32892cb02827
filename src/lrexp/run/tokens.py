"""Tokens read and tokens per second: what a language-model run is measured by."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

#: metric keys: training tokens read so far (all processes), and their rate
TOKENS_KEY, RATE_KEY = "train/tokens", "train/tokens_per_s"


class TokenThroughput(pl.Callback):
    """Counts the target tokens of every training batch on all processes; every ``every``
    optimizer steps logs ``train/tokens`` (read so far) and ``train/tokens_per_s`` (over the
    training batches of the window, validation left out), and shows the rate in the progress
    bar. The count is kept in checkpoints, so a resumed run goes on counting."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.tokens = 0  #: read so far, all processes
        self.window_tokens = 0
        self.window_seconds = 0.0
        self.started = 0.0
        self.last_step = 0

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self.window_seconds += time.perf_counter() - self.started
        targets = batch[-1] if isinstance(batch, list | tuple) else None
        if isinstance(targets, Tensor):
            read = targets.numel() * trainer.world_size  # every rank reads as many
            self.tokens += read
            self.window_tokens += read
        step = trainer.global_step
        if step != self.last_step and step % self.every == 0:
            rate = self.flush(trainer)
            pl_module.log("tok/s", rate, prog_bar=True, logger=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step != self.last_step:
            self.flush(trainer)

    def flush(self, trainer: pl.Trainer) -> float:
        """Log the count and the window's rate; start a new window; return the rate."""
        rate = self.window_tokens / self.window_seconds if self.window_seconds else 0.0
        self.window_tokens, self.window_seconds = 0, 0.0
        self.last_step = trainer.global_step
        if trainer.logger is not None and trainer.global_rank == 0:
            values = {TOKENS_KEY: float(self.tokens), RATE_KEY: rate}
            trainer.logger.log_metrics(values, step=trainer.global_step)
        return rate

    def state_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "last_step": self.last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.tokens = int(state_dict.get("tokens", 0))
        self.last_step = int(state_dict.get("last_step", 0))

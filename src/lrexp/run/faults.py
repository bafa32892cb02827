"""Preemption support: a checkpoint at the current step when the run is interrupted."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

INTERRUPTS = (KeyboardInterrupt, SIGTERMException)


class CheckpointOnInterrupt(pl.Callback):
    """On SIGTERM (cluster preemption) or SIGINT, write ``last.ckpt`` at the current step.

    Lightning turns SIGTERM into :class:`SIGTERMException` at the next batch boundary, so the
    checkpoint always sits between two optimizer steps.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, INTERRUPTS) and trainer.state.fn == "fit":
            trainer.save_checkpoint(self.path)

"""Per-step overhead of lrexp against a plain PyTorch loop, the least Lightning loop and a
stock Lightning setup.

All setups run in one process on the same data tensors, the same model class (re-seeded to the
same initial weights) and the same batch order; only training steps are timed (validation is
off), after a few warm-up steps. See ``scripts/bench.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torch import Tensor, nn

from lrexp.config.compose import config_dir
from lrexp.config.training import train_spec
from lrexp.data import DataInfo, TensorDataModule, TextDataModule
from lrexp.optim import build_optimizer
from lrexp.run.spec import TrainSpec
from lrexp.schedules import build_schedule
from lrexp.schedules.lr_scheduler import ScheduledLR
from lrexp.tasks import Classification, LanguageModel
from lrexp.tracking.logger import BufferedMlflowLogger
from lrexp.tracking.store import TrackedRun

WORKLOADS = {
    "mlp-digits-b32": ["model=mlp", "dataset=digits", "dataset.batch_size=32"],
    "cnn-mnist1d-b100": ["model=cnn", "dataset=mnist1d", "dataset.batch_size=100"],
    "lstm-mnist1d-b100": ["model=lstm", "dataset=mnist1d", "dataset.batch_size=100"],
    # nanoGPT's baby GPT on the offline corpus (experiment=lm), a short warmup for short runs
    "gpt-text-b12": ["experiment=lm", "schedule.warmup.steps=5"],
}
#: what the workloads' data modules serve: whole-split tensors batched by index
Data = TensorDataModule | TextDataModule


def bench_spec(overrides: list[str], root: Path, steps: int) -> TrainSpec:
    """The training run of a workload for ``steps`` optimizer steps without validation, with
    every path under ``root``."""
    paths = [f"paths.root_dir={root}", f"paths.output_dir={root}/out", f"paths.data_dir={root}"]
    length = [
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",
        "++trainer.limit_val_batches=0",
    ]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return train_spec(compose("config", overrides=paths + overrides + length))


class StepClock(pl.Callback):
    """Times training batches after ``warmup`` of them; records each step's loss."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = 0.0
        self.end = 0.0
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *_: Any) -> None:
        self.end = time.perf_counter()
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))

    def ms_per_step(self, steps: int) -> float:
        return (self.end - self.start) * 1000 / steps


def token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of class logits ``(N, C)`` or next-token logits ``(N, T, V)``."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten().long())


def epoch_batches(data: Data, steps: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The same batches, in the same order, that lrexp's training loop sees."""
    loader = data.train_dataloader()
    epoch = 0
    while True:
        loader.epoch = lambda epoch=epoch: epoch  # type: ignore[misc]
        for batch in loader:
            yield batch
            steps -= 1
            if steps == 0:
                return
        epoch += 1


def bench_device(spec: TrainSpec) -> torch.device:
    """The device ``trainer.accelerator`` names (``gpu``/``cuda``: the first GPU)."""
    return torch.device("cuda" if spec.trainer.get("accelerator") in ("gpu", "cuda") else "cpu")


def fresh_model(spec: TrainSpec, data: Data) -> nn.Module:
    """The workload's model with the seed's initial weights, on the bench device, compiled
    when ``compile=true`` (as lrexp's training path does)."""
    torch.manual_seed(spec.seed)
    kind = getattr(data, "target_kind", "classes")
    info = DataInfo(data.input_shape, data.num_classes, len(data.train_dataloader()), kind)
    model = spec.parts.build(info, data)[0].to(bench_device(spec))
    if spec.compile:
        model.compile()
    return model


def autocast(spec: TrainSpec) -> torch.autocast:
    """bf16 autocast when ``trainer.precision`` asks for it, as Lightning's precision plugin."""
    enabled = str(spec.trainer.get("precision")) == "bf16-mixed"
    return torch.autocast(bench_device(spec).type, dtype=torch.bfloat16, enabled=enabled)


def workload_schedule(spec: TrainSpec, steps: int, steps_per_epoch: int) -> Any:
    """The workload's schedule for a plain loop of ``steps`` optimizer steps."""
    lr = float(spec.optimizer["lr"])
    return build_schedule(spec.schedule, steps, lr, steps_per_epoch)


def plain_loop(spec: TrainSpec, data: Data, steps: int, warmup: int) -> tuple[float, list[float]]:
    """(a) A plain loop: forward, backward, optimizer step, scheduler step; no logging."""
    model = fresh_model(spec, data)
    optimizer = build_optimizer(model, spec.optimizer)
    schedule = workload_schedule(spec, steps, len(data.train_dataloader()))
    scheduler = ScheduledLR(optimizer, schedule)
    losses: list[float] = []
    start = 0.0
    model.train()
    for index, (x, y) in enumerate(epoch_batches(data, steps)):
        if index == warmup:
            start = time.perf_counter()
        with autocast(spec):
            loss = token_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if spec.steps.clip_val:  # the run's gradient clipping (by norm), as lrexp applies it
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.steps.clip_val)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss))
    return (time.perf_counter() - start) * 1000 / (steps - warmup), losses


def lrexp_path(
    spec: TrainSpec, data: Data, warmup: int, tracking_uri: str | None
) -> tuple[float, list[float]]:
    """(b) lrexp's own training path (module, trainer, callbacks, buffered MLflow logger)."""
    from lrexp.run.train import build_trainer, lightning_module

    steps = spec.plan.total
    net = fresh_model(spec, data)
    task = LanguageModel(data.num_classes) if isinstance(data, TextDataModule) else None
    module = lightning_module(spec, net, task or Classification(data.num_classes))
    logger = None
    if tracking_uri is not None:
        logger = BufferedMlflowLogger(TrackedRun(tracking_uri, "bench", "lrexp", {}))
    trainer, _ = build_trainer(spec, logger, module.task)
    clock = StepClock(warmup)
    trainer.callbacks.append(clock)  # type: ignore[attr-defined]
    trainer.fit(module, datamodule=data)
    if logger is not None:
        logger.finalize("success")
    return clock.ms_per_step(steps - warmup), clock.losses


def device_name(overrides: list[str]) -> str:
    """The GPU's name when the overrides train on one, else ``CPU``."""
    on_gpu = any(o in ("trainer=gpu", "trainer.accelerator=gpu") for o in overrides)
    return torch.cuda.get_device_name(0) if on_gpu and torch.cuda.is_available() else "CPU"

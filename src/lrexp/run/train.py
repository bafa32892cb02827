"""One training run: spec -> data -> model -> Trainer, inside a tracked MLflow run.

The order is what makes a bad run cheap: the config was validated and the checkpoint to
resume checked while its :class:`~lrexp.run.spec.TrainSpec` was built
(:func:`lrexp.config.training.train_spec`); the data is loaded and the model built *before*
the MLflow run is opened (:class:`lrexp.run.lifecycle.RunLifecycle`), so a config or data
error leaves nothing in the store. ``optimizer.lr=auto`` is resolved by the caller
(:mod:`lrexp.lr_find.cli`), never here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lrexp.averaging import build_averager
from lrexp.data.describe import class_name, describe, has_test_split
from lrexp.digests import weights_digest
from lrexp.run.callbacks import (
    AtStep,
    ExcessLoss,
    KeepCheckpoints,
    LRTrace,
    ProgressBar,
    QuietProfiler,
    TrainLossTrace,
    skip_unused_hooks,
    validate_now,
)
from lrexp.run.faults import CheckpointOnInterrupt
from lrexp.run.fork import KEPT_DIR_TAG, KEPT_STEPS_TAG, kept_checkpoint
from lrexp.run.lifecycle import OnOpen, RunLifecycle
from lrexp.run.module import WHOLE_VAL, LRModule, as_prefix
from lrexp.run.resume import RecordedPlan, check_mid_epoch
from lrexp.run.spec import TrainSpec
from lrexp.run.tokens import TokenThroughput
from lrexp.tags import ORDER_UNKNOWN_TAG
from lrexp.tasks import TOKENS, Task
from lrexp.tracking.logger import BufferedMlflowLogger

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun


#: optimizer steps between tokens-per-second points when the train-loss trace is off
DEFAULT_TOKENS_EVERY = 10


@dataclass
class RunResult:
    """What a finished run produced."""

    metrics: dict[str, float]
    run_id: str | None
    output_dir: Path
    global_step: int
    objective: str = "val/acc"  #: the task's objective: what a sweeper optimizes
    #: what the console's last lines say the run did, when it is not a trained model's test
    headline: str | None = None


def log_dataset(run: TrackedRun, spec: TrainSpec, data: pl.LightningDataModule) -> None:
    """Record the data as an MLflow dataset input, for data modules that can digest their
    splits (lrexp's own); another data module is named by the run's params and tags."""
    digest, size = getattr(data, "digest", None), getattr(data, "size", None)
    if not callable(digest) or not callable(size):
        return
    sizes = {split: size(split) for split in ("train", "val", "test")}
    source = getattr(data, "source", None) or spec.dataset_source
    run.log_dataset(spec.dataset_label, digest(), str(source), sizes)


def pairing_tags(net: torch.nn.Module, data: pl.LightningDataModule) -> dict[str, str]:
    """The digests that prove two runs with one seed paired (:mod:`lrexp.compare.pairing`):
    the initial weights, and the first epoch's order when the data module can give it; else
    a tag saying why the order is unknown."""
    tags = {"init_digest": weights_digest(net)}
    order_digest = getattr(data, "order_digest", None)
    if callable(order_digest):
        tags["order_digest"] = str(order_digest())
    else:
        tags[ORDER_UNKNOWN_TAG] = f"{class_name(data)} has no order_digest()"
    return tags


def data_tags(
    spec: TrainSpec, net: torch.nn.Module, data: pl.LightningDataModule
) -> dict[str, str]:
    """What a run records about its data and model: the model's parameter count (a tied
    tensor once), how many times the run reads its training data (a data module meant for
    one pass says so when a run repeats it), and the data module's own description."""
    plan = spec.plan
    passes = plan.total * spec.steps.accumulate / plan.batches_per_epoch
    if getattr(data, "single_pass", False) and passes > 1:
        print(
            f"lrexp: warning: the run reads its training data {passes:.2f} times ({plan.total} "
            f"optimizer steps of {plan.batches_per_epoch} batches per pass): not single-pass",
            file=sys.stderr,
            flush=True,
        )
    describe_data = getattr(data, "description", None)
    return {
        "parameters": str(sum(p.numel() for p in net.parameters())),
        "data_passes": f"{passes:.4g}",
        **(describe_data() if callable(describe_data) else {}),
    }


def lightning_module(
    spec: TrainSpec, net: torch.nn.Module, task: Task, recorded: RecordedPlan | None = None
) -> LRModule:
    """The LightningModule of a run: its optimizer, schedule, step options and averaging."""
    averager = build_averager(spec.averaging, net) if spec.averaging is not None else None
    return LRModule(
        net, task, spec.optimizer, spec.schedule, spec.steps, spec.plan, recorded, averager
    )


def whole_val_modes(data: object, modes: dict[str, str]) -> dict[str, str]:
    """The directions of :func:`whole_validation`'s metrics (from the regular ones'), for a
    data module that has one; else none."""
    if not hasattr(data, "whole_val"):
        return {}
    return {as_prefix(k, WHOLE_VAL): v for k, v in modes.items() if k.startswith("val/")}


def whole_validation(
    trainer: pl.Trainer, module: LRModule, data: pl.LightningDataModule
) -> dict[str, float]:
    """Validate the module's current weights on the whole validation split, logged as
    ``val_full/*`` at the same step, for a data module that validates on a fixed subset during
    training and serves the whole split while its ``whole_val`` is set
    (:class:`lrexp.data.TextDataModule`); else nothing."""
    if not hasattr(data, "whole_val"):
        return {}
    module.val_prefix = WHOLE_VAL
    data.whole_val = True
    try:  # through the data module: a spawned DDP run pickles it, not a loader
        trainer.validate(module, datamodule=data, verbose=False)
    finally:
        module.val_prefix = "val"
        data.whole_val = False
    prefix = f"{WHOLE_VAL}/"
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}


def build_trainer(
    spec: TrainSpec,
    logger: BufferedMlflowLogger | None,
    task: Task,
    on_keep: Callable[[int, Path], None] = lambda step, path: None,
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """The Trainer of a run: checkpoints (best on the task's objective unless
    ``callbacks.checkpoint.monitor`` says otherwise, last, and the kept steps), the LR trace,
    a checkpoint on SIGTERM/SIGINT, and a validation at the run's last step
    (:func:`validate_now`)."""
    kept = spec.checkpoint
    options = dict(kept.options)
    options["monitor"] = options.get("monitor") or task.objective
    options["mode"] = options.get("mode") or task.mode
    folder = spec.output_dir / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=folder, filename="best-step{step}", auto_insert_metric_name=False, **options
    )
    callbacks: list[pl.Callback] = [
        checkpoint,
        LRTrace(),
        CheckpointOnInterrupt(folder / "last.ckpt"),
        AtStep(spec.plan.total, validate_now),
    ]
    if spec.train_loss_every:
        callbacks.append(TrainLossTrace(spec.train_loss_every))
    if kept.keep_steps or kept.keep_every:
        path_of = functools.partial(kept_checkpoint, folder)
        callbacks.append(KeepCheckpoints(list(kept.keep_steps), kept.keep_every, path_of, on_keep))
    if spec.progress_refresh is not None:
        callbacks.append(ProgressBar(spec.progress_refresh))
    trainer_options = {"profiler": QuietProfiler(), **spec.trainer}  # ``trainer.profiler`` wins
    trainer = pl.Trainer(
        **trainer_options,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=str(spec.output_dir),
    )
    skip_unused_hooks(trainer.callbacks)  # type: ignore[attr-defined]
    return trainer, checkpoint


def train(
    spec: TrainSpec, callbacks: Sequence[pl.Callback] = (), on_open: Sequence[OnOpen] = ()
) -> RunResult:
    """Load the data, build the model, then in a tracked run: train, and test on the best
    checkpoint (``spec`` is validated already: :func:`lrexp.config.training.train_spec`).

    ``callbacks`` are added to the Trainer's own (tests and benchmarks use them to observe or
    interrupt a run); ``on_open`` hooks get the MLflow run as soon as it is open. The run ends
    FINISHED, FAILED or KILLED as :class:`RunLifecycle` describes.
    """
    if spec.threads:
        torch.set_num_threads(spec.threads)
    if spec.flat_warning:
        print(f"lrexp: warning: {spec.flat_warning}", file=sys.stderr, flush=True)
    pl.seed_everything(spec.seed, verbose=False)
    data = spec.parts.data()
    info = describe(data, spec.world_size, load=True)
    resume, fork = spec.resume, spec.fork
    if resume is not None:
        check_mid_epoch(spec.stored, spec.plan, data, resume)
    tested = has_test_split(data)
    if not tested:
        print(
            f"lrexp: note: {class_name(data)} has no test_dataloader(), so the run ends after "
            "training and its last validation (no test/* metrics)",
            file=sys.stderr,
            flush=True,
        )
    net, info, task = spec.parts.build(info, data)
    # arms that share a seed must share these; lrexp-compare checks before pairing them
    pairing = {**pairing_tags(net, data), **data_tags(spec, net, data)}
    if spec.compile:
        net.compile()  # in place: checkpoints keep the plain parameter names
    module = lightning_module(spec, net, task, spec.recorded)
    if resume is None and fork is not None:
        resume = fork.start(spec.output_dir)  # a copy of the trunk's checkpoint at fork.at

    def on_run_open(run: TrackedRun) -> None:
        module.run_id = run.run_id  # checkpoints carry it: a resume continues this run
        if resume is None:
            log_dataset(run, spec, data)

    lifecycle = RunLifecycle(
        spec.run,
        spec.output_dir,
        resume=resume,
        run_id=spec.stored.run_id,
        on_open=[on_run_open, *on_open],
        extra_tags=fork.tags() if fork is not None else None,
        defer=spec.world_size == 1,  # other ranks need the run id before they start
    )
    lifecycle.planned = module.planned_lr  # filled when the optimizer is built
    extra_modes = module.averager.modes() if module.averager is not None else {}
    extra_modes |= whole_val_modes(data, {**task.modes(), **extra_modes})
    lifecycle.tags.update(
        {**pairing, **task.tags(extra_modes), "num_outputs_from": info.outputs_from}
    )
    if spec.extended_from is not None:
        lifecycle.tags["extended_from"] = str(spec.extended_from)
    kept: list[int] = []

    def on_keep(step: int, path: Path) -> None:
        """Record a kept checkpoint on the run at once: forks may start while it trains."""
        kept.append(step)
        tags = {KEPT_STEPS_TAG: ",".join(map(str, sorted(kept))), KEPT_DIR_TAG: str(path.parent)}
        lifecycle.tags.update(tags)
        if lifecycle.run is not None:
            lifecycle.run.set_tags(tags)

    with lifecycle:
        trainer, checkpoint = build_trainer(spec, lifecycle.logger, task, on_keep)
        extra: list[pl.Callback] = (
            [ExcessLoss(data)] if callable(getattr(data, "optimal_loss", None)) else []
        )
        # a search's job whose sweeper has a pruner reports the task's objective to its trial
        extra += spec.pruning(lifecycle.tags, task.objective)
        if info.targets == TOKENS:
            extra.append(TokenThroughput(spec.train_loss_every or DEFAULT_TOKENS_EVERY))
        trainer.callbacks.extend([*extra, *callbacks, *lifecycle.callbacks()])  # type: ignore[attr-defined]
        skip_unused_hooks(trainer.callbacks)  # type: ignore[attr-defined]
        trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
        # trainer.test() replaces callback_metrics: keep val/* (the sweepers' objective)
        fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        fit_metrics |= whole_validation(trainer, module, data)  # the final weights, not the best
        best = "best" if checkpoint.best_model_path else None
        if tested:
            trainer.test(module, datamodule=data, ckpt_path=best, verbose=False, weights_only=True)
    metrics = {**fit_metrics, **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    return RunResult(
        metrics, lifecycle.run_id, spec.output_dir, trainer.global_step, task.objective
    )

"""One training run: config -> data -> model -> Trainer, inside a tracked MLflow run.

The order is what makes a bad run cheap: the config is validated, the checkpoint to resume
is checked, the data is loaded and the model built *before* the MLflow run is opened
(:class:`lrexp.run.lifecycle.RunLifecycle`), so a config or data error leaves nothing in
the store. ``optimizer.lr=auto`` is resolved by the caller (:mod:`lrexp.lr_find.cli`), never
here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar

from lrexp.config.parts import (
    build_datamodule,
    build_model,
    build_task,
    with_labels,
    with_model_outputs,
)
from lrexp.config.planning import bind, step_plan
from lrexp.config.spec import job_threads, run_spec
from lrexp.config.tune import AUTO, with_lr
from lrexp.data import TensorDataModule
from lrexp.data.describe import class_name, describe, has_test_split
from lrexp.digests import weights_digest
from lrexp.errors import ConfigError
from lrexp.optim import scaled_lr
from lrexp.plan import StepPlan, flat_schedule_warning, world_size
from lrexp.run.callbacks import (
    AtStep,
    ExcessLoss,
    KeepCheckpoints,
    LRTrace,
    TrainLossTrace,
    validate_now,
)
from lrexp.run.faults import CheckpointOnInterrupt
from lrexp.run.fork import KEPT_DIR_TAG, KEPT_STEPS_TAG, kept_checkpoint, resolve_fork
from lrexp.run.lifecycle import OnOpen, RunLifecycle
from lrexp.run.module import LRModule, StepOptions
from lrexp.run.resume import (
    CheckpointInfo,
    RecordedPlan,
    check_mid_epoch,
    plan_resume,
    read_checkpoint,
    resume_from,
)
from lrexp.search.reporting import trial_pruning
from lrexp.tags import ORDER_UNKNOWN_TAG
from lrexp.tasks import Task
from lrexp.tracking.logger import BufferedMlflowLogger

if TYPE_CHECKING:
    from lrexp.tracking.store import TrackedRun
from lrexp.config.validate import validate


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


def log_dataset(run: TrackedRun, cfg: DictConfig, data: pl.LightningDataModule) -> None:
    """Record the data as an MLflow dataset input, for data modules that can digest their
    splits (lrexp's own); another data module is named by the run's params and tags."""
    if not isinstance(data, TensorDataModule):
        return
    sizes = {split: data.size(split) for split in ("train", "val", "test")}
    source = f"{cfg.dataset.name} (split_seed={cfg.dataset.split_seed})"
    run.log_dataset(str(cfg.dataset.name), data.digest(), source, sizes)


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


def split_trainer(trainer: DictConfig) -> tuple[dict[str, Any], StepOptions]:
    """The ``trainer`` node as ``pl.Trainer`` keyword arguments, without the keys lrexp
    applies itself (:class:`StepOptions`: accumulation and clipping), and those options."""
    kwargs: dict[str, Any] = OmegaConf.to_container(trainer, resolve=True)  # type: ignore[assignment]
    options = StepOptions(
        accumulate=int(kwargs.pop("accumulate_grad_batches", None) or 1),
        clip_val=kwargs.pop("gradient_clip_val", None),
        clip_algorithm=str(kwargs.pop("gradient_clip_algorithm", None) or "norm"),
    )
    return kwargs, options


def lightning_module(
    cfg: DictConfig,
    net: torch.nn.Module,
    task: Task,
    plan: StepPlan,
    recorded: RecordedPlan | None = None,
) -> LRModule:
    """The LightningModule of a run: ``cfg``'s optimizer, schedule and step options."""
    return LRModule(
        net,
        task,
        OmegaConf.to_container(cfg.optimizer, resolve=True),  # type: ignore[arg-type]
        OmegaConf.to_container(cfg.schedule, resolve=True),  # type: ignore[arg-type]
        split_trainer(cfg.trainer)[1],
        plan,
        recorded,
    )


def build_trainer(
    cfg: DictConfig,
    output_dir: Path,
    logger: BufferedMlflowLogger | None,
    plan: StepPlan,
    task: Task,
    on_keep: Callable[[int, Path], None] = lambda step, path: None,
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """The Trainer of a run: checkpoints (best on the task's objective unless
    ``callbacks.checkpoint.monitor`` says otherwise, last, and the kept steps), the LR trace,
    a checkpoint on SIGTERM/SIGINT, and a validation at the run's last step
    (:func:`validate_now`)."""
    callbacks_cfg = cfg.callbacks
    options: dict[str, Any] = OmegaConf.to_container(callbacks_cfg.checkpoint)  # type: ignore[assignment]
    keep_steps, keep_every = options.pop("keep_steps", []), options.pop("keep_every_n_steps", None)
    options["monitor"] = options.get("monitor") or task.objective
    options["mode"] = options.get("mode") or task.mode
    folder = output_dir / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=folder, filename="best-step{step}", auto_insert_metric_name=False, **options
    )
    interrupt = CheckpointOnInterrupt(folder / "last.ckpt")
    callbacks: list[pl.Callback] = [
        checkpoint,
        LRTrace(),
        interrupt,
        AtStep(plan.total, validate_now),
    ]
    loss_every = cfg.logger.get("train_loss_every", 10) if cfg.logger.get("enabled") else None
    if loss_every:
        callbacks.append(TrainLossTrace(loss_every))
    if keep_steps or keep_every:
        path_of = functools.partial(kept_checkpoint, folder)
        callbacks.append(KeepCheckpoints(keep_steps or [], keep_every, path_of, on_keep))
    if cfg.trainer.enable_progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=callbacks_cfg.progress_bar.refresh_rate))
    trainer_kwargs, _ = split_trainer(cfg.trainer)
    trainer = pl.Trainer(
        **trainer_kwargs,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=str(output_dir),
    )
    return trainer, checkpoint


def with_scaled_lr(cfg: DictConfig) -> DictConfig:
    """Apply ``optimizer.scale_lr``: the global batch is dataset.batch_size (already global
    under DDP, where ranks shard it) times the gradient-accumulation steps."""
    rule = str(cfg.optimizer.get("scale_lr", "none"))
    if rule == "none":
        return cfg
    global_batch = int(cfg.dataset.batch_size) * int(cfg.trainer.accumulate_grad_batches)
    reference = cfg.optimizer.get("reference_batch_size")
    return with_lr(cfg, scaled_lr(float(cfg.optimizer.lr), rule, global_batch, reference))


def train(
    cfg: DictConfig, callbacks: Sequence[pl.Callback] = (), on_open: Sequence[OnOpen] = ()
) -> RunResult:
    """Validate, load the data, build the model, then in a tracked run: train, and test on the
    best checkpoint.

    ``callbacks`` are added to the Trainer's own (tests and benchmarks use them to observe or
    interrupt a run); ``on_open`` hooks get the MLflow run as soon as it is open. The run ends
    FINISHED, FAILED or KILLED as :class:`RunLifecycle` describes.
    """
    if cfg.optimizer.get("lr") == AUTO:
        raise ConfigError(
            "optimizer.lr", "auto is resolved by the LR finder before training (lrexp-train does)"
        )
    cfg = with_labels(cfg)
    validate(cfg)
    fork = resolve_fork(cfg)
    if fork is not None:
        cfg = fork.apply(cfg)
    output_dir = Path(cfg.paths.output_dir)
    resume = resume_from(cfg, output_dir)
    stored = read_checkpoint(resume) if resume is not None else CheckpointInfo(None, None)
    resumed = plan_resume(with_scaled_lr(cfg), stored.plan)
    cfg = resumed.cfg
    threads = job_threads(cfg)
    if threads:
        torch.set_num_threads(threads)
    plan = step_plan(cfg)
    flat = None if resume else flat_schedule_warning(bind(cfg), str(cfg.schedule.get("name")))
    if flat:  # a fresh run only: a resume goes on with the schedule it started
        print(f"lrexp: warning: {flat}", file=sys.stderr, flush=True)
    pl.seed_everything(int(cfg.seed), verbose=False)
    data = build_datamodule(OmegaConf.to_container(cfg.dataset, resolve=True))  # type: ignore[arg-type]
    info = describe(data, world_size(OmegaConf.to_container(cfg.trainer)), load=True)  # type: ignore[arg-type]
    if resume is not None:
        check_mid_epoch(stored, plan, data, resume)
    tested = has_test_split(data)
    if not tested:
        print(
            f"lrexp: note: {class_name(data)} has no test_dataloader(), so the run ends after "
            "training and its last validation (no test/* metrics)",
            file=sys.stderr,
            flush=True,
        )
    net = build_model(OmegaConf.to_container(cfg.model, resolve=True), info)  # type: ignore[arg-type]
    info = with_model_outputs(net, info, data)
    # arms that share a seed must share these; lrexp-compare checks before pairing them
    pairing = pairing_tags(net, data)
    if cfg.get("compile"):
        net.compile()  # in place: checkpoints keep the plain parameter names
    task = build_task(cfg.task, info, str(cfg.dataset.get("name") or class_name(data)))
    module = lightning_module(cfg, net, task, plan, resumed.schedule)
    if resume is None and fork is not None:
        resume = fork.start(output_dir)  # a copy of the trunk's checkpoint at fork.at

    def on_run_open(run: TrackedRun) -> None:
        module.run_id = run.run_id  # checkpoints carry it: a resume continues this run
        if resume is None:
            log_dataset(run, cfg, data)

    lifecycle = RunLifecycle(
        run_spec(cfg),
        output_dir,
        resume=resume,
        run_id=stored.run_id,
        on_open=[on_run_open, *on_open],
        extra_tags=fork.tags() if fork is not None else None,
        defer=world_size(cfg.trainer) == 1,  # other ranks need the run id before they start
    )
    lifecycle.planned = module.planned_lr  # filled when the optimizer is built
    lifecycle.tags.update({**pairing, **task.tags(), "num_outputs_from": info.outputs_from})
    if resumed.extended_from is not None:
        lifecycle.tags["extended_from"] = str(resumed.extended_from)
    kept: list[int] = []

    def on_keep(step: int, path: Path) -> None:
        """Record a kept checkpoint on the run at once: forks may start while it trains."""
        kept.append(step)
        tags = {KEPT_STEPS_TAG: ",".join(map(str, sorted(kept))), KEPT_DIR_TAG: str(path.parent)}
        lifecycle.tags.update(tags)
        if lifecycle.run is not None:
            lifecycle.run.set_tags(tags)

    with lifecycle:
        trainer, checkpoint = build_trainer(cfg, output_dir, lifecycle.logger, plan, task, on_keep)
        extra: list[pl.Callback] = (
            [ExcessLoss(data)] if callable(getattr(data, "optimal_loss", None)) else []
        )
        # a search's job whose sweeper has a pruner reports the task's objective to its trial
        extra += trial_pruning(cfg, plan.total, lifecycle.tags, task.objective)
        trainer.callbacks.extend([*extra, *callbacks, *lifecycle.callbacks()])  # type: ignore[attr-defined]
        trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
        # trainer.test() replaces callback_metrics: keep val/* (the sweepers' objective)
        fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        best = "best" if checkpoint.best_model_path else None
        if tested:
            trainer.test(module, datamodule=data, ckpt_path=best, verbose=False, weights_only=True)
    metrics = {**fit_metrics, **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    return RunResult(metrics, lifecycle.run_id, output_dir, trainer.global_step, task.objective)

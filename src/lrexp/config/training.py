"""The composed config of a run, read once into its :class:`~lrexp.run.spec.TrainSpec`.

:func:`train_spec` labels the parts, validates (one line naming the key, before anything is
written), settles a fork (:mod:`lrexp.config.forking`) and a resume
(:mod:`lrexp.config.resuming`), applies ``optimizer.scale_lr``, plans the steps and binds
the factories of the parts. The training run, the LR finder (:func:`finder_spec`) and the
benchmarks start from this object, so they cannot disagree on what a config means.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from lrexp.config.forking import forked, resolve_fork
from lrexp.config.parts import plain, with_labels
from lrexp.config.planning import bind, step_plan
from lrexp.config.resuming import plan_resume, record_plan, resume_from
from lrexp.config.spec import job_threads, run_spec
from lrexp.config.tune import AUTO, LRFindSettings, settings, with_lr
from lrexp.config.validate import validate, validate_settled
from lrexp.errors import ConfigError
from lrexp.optim import scaled_lr
from lrexp.parts import build_datamodule, build_parts
from lrexp.plan import flat_schedule_warning, world_size
from lrexp.run.module import StepOptions
from lrexp.run.resume import CheckpointInfo, read_checkpoint
from lrexp.run.spec import CheckpointSpec, Parts, TrainSpec
from lrexp.search.reporting import trial_pruning

if TYPE_CHECKING:
    from lrexp.run.lifecycle import OnOpen
    from lrexp.run.train import RunResult


def split_trainer(trainer: Mapping[str, Any]) -> tuple[dict[str, Any], StepOptions]:
    """The ``trainer`` node as ``pl.Trainer`` keyword arguments, without the keys lrexp
    applies itself (:class:`StepOptions`: accumulation and clipping), and those options."""
    kwargs = plain(trainer)
    options = StepOptions(
        accumulate=int(kwargs.pop("accumulate_grad_batches", None) or 1),
        clip_val=kwargs.pop("gradient_clip_val", None),
        clip_algorithm=str(kwargs.pop("gradient_clip_algorithm", None) or "norm"),
    )
    return kwargs, options


def with_scaled_lr(cfg: DictConfig) -> DictConfig:
    """Apply ``optimizer.scale_lr``: the global batch is dataset.batch_size (already global
    under DDP, where ranks shard it) times the gradient-accumulation steps."""
    rule = str(cfg.optimizer.get("scale_lr", "none"))
    if rule == "none":
        return cfg
    global_batch = int(cfg.dataset.batch_size) * int(cfg.trainer.accumulate_grad_batches)
    reference = cfg.optimizer.get("reference_batch_size")
    return with_lr(cfg, scaled_lr(float(cfg.optimizer.lr), rule, global_batch, reference))


def parts_of(cfg: DictConfig) -> Parts:
    """The factories of ``cfg``'s data module, model and task (:mod:`lrexp.parts`)."""
    data_label = str(cfg.dataset.get("name"))
    return Parts(
        data=functools.partial(build_datamodule, plain(cfg.dataset)),
        build=functools.partial(build_parts, plain(cfg.model), plain(cfg.task), data_label),
    )


def checkpoint_spec(cfg: DictConfig) -> CheckpointSpec:
    """``callbacks.checkpoint`` as ``ModelCheckpoint`` options and the steps to keep."""
    options = plain(cfg.callbacks.checkpoint)
    keep_steps = options.pop("keep_steps", None) or []
    keep_every = options.pop("keep_every_n_steps", None)
    return CheckpointSpec(options, tuple(int(s) for s in keep_steps), keep_every)


def _spec(cfg: DictConfig, name: str | None = None, **settled: Any) -> TrainSpec:
    """The :class:`TrainSpec` of ``cfg`` as settled (fork, resume and scaled LR applied)."""
    trainer, steps = split_trainer(cfg.trainer)
    plan = step_plan(cfg)
    logger = cfg.logger
    loss_every = logger.get("train_loss_every", 10) if logger.get("enabled") else None
    total = plan.total

    def pruning(tags: MutableMapping[str, str], objective: str) -> list[pl.Callback]:
        return trial_pruning(cfg, total, tags, objective)

    return TrainSpec(
        run=run_spec(cfg, name),
        parts=parts_of(cfg),
        seed=int(cfg.seed),
        threads=job_threads(cfg),
        output_dir=Path(cfg.paths.output_dir),
        dataset_label=str(cfg.dataset.get("name")),
        dataset_source=f"{cfg.dataset.get('name')} (split_seed={cfg.dataset.get('split_seed')})",
        optimizer=plain(cfg.optimizer),
        schedule=plain(cfg.schedule),
        plan=plan,
        recorded=settled.pop("recorded", None) or record_plan(cfg),
        trainer=trainer,
        steps=steps,
        world_size=world_size(trainer),
        checkpoint=checkpoint_spec(cfg),
        progress_refresh=(
            int(cfg.callbacks.progress_bar.refresh_rate)
            if trainer.get("enable_progress_bar")
            else None
        ),
        train_loss_every=int(loss_every) if loss_every else None,
        compile=bool(cfg.get("compile")),
        averaging=plain(cfg.averaging) if cfg.get("averaging") is not None else None,
        pruning=pruning,
        **settled,
    )


def train_spec(cfg: DictConfig, name: str | None = None) -> TrainSpec:
    """Read ``cfg`` once into the run it describes; a bad config raises
    :class:`ConfigError` naming the key before anything is written."""
    if cfg.optimizer.get("lr") == AUTO:
        raise ConfigError(
            "optimizer.lr", "auto is resolved by the LR finder before training (lrexp-train does)"
        )
    cfg = with_labels(cfg)
    fork = resolve_fork(cfg)
    if fork is not None:
        cfg = forked(cfg, fork)
    validate_settled(cfg)
    resume = resume_from(cfg, Path(cfg.paths.output_dir))
    stored = read_checkpoint(resume) if resume is not None else CheckpointInfo(None, None)
    resumed = plan_resume(with_scaled_lr(cfg), stored.plan)
    cfg = resumed.cfg
    # a fresh run only: a resume goes on with the schedule it started
    flat = None if resume else flat_schedule_warning(bind(cfg), str(cfg.schedule.get("name")))
    return _spec(
        cfg,
        name,
        recorded=resumed.schedule,
        resume=resume,
        stored=stored,
        fork=fork,
        extended_from=resumed.extended_from,
        flat_warning=flat,
    )


def finder_spec(cfg: DictConfig) -> tuple[TrainSpec, LRFindSettings]:
    """The LR finder's run of ``cfg`` (``optimizer.lr`` ignored: it may be ``auto``): the
    run's parts, device, precision and global batch, for ``tune.num_training`` steps at
    ``tune.min_lr``; and the finder's settings."""
    cfg = with_labels(cfg)
    options = settings(cfg)
    search = with_lr(cfg, options.min_lr)  # a copy
    validate(search)
    with open_dict(search):
        search.trainer.max_steps = options.num_training
        search.trainer.max_epochs = -1
    return _spec(search), options


def train_config(
    cfg: DictConfig, callbacks: Sequence[pl.Callback] = (), on_open: Sequence[OnOpen] = ()
) -> RunResult:
    """Train the run ``cfg`` describes (:func:`lrexp.run.train.train` of its spec); a merge
    (``fork=merge``) is evaluated instead (:func:`lrexp.run.merge.evaluate_merge`)."""
    from lrexp.run.merge import evaluate_merge
    from lrexp.run.train import train

    spec = train_spec(cfg)
    if spec.fork is not None and spec.fork.merged:
        return evaluate_merge(spec, callbacks, on_open)
    return train(spec, callbacks, on_open)

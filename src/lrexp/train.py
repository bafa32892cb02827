"""One training run: config -> data -> model -> Trainer -> MLflow run."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lrexp.callbacks import LRTrace
from lrexp.data import DataSpec, TensorDataModule
from lrexp.errors import ConfigError, DivergedError
from lrexp.faults import CheckpointOnInterrupt
from lrexp.lr_find import AUTO, find_lr, log_lr_find, with_lr
from lrexp.models import build_model
from lrexp.module import Classifier, StepOptions
from lrexp.optim import scaled_lr
from lrexp.sweep import parent_run_id
from lrexp.tracking.artifacts import PlanArtifacts, log_run_figures
from lrexp.tracking.logger import BufferedMlflowLogger
from lrexp.tracking.store import TrackedRun, TrackingUnavailableError, flatten, redact
from lrexp.validate import validate


@dataclass
class RunResult:
    """What a finished run produced."""

    metrics: dict[str, float]
    run_id: str | None
    output_dir: Path
    global_step: int


def run_name(cfg: DictConfig) -> str:
    """``<schedule>-<optimizer>-<model>-<dataset>-s<seed>``."""
    parts = (cfg.schedule.name, cfg.optimizer.name, cfg.model.name, cfg.dataset.name)
    return "-".join(str(p) for p in parts) + f"-s{cfg.seed}"


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def start_run(
    cfg: DictConfig,
    output_dir: Path,
    name: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> TrackedRun:
    """Create the MLflow run (named ``name``, default :func:`run_name`) with its tags and the
    full flattened config as params."""
    tags = {
        **(extra_tags or {}),
        "dataset": str(cfg.dataset.name),
        "model": str(cfg.model.name),
        "optimizer": str(cfg.optimizer.name),
        "schedule": str(cfg.schedule.name),
        "seed": str(cfg.seed),
        "output_dir": str(output_dir),
    }
    commit = git_commit(Path(cfg.paths.root_dir))
    if commit:
        tags["git_commit"] = commit
    parent = parent_run_id()
    if parent:
        tags["mlflow.parentRunId"] = parent
        tags["sweep_id"] = parent
    tags.update({"host": socket.gethostname(), "pid": str(os.getpid())})
    uri = str(cfg.logger.tracking_uri)
    name, experiment = name or run_name(cfg), str(cfg.logger.experiment_name)
    artifacts = cfg.logger.get("artifact_location")
    try:
        run = TrackedRun(uri, experiment, name, tags, artifact_location=artifacts)
    except TrackingUnavailableError as err:
        if not cfg.logger.get("fallback_to_local"):
            raise
        local = f"sqlite:///{Path(cfg.paths.mlruns_dir).resolve()}/mlflow.db"
        print(f"lrexp: warning: {err}; logging to {local} instead", file=sys.stderr)
        run = TrackedRun(local, experiment, name, tags, artifact_location=artifacts)
    container = OmegaConf.to_container(cfg, resolve=True)
    params = flatten(container)  # type: ignore[arg-type]
    params["logger.tracking_uri"] = redact(params["logger.tracking_uri"])
    run.log_params(params)
    return run


def log_dataset(run: TrackedRun, cfg: DictConfig, data: TensorDataModule) -> None:
    sizes = {split: data.size(split) for split in ("train", "val", "test")}
    source = f"{cfg.dataset.name} (split_seed={cfg.dataset.split_seed})"
    run.log_dataset(str(cfg.dataset.name), data.digest(), source, sizes)


def system_monitor(cfg: DictConfig, run: TrackedRun | None) -> Any:
    """MLflow's sampler of CPU, memory and GPU use for this run (None when switched off)."""
    if run is None or not cfg.logger.get("system_metrics"):
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    interval = float(cfg.logger.get("system_metrics_interval", 10))
    return SystemMetricsMonitor(run.run_id, interval, tracking_uri=run.tracking_uri)


def build_trainer(
    cfg: DictConfig, output_dir: Path, logger: BufferedMlflowLogger | None
) -> tuple[pl.Trainer, ModelCheckpoint]:
    callbacks_cfg = cfg.callbacks
    checkpoint = ModelCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="best-step{step}",
        auto_insert_metric_name=False,
        **OmegaConf.to_container(callbacks_cfg.checkpoint),  # type: ignore[arg-type]
    )
    interrupt = CheckpointOnInterrupt(output_dir / "checkpoints" / "last.ckpt")
    callbacks: list[pl.Callback] = [checkpoint, LRTrace(), interrupt]
    if cfg.trainer.enable_progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=callbacks_cfg.progress_bar.refresh_rate))
    trainer_kwargs, _ = StepOptions.split(cfg.trainer)
    trainer = pl.Trainer(
        **trainer_kwargs,
        logger=logger if logger is not None else False,
        callbacks=callbacks,
        default_root_dir=str(output_dir),
    )
    return trainer, checkpoint


def resume_from(cfg: DictConfig, output_dir: Path) -> Path | None:
    """The checkpoint to resume: ``ckpt_path``, or with ``resume=auto`` this output dir's
    ``checkpoints/last.ckpt`` when it exists."""
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise ConfigError("ckpt_path", f"no checkpoint file at {path}")
        return path
    if cfg.get("resume") == "auto":
        last = output_dir / "checkpoints" / "last.ckpt"
        return last if last.is_file() else None
    return None


#: The part of torch's weights_only refusal that says what was refused.
UNSUPPORTED_PICKLE = re.compile(r"Unsupported (global: GLOBAL [\w.]+|operand \d+)")


def checkpoint_run_id(path: Path) -> str | None:
    """The MLflow run id a checkpoint was written by (loaded with ``weights_only=True``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code in it, a truncated or foreign file
        unsupported = UNSUPPORTED_PICKLE.search(str(err))
        lines = str(err).strip().splitlines()
        reason = unsupported[0] if unsupported else (lines[0] if lines else type(err).__name__)
        raise ConfigError(
            "ckpt_path", f"{path} is not a checkpoint lrexp loads safely (weights_only): {reason}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise ConfigError("ckpt_path", f"{path} is not a Lightning checkpoint")
    run_id = checkpoint.get("lrexp_run_id")
    return str(run_id) if run_id else None


def with_scaled_lr(cfg: DictConfig) -> DictConfig:
    """Apply ``optimizer.scale_lr``: the global batch is dataset.batch_size (already global
    under DDP, where ranks shard it) times the gradient-accumulation steps."""
    rule = str(cfg.optimizer.get("scale_lr", "none"))
    if rule == "none" or cfg.optimizer.lr == AUTO:
        return cfg
    global_batch = int(cfg.dataset.batch_size) * int(cfg.trainer.accumulate_grad_batches)
    reference = cfg.optimizer.get("reference_batch_size")
    return with_lr(cfg, scaled_lr(float(cfg.optimizer.lr), rule, global_batch, reference))


def job_threads(cfg: DictConfig) -> int | None:
    """``threads``, or under the joblib launcher cpu_count // n_jobs (None: torch's default)."""
    if cfg.threads:
        return int(cfg.threads)
    try:
        launcher = HydraConfig.get().launcher
    except ValueError:
        return None
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    cpus = os.cpu_count() or 1
    n_jobs = int(launcher.get("n_jobs") or -1)
    return max(1, cpus // n_jobs) if n_jobs > 0 else 1


def launched_rank() -> int:
    """The global rank a launcher (Lightning's ddp, torchrun) gave this process, else 0."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def open_run(
    cfg: DictConfig, output_dir: Path, resume: Path | None, run_id: str | None
) -> TrackedRun | None:
    """Continue the MLflow run ``run_id`` of the checkpoint ``resume``, else create a new one.
    Only the process of rank 0 tracks: ranks started by a launcher record nothing."""
    if not cfg.logger.enabled or launched_rank() != 0:
        return None
    if run_id is None:
        return start_run(cfg, output_dir)
    run = TrackedRun(
        cfg.logger.tracking_uri, cfg.logger.experiment_name, run_name(cfg), {}, run_id=run_id
    )
    run.reopen()
    run.set_tags({"resumed_from": str(resume)})
    return run


def train(cfg: DictConfig, callbacks: Sequence[pl.Callback] = ()) -> RunResult:
    """Validate, open the MLflow run, load data, train, test on the best checkpoint.

    The MLflow run is opened before any data loads (an unreachable server fails fast) and ends
    FINISHED, FAILED (an exception; tagged ``diverged=true`` for a non-finite loss) or KILLED
    (SIGTERM/SIGINT, after writing ``checkpoints/last.ckpt``). Buffered points are flushed in
    every case. ``callbacks`` are added to the Trainer's own (tests and benchmarks use them to
    observe or interrupt a run).
    """
    validate(cfg)
    output_dir = Path(cfg.paths.output_dir)
    resume = resume_from(cfg, output_dir)
    resumed_run_id = checkpoint_run_id(resume) if resume is not None else None
    cfg = with_scaled_lr(cfg)
    finder = None
    if cfg.optimizer.lr == AUTO:
        finder = find_lr(cfg)
        cfg = with_lr(cfg, finder.suggestion)
    threads = job_threads(cfg)
    if threads:
        torch.set_num_threads(threads)
    output_dir.mkdir(parents=True, exist_ok=True)
    run = open_run(cfg, output_dir, resume, resumed_run_id)
    if finder is not None and run is not None:
        log_lr_find(run, finder, output_dir / "lr_find", run_name(cfg))
    logger = BufferedMlflowLogger(run) if run is not None else None
    module: Classifier | None = None
    status, tags = "FAILED", {}
    fit_metrics: dict[str, float] = {}
    monitor = system_monitor(cfg, run)
    if monitor is not None:
        monitor.start()
    try:
        pl.seed_everything(int(cfg.seed), verbose=False)
        data = TensorDataModule(DataSpec(**OmegaConf.to_container(cfg.dataset, resolve=True)))  # type: ignore[arg-type]
        data.setup("fit")
        if run is not None and resume is None:
            log_dataset(run, cfg, data)
        net = build_model(cfg.model, data.input_shape, data.num_classes)
        if cfg.get("compile"):
            net.compile()  # in place: checkpoints keep the plain parameter names
        module = Classifier(
            net,
            data.num_classes,
            OmegaConf.to_container(cfg.optimizer, resolve=True),  # type: ignore[arg-type]
            OmegaConf.to_container(cfg.schedule, resolve=True),  # type: ignore[arg-type]
            StepOptions.split(cfg.trainer)[1],
        )
        module.run_id = run.run_id if run is not None else None
        trainer, checkpoint = build_trainer(cfg, output_dir, logger)
        extra = [*callbacks, *([PlanArtifacts(run, output_dir)] if run is not None else [])]
        trainer.callbacks.extend(extra)  # type: ignore[attr-defined]
        trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
        # trainer.test() replaces callback_metrics: keep val/* (the sweepers' objective)
        fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        best = "best" if checkpoint.best_model_path else None
        trainer.test(module, datamodule=data, ckpt_path=best, verbose=False, weights_only=True)
        status = "FINISHED"
    except DivergedError:
        tags["diverged"] = "true"
        raise
    except (KeyboardInterrupt, SystemExit, SIGTERMException):
        status = "KILLED"
        raise
    finally:
        if monitor is not None:
            monitor.finish()
        if run is not None and logger is not None:
            planned = module.planned_lr if module is not None else []
            close_run(run, logger, cfg, output_dir, planned, status, tags)
    metrics = {**fit_metrics, **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    return RunResult(metrics, run.run_id if run else None, output_dir, trainer.global_step)


def close_run(
    run: TrackedRun,
    logger: BufferedMlflowLogger,
    cfg: DictConfig,
    output_dir: Path,
    planned: Sequence[float],
    status: str,
    tags: dict[str, str],
) -> None:
    """Flush buffered points, log the config and figures, then set the final status."""
    logger.flush()
    config_file = output_dir / "resolved_config.yaml"
    config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    run.log_artifact(config_file)
    log_run_figures(run, planned, output_dir, run_name(cfg))
    last = output_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        tags["checkpoint"] = str(last)
    run.set_tags(tags)
    run.end(status)

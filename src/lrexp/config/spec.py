"""What a run records and where, read once from the composed config: the run's name and
labels, its params (the resolved config, flattened) and the tracking settings
(:class:`lrexp.run.spec.RunSpec`).

The run's lifecycle (:mod:`lrexp.run.lifecycle`) reads that object, never the config, so what
MLflow shows is built in one place: the config a fork or a resume has already settled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lrexp.config.compose import flatten
from lrexp.run.spec import RunSpec, TrackingSpec
from lrexp.tracking.uri import redact


def run_name(cfg: DictConfig) -> str:
    """``<schedule>-<optimizer>-<model>-<dataset>-s<seed>``; a cooldown names its shape and
    start (``cooldown-sqrt@560``), a merge its checkpoints and last step (``merge-3@600``)."""
    schedule = str(cfg.schedule.name)
    if schedule == "cooldown":
        schedule = f"cooldown-{cfg.schedule.get('shape')}@{cfg.schedule.get('at')}"
    fork = cfg.get("fork")
    if fork is not None and fork.get("merge") is not None:
        schedule = f"merge-{fork.merge}@{fork.get('at')}"
    parts = (schedule, cfg.optimizer.name, cfg.model.name, cfg.dataset.name)
    return "-".join(str(p) for p in parts) + f"-s{cfg.seed}"


def tracking_spec(cfg: DictConfig) -> TrackingSpec | None:
    """``cfg.logger`` as a :class:`TrackingSpec`; None when ``logger.enabled`` is false."""
    logger = cfg.logger
    if not logger.get("enabled"):
        return None
    return TrackingSpec(
        tracking_uri=str(logger.tracking_uri),
        experiment_name=str(logger.experiment_name),
        artifact_location=logger.get("artifact_location"),
        fallback_to_local=bool(logger.get("fallback_to_local")),
        local_store=f"sqlite:///{Path(cfg.paths.mlruns_dir).resolve()}/mlflow.db",
        retry_seconds=float(logger.get("retry_seconds", 60)),
        system_metrics_interval=(
            float(logger.get("system_metrics_interval", 10))
            if logger.get("system_metrics")
            else None
        ),
    )


def run_spec(cfg: DictConfig, name: str | None = None) -> RunSpec:
    """The :class:`RunSpec` of ``cfg`` (named ``name``, default :func:`run_name`)."""
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    params = flatten(container)
    if "logger.tracking_uri" in params:
        params["logger.tracking_uri"] = redact(params["logger.tracking_uri"])
    labels = {
        group: str(cfg[group].name) for group in ("dataset", "model", "optimizer", "schedule")
    }
    return RunSpec(
        name=name or run_name(cfg),
        labels={**labels, "seed": str(cfg.seed), **study_arm()},
        root_dir=Path(cfg.paths.root_dir),
        params=params,
        resolved_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        tracking=tracking_spec(cfg),
    )


def study_arm() -> dict[str, str]:
    """``{"study_arm": <option>}`` when the run is an arm of a preset study (``study_arm=``,
    conf/study_arm), so that a study's runs can be told apart by a tag; else nothing."""
    try:
        choice = HydraConfig.get().runtime.choices.get("study_arm")
    except ValueError:  # not inside a Hydra run (a test's compose)
        return {}
    return {"study_arm": str(choice)} if choice else {}


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

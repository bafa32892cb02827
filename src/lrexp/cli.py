"""Console entry points; Hydra composes the config, the work happens in lrexp.train."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lrexp.errors import ConfigError, DataUnavailableError


def config_dir() -> Path:
    """``$LREXP_CONFIG_DIR``, else the ``conf/`` folder of this checkout, else ``./conf``."""
    if "LREXP_CONFIG_DIR" in os.environ:
        return Path(os.environ["LREXP_CONFIG_DIR"]).resolve()
    bundled = Path(__file__).resolve().parents[2] / "conf"
    return bundled if bundled.is_dir() else Path.cwd() / "conf"


def report(cfg: DictConfig, run_id: str | None, metrics: dict[str, float]) -> None:
    from rich.console import Console

    console = Console()
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("test/"))
    console.print(f"[bold green]done[/] {shown}")
    console.print(f"outputs: {cfg.paths.output_dir}")
    if run_id:
        from lrexp.tracking.store import redact

        uri = redact(str(cfg.logger.tracking_uri))
        console.print(f"MLflow run {run_id} in experiment '{cfg.logger.experiment_name}' at {uri}")
        console.print(f"browse: mlflow ui --backend-store-uri {uri} --host 127.0.0.1")


def run_task(cfg: DictConfig) -> float | None:
    """Hydra task: train once; configuration and data errors become one line on stderr."""
    from lrexp.train import train

    try:
        result = train(cfg)
    except (ConfigError, DataUnavailableError) as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        sys.exit(2)
    report(cfg, result.run_id, result.metrics)
    return result.metrics.get("val/acc")


def train_main() -> None:
    """``lrexp-train`` / ``python train.py``: Hydra app over ``conf/config.yaml``."""
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(run_task)()

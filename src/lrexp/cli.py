"""Console entry points (``lrexp-train``, ``lrexp-lr-find``): the top of the import graph.

Overrides are checked first (:mod:`lrexp.preflight`), then Hydra composes the config and
:func:`lrexp.lr_find.cli.train_or_tune` runs the LR search (when asked for) and the training
run (:mod:`lrexp.train`). Errors a user can fix become one line and exit code 2.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lrexp.configs import config_dir
from lrexp.errors import (
    ConfigError,
    DataUnavailableError,
    DivergedError,
    TrackingUnavailableError,
)


def report(cfg: DictConfig, run_id: str | None, metrics: dict[str, float]) -> None:
    from rich.console import Console

    console = Console(soft_wrap=True)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("test/"))
    console.print(f"[bold green]done[/] {shown}")
    console.print(f"outputs: {cfg.paths.output_dir}")
    if run_id:
        from lrexp.tracking.store import redact

        uri = redact(str(cfg.logger.tracking_uri))
        console.print(f"MLflow run {run_id} in experiment '{cfg.logger.experiment_name}' at {uri}")
        console.print(f"browse: mlflow ui --backend-store-uri {uri} --host 127.0.0.1")


#: third-party loggers whose INFO lines (store migrations, system-metrics thread) say nothing
#: to someone training a model; their warnings still show
QUIET_LOGGERS = ("mlflow.store.db.utils", "mlflow.system_metrics", "alembic")
#: Lightning INFO lines that are advertising or internal bookkeeping
NOISE_PREFIXES = ("💡 Tip:", "Loading `train_dataloader` to estimate number of stepping batches")


class DropNoise(logging.Filter):
    """Drops log records whose message starts with one of :data:`NOISE_PREFIXES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NOISE_PREFIXES)


DROP_NOISE = DropNoise()


def quiet_logs() -> None:
    """Keep a run's console to Lightning's progress, warnings and lrexp's own report."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(DROP_NOISE)


def run_task(cfg: DictConfig) -> float | None:
    """Hydra task: train once; configuration and data errors become one line on stderr."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from lrexp.lr_find.cli import train_or_tune

    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    quiet_logs()
    try:
        result = train_or_tune(cfg)
    except SIGTERMException:
        print(
            f"lrexp: stopped by SIGTERM; resume with: ckpt_path={cfg.paths.output_dir}"
            "/checkpoints/last.ckpt (and the same overrides)",
            file=sys.stderr,
        )
        sys.exit(143)
    except (ConfigError, DataUnavailableError, DivergedError, TrackingUnavailableError) as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        if in_sweep:
            return None  # the run is marked FAILED; the sweep's other jobs go on
        sys.exit(3 if isinstance(err, DivergedError) else 2)
    except Exception as err:
        if not in_sweep:
            raise
        print(f"lrexp: job failed: {type(err).__name__}: {err}", file=sys.stderr)
        return None
    report(cfg, result.run_id, result.metrics)
    return result.metrics.get("val/acc")


#: Hydra flags that print information instead of running; they skip the preflight check.
INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion")


def preflight(args: list[str]) -> None:
    """Reject bad overrides with one line (exit 2) before Hydra creates any output."""
    if any(arg.split("=")[0] in INFO_FLAGS for arg in args):
        return
    from lrexp.preflight import check_overrides

    try:
        check_overrides(config_dir(), args)
    except ConfigError as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        sys.exit(2)


def train_main() -> None:
    """``lrexp-train`` / ``python train.py``: Hydra app over ``conf/config.yaml``."""
    preflight(sys.argv[1:])
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(run_task)()


def lr_find_main() -> None:
    """``lrexp-lr-find``: ``python train.py tune=lr_find`` (unless a ``tune=`` is given)."""
    if not any(arg.split("=")[0].lstrip("+~") == "tune" for arg in sys.argv[1:]):
        sys.argv[1:] = ["tune=lr_find", *sys.argv[1:]]
    train_main()

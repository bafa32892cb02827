"""Console entry points (``lrexp-train``, ``lrexp-lr-find``) and the multirun's Hydra
callback (:class:`SweepTracker`): the top of the import graph.

Overrides are checked first (:mod:`lrexp.config.preflight`), then Hydra composes the config and
:func:`lrexp.lr_find.cli.train_or_tune` runs the LR search (when asked for) and the training
run (:mod:`lrexp.run.train`). Errors a user can fix become one line and exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lrexp.config.compose import config_dir
from lrexp.errors import (
    ConfigError,
    DataUnavailableError,
    DivergedError,
    TrackingUnavailableError,
)

if TYPE_CHECKING:
    from lrexp.config.preflight import ComposedMode
    from lrexp.run.train import RunResult


def report(cfg: DictConfig, result: RunResult, new_store: bool = False) -> None:
    """The run's last lines: what it gave, where its outputs and its MLflow run are (and
    whether this run created that store, so a mistyped path does not go unnoticed)."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    metrics, run_id = result.metrics, result.run_id
    # the test split's metrics; a data module without one: its last validation's
    split = "test/" if any(k.startswith("test/") for k in metrics) else "val/"
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if k.startswith(split))
    console.print(f"[bold green]done[/] {result.headline or shown}")
    console.print(f"outputs: {cfg.paths.output_dir}")
    if run_id:
        from lrexp.tracking.store import redact

        uri = redact(str(cfg.logger.tracking_uri))
        created = " (a new store: this run created it)" if new_store else ""
        console.print(
            f"MLflow run {run_id} in experiment '{cfg.logger.experiment_name}' at {uri}{created}"
        )
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
    from lrexp.tracking.uri import is_new_store

    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    quiet_logs()
    new_store = bool(cfg.logger.get("enabled")) and is_new_store(str(cfg.logger.tracking_uri))
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
    report(cfg, result, new_store)
    return result.metrics.get(result.objective)


#: Hydra flags that print information instead of running; they skip the preflight check.
INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion")


def preflight(args: list[str]) -> ComposedMode | None:
    """Reject bad overrides with one line (exit 2) before Hydra creates any output; the run
    mode the checked config composes to, when it is certain."""
    if any(arg.split("=")[0] in INFO_FLAGS for arg in args):
        return None
    from lrexp.config.preflight import check_overrides

    try:
        return check_overrides(config_dir(), args)
    except ConfigError as err:
        print(f"lrexp: error: {err}", file=sys.stderr)
        sys.exit(2)


def reuse_mode(composed: ComposedMode) -> None:
    """Hand Hydra the run mode that the preflight check has just composed.

    Hydra 1.3's ``hydra.main`` composes the whole config once only to read ``hydra.mode``
    (``Hydra.get_mode``), then composes it again for the run: with the preflight's own
    composition that is three compositions (about 0.13 s each here) before the first step.
    The preflight's answer is the same config's, so this process's ``get_mode`` returns it
    (``Hydra.get_mode`` is an internal of hydra-core, which pyproject pins to 1.3.8).
    """
    from hydra._internal.hydra import Hydra

    def get_mode(self: Hydra, config_name: str | None, overrides: list[str]) -> RunMode | None:
        return composed.mode

    Hydra.get_mode = get_mode  # type: ignore[method-assign]


def train_main() -> None:
    """``lrexp-train`` / ``python train.py``: Hydra app over ``conf/config.yaml``."""
    composed = preflight(sys.argv[1:])
    if composed is not None:
        reuse_mode(composed)
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(run_task)()


def lr_find_main() -> None:
    """``lrexp-lr-find``: ``python train.py tune=lr_find`` (unless a ``tune=`` is given)."""
    if not any(arg.split("=")[0].lstrip("+~") == "tune" for arg in sys.argv[1:]):
        sys.argv[1:] = ["tune=lr_find", *sys.argv[1:]]
    train_main()


class SweepTracker(Callback):
    """A Hydra multirun as one MLflow parent run with every job as its child.

    At multirun start it creates the parent run (and thereby creates and migrates the SQLite
    store) before any job starts, and records its id in the sweep directory, where jobs
    launched by any launcher (basic, joblib, submitit) find it; at multirun end it compares
    the children."""

    def __init__(self) -> None:
        self.run: Any = None
        self.sweep_dir: Path | None = None
        self.new_store = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # lets ${hydra:...} paths resolve here
        if not config.logger.get("enabled", False):
            return
        if str(config.hydra.sweeper.get("_target_", "")).endswith("LrexpOptunaSweeper"):
            return  # a search's parent is its study's, made by the sweeper (lrexp.search.runs)
        from lrexp.tracking.store import TrackedRun
        from lrexp.tracking.uri import is_new_store

        self.new_store = is_new_store(str(config.logger.tracking_uri))
        self.sweep_dir = Path(config.hydra.sweep.dir)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        overrides = list(config.hydra.overrides.task)
        self.run = TrackedRun(
            config.logger.tracking_uri,
            config.logger.experiment_name,
            f"sweep-{self.sweep_dir.name}",
            {"sweep": "parent", "sweep_dir": str(self.sweep_dir)},
            artifact_location=config.logger.get("artifact_location"),
        )
        self.run.log_params({"overrides": " ".join(overrides) or "(none)"})
        from lrexp.run.lifecycle import PARENT_FILE

        (self.sweep_dir / PARENT_FILE).write_text(self.run.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run is None or self.sweep_dir is None:
            return
        from lrexp.tracking.store import redact

        status = "FINISHED"
        try:
            from lrexp.compare import compare

            out_dir = self.sweep_dir / "comparison"
            compare(self.run.tracking_uri, parent=self.run.run_id, out_dir=out_dir)  # logs too
            from lrexp.compare.console import verdict_lines

            print("\n".join(verdict_lines(out_dir / "summary.json")), file=sys.stderr)
            print(f"sweep comparison: {out_dir}", file=sys.stderr)
            print(
                f"sweep parent run {self.run.run_id}; compare again with: lrexp-compare "
                f"--tracking-uri {redact(self.run.tracking_uri)} --parent {self.run.run_id} "
                "--out <dir>" + (" (a new store: this sweep created it)" if self.new_store else ""),
                file=sys.stderr,
            )
        except Exception as err:
            status = "FAILED"
            print(f"lrexp: sweep comparison failed: {err}", file=sys.stderr)
        finally:
            self.end_parent(status)

    def end_parent(self, status: str) -> None:
        """End the parent run; a server that is away gets one line saying what to do later."""
        from lrexp.tracking.store import is_unreachable, redact

        try:
            self.run.end(status)
        except Exception as err:
            if not is_unreachable(err):
                raise
            print(
                f"lrexp: the tracking server at {redact(self.run.tracking_uri)} is away; the "
                f"sweep's parent run {self.run.run_id} stays RUNNING; once its jobs' points are "
                f"sent (lrexp-sync {self.sweep_dir}), compare them with: lrexp-compare "
                f"--tracking-uri {redact(self.run.tracking_uri)} --parent {self.run.run_id} "
                "--out <dir>",
                file=sys.stderr,
            )

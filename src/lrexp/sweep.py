"""Hydra multirun = one MLflow parent run with every job as its child.

The Hydra callback creates the parent run (and thereby creates and migrates the SQLite store)
before any job starts, and records its id in the sweep directory, where jobs launched by any
launcher (basic, joblib, submitit) find it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lrexp.run.lifecycle import PARENT_FILE


class SweepTracker(Callback):
    """Creates the parent run at multirun start; compares the children at multirun end."""

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

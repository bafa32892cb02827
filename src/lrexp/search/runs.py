"""MLflow side of a search: finds each trial's run and tags it with the study and trial, and
the study's best run with ``optuna_best``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

#: MLflow tags
TAG_STUDY, TAG_TRIAL, TAG_BEST = "optuna_study", "optuna_trial", "optuna_best"


class TrialRuns:
    """Tags the MLflow runs of a study's trials (a no-op with the logger disabled)."""

    def __init__(self, config: DictConfig, study_name: str) -> None:
        self.study_name = study_name
        self.enabled = bool(OmegaConf.select(config, "logger.enabled", default=False))
        self.client: Any = None
        if not self.enabled:
            return
        from mlflow.tracking import MlflowClient

        from lrexp.tracking.lifecycle import PARENT_FILE

        self.client = MlflowClient(str(config.logger.tracking_uri))
        self.experiment_name = str(config.logger.experiment_name)
        marker = Path(str(config.hydra.sweep.dir)) / PARENT_FILE
        self.parent = marker.read_text().strip() if marker.is_file() else None

    def _call(self, call: Any) -> Any:
        from lrexp.tracking.store import retry_locked

        return retry_locked(call)

    def find(self, output_dir: str | None) -> str | None:
        """The run a trial's job created: its ``output_dir`` tag, newest first."""
        if not self.enabled or output_dir is None:
            return None
        experiment = self._call(lambda: self.client.get_experiment_by_name(self.experiment_name))
        if experiment is None:
            return None
        query = f"tags.`mlflow.parentRunId` = '{self.parent}'" if self.parent else ""
        runs = self._call(
            lambda: self.client.search_runs(
                [experiment.experiment_id],
                filter_string=query,
                order_by=["attributes.start_time DESC"],
                max_results=1000,
            )
        )
        for run in runs:
            if run.data.tags.get("output_dir") == output_dir:
                return str(run.info.run_id)
        return None

    def tag_trial(self, run_id: str, number: int) -> None:
        tags = {TAG_STUDY: self.study_name, TAG_TRIAL: str(number)}
        for key, value in tags.items():
            self._call(lambda key=key, value=value: self.client.set_tag(run_id, key, value))

    def tag_best(self, run_id: str | None) -> None:
        """``optuna_best=true`` on ``run_id`` only, among the study's runs."""
        if not self.enabled:
            return
        experiment = self._call(lambda: self.client.get_experiment_by_name(self.experiment_name))
        if experiment is not None:
            previous = self._call(
                lambda: self.client.search_runs(
                    [experiment.experiment_id],
                    filter_string=f"tags.{TAG_BEST} = 'true'",
                    max_results=1000,
                )
            )
            for run in previous:
                same_study = run.data.tags.get(TAG_STUDY) == self.study_name
                if same_study and run.info.run_id != run_id:
                    self._call(lambda run=run: self.client.delete_tag(run.info.run_id, TAG_BEST))
        if run_id is not None:
            self._call(lambda: self.client.set_tag(run_id, TAG_BEST, "true"))

    def tag_parent(self, tags: Mapping[str, str]) -> None:
        if not self.enabled or self.parent is None:
            return
        for key, value in tags.items():
            self._call(lambda key=key, value=value: self.client.set_tag(self.parent, key, value))

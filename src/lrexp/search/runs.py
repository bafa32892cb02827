"""MLflow side of a search: one parent run per study (created once, whichever worker comes
first), each trial's run found and tagged with the study and trial, a stale trial's run
ended KILLED, and the study's best run tagged ``optuna_best``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

#: MLflow tags
TAG_STUDY, TAG_TRIAL, TAG_BEST = "optuna_study", "optuna_trial", "optuna_best"
#: study user attr: the study's MLflow parent run
PARENT_RUN = "mlflow_parent_run_id"


class TrialRuns:
    """Tags the MLflow runs of a study's trials (a no-op with the logger disabled)."""

    def __init__(self, config: DictConfig, study_name: str) -> None:
        self.study_name = study_name
        self.enabled = bool(OmegaConf.select(config, "logger.enabled", default=False))
        self.client: Any = None
        if not self.enabled:
            return
        from lrexp.run.lifecycle import PARENT_FILE
        from lrexp.tracking.store import open_client

        self.config = config
        self.tracking_uri = str(config.logger.tracking_uri)
        self.client = open_client(self.tracking_uri)
        self.experiment_name = str(config.logger.experiment_name)
        self.marker = Path(str(config.hydra.sweep.dir)) / PARENT_FILE
        self.parent: str | None = None

    def attach_parent(self, study: Any, params: Mapping[str, str]) -> None:
        """The study's parent run (created by the first worker, its id kept in the study),
        written to this sweep's directory so that the jobs become its children. Call it under
        the study's claim lock."""
        if not self.enabled:
            return
        from lrexp.tracking.store import TrackedRun

        parent = study.user_attrs.get(PARENT_RUN)
        if parent is None:
            run = TrackedRun(
                self.tracking_uri,
                self.experiment_name,
                f"study-{self.study_name}",
                {"sweep": "parent", TAG_STUDY: self.study_name},
                artifact_location=self.config.logger.get("artifact_location"),
            )
            run.log_params(params)
            parent = run.run_id
            study.set_user_attr(PARENT_RUN, parent)
        else:  # a resumed or a further worker: the study goes on
            self._call(lambda: self.client.update_run(parent, status="RUNNING"))
        self.parent = str(parent)
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(self.parent)

    def end_parent(self) -> None:
        if self.enabled and self.parent is not None:
            self._call(lambda: self.client.set_terminated(self.parent, "FINISHED"))

    def mark_killed(self, number: int) -> list[str]:
        """End the runs of trial ``number`` still RUNNING as KILLED (its worker died)."""
        if not self.enabled:
            return []
        experiment = self._call(lambda: self.client.get_experiment_by_name(self.experiment_name))
        if experiment is None:
            return []
        query = (
            f"tags.{TAG_STUDY} = '{self.study_name}' and tags.{TAG_TRIAL} = '{number}' "
            "and attributes.status = 'RUNNING'"
        )
        runs = self._call(lambda: self.client.search_runs([experiment.experiment_id], query))
        for run in runs:
            self._call(lambda run=run: self.client.set_terminated(run.info.run_id, "KILLED"))
        return [str(run.info.run_id) for run in runs]

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

"""Scale-out paths with real processes: CPU DDP (gloo) and the joblib launcher."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from conftest import experiment_id, run_cli
from lrexp.config.planning import planned_steps

STEPS_PER_EPOCH = 40  # digits: ceil(1257 / 32) global batches


def store(cwd: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")


def lr_steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "lr"))


@pytest.mark.slow
def test_two_process_cpu_ddp_logs_one_complete_run(
    tmp_path: Path, make_cfg: Callable[..., DictConfig]
) -> None:
    # the step planner's count for this run: the world size does not change it
    assert planned_steps(make_cfg("trainer=ddp_cpu", "trainer.max_epochs=2")) == (
        2 * STEPS_PER_EPOCH,
        STEPS_PER_EPOCH,
    )
    result = run_cli(
        ["trainer=ddp_cpu", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    client = store(tmp_path)
    (run,) = client.search_runs([experiment_id(client, "lrexp")])
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.devices"] == "2"
    # each rank takes half of every global batch: the step count is the single-process one
    total = 2 * STEPS_PER_EPOCH
    assert lr_steps(client, run.info.run_id) == list(range(total))
    history = sorted(client.get_metric_history(run.info.run_id, "lr"), key=lambda m: m.step)
    for point in history:
        expected = 0.1 * (1 + math.cos(math.pi * point.step / total)) / 2
        assert point.value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    val = sorted(client.get_metric_history(run.info.run_id, "val/acc"), key=lambda m: m.step)
    assert [m.step for m in val] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert run.data.metrics["test/acc"] > 0.5


@pytest.mark.slow
def test_joblib_multirun_records_every_run_completely(tmp_path: Path) -> None:
    result = run_cli(
        [
            "-m",
            "hydra/launcher=parallel",
            "schedule=step,cosine",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = store(tmp_path)
    runs = client.search_runs([experiment_id(client, "lrexp")])
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["schedule"] for r in children) == ["cosine", "step"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.params["threads"] == "None"
        assert lr_steps(client, child.info.run_id) == list(range(2 * STEPS_PER_EPOCH))
        assert len(client.get_metric_history(child.info.run_id, "val/acc")) == 2
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"comparison.png", "summary.md", "summary.csv"} <= artifacts
    assert f"--parent {parents[0].info.run_id}" in result.stderr
